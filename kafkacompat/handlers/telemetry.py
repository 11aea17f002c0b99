"""Client telemetry (KIP-714): GetTelemetrySubscriptions (71), PushTelemetry (72),
ListClientMetricsResources (74), over the broker's ClientMetricsManager."""

from __future__ import annotations

import uuid
from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.telemetry.client_metrics import ACCEPTED_COMPRESSION

GET_TELEMETRY_SUBSCRIPTIONS, PUSH_TELEMETRY, LIST_CLIENT_METRICS_RESOURCES = 71, 72, 74
NO_INSTANCE = uuid.UUID(int=0)


async def handle_get_subscriptions(request: Request, ctx: RequestContext) -> dict[str, Any]:
    manager = ctx.broker.client_metrics
    requested_id = request.body.client_instance_id
    answer = manager.get_subscriptions(requested_id, request.header.client_id or "", ctx.client_host)
    return {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "client_instance_id": answer.instance_id if requested_id.int == 0 else NO_INSTANCE,
        "subscription_id": answer.subscription_id,
        "accepted_compression_types": [int(c) for c in ACCEPTED_COMPRESSION],
        "push_interval_ms": answer.interval_ms,
        "telemetry_max_bytes": manager.telemetry_max_bytes,
        "delta_temporality": True,
        "requested_metrics": answer.requested_metrics,
    }


async def handle_push(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    code = ctx.broker.client_metrics.push(body.client_instance_id, body.subscription_id, body.terminating,
                                          body.compression_type, bytes(body.metrics or b""))
    return {"throttle_time_ms": 0, "error_code": code}


async def handle_list_resources(request: Request, ctx: RequestContext) -> dict[str, Any]:
    names = sorted(ctx.broker.client_metrics.subscriptions)
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE,
            "client_metrics_resources": [{"name": name} for name in names]}


API_HANDLERS = [
    ApiHandler(GET_TELEMETRY_SUBSCRIPTIONS, handle_get_subscriptions),
    ApiHandler(PUSH_TELEMETRY, handle_push),
    ApiHandler(LIST_CLIENT_METRICS_RESOURCES, handle_list_resources),
]
