"""DescribeCluster (key 60): who is in the cluster and who is the controller.

We are a one-broker cluster that is also its own controller, so the answer is
always this node. Only the broker endpoint type is served: a client asking a
broker listener for controller endpoints gets Kafka's mismatch error.
"""

from __future__ import annotations

from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode

API_KEY = 60

ENDPOINT_TYPE_BROKER = 1
ENDPOINT_TYPE_CONTROLLER = 2
# The schema's "not requested" value for authorized-operation bitfields.
UNSET_AUTHORIZED_OPERATIONS = -2147483648
# Without an authorizer Kafka grants every operation the cluster resource
# supports: CREATE(5), ALTER(7), DESCRIBE(8), CLUSTER_ACTION(9),
# DESCRIBE_CONFIGS(10), ALTER_CONFIGS(11), IDEMPOTENT_WRITE(12).
CLUSTER_OPERATIONS = sum(1 << code for code in (5, 7, 8, 9, 10, 11, 12))


def _refusal(request: Request, code_from_v1: ErrorCode, message: str) -> dict[str, Any]:
    """v0 predates the endpoint-type error codes, so it gets INVALID_REQUEST."""
    code = code_from_v1 if request.version >= 1 else ErrorCode.INVALID_REQUEST
    return {"throttle_time_ms": 0, "error_code": code, "error_message": message, "brokers": []}


async def handle_describe_cluster(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    endpoint_type = body.endpoint_type if request.version >= 1 else ENDPOINT_TYPE_BROKER
    if endpoint_type == ENDPOINT_TYPE_CONTROLLER:
        return _refusal(
            request,
            ErrorCode.MISMATCHED_ENDPOINT_TYPE,
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
        )
    if endpoint_type != ENDPOINT_TYPE_BROKER:
        return _refusal(request, ErrorCode.UNSUPPORTED_ENDPOINT_TYPE, f"Unsupported endpoint type {endpoint_type}")
    broker = ctx.broker
    return {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "endpoint_type": ENDPOINT_TYPE_BROKER,
        "cluster_id": broker.cluster_id,
        "controller_id": broker.node_id,
        "brokers": [
            {"broker_id": broker.node_id, "host": broker.advertised_host, "port": broker.advertised_port, "rack": None}
        ],
        "cluster_authorized_operations": (
            CLUSTER_OPERATIONS if body.include_cluster_authorized_operations else UNSET_AUTHORIZED_OPERATIONS
        ),
    }


API_HANDLERS = [ApiHandler(API_KEY, handle_describe_cluster)]
