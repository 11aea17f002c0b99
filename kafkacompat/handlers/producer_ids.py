"""InitProducerId (key 22) and DescribeProducers (key 61): producers' ids, epochs
and the state partitions keep for them.

Idempotent producers (the default in kafka-python 3 and the Java client) call
this before their first produce. A producer that names its current id and
epoch (v3+, after a sequence error) gets the same id with the next epoch, so
its partitions accept a fresh sequence from 0. A transactional producer's
request goes to the transaction coordinator (kafkacompat/txn/), which keeps
one id per transactional id and bumps its epoch to fence older instances
(KIP-360 when the request names the current id and epoch).

DescribeProducers lists, per partition, the producers whose sequences it
remembers: id, epoch, last sequence, the timestamp of its last batch, and for
an open transaction the coordinator epoch and the transaction's first offset.
"""

from __future__ import annotations

from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode

API_KEY = 22
API_DESCRIBE_PRODUCERS = 61
MAX_EPOCH = 32767


async def handle_init_producer_id(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    producer_id = getattr(body, "producer_id", -1)
    epoch = getattr(body, "producer_epoch", -1)
    if body.transactional_id is not None:
        result = ctx.broker.transactions.init_producer_id(body.transactional_id, body.transaction_timeout_ms,
                                                          producer_id, epoch)
        if result.error_code == ErrorCode.CONCURRENT_TRANSACTIONS:
            ctx.broker.markers_due()  # an open transaction was fenced: its abort markers are owed now
        return {"throttle_time_ms": 0, "error_code": result.error_code, "producer_id": result.producer_id,
                "producer_epoch": result.producer_epoch}
    if request.version >= 3 and producer_id >= 0 and 0 <= epoch < MAX_EPOCH:
        return {"error_code": ErrorCode.NONE, "producer_id": producer_id, "producer_epoch": epoch + 1}
    return {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "producer_id": ctx.broker.cluster.allocate_producer_id(),
        "producer_epoch": 0,
    }


def _partition_producers(manager: Any, topic: str, index: int, coordinator_epoch: int) -> dict[str, Any]:
    log = manager.partition(topic, index)
    if log is None:
        return {"partition_index": index, "error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
                "error_message": None, "active_producers": []}
    open_transactions = log.open_transactions
    producers = [
        {"producer_id": entry.producer_id, "producer_epoch": entry.producer_epoch,
         "last_sequence": entry.last_sequence,
         "last_timestamp": entry.batches[-1].timestamp if entry.batches else -1,
         "coordinator_epoch": coordinator_epoch if entry.producer_id in open_transactions else -1,
         "current_txn_start_offset": open_transactions.get(entry.producer_id, -1)}
        for entry in sorted(log.active_producers, key=lambda entry: entry.producer_id)
    ]
    return {"partition_index": index, "error_code": ErrorCode.NONE, "error_message": None,
            "active_producers": producers}


async def handle_describe_producers(request: Request, ctx: RequestContext) -> dict[str, Any]:
    manager = ctx.broker.log_manager
    coordinator_epoch = ctx.broker.transactions.coordinator_epoch
    return {"throttle_time_ms": 0, "topics": [
        {"name": topic.name, "partitions": [_partition_producers(manager, topic.name, index, coordinator_epoch)
                                            for index in topic.partition_indexes]}
        for topic in request.body.topics]}


API_HANDLERS = [
    ApiHandler(API_KEY, handle_init_producer_id),
    ApiHandler(API_DESCRIBE_PRODUCERS, handle_describe_producers),
]
