"""Transactions v2 (KIP-890 part 2, EndTxn v5) in the coordinator's state machine, with an injected clock."""

from __future__ import annotations

import pytest

from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.txn.state import MAX_EPOCH, TxnState

TID = "txn-v2"
TP = ("orders", 0)


def _init(coordinator) -> tuple[int, int]:
    result = coordinator.init_producer_id(TID, 60_000)
    assert result.error_code == ErrorCode.NONE
    return result.producer_id, result.producer_epoch


def _end(coordinator, pid: int, epoch: int, commit: bool):
    return coordinator.end_txn(TID, pid, epoch, commit, transactions_v2=True)


def _complete(coordinator):
    (completion,) = coordinator.completions()
    coordinator.complete(completion)
    return completion


def test_each_end_bumps_the_epoch_its_markers_carry_and_the_next_transaction_uses(open_coordinator):
    coordinator = open_coordinator()
    pid, epoch = _init(coordinator)
    assert coordinator.add_partitions(TID, pid, epoch, [TP]) == ErrorCode.NONE
    assert tuple(_end(coordinator, pid, epoch, True)) == (ErrorCode.NONE, pid, epoch + 1)
    completion = _complete(coordinator)
    assert (completion.producer_id, completion.producer_epoch, completion.commit) == (pid, epoch + 1, True)
    assert coordinator.get(TID).state is TxnState.COMPLETE_COMMIT
    # The old epoch is fenced from the next transaction; the returned one starts it.
    assert coordinator.add_partitions(TID, pid, epoch, [TP]) == ErrorCode.PRODUCER_FENCED
    assert coordinator.add_partitions(TID, pid, epoch + 1, [TP]) == ErrorCode.NONE
    assert tuple(_end(coordinator, pid, epoch + 1, False)) == (ErrorCode.NONE, pid, epoch + 2)
    assert _complete(coordinator).producer_epoch == epoch + 2


def test_a_retried_end_names_the_epoch_before_the_bump(open_coordinator, clock):
    coordinator = open_coordinator()
    pid, epoch = _init(coordinator)
    coordinator.add_partitions(TID, pid, epoch, [TP])
    _end(coordinator, pid, epoch, True)
    # While the markers are written: the retry and even the next epoch's request wait (KAFKA-18464).
    assert _end(coordinator, pid, epoch, True).error_code == ErrorCode.CONCURRENT_TRANSACTIONS
    assert _end(coordinator, pid, epoch, False).error_code == ErrorCode.INVALID_TXN_STATE
    assert _end(coordinator, pid, epoch + 1, False).error_code == ErrorCode.CONCURRENT_TRANSACTIONS
    assert _end(coordinator, pid, epoch - 1, True).error_code == ErrorCode.PRODUCER_FENCED
    clock.now += 10
    _complete(coordinator)
    assert tuple(_end(coordinator, pid, epoch, True)) == (ErrorCode.NONE, pid, epoch + 1)
    assert _end(coordinator, pid, epoch, False).error_code == ErrorCode.INVALID_TXN_STATE
    assert _end(coordinator, pid, epoch + 2, True).error_code == ErrorCode.PRODUCER_FENCED
    assert _end(coordinator, pid, epoch + 1, True).error_code == ErrorCode.INVALID_TXN_STATE  # nothing open
    assert coordinator.get(TID).producer_epoch == epoch + 1  # none of these bumped it


@pytest.mark.parametrize("after_a_commit", [False, True])
def test_an_abort_with_nothing_open_bumps_the_epoch(open_coordinator, clock, after_a_commit):
    coordinator = open_coordinator()
    pid, epoch = _init(coordinator)
    if after_a_commit:
        coordinator.add_partitions(TID, pid, epoch, [TP])
        _end(coordinator, pid, epoch, True)
        _complete(coordinator)
        epoch += 1
    assert _end(coordinator, pid, epoch, True).error_code == ErrorCode.INVALID_TXN_STATE
    clock.now += 5
    assert tuple(_end(coordinator, pid, epoch, False)) == (ErrorCode.NONE, pid, epoch + 1)
    meta = coordinator.get(TID)
    assert (meta.state, meta.start_ms) == (TxnState.PREPARE_ABORT, clock.now)
    completion = _complete(coordinator)
    assert (completion.commit, completion.partitions, completion.producer_epoch) == (False, frozenset(), epoch + 1)
    assert tuple(_end(coordinator, pid, epoch, False)) == (ErrorCode.NONE, pid, epoch + 1)  # its retry


def test_an_exhausted_epoch_hands_over_to_a_new_producer_id_when_the_transaction_completes(open_coordinator):
    coordinator = open_coordinator()
    pid, _ = _init(coordinator)
    coordinator.get(TID).producer_epoch = MAX_EPOCH - 1  # as after 32766 transactions
    coordinator.add_partitions(TID, pid, MAX_EPOCH - 1, [TP])
    assert tuple(_end(coordinator, pid, MAX_EPOCH - 1, True)) == (ErrorCode.NONE, 4001, 0)
    coordinator.close()
    coordinator = open_coordinator()  # the decision and the next id are durable
    completion = _complete(coordinator)
    assert (completion.producer_id, completion.producer_epoch) == (pid, MAX_EPOCH)  # the markers fence pid
    meta = coordinator.get(TID)
    assert (meta.producer_id, meta.producer_epoch, meta.previous_producer_id) == (4001, 0, pid)
    assert tuple(_end(coordinator, pid, MAX_EPOCH - 1, True)) == (ErrorCode.NONE, 4001, 0)  # a retry
    assert _end(coordinator, pid, MAX_EPOCH - 1, False).error_code == ErrorCode.INVALID_TXN_STATE
    assert coordinator.add_partitions(TID, pid, MAX_EPOCH, [TP]) == ErrorCode.INVALID_PRODUCER_ID_MAPPING
    assert coordinator.add_partitions(TID, 4001, 0, [TP]) == ErrorCode.NONE
    assert tuple(_end(coordinator, 4001, 0, True)) == (ErrorCode.NONE, 4001, 1)


def test_end_txn_below_v5_keeps_the_epoch(open_coordinator):
    coordinator = open_coordinator()
    pid, epoch = _init(coordinator)
    coordinator.add_partitions(TID, pid, epoch, [TP])
    assert tuple(coordinator.end_txn(TID, pid, epoch, True)) == (ErrorCode.NONE, pid, epoch)
    assert _complete(coordinator).producer_epoch == epoch
    assert coordinator.add_partitions(TID, pid, epoch, [TP]) == ErrorCode.NONE
    assert coordinator.end_txn(TID, pid, epoch + 1, True).error_code == ErrorCode.PRODUCER_FENCED
