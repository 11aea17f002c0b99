"""InitProducerId (key 22) and DescribeProducers (key 61): idempotent producers' ids, epochs
and the state partitions keep for them.

Idempotent producers (the default in kafka-python 3 and the Java client) call
this before their first produce. A producer that names its current id and
epoch (v3+, after a sequence error) gets the same id with the next epoch, so
its partitions accept a fresh sequence from 0. Transactions are not served.

DescribeProducers lists, per partition, the producers whose sequences it
remembers: id, epoch, last sequence and the timestamp of its last batch.
Without transactions there is no coordinator epoch (-1) and no open
transaction (start offset -1).
"""

from __future__ import annotations

import logging
from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode

log = logging.getLogger("kafkacompat.producer_ids")

API_KEY = 22
API_DESCRIBE_PRODUCERS = 61
MAX_EPOCH = 32767


async def handle_init_producer_id(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    if body.transactional_id is not None:
        log.info("refusing transactional producer %r: transactions are not supported", body.transactional_id)
        return {"error_code": ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "producer_id": -1, "producer_epoch": -1}
    producer_id = getattr(body, "producer_id", -1)
    epoch = getattr(body, "producer_epoch", -1)
    if request.version >= 3 and producer_id >= 0 and 0 <= epoch < MAX_EPOCH:
        return {"error_code": ErrorCode.NONE, "producer_id": producer_id, "producer_epoch": epoch + 1}
    return {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "producer_id": ctx.broker.cluster.allocate_producer_id(),
        "producer_epoch": 0,
    }


def _partition_producers(manager: Any, topic: str, index: int) -> dict[str, Any]:
    log = manager.partition(topic, index)
    if log is None:
        return {"partition_index": index, "error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                "error_message": None, "active_producers": []}
    producers = [
        {"producer_id": entry.producer_id, "producer_epoch": entry.producer_epoch,
         "last_sequence": entry.last_sequence,
         "last_timestamp": entry.batches[-1].timestamp if entry.batches else -1,
         "coordinator_epoch": -1, "current_txn_start_offset": -1}
        for entry in sorted(log.active_producers, key=lambda entry: entry.producer_id)
    ]
    return {"partition_index": index, "error_code": ErrorCode.NONE, "error_message": None,
            "active_producers": producers}


async def handle_describe_producers(request: Request, ctx: RequestContext) -> dict[str, Any]:
    manager = ctx.broker.log_manager
    return {"throttle_time_ms": 0, "topics": [
        {"name": topic.name, "partitions": [_partition_producers(manager, topic.name, index)
                                            for index in topic.partition_indexes]}
        for topic in request.body.topics]}


API_HANDLERS = [
    ApiHandler(API_KEY, handle_init_producer_id),
    ApiHandler(API_DESCRIBE_PRODUCERS, handle_describe_producers),
]
