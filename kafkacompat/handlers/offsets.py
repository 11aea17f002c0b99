"""Committed offsets: OffsetCommit (8), OffsetFetch (9), OffsetDelete (47).

Partitions of topics this broker does not have are answered
UNKNOWN_TOPIC_OR_PARTITION here, before the coordinator sees the request, as
Kafka checks its metadata cache first. OffsetFetch v8+ asks for several
groups at once; a null topic list means "every committed partition". With
``require_stable`` (v7+, KIP-447) a partition whose offset an open
transaction has staged answers UNSTABLE_OFFSET_COMMIT, so the consumer waits
for the transaction to end instead of reading the offset before it.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from kafkacompat.group.coordinator import CommittedOffset, TopicPartition
from kafkacompat.handlers.authorization import allowed
from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.security.authorizer import AclOperation, ResourceType

OFFSET_COMMIT, OFFSET_FETCH, OFFSET_DELETE = 8, 9, 47


def _exists(ctx: RequestContext, tp: TopicPartition) -> bool:
    return ctx.broker.log_manager.partition(tp.topic, tp.partition) is not None


def _by_topic(errors: Mapping[TopicPartition, ErrorCode]) -> list[dict[str, Any]]:
    """Per-topic, per-partition error lists in first-seen order (the commit/delete answer shape)."""
    topics: dict[str, list[dict[str, Any]]] = {}
    for tp, code in errors.items():
        topics.setdefault(tp.topic, []).append({"partition_index": tp.partition, "error_code": code})
    return [{"name": name, "partitions": partitions} for name, partitions in topics.items()]


async def handle_offset_commit(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    errors: dict[TopicPartition, ErrorCode] = {}
    offsets: dict[TopicPartition, CommittedOffset] = {}
    for topic in body.topics:
        for p in topic.partitions:
            tp = TopicPartition(topic.name, p.partition_index)
            if not _exists(ctx, tp):
                errors[tp] = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
                continue
            errors[tp] = ErrorCode.NONE  # placeholder keeps request order
            offsets[tp] = CommittedOffset(
                offset=p.committed_offset,
                leader_epoch=p.committed_leader_epoch,
                metadata=p.committed_metadata or "",
                commit_timestamp_ms=p.commit_timestamp,  # -1 (now) except in v1
            )
    if offsets and ctx.broker.share_groups.group(body.group_id) is not None:
        errors.update(dict.fromkeys(offsets, ErrorCode.GROUP_ID_NOT_FOUND))  # a share group commits no offsets
    elif offsets:
        errors.update(ctx.broker.groups.commit_offsets(
            body.group_id,
            body.generation_id_or_member_epoch,
            body.member_id,
            offsets,
            group_instance_id=body.group_instance_id,
            retention_time_ms=body.retention_time_ms,
            version=request.version,
        ))
    return {"throttle_time_ms": 0, "topics": _by_topic(errors)}


def _fetched_topics(ctx: RequestContext, group_id: str, topics: Iterable[Any] | None,
                    require_stable: bool) -> list[dict[str, Any]]:
    """The group's commits; with an authorizer, topics the caller may not DESCRIBE are left out of a listing
    and TOPIC_AUTHORIZATION_FAILED when named, as Kafka answers them."""
    wanted = None if topics is None else [
        TopicPartition(t.name, index) for t in topics for index in t.partition_indexes
    ]
    transactions = ctx.broker.transactions
    answer: dict[str, list[dict[str, Any]]] = {}
    for tp, committed in ctx.broker.groups.fetch_offsets(group_id, wanted).items():
        if require_stable and transactions.has_pending_offsets(group_id, tp):
            committed, code = None, ErrorCode.UNSTABLE_OFFSET_COMMIT
        else:
            code = ErrorCode.NONE
        answer.setdefault(tp.topic, []).append({
            "partition_index": tp.partition,
            "committed_offset": committed.offset if committed else -1,
            "committed_leader_epoch": committed.leader_epoch if committed else -1,
            "metadata": committed.metadata if committed else "",
            "error_code": code,
        })
    if ctx.broker.authorizer is not None:
        for name in [n for n in answer if not allowed(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, n)]:
            if topics is None:
                del answer[name]
            else:
                answer[name] = [{**p, "committed_offset": -1, "committed_leader_epoch": -1, "metadata": "",
                                 "error_code": ErrorCode.TOPIC_AUTHORIZATION_FAILED} for p in answer[name]]
    return [{"name": name, "partitions": partitions} for name, partitions in answer.items()]


async def handle_offset_fetch(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    require_stable = bool(body.get("require_stable", False))
    if request.version >= 8:
        groups = ctx.broker.groups
        answers = []
        for g in body.groups:
            # v9+: a KIP-848 member names itself and its epoch (STALE_MEMBER_EPOCH when behind).
            error = groups.offset_fetch_error(g.group_id, g.member_id, g.member_epoch) if request.version >= 9 else None
            answers.append({"group_id": g.group_id, "error_code": error or ErrorCode.NONE,
                            "topics": [] if error else _fetched_topics(ctx, g.group_id, g.topics, require_stable)})
        return {"throttle_time_ms": 0, "groups": answers}
    return {
        "throttle_time_ms": 0,
        "topics": _fetched_topics(ctx, body.group_id, body.topics, require_stable),
        "error_code": ErrorCode.NONE,
    }


async def handle_offset_delete(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    requested = [TopicPartition(t.name, p.partition_index) for t in body.topics for p in t.partitions]
    known = [tp for tp in requested if _exists(ctx, tp)]
    group_error, deleted = ctx.broker.groups.delete_offsets(body.group_id, known)
    # With a group-level error only the unknown partitions are listed, as in Kafka.
    unknown = set(requested).difference(known)
    errors = {tp: deleted.get(tp, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
              for tp in requested if tp in deleted or tp in unknown}
    return {"error_code": group_error, "throttle_time_ms": 0, "topics": _by_topic(errors)}


API_HANDLERS = [
    ApiHandler(OFFSET_COMMIT, handle_offset_commit),
    ApiHandler(OFFSET_FETCH, handle_offset_fetch),
    ApiHandler(OFFSET_DELETE, handle_offset_delete),
]
