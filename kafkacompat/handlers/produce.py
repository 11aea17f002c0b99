"""Produce (key 0): append record batches to partition logs.

The records travel as bytes from the request buffer into the segment file;
the log engine validates each batch header and CRC and patches its base
offset — no record is decoded here. A transactional produce is first checked
against the transaction coordinator (KIP-890 part 1): the partition must be in
the producer's open transaction; from v12 (part 2) the partition joins it here,
as Kafka's leader adds it, and the client sends no AddPartitionsToTxn.
"""

from __future__ import annotations

import functools
import logging
import os
from typing import TYPE_CHECKING, Any

import trio

from kafkacompat.handlers.registry import ApiHandler, Deferred, Request, RequestContext
from kafkacompat.log.partition_log import PartitionLog
from kafkacompat.protocol.errors import ErrorCode, KafkaError, RecordValidationError
from kafkacompat.protocol.records import (
    BATCH_OVERHEAD,
    CURRENT_MAGIC,
    MAGIC_OFFSET,
    Compression,
    parse_batches,
    read_header,
)

if TYPE_CHECKING:
    from kafkacompat.broker import Enlisted

log = logging.getLogger("kafkacompat.produce")

API_KEY = 0
# Kafka 4 still advertises v0-2 (librdkafka picks its message format from the
# advertised range) but refuses them on use.
MIN_USABLE_VERSION = 3
VALID_ACKS = (-1, 0, 1)
# Produce v7 is where clients may first send zstd batches (KIP-110).
FIRST_ZSTD_VERSION = 7
# Produce v12 (transactions v2): a transactional batch adds its partition to the open transaction.
FIRST_TRANSACTIONS_V2_VERSION = 12
# How the leader answers when that add fails, as Kafka's does: a fenced epoch is the partitions'
# INVALID_PRODUCER_EPOCH, and a transaction still completing (CONCURRENT_TRANSACTIONS, retried every
# add.partitions.to.txn.retry.backoff.ms for add.partitions.to.txn.retry.backoff.max.ms first) a
# retriable NOT_ENOUGH_REPLICAS.
_IMPLICIT_ADD_ERRORS = {ErrorCode.PRODUCER_FENCED: ErrorCode.INVALID_PRODUCER_EPOCH,
                        ErrorCode.CONCURRENT_TRANSACTIONS: ErrorCode.NOT_ENOUGH_REPLICAS}

# Benchmark only, never for real use: with this set to 1 at start-up, Produce
# checks each batch header and answers with increasing offsets but stores
# nothing, so ``kafkacompat perf compare`` can measure the ceiling that the
# client and our request path impose. Not a KAFKACOMPAT_* name, because those
# are read as broker configs.
DISCARD_PRODUCE_ENV = "KCOMPAT_BENCH_DISCARD_PRODUCE"
_DISCARD_PRODUCE = os.environ.get(DISCARD_PRODUCE_ENV) == "1"
_discarded_end_offsets: dict[tuple[str, int], int] = {}


def _partition_error(index: int, code: ErrorCode, message: str | None = None,
                     record_errors: list[tuple[int, str]] = ()) -> dict[str, Any]:
    return {
        "index": index,
        "error_code": code,
        "base_offset": -1,
        "log_append_time_ms": -1,
        "log_start_offset": -1,
        "record_errors": [{"batch_index": batch_index, "batch_index_error_message": why}
                          for batch_index, why in record_errors],
        "error_message": message,
    }


def _appended(index: int, base_offset: int, log_append_time: int, log_start_offset: int) -> dict[str, Any]:
    return {
        "index": index,
        "error_code": ErrorCode.NONE,
        "base_offset": base_offset,
        "log_append_time_ms": log_append_time,
        "log_start_offset": log_start_offset,
        "error_message": None,
    }


def _discard(topic: str, index: int, records: bytes | bytearray | memoryview) -> dict[str, Any]:
    """The benchmark ceiling: offsets advance by the batches' record counts, nothing is kept."""
    headers = parse_batches(records)
    base_offset = _discarded_end_offsets.get((topic, index), 0)
    _discarded_end_offsets[(topic, index)] = base_offset + sum(h.last_offset_delta + 1 for h in headers)
    return _appended(index, base_offset, -1, 0)


