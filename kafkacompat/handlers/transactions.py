"""Transactions: AddPartitionsToTxn (24), AddOffsetsToTxn (25), EndTxn (26), TxnOffsetCommit (28),
DescribeTransactions (65) and ListTransactions (66).

The rules live in the transaction coordinator (kafkacompat/txn/); these
handlers check what Kafka checks against its metadata first (unknown
partitions) and shape the per-version answers. TxnOffsetCommit v5 (transactions
v2) adds its group to the transaction itself, as AddOffsetsToTxn would. EndTxn makes its decision
durable, then writes the transaction's markers before it answers (Kafka
answers after the decision and writes the markers behind it, so a client
that starts its next transaction meanwhile retries on CONCURRENT_TRANSACTIONS;
answering later spares every client those retries, and one that sees another
client's transaction still completing gets the same CONCURRENT_TRANSACTIONS).
InitProducerId's transactional path is in producer_ids.py.
"""

from __future__ import annotations

from typing import Any

from kafkacompat.group.coordinator import CommittedOffset, TopicPartition
from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.txn.state import TxnState

ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN, TXN_OFFSET_COMMIT = 24, 25, 26, 28
DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS = 65, 66
FIRST_BATCHED_VERSION = 4  # AddPartitionsToTxn v4+: many transactions, verify_only
# EndTxn v5 and TxnOffsetCommit v5: transactions v2 (KIP-890 part 2), decided by the request's version
# as Kafka decides it, whatever transaction.version is finalized (that only tells clients what to send).
FIRST_TRANSACTIONS_V2_VERSION = 5
FIRST_MEMBER_CHECK_VERSION = 3  # TxnOffsetCommit v3+ carries the member (KIP-447)
# What the group answers when adding itself to the transaction fails (TxnOffsetCommit v5): a fenced
# epoch as the partitions say it, and a transaction still completing as a coordinator to retry.
_IMPLICIT_ADD_ERRORS = {ErrorCode.PRODUCER_FENCED: ErrorCode.INVALID_PRODUCER_EPOCH,
                        ErrorCode.CONCURRENT_TRANSACTIONS: ErrorCode.COORDINATOR_NOT_AVAILABLE}


def _topic_results(errors: dict[tuple[str, int], ErrorCode]) -> list[dict[str, Any]]:
    topics: dict[str, list[dict[str, Any]]] = {}
    for (topic, index), code in errors.items():
        topics.setdefault(topic, []).append({"partition_index": index, "partition_error_code": code})
    return [{"name": name, "results_by_partition": results} for name, results in topics.items()]


def _add_partitions(ctx: RequestContext, transactional_id: str, producer_id: int, epoch: int,
                    topics: list[Any], verify_only: bool) -> dict[tuple[str, int], ErrorCode]:
    """Per-partition errors for one transaction; unknown partitions fail it and the rest are not attempted."""
    wanted = [(topic.name, index) for topic in topics for index in topic.partitions]
    coordinator = ctx.broker.transactions
    if verify_only:
        return coordinator.verify_partitions(transactional_id, producer_id, epoch, wanted)
    manager = ctx.broker.log_manager
    unknown = {tp for tp in wanted if manager.partition(*tp) is None}
    if unknown:
        return {tp: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if tp in unknown else ErrorCode.OPERATION_NOT_ATTEMPTED
                for tp in wanted}
    return dict.fromkeys(wanted, coordinator.add_partitions(transactional_id, producer_id, epoch, wanted))


async def handle_add_partitions_to_txn(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    if request.version < FIRST_BATCHED_VERSION:
        errors = _add_partitions(ctx, body.v3_and_below_transactional_id, body.v3_and_below_producer_id,
                                 body.v3_and_below_producer_epoch, body.v3_and_below_topics, False)
        return {"throttle_time_ms": 0, "results_by_topic_v3_and_below": _topic_results(errors)}
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "results_by_transaction": [
        {"transactional_id": txn.transactional_id, "topic_results": _topic_results(_add_partitions(
            ctx, txn.transactional_id, txn.producer_id, txn.producer_epoch, txn.topics, txn.verify_only))}
        for txn in body.transactions]}


