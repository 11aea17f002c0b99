"""FindCoordinator (key 10): which broker coordinates a group (or transactional id).

A group's coordinator is the leader of its ``__consumer_offsets`` partition
(``broker.cluster.coordinator``: this node for a broker alone), a
transactional id's the leader of its ``__transaction_state`` partition
(``broker.cluster.transaction_coordinator``); either moves when that broker
stops, and is COORDINATOR_NOT_AVAILABLE while no broker leads the partition.
v4+ batches keys and answers one entry per key.
"""

from __future__ import annotations

from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode

API_KEY = 10

KEY_TYPE_GROUP = 0
KEY_TYPE_TRANSACTION = 1
_NOT_AVAILABLE = "The coordinator is not available."


def _locate(ctx: RequestContext, key: str, key_type: int) -> dict[str, Any]:
    cluster = ctx.broker.cluster
    if key_type in (KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION):
        node_id = cluster.coordinator(key) if key_type == KEY_TYPE_GROUP else cluster.transaction_coordinator(key)
        info = next((b for b in ctx.broker.brokers_for(ctx.listener_name) if b.node_id == node_id), None)
        if info is not None:
            return {"key": key, "node_id": info.node_id, "host": info.host,
                    "port": info.port, "error_code": ErrorCode.NONE, "error_message": None}
    if key_type in (KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION):
        code, message = ErrorCode.COORDINATOR_NOT_AVAILABLE, _NOT_AVAILABLE
    else:
        code, message = ErrorCode.INVALID_REQUEST, f"Unknown coordinator type {key_type}"
    return {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": code, "error_message": message}


async def handle_find_coordinator(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    if request.version >= 4:
        return {"throttle_time_ms": 0,
                "coordinators": [_locate(ctx, key, body.key_type) for key in body.coordinator_keys]}
    return {"throttle_time_ms": 0, **_locate(ctx, body.key, body.key_type)}


API_HANDLERS = [ApiHandler(API_KEY, handle_find_coordinator)]