def check_request_records(records: bytes | bytearray | memoryview | None, version: int) -> None:
    """Kafka's rules for the records of one partition in a Produce request, before the log sees them.

    Exactly one batch, of magic 2, and zstd only from v7: INVALID_RECORD, or
    UNSUPPORTED_COMPRESSION_TYPE for zstd. Damage inside the batch (length,
    CRC, truncation) is the log's to find and answer with CORRUPT_MESSAGE.
    """
    view = memoryview(records if records is not None else b"")
    if not view:
        raise KafkaError(ErrorCode.INVALID_RECORD,
                         f"Produce requests with version {version} must have at least one record batch per partition")
    if len(view) > MAGIC_OFFSET and view[MAGIC_OFFSET] != CURRENT_MAGIC:
        raise KafkaError(ErrorCode.INVALID_RECORD, f"Produce requests with version {version} "
                         f"are only allowed to contain record batches with magic version {CURRENT_MAGIC}")
    if len(view) < BATCH_OVERHEAD:
        return
    first = read_header(view)
    if version < FIRST_ZSTD_VERSION and first.compression == Compression.ZSTD:
        raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE,
                         f"Produce requests with version {version} are not allowed to use zstd compression")
    rest = len(view) - first.size
    if rest >= BATCH_OVERHEAD and read_header(view, first.size).size <= rest:
        raise KafkaError(ErrorCode.INVALID_RECORD, f"Produce requests with version {version} "
                         "are only allowed to contain exactly one record batch per partition")


async def _join_transaction(ctx: RequestContext, transactional_id: str,
                            topic_data: list[Any]) -> dict[tuple[str, int], int]:
    """Produce v12: the request's partitions join the producer's transaction in one coordinator write, as
    Kafka's leader adds them with one AddPartitionsToTxn; the refused ones, with the code they answer."""
    pending = _transactional_partitions(ctx, topic_data)
    config = ctx.broker.config
    backoff_s = config.get_int("add.partitions.to.txn.retry.backoff.ms") / 1000
    give_up_ms = ctx.broker.clock() + config.get_int("add.partitions.to.txn.retry.backoff.max.ms")
    refused: dict[tuple[str, int], int] = {}
    while pending:
        retry: dict[tuple[int, int], list[tuple[str, int]]] = {}
        for (producer_id, epoch), partitions in pending.items():
            code = ctx.broker.transactions.add_partitions(transactional_id, producer_id, epoch, partitions)
            if code == ErrorCode.CONCURRENT_TRANSACTIONS and ctx.broker.clock() < give_up_ms:
                retry[producer_id, epoch] = partitions
            elif code != ErrorCode.NONE:
                refused.update(dict.fromkeys(partitions, _IMPLICIT_ADD_ERRORS.get(code, code)))
        pending = retry
        if pending:
            await trio.sleep(backoff_s)
    return refused


def _transactional_partitions(ctx: RequestContext, topic_data: list[Any]) -> dict[tuple[int, int], list[tuple[str, int]]]:
    """The existing partitions a request writes transactional batches to, by (producer id, epoch)."""
    manager = ctx.broker.log_manager
    by_producer: dict[tuple[int, int], list[tuple[str, int]]] = {}
    for topic in topic_data:
        for data in topic.partition_data:
            if data.records is not None and len(data.records) >= BATCH_OVERHEAD \
                    and manager.partition(topic.name, data.index) is not None:
                header = read_header(data.records)
                by_producer.setdefault((header.producer_id, header.producer_epoch), []).append(
                    (topic.name, data.index))
    return by_producer


def _check_transaction(ctx: RequestContext, transactional_id: str, topic: str, index: int,
                       records: bytes | bytearray | memoryview,
                       refused_joins: dict[tuple[str, int], int] | None) -> None:
    """Part 1 verification, or (v12, `refused_joins` given) whether the partition could join."""
    header = read_header(records)
    if refused_joins is None:
        code = ctx.broker.transactions.verify_produce(transactional_id, header.producer_id, header.producer_epoch,
                                                      (topic, index))
    else:
        code = refused_joins.get((topic, index))
    if code is not None:
        raise KafkaError(code, f"{topic}-{index} is not in an open transaction of {transactional_id!r} "
                               f"with producer {header.producer_id} epoch {header.producer_epoch}")


