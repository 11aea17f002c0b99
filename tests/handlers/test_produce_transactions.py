"""Transactional Produce at the handler: v12 adds its partitions to the transaction (KIP-890 part 2),
v11 only verifies them (part 1), and an epoch an EndTxn v5 replaced is fenced."""

from __future__ import annotations

import trio

from kafkacompat.protocol.errors import ErrorCode
from tests.handlers.test_data_path import INIT_PRODUCER_ID, METADATA, PRODUCE, call, ctx  # noqa: F401
from tests.log.batch_builder import RecordSpec, build_batch

END_TXN = 26
TID = "writer"


async def _init(ctx) -> tuple[int, int]:
    await call(ctx, METADATA, 12, {"topics": [{"name": "orders"}], "allow_auto_topic_creation": True})
    answer = await call(ctx, INIT_PRODUCER_ID, 5, {"transactional_id": TID, "transaction_timeout_ms": 60_000})
    assert answer.error_code == ErrorCode.NONE
    return answer.producer_id, answer.producer_epoch


async def _produce(ctx, version: int, pid: int, epoch: int, partitions: list[tuple[str, int]]) -> dict:
    batch = build_batch([RecordSpec(b"v")], producer_id=pid, producer_epoch=epoch, base_sequence=0,
                        transactional=True)
    topics: dict[str, list[dict]] = {}
    for topic, index in partitions:
        topics.setdefault(topic, []).append({"index": index, "records": batch})
    answer = await call(ctx, PRODUCE, version, {"transactional_id": TID, "acks": -1, "timeout_ms": 1000,
                                                "topic_data": [{"name": name, "partition_data": data}
                                                               for name, data in topics.items()]})
    return {(topic.name, p.index): p.error_code for topic in answer.responses for p in topic.partition_responses}


async def test_v12_adds_the_partitions_of_a_request_in_one_coordinator_write(ctx, monkeypatch):
    pid, epoch = await _init(ctx)
    coordinator = ctx.broker.transactions
    writes = []
    real_write = coordinator._write
    monkeypatch.setattr(coordinator, "_write", lambda meta: (writes.append(set(meta.partitions)), real_write(meta)))
    codes = await _produce(ctx, 12, pid, epoch, [("orders", 0), ("orders", 1), ("missing", 0)])
    assert codes == {("orders", 0): ErrorCode.NONE, ("orders", 1): ErrorCode.NONE,
                     ("missing", 0): ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    assert writes == [{("orders", 0), ("orders", 1)}]
    assert (await _produce(ctx, 12, pid, epoch, [("orders", 1)])) == {("orders", 1): ErrorCode.NONE}
    assert len(writes) == 1  # already in the transaction: nothing to write


async def test_v11_only_verifies_and_a_replaced_epoch_is_fenced(ctx):
    pid, epoch = await _init(ctx)
    assert await _produce(ctx, 11, pid, epoch, [("orders", 0)]) == {("orders", 0): ErrorCode.INVALID_TXN_STATE}
    assert ctx.broker.transactions.get(TID).partitions == set()
    assert await _produce(ctx, 12, pid + 1, epoch, [("orders", 0)]) == {
        ("orders", 0): ErrorCode.INVALID_PRODUCER_ID_MAPPING}
    assert await _produce(ctx, 12, pid, epoch, [("orders", 0)]) == {("orders", 0): ErrorCode.NONE}
    ended = await call(ctx, END_TXN, 5, {"transactional_id": TID, "producer_id": pid, "producer_epoch": epoch,
                                         "committed": False})
    assert (ended.error_code, ended.producer_epoch) == (ErrorCode.NONE, epoch + 1)
    assert await _produce(ctx, 12, pid, epoch, [("orders", 1)]) == {("orders", 1): ErrorCode.INVALID_PRODUCER_EPOCH}
    assert await _produce(ctx, 12, pid, epoch + 1, [("orders", 1)]) == {("orders", 1): ErrorCode.NONE}


async def test_v12_retries_a_join_while_the_previous_transaction_completes_then_answers_not_enough_replicas(ctx):
    pid, epoch = await _init(ctx)
    assert await _produce(ctx, 12, pid, epoch, [("orders", 0)]) == {("orders", 0): ErrorCode.NONE}
    # Ended at the coordinator only: its markers are not written yet, so the transaction is still completing.
    ended = ctx.broker.transactions.end_txn(TID, pid, epoch, True, transactions_v2=True)
    next_epoch = ended.producer_epoch

    async def complete_soon() -> None:
        await trio.sleep(0.03)
        await ctx.broker.complete_transactions(TID)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(complete_soon)
        joined = await _produce(ctx, 12, pid, next_epoch, [("orders", 1)])
    assert joined == {("orders", 1): ErrorCode.NONE}  # the leader's retry outlasted the completion

    ended = ctx.broker.transactions.end_txn(TID, pid, next_epoch, True, transactions_v2=True)
    started = trio.current_time()
    refused = await _produce(ctx, 12, pid, ended.producer_epoch, [("orders", 0)])
    assert refused == {("orders", 0): ErrorCode.NOT_ENOUGH_REPLICAS}
    assert trio.current_time() - started >= 0.09  # add.partitions.to.txn.retry.backoff.max.ms, 100 ms
