"""DescribeAcls (key 29) and DescribeClientQuotas (key 48), answered as Kafka answers them with
none of these configured.

There is no authorizer and no quota here yet, so: DescribeAcls gets
SECURITY_DISABLED, as from a Kafka without an authorizer; DescribeClientQuotas
checks its filter as Kafka does, then matches nothing. (SCRAM credentials:
handlers/scram_credentials.py.)
"""

from __future__ import annotations

from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode, KafkaError

API_DESCRIBE_ACLS = 29
API_DESCRIBE_CLIENT_QUOTAS = 48
QUOTA_ENTITY_TYPES = ("user", "client-id", "ip")
MATCH_EXACT, MATCH_DEFAULT, MATCH_SPECIFIED = 0, 1, 2


async def handle_describe_acls(request: Request, ctx: RequestContext) -> dict[str, Any]:
    return {"throttle_time_ms": 0, "error_code": ErrorCode.SECURITY_DISABLED,
            "error_message": "No Authorizer is configured on the broker", "resources": []}


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


async def handle_describe_client_quotas(request: Request, ctx: RequestContext) -> dict[str, Any]:
    try:
        _check_quota_filter(request.body.components)
    except KafkaError as exc:
        return {"throttle_time_ms": 0, "error_code": exc.code, "error_message": exc.message, "entries": None}
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "entries": []}


API_HANDLERS = [
    ApiHandler(API_DESCRIBE_ACLS, handle_describe_acls),
    ApiHandler(API_DESCRIBE_CLIENT_QUOTAS, handle_describe_client_quotas),
]
