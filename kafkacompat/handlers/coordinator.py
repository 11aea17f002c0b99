"""FindCoordinator (key 10): which broker coordinates a group (or transactional id).

A single broker coordinates every group and every transactional id, so
both key types always name this node. v4+ batches keys and answers one entry
per key.
"""

from __future__ import annotations

from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode

API_KEY = 10

KEY_TYPE_GROUP = 0
KEY_TYPE_TRANSACTION = 1


def _locate(ctx: RequestContext, key: str, key_type: int) -> dict[str, Any]:
    if key_type in (KEY_TYPE_GROUP, KEY_TYPE_TRANSACTION):
        host, port = ctx.broker.address_for(ctx.listener_name)
        return {"key": key, "node_id": ctx.broker.node_id, "host": host,
                "port": port, "error_code": ErrorCode.NONE, "error_message": None}
    return {"key": key, "node_id": -1, "host": "", "port": -1, "error_code": ErrorCode.INVALID_REQUEST,
            "error_message": f"Unknown coordinator type {key_type}"}


async def handle_find_coordinator(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    if request.version >= 4:
        return {"throttle_time_ms": 0,
                "coordinators": [_locate(ctx, key, body.key_type) for key in body.coordinator_keys]}
    return {"throttle_time_ms": 0, **_locate(ctx, body.key, body.key_type)}


API_HANDLERS = [ApiHandler(API_KEY, handle_find_coordinator)]
