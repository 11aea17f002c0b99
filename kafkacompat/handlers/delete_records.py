"""DeleteRecords (key 21): move partitions' log start offsets forward.

Each partition's records below the requested offset (-1: the high watermark)
stop being served at once and whole segments below it are deleted; the
answer's low watermark is the new log start offset.  As in Kafka: an offset
past the high watermark is OFFSET_OUT_OF_RANGE, and a topic whose
cleanup.policy lacks delete answers POLICY_VIOLATION.  timeout_ms is moot
with one replica: the change is durable before the answer goes out.
"""

from __future__ import annotations

from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode, KafkaError

API_KEY = 21


def _delete(ctx: RequestContext, topic: str, index: int, offset: int) -> dict[str, Any]:
    partition = ctx.broker.log_manager.partition(topic, index)
    if partition is None:
        return {"partition_index": index, "low_watermark": -1, "error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    try:
        low_watermark = partition.delete_records(offset)
    except KafkaError as exc:
        return {"partition_index": index, "low_watermark": -1, "error_code": exc.code}
    return {"partition_index": index, "low_watermark": low_watermark, "error_code": ErrorCode.NONE}


async def handle_delete_records(request: Request, ctx: RequestContext) -> dict[str, Any]:
    topics = [
        {
            "name": topic.name,
            "partitions": [_delete(ctx, topic.name, p.partition_index, p.offset) for p in topic.partitions],
        }
        for topic in request.body.topics
    ]
    return {"throttle_time_ms": 0, "topics": topics}


API_HANDLERS = [ApiHandler(API_KEY, handle_delete_records)]
