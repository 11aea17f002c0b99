"""Metadata (key 3): brokers, topics and partition leaders.

Brokers, leaders, replicas and ISRs come from ``broker.cluster`` (this node
alone, or the controller of a multi-broker process); an offline partition
has leader -1 and LEADER_NOT_AVAILABLE, as Kafka reports it. Unknown topics are created here when auto-creation is on, as
Kafka does, and answered as ready since creation is immediate.

With an authorizer, as in Kafka: a request for all topics lists only those
the caller may DESCRIBE; a named topic it may not DESCRIBE is
TOPIC_AUTHORIZATION_FAILED whether or not it exists, and so is an unknown one
it may not CREATE (on the cluster or the topic) when auto-creation would
create it.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from kafkacompat.handlers.authorization import allowed, authorized_operations
from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType

log = logging.getLogger("kafkacompat.metadata")

API_KEY = 3
# Metadata v4 added allow_auto_topic_creation; before that creation was implied.
FIRST_AUTO_CREATE_FLAG_VERSION = 4
# Metadata v12 made topic names nullable, so topics can be looked up by id (KIP-516).
FIRST_TOPIC_ID_LOOKUP_VERSION = 12
UNSET_AUTHORIZED_OPERATIONS = -2147483648
# Metadata v8 added the authorized-operation bitfields (KIP-430).
FIRST_AUTHORIZED_OPERATIONS_VERSION = 8
NO_TOPIC_ID = uuid.UUID(int=0)


def _partition_answer(cluster: Any, live: set[int], index: int, partition: Any) -> dict[str, Any]:
    state = cluster.partition_state(partition)
    return {
        "error_code": ErrorCode.LEADER_NOT_AVAILABLE if state.offline else ErrorCode.NONE,
        "partition_index": index,
        "leader_id": state.leader,
        "leader_epoch": state.leader_epoch,
        "replica_nodes": list(state.replicas),
        "isr_nodes": list(state.isr),
        "offline_replicas": [node for node in state.replicas if node not in live],
    }


def _topic_answer(topic: Any, cluster: Any) -> dict[str, Any]:
    live = {info.node_id for info in cluster.brokers()}
    return {
        "error_code": ErrorCode.NONE,
        "name": topic.name,
        "topic_id": topic.topic_id,
        "is_internal": False,
        "partitions": [_partition_answer(cluster, live, index, partition) for index, partition in enumerate(topic.partitions)],
        "topic_authorized_operations": UNSET_AUTHORIZED_OPERATIONS,
    }


def _missing(name: str | None, code: ErrorCode, topic_id: uuid.UUID = NO_TOPIC_ID) -> dict[str, Any]:
    return {"error_code": code, "name": name, "topic_id": topic_id, "is_internal": False, "partitions": []}


def _auto_create(ctx: RequestContext, name: str) -> dict[str, Any]:
    broker = ctx.broker
    try:
        topic = broker.cluster.create_topic(name, broker.config.get_int("num.partitions"), {},
                                            replication_factor=broker.config.get_int("default.replication.factor"))
    except KafkaError as exc:
        if exc.code == ErrorCode.TOPIC_ALREADY_EXISTS:
            return _topic_answer(broker.log_manager.topic(name), broker.cluster)
        return _missing(name, exc.code)
    log.info("auto-created topic %s with %d partition(s)", name, len(topic.partitions))
    return _topic_answer(topic, broker.cluster)


def _by_topic_id(ctx: RequestContext, topic_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    """v12+ lookups by id: the topic when the id is known, UNKNOWN_TOPIC_ID (name null) otherwise."""
    manager, cluster = ctx.broker.log_manager, ctx.broker.cluster
    answers = []
    for topic_id in dict.fromkeys(topic_ids):
        topic = manager.topic_by_id(topic_id)
        if topic is None:
            answers.append(_missing(None, ErrorCode.UNKNOWN_TOPIC_ID, topic_id))
        elif not _may_describe(ctx, topic.name):
            answers.append(_missing(None, ErrorCode.TOPIC_AUTHORIZATION_FAILED, topic_id))
        else:
            answers.append(_topic_answer(topic, cluster))
    return answers


def _may_describe(ctx: RequestContext, name: str) -> bool:
    return allowed(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, name)


def _may_create(ctx: RequestContext, name: str) -> bool:
    return (allowed(ctx, AclOperation.CREATE, ResourceType.CLUSTER, CLUSTER_NAME)
            or allowed(ctx, AclOperation.CREATE, ResourceType.TOPIC, name))


def _requested_topics(request: Request, ctx: RequestContext) -> list[dict[str, Any]]:
    broker = ctx.broker
    manager = broker.log_manager
    body = request.body
    if body.topics is None or (request.version == 0 and not body.topics):
        listed = manager.topics() if broker.authorizer is None else [
            t for t in manager.topics() if _may_describe(ctx, t.name)]
        return [_topic_answer(t, broker.cluster) for t in listed]
    # As in Kafka: once any topic is named by id, the request is answered by ids alone.
    topic_ids = [wanted.topic_id for wanted in body.topics if wanted.topic_id != NO_TOPIC_ID]
    if topic_ids:
        return _by_topic_id(ctx, topic_ids)
    may_create = broker.config.get_bool("auto.create.topics.enable") and (
        request.version < FIRST_AUTO_CREATE_FLAG_VERSION or body.allow_auto_topic_creation
    )
    answers = []
    for wanted in body.topics:
        name = wanted.name
        topic = manager.topic(name) if name is not None else None
        if name is not None and not _may_describe(ctx, name):
            answers.append(_missing(name, ErrorCode.TOPIC_AUTHORIZATION_FAILED))
        elif topic is not None:
            answers.append(_topic_answer(topic, broker.cluster))
        elif name is None:
            answers.append(_missing(None, ErrorCode.UNKNOWN_TOPIC_ID))
        elif may_create and not _may_create(ctx, name):
            answers.append(_missing(name, ErrorCode.TOPIC_AUTHORIZATION_FAILED))
        elif may_create:
            answers.append(_auto_create(ctx, name))
        else:
            answers.append(_missing(name, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION))
    return answers


def _invalid_for_version(request: Request) -> str | None:
    """Why Kafka refuses this request outright: v10 and v11 have topic-id fields but no lookups by id."""
    topics = request.body.topics
    if request.version >= FIRST_TOPIC_ID_LOOKUP_VERSION or not topics:
        return None
    for wanted in topics:
        if wanted.name is None:
            return f"Topic name can not be null for version {request.version}"
        if wanted.topic_id != NO_TOPIC_ID:
            return f"Topic IDs are not supported in requests for version {request.version}"
    return None


def _invalid_request_answer(request: Request, reason: str) -> dict[str, Any]:
    """Kafka's error response: every requested topic with INVALID_REQUEST, null names sent as empty."""
    log.info("metadata v%d refused: %s", request.version, reason)
    return {
        "throttle_time_ms": 0,
        "brokers": [],
        "topics": [
            {**_missing(wanted.name or "", ErrorCode.INVALID_REQUEST, wanted.topic_id),
             "topic_authorized_operations": UNSET_AUTHORIZED_OPERATIONS}
            for wanted in request.body.topics
        ],
        "cluster_authorized_operations": UNSET_AUTHORIZED_OPERATIONS,
    }