async def handle_add_offsets_to_txn(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    code = ctx.broker.transactions.add_offsets(body.transactional_id, body.producer_id, body.producer_epoch,
                                               body.group_id)
    return {"throttle_time_ms": 0, "error_code": code}


async def handle_end_txn(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    result = ctx.broker.transactions.end_txn(body.transactional_id, body.producer_id, body.producer_epoch,
                                             body.committed,
                                             transactions_v2=request.version >= FIRST_TRANSACTIONS_V2_VERSION)
    if result.error_code == ErrorCode.NONE:
        ctx.broker.markers_due()
        await ctx.broker.complete_transactions(body.transactional_id)
    return {"throttle_time_ms": 0, "error_code": result.error_code,
            "producer_id": result.producer_id, "producer_epoch": result.producer_epoch}


async def handle_txn_offset_commit(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    wanted = {TopicPartition(topic.name, p.partition_index): CommittedOffset(
        p.committed_offset, p.get("committed_leader_epoch", -1), p.committed_metadata or "")
        for topic in body.topics for p in topic.partitions}
    manager = ctx.broker.log_manager
    known = {tp: entry for tp, entry in wanted.items() if manager.partition(tp.topic, tp.partition) is not None}
    code = None
    coordinator = ctx.broker.transactions
    if known and request.version >= FIRST_TRANSACTIONS_V2_VERSION:  # before the member check, as in Kafka
        code = coordinator.add_offsets(body.transactional_id, body.producer_id, body.producer_epoch, body.group_id)
        code = None if code == ErrorCode.NONE else _IMPLICIT_ADD_ERRORS.get(code, code)
    if code is None and request.version >= FIRST_MEMBER_CHECK_VERSION:
        code = ctx.broker.groups.check_transactional_commit(body.group_id, body.generation_id, body.member_id,
                                                            body.group_instance_id)
    if code is None:
        code = coordinator.stage_offsets(body.transactional_id, body.producer_id, body.producer_epoch,
                                         body.group_id, known) if known else ErrorCode.NONE
    topics: dict[str, list[dict[str, Any]]] = {}
    for tp in wanted:
        topics.setdefault(tp.topic, []).append({"partition_index": tp.partition, "error_code":
                                                code if tp in known else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION})
    return {"throttle_time_ms": 0, "topics": [{"name": name, "partitions": partitions}
                                              for name, partitions in topics.items()]}


def _partitions_by_topic(partitions: set[tuple[str, int]]) -> list[dict[str, Any]]:
    topics: dict[str, list[int]] = {}
    for topic, index in sorted(partitions):
        topics.setdefault(topic, []).append(index)
    return [{"topic": topic, "partitions": indexes} for topic, indexes in topics.items()]


async def handle_describe_transactions(request: Request, ctx: RequestContext) -> dict[str, Any]:
    coordinator = ctx.broker.transactions
    states = []
    for transactional_id in request.body.transactional_ids:
        meta = coordinator.get(transactional_id)
        if meta is None:
            states.append({"error_code": ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, "transactional_id": transactional_id,
                           "transaction_state": "", "transaction_timeout_ms": 0, "transaction_start_time_ms": -1,
                           "producer_id": -1, "producer_epoch": -1, "topics": []})
            continue
        states.append({"error_code": ErrorCode.NONE, "transactional_id": transactional_id,
                       "transaction_state": meta.state.value, "transaction_timeout_ms": meta.timeout_ms,
                       "transaction_start_time_ms": meta.start_ms, "producer_id": meta.producer_id,
                       "producer_epoch": meta.producer_epoch, "topics": _partitions_by_topic(meta.partitions)})
    return {"throttle_time_ms": 0, "transaction_states": states}


async def handle_list_transactions(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    known = {state.value for state in TxnState}
    states = set(body.state_filters) & known
    producer_ids = set(body.producer_id_filters)
    duration = body.get("duration_filter", -1)
    now = ctx.broker.clock()
    cluster = ctx.broker.cluster
    listed = [
        {"transactional_id": meta.transactional_id, "producer_id": meta.producer_id,
         "transaction_state": meta.state.value}
        for meta in ctx.broker.transactions.transactions()
        if cluster.transaction_coordinator(meta.transactional_id) == cluster.node_id
        and (not body.state_filters or meta.state.value in states)
        and (not producer_ids or meta.producer_id in producer_ids)
        and (duration < 0 or now - meta.start_ms >= duration)
    ]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE,
            "unknown_state_filters": [name for name in body.state_filters if name not in known],
            "transaction_states": listed}


API_HANDLERS = [
    ApiHandler(ADD_PARTITIONS_TO_TXN, handle_add_partitions_to_txn),
    ApiHandler(ADD_OFFSETS_TO_TXN, handle_add_offsets_to_txn),
    ApiHandler(END_TXN, handle_end_txn),
    ApiHandler(TXN_OFFSET_COMMIT, handle_txn_offset_commit),
    ApiHandler(DESCRIBE_TRANSACTIONS, handle_describe_transactions),
    ApiHandler(LIST_TRANSACTIONS, handle_list_transactions),
]
