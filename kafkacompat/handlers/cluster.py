"""DescribeCluster (key 60) and DescribeQuorum (key 55): who is in the cluster, who controls it.

We are a one-broker cluster that is also its own controller, so the answer is
always this node. Only the broker endpoint type is served: a client asking a
broker listener for controller endpoints gets Kafka's mismatch error.

DescribeQuorum describes the KRaft quorum behind the cluster metadata
partition (`__cluster_metadata-0`): this node is its only voter and leader,
with no observers. There is no replicated metadata log here, so its epoch
and offsets are 0; the leader's own fetch and catch-up times are "now", as
Kafka reports them for a leader. A request naming any other partition gets
UNKNOWN_TOPIC_OR_PARTITION for each partition it names, as in Kafka.
"""

from __future__ import annotations

import uuid
from typing import Any

from kafkacompat.handlers.authorization import authorized_operations
from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.security.authorizer import CLUSTER_NAME, ResourceType

API_KEY = 60
API_DESCRIBE_QUORUM = 55
METADATA_TOPIC = "__cluster_metadata"
NO_DIRECTORY_ID = uuid.UUID(int=0)
LISTENER_NAME = "PLAINTEXT"
UNKNOWN_PARTITION_MESSAGE = "This server does not host this topic-partition."

ENDPOINT_TYPE_BROKER = 1
ENDPOINT_TYPE_CONTROLLER = 2
# The schema's "not requested" value for authorized-operation bitfields.
UNSET_AUTHORIZED_OPERATIONS = -2147483648


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
        "controller_id": broker.cluster.controller_id,
        "brokers": [{"broker_id": info.node_id, "host": info.host, "port": info.port, "rack": info.rack}
                    for info in broker.brokers_for(ctx.listener_name)],
        "cluster_authorized_operations": (
            authorized_operations(ctx, ResourceType.CLUSTER, CLUSTER_NAME)
            if body.include_cluster_authorized_operations else UNSET_AUTHORIZED_OPERATIONS
        ),
    }


def _names_metadata_partition(body: Any) -> bool:
    topics = body.topics
    return (len(topics) == 1 and topics[0].topic_name == METADATA_TOPIC
            and [p.partition_index for p in topics[0].partitions] == [0])


async def handle_describe_quorum(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    if not _names_metadata_partition(body):
        return {"error_code": ErrorCode.NONE, "error_message": None, "topics": [
            {"topic_name": topic.topic_name, "partitions": [
                {"partition_index": p.partition_index, "error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                 "error_message": UNKNOWN_PARTITION_MESSAGE}
                for p in topic.partitions]}
            for topic in body.topics], "nodes": []}
    broker = ctx.broker
    now = broker.clock()
    controller_id = broker.cluster.controller_id
    voter = {"replica_id": controller_id, "replica_directory_id": NO_DIRECTORY_ID, "log_end_offset": 0,
             "last_fetch_timestamp": now, "last_caught_up_timestamp": now}
    controller = broker.cluster.broker_info(controller_id)
    return {
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "topics": [{"topic_name": METADATA_TOPIC, "partitions": [{
            "partition_index": 0, "error_code": ErrorCode.NONE, "error_message": None,
            "leader_id": controller_id, "leader_epoch": 0, "high_watermark": 0,
            "current_voters": [voter], "observers": [],
        }]}],
        "nodes": [{"node_id": controller_id, "listeners": [
            {"name": LISTENER_NAME, "host": controller.host, "port": controller.port}]}],
    }


API_HANDLERS = [
    ApiHandler(API_DESCRIBE_QUORUM, handle_describe_quorum),
    ApiHandler(API_KEY, handle_describe_cluster),
]
