"""ListOffsets (key 2): offsets by position (earliest, latest) or by time.

v0 answers with a list of up to ``max_num_offsets`` offsets
(``old_style_offsets``) instead of one offset and its timestamp. Kafka 3.9
built that list from segment base offsets; this broker answers the one offset
v1 would give (the list clients read with ``max_num_offsets`` 1, as all of
them send), or none when there is none.
"""

from __future__ import annotations

from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.log.leader_epochs import check_current_leader_epoch
from kafkacompat.protocol.errors import ErrorCode, KafkaError

API_KEY = 2

LATEST = -1
EARLIEST = -2
MAX_TIMESTAMP = -3
EARLIEST_LOCAL = -4
LATEST_TIERED = -5
READ_COMMITTED = 1


def _lookup(log: Any, timestamp: int, isolation_level: int) -> tuple[int, int]:
    """(offset, timestamp) as Kafka answers them; -1 where there is none. read_committed's latest is the LSO."""
    if timestamp == LATEST:
        return (log.last_stable_offset if isolation_level == READ_COMMITTED else log.high_watermark), -1
    if timestamp in (EARLIEST, EARLIEST_LOCAL):
        return log.log_start_offset, -1
    if timestamp == LATEST_TIERED:
        # Nothing is tiered here, so the tiered log ends just before the local one starts.
        return log.log_start_offset - 1, -1
    found = log.max_timestamp_offset() if timestamp == MAX_TIMESTAMP else log.offset_for_timestamp(timestamp)
    if found is None:
        return -1, -1
    return found


async def handle_list_offsets(request: Request, ctx: RequestContext) -> dict[str, Any]:
    manager = ctx.broker.log_manager
    topics = []
    for wanted in request.body.topics:
        partitions = []
        for p in wanted.partitions:
            log = manager.partition(wanted.name, p.partition_index)
            code = ErrorCode.NONE if log is not None else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            if log is not None:
                code = ctx.broker.cluster.leader_error(log) or ErrorCode.NONE
            if code == ErrorCode.NONE and log is not None:
                try:
                    check_current_leader_epoch(p.current_leader_epoch, log)
                except KafkaError as exc:
                    code = exc.code
            if code != ErrorCode.NONE:
                partitions.append({
                    "partition_index": p.partition_index,
                    "error_code": code,
                    "timestamp": -1, "offset": -1, "leader_epoch": -1, "old_style_offsets": [],
                })
                continue
            offset, timestamp = _lookup(log, p.timestamp, request.body.get("isolation_level", 0))
            partitions.append({
                "partition_index": p.partition_index,
                "error_code": ErrorCode.NONE,
                "timestamp": timestamp,
                "offset": offset,
                "leader_epoch": log.leader_epoch,
                "old_style_offsets": [offset] if offset >= 0 and p.max_num_offsets > 0 else [],
            })
        topics.append({"name": wanted.name, "partitions": partitions})
    return {"throttle_time_ms": 0, "topics": topics}


API_HANDLERS = [ApiHandler(API_KEY, handle_list_offsets)]
