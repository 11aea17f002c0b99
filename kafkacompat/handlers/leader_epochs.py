"""OffsetForLeaderEpoch (key 23): where a leader epoch ends in a partition's log.

Consumers ask it to validate their position after a leader change (KIP-320):
an end offset below the position means the log they read was truncated.
The answer comes from the partition's leader-epoch history (see
log/leader_epochs.py), after checking the caller's current leader epoch as
Kafka does (FENCED_LEADER_EPOCH when older than ours, UNKNOWN_LEADER_EPOCH
when newer).
"""

from __future__ import annotations

from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.log.leader_epochs import UNDEFINED_EPOCH, UNDEFINED_OFFSET, check_current_leader_epoch
from kafkacompat.protocol.errors import ErrorCode, KafkaError

API_KEY = 23


def _epoch_end(ctx: RequestContext, topic: str, wanted: Any) -> dict[str, Any]:
    answer = {"partition": wanted.partition, "error_code": ErrorCode.NONE,
              "leader_epoch": UNDEFINED_EPOCH, "end_offset": UNDEFINED_OFFSET}
    log = ctx.broker.log_manager.partition(topic, wanted.partition)
    refused = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if log is None else ctx.broker.cluster.leader_error(log)
    if refused is not None:
        answer["error_code"] = refused
        return answer
    try:
        check_current_leader_epoch(wanted.current_leader_epoch, log)
        answer["leader_epoch"], answer["end_offset"] = log.end_offset_for_epoch(wanted.leader_epoch)
    except KafkaError as exc:
        answer["error_code"] = exc.code
    return answer


async def handle_offset_for_leader_epoch(request: Request, ctx: RequestContext) -> dict[str, Any]:
    return {
        "throttle_time_ms": 0,
        "topics": [
            {"topic": topic.topic, "partitions": [_epoch_end(ctx, topic.topic, p) for p in topic.partitions]}
            for topic in request.body.topics
        ],
    }


API_HANDLERS = [ApiHandler(API_KEY, handle_offset_for_leader_epoch)]