def _append(
    ctx: RequestContext, topic: str, index: int, records: bytes | None, version: int, transactional_id: str | None,
    acks: int, refused_joins: dict[tuple[str, int], int] | None,
) -> tuple[dict[str, Any], tuple[PartitionLog, int] | None]:
    """The partition's answer, and what to flush before sending it: the partition and its appends' end offset."""
    partition = ctx.broker.log_manager.partition(topic, index)
    if partition is None:
        return _partition_error(index, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), None
    try:
        ctx.broker.cluster.check_produce(partition, acks)
        check_request_records(records, version)
        if transactional_id is not None and len(records) >= BATCH_OVERHEAD:
            _check_transaction(ctx, transactional_id, topic, index, records, refused_joins)
        if _DISCARD_PRODUCE:
            return _discard(topic, index, records), None
        result = partition.append(records, now_ms=ctx.broker.clock())
    except KafkaError as exc:
        log.info("produce to %s-%d refused: %s", topic, index, exc)
        record_errors = exc.record_errors if isinstance(exc, RecordValidationError) else ()
        return _partition_error(index, exc.code, exc.message or None, record_errors), None
    metrics = ctx.broker.metrics
    if metrics is not None and not result.duplicate:
        metrics.appended(topic, result.last_offset - result.base_offset + 1, len(records))
    answer = _appended(index, result.base_offset, result.log_append_time, result.log_start_offset)
    return answer, (partition, result.last_offset + 1)


async def _flush_before_ack(ctx: RequestContext, enlisted: Enlisted | None,
                            written: list[tuple[PartitionLog, int, dict[str, Any]]], replicated_within_ms: int | None) -> None:
    """Wait for the flush round the appends were enlisted in when the request was handled, and with
    acks=all (``replicated_within_ms``: the request's timeout) for the in-sync replicas too.

    With log.flush.on.ack that is every append, and also for acks=0: records
    become visible to consumers only once durable.  A failed fsync turns the
    partition's answer into KAFKA_STORAGE_ERROR; replicas that do not catch up
    in time, REQUEST_TIMED_OUT (see cluster.view).
    """
    failed = await ctx.broker.flusher.wait(enlisted)
    for partition, end, answer in written:
        if partition in failed:
            answer.update(_partition_error(answer["index"], ErrorCode.KAFKA_STORAGE_ERROR, "fsync failed"))
        elif replicated_within_ms is not None:
            code = await ctx.broker.cluster.wait_replicated(partition, end, replicated_within_ms)
            if code != ErrorCode.NONE:
                answer.update(_partition_error(answer["index"], code))


async def handle_produce(request: Request, ctx: RequestContext) -> dict[str, Any] | Deferred | None:
    body = request.body
    refuse: ErrorCode | None = None
    if request.version < MIN_USABLE_VERSION:
        refuse = ErrorCode.UNSUPPORTED_VERSION
    elif body.acks not in VALID_ACKS:
        refuse = ErrorCode.INVALID_REQUIRED_ACKS
    refused_joins = None
    if refuse is None and body.transactional_id is not None and request.version >= FIRST_TRANSACTIONS_V2_VERSION:
        refused_joins = await _join_transaction(ctx, body.transactional_id, body.topic_data)
    responses = []
    written: list[tuple[PartitionLog, int, dict[str, Any]]] = []
    for topic in body.topic_data:
        partitions = []
        for data in topic.partition_data:
            if refuse is not None:
                partitions.append(_partition_error(data.index, refuse))
                continue
            answer, owed = _append(ctx, topic.name, data.index, data.records, request.version,
                                   body.transactional_id, body.acks, refused_joins)
            if owed is not None:
                written.append((*owed, answer))
            partitions.append(answer)
        responses.append({"name": topic.name, "partition_responses": partitions})
    answer = None if body.acks == 0 else {"responses": responses, "throttle_time_ms": 0}
    if not written:
        return answer
    ctx.broker.appended.notify()
    # Enlisted now, while the connection begins its next requests: pipelined produces share a round.
    enlisted = ctx.broker.flusher.enlist({partition: end for partition, end, _ in written})
    replicated_within_ms = body.timeout_ms if body.acks == -1 and ctx.broker.cluster.replicated else None
    if enlisted is None and replicated_within_ms is None:
        return answer
    return Deferred(answer, functools.partial(_flush_before_ack, ctx, enlisted, written, replicated_within_ms))


API_HANDLERS = [ApiHandler(API_KEY, handle_produce)]