async def handle_metadata(request: Request, ctx: RequestContext) -> dict[str, Any]:
    reason = _invalid_for_version(request)
    if reason is not None:
        return _invalid_request_answer(request, reason)
    broker = ctx.broker
    body = request.body
    topics = _requested_topics(request, ctx)
    if request.version >= FIRST_AUTHORIZED_OPERATIONS_VERSION and body.include_topic_authorized_operations:
        for topic in topics:
            if topic["error_code"] == ErrorCode.NONE:
                topic["topic_authorized_operations"] = authorized_operations(ctx, ResourceType.TOPIC, topic["name"])
    return {
        "throttle_time_ms": 0,
        "brokers": [{"node_id": info.node_id, "host": info.host, "port": info.port, "rack": info.rack}
                    for info in broker.brokers_for(ctx.listener_name)],
        "cluster_id": broker.cluster_id,
        "controller_id": broker.cluster.controller_id,
        "topics": topics,
        "cluster_authorized_operations": authorized_operations(ctx, ResourceType.CLUSTER, CLUSTER_NAME)
        if request.version >= FIRST_AUTHORIZED_OPERATIONS_VERSION and body.include_cluster_authorized_operations
        else UNSET_AUTHORIZED_OPERATIONS,
    }


API_HANDLERS = [ApiHandler(API_KEY, handle_metadata)]
