"""DescribeClientQuotas (key 48) and AlterClientQuotas (key 49), and the throttling of every request.

The quotas live in :mod:`kafkacompat.security.quotas`. After a handler has
run, dispatch calls :func:`throttle` (only when some quota is set): the
request's handler time counts against ``request_percentage``, a Produce
request's size against ``producer_byte_rate``, a consumer Fetch's record
bytes against ``consumer_byte_rate``; the largest throttle time earned goes
into the answer's ``throttle_time_ms`` and mutes the connection for as long,
as Kafka does since KIP-219.
"""

from __future__ import annotations

from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.frames import RequestHeader
from kafkacompat.security import quotas
from kafkacompat.security.quotas import entity_of, invalid_entity, invalid_value

API_DESCRIBE_CLIENT_QUOTAS = 48
API_ALTER_CLIENT_QUOTAS = 49
PRODUCE, FETCH = 0, 1
QUOTA_ENTITY_TYPES = quotas.ENTITY_TYPES
MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2
NANOS_TO_PERCENT_SECONDS = 100 / 1e9  # Kafka records a request's thread time as a percentage of one second


def _check_quota_filter(components: list[Any]) -> None:
    """Kafka's checks of a DescribeClientQuotas filter, in its order."""
    seen: set[str] = set()
    for component in components:
        entity_type = component.entity_type
        if not entity_type:
            raise KafkaError(ErrorCode.INVALID_REQUEST, "Invalid empty entity type.")
        if entity_type in seen:
            raise KafkaError(ErrorCode.INVALID_REQUEST,
                             f"Entity type {entity_type} cannot appear more than once in the filter.")
        if entity_type not in QUOTA_ENTITY_TYPES:
            raise KafkaError(ErrorCode.UNSUPPORTED_VERSION, f"Unsupported entity type {entity_type}")
        match_type, match = component.match_type, component.match
        if match_type == MATCH_EXACT and match is None:
            raise KafkaError(ErrorCode.INVALID_REQUEST,
                             "Request specified MATCH_TYPE_EXACT, but set match string to null.")
        if match_type == MATCH_DEFAULT and match is not None:
            raise KafkaError(ErrorCode.INVALID_REQUEST,
                             "Request specified MATCH_TYPE_DEFAULT, but also specified a match string.")
        if match_type == MATCH_SPECIFIED and match is not None:
            raise KafkaError(ErrorCode.INVALID_REQUEST,
                             "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.")
        if match_type not in (MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED):
            raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unknown match type {match_type}")
        seen.add(entity_type)
    if "ip" in seen and seen & {"user", "client-id"}:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Invalid entity filter component combination. IP filter "
                         "component should not be used with user or clientId filter component.")


def _matches(entity: quotas.Entity, components: list[Any], strict: bool) -> bool:
    names = dict(entity)
    for component in components:
        if component.entity_type not in names:
            return False
        name = names[component.entity_type]
        if component.match_type == MATCH_EXACT and name != component.match:
            return False
        if component.match_type == MATCH_DEFAULT and name is not None:
            return False
        if component.match_type == MATCH_SPECIFIED and name is None:
            return False
    return not strict or len(names) == len(components)


async def handle_describe_client_quotas(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    try:
        _check_quota_filter(body.components)
    except KafkaError as exc:
        return {"throttle_time_ms": 0, "error_code": exc.code, "error_message": exc.message, "entries": None}
    entries = [
        {"entity": [{"entity_type": kind, "entity_name": name} for kind, name in entity],
         "values": [{"key": key, "value": value} for key, value in sorted(values.items())]}
        for entity, values in ctx.broker.quotas.store.items() if _matches(entity, body.components, body.strict)
    ]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "entries": entries}


async def handle_alter_client_quotas(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    results, changes = [], []
    for entry in body.entries:
        pairs = [(e.entity_type, e.entity_name) for e in entry.entity]
        reason = invalid_entity(pairs)
        entity = entity_of(pairs)
        asked = [(entity, op.key, None if op.remove else op.value) for op in entry.ops]
        if reason is None:
            reason = next((why for op in entry.ops if (why := invalid_value(entity, op.key, op.value))), None)
        if reason is None:
            changes.extend(asked)
        results.append({"error_code": ErrorCode.NONE if reason is None else ErrorCode.INVALID_REQUEST,
                        "error_message": reason,
                        "entity": [{"entity_type": e.entity_type, "entity_name": e.entity_name} for e in entry.entity]})
    if not body.validate_only:
        ctx.broker.quotas.alter(changes)
    return {"throttle_time_ms": 0, "entries": results}


def throttle(answer: Any, header: RequestHeader, ctx: RequestContext, request_bytes: int, handler_ns: int) -> None:
    """Record the request against the caller's quotas; throttle its answer (an ``Answer``) as earned."""
    manager = ctx.broker.quotas
    user, client_id = ctx.principal.partition(":")[2], header.client_id or ""
    throttle_ms = manager.record(quotas.REQUEST, user, client_id, handler_ns * NANOS_TO_PERCENT_SECONDS)
    body = answer.body
    if header.api_key == PRODUCE:
        throttle_ms = max(throttle_ms, manager.record(quotas.PRODUCE, user, client_id, request_bytes))
    elif header.api_key == FETCH and isinstance(body, dict):
        sent = sum(len(p["records"] or b"") for topic in body.get("responses", ()) for p in topic["partitions"])
        throttle_ms = max(throttle_ms, manager.record(quotas.FETCH, user, client_id, sent))
    if throttle_ms:
        if isinstance(body, dict):
            body["throttle_time_ms"] = max(body.get("throttle_time_ms", 0), throttle_ms)
        answer.mute_ms = max(answer.mute_ms, throttle_ms)


API_HANDLERS = [
    ApiHandler(API_DESCRIBE_CLIENT_QUOTAS, handle_describe_client_quotas),
    ApiHandler(API_ALTER_CLIENT_QUOTAS, handle_alter_client_quotas),
]
