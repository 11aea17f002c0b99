"""DescribeTopicPartitions (key 75): topic and partition metadata, a page at a time.

Kafka 3.7+ admin clients describe topics with it instead of Metadata
(KIP-966). Kafka's paging rules: topics go in name order; an empty topic list
means every topic; a cursor (topic, partition) says where the previous page
stopped, and with an explicit list the cursor's topic must be in it. A page
holds at most `response_partition_limit` partitions (capped by Kafka's
max.request.partition.size.limit, 2000, and at least 1); when it fills up,
`next_cursor` names the first partition left out. Unknown topics named in
the list get UNKNOWN_TOPIC_OR_PARTITION (INVALID_TOPIC_EXCEPTION for an
illegal name) and take no room on the page.
"""

from __future__ import annotations

import uuid
from typing import Any

from kafkacompat.handlers.authorization import allowed, authorized_operations
from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.log.log_manager import validate_topic_name
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.security.authorizer import AclOperation, ResourceType

API_KEY = 75
MAX_REQUEST_PARTITION_SIZE_LIMIT = 2000
NO_TOPIC_ID = uuid.UUID(int=0)


def _partition(log: Any, node_id: int) -> dict[str, Any]:
    return {
        "error_code": ErrorCode.NONE,
        "partition_index": log.index,
        "leader_id": node_id,
        "leader_epoch": log.leader_epoch,
        "replica_nodes": [node_id],
        "isr_nodes": [node_id],
        "eligible_leader_replicas": [],
        "last_known_elr": [],
        "offline_replicas": [],
    }


def _missing(name: str) -> dict[str, Any]:
    try:
        validate_topic_name(name)
        code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    except KafkaError:
        code = ErrorCode.INVALID_TOPIC_EXCEPTION
    return {"error_code": code, "name": name, "topic_id": NO_TOPIC_ID, "is_internal": False, "partitions": []}


def _wanted_names(body: Any, manager: Any) -> list[str]:
    cursor = body.cursor
    after = cursor.topic_name if cursor is not None else ""
    describe_all = not body.topics
    names = {t.name for t in manager.topics()} if describe_all else {t.name for t in body.topics}
    names = {name for name in names if name >= after}
    if cursor is not None and not describe_all and cursor.topic_name not in names:
        raise KafkaError(
            ErrorCode.INVALID_REQUEST,
            f"DescribeTopicPartitionsRequest topic list should contain the cursor topic: {cursor.topic_name}",
        )
    if cursor is not None and cursor.partition_index < 0:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "DescribeTopicPartitionsRequest cursor partition must be valid")
    return sorted(names)


def _page(body: Any, ctx: RequestContext, names: list[str]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    manager = ctx.broker.log_manager
    cursor = body.cursor
    remaining = max(min(MAX_REQUEST_PARTITION_SIZE_LIMIT, body.response_partition_limit), 1)
    topics: list[dict[str, Any]] = []
    for name in names:
        if remaining == 0:
            return topics, {"topic_name": name, "partition_index": 0}
        topic = manager.topic(name)
        if topic is None:
            if body.topics:
                topics.append(_missing(name))
            continue
        start = cursor.partition_index if cursor is not None and name == cursor.topic_name else 0
        end = min(len(topic.partitions), start + remaining)
        partitions = [_partition(log, ctx.broker.node_id) for log in topic.partitions[start:end]]
        topics.append({"error_code": ErrorCode.NONE, "name": name, "topic_id": topic.topic_id,
                       "is_internal": False, "partitions": partitions,
                       "topic_authorized_operations": authorized_operations(ctx, ResourceType.TOPIC, name)})
        if end < len(topic.partitions):
            return topics, {"topic_name": name, "partition_index": end}
        remaining -= len(partitions)
    return topics, None


async def handle_describe_topic_partitions(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    try:
        names = _wanted_names(body, ctx.broker.log_manager)
    except KafkaError as exc:
        refused = [{"error_code": exc.code, "name": t.name, "topic_id": NO_TOPIC_ID, "is_internal": False,
                    "partitions": []} for t in body.topics]
        return {"throttle_time_ms": 0, "topics": refused, "next_cursor": None}
    if not body.topics and ctx.broker.authorizer is not None:  # a listing leaves out what the caller may not see
        names = [name for name in names if allowed(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, name)]
    topics, next_cursor = _page(body, ctx, names)
    return {"throttle_time_ms": 0, "topics": topics, "next_cursor": next_cursor}


API_HANDLERS = [ApiHandler(API_KEY, handle_describe_topic_partitions)]
