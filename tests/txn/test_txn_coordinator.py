"""The transaction coordinator's state machine, with an injected clock (no sleeps)."""

from __future__ import annotations

import pytest

from kafkacompat.group.offsets import CommittedOffset, TopicPartition
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.txn.state import IllegalTransition, TransactionMetadata, TxnState

TID = "txn-a"
TP = ("orders", 0)


def _init(coordinator, timeout_ms: int = 60_000):
    result = coordinator.init_producer_id(TID, timeout_ms)
    assert result.error_code == ErrorCode.NONE
    return result.producer_id, result.producer_epoch


def test_init_gives_epoch_zero_and_each_reinit_bumps_it(open_coordinator):
    coordinator = open_coordinator()
    assert _init(coordinator) == (4000, 0)
    assert _init(coordinator) == (4000, 1)
    assert coordinator.get(TID).state is TxnState.EMPTY


def test_timeout_above_the_maximum_is_refused(open_coordinator):
    coordinator = open_coordinator(max_timeout_ms=10_000)
    assert coordinator.init_producer_id(TID, 10_001).error_code == ErrorCode.INVALID_TRANSACTION_TIMEOUT
    assert coordinator.init_producer_id(TID, 0).error_code == ErrorCode.INVALID_TRANSACTION_TIMEOUT
    assert coordinator.get(TID) is None


def test_commit_goes_through_prepare_to_complete(open_coordinator):
    coordinator = open_coordinator()
    pid, epoch = _init(coordinator)
    assert coordinator.add_partitions(TID, pid, epoch, [TP]) == ErrorCode.NONE
    assert coordinator.get(TID).state is TxnState.ONGOING
    assert coordinator.end_txn(TID, pid, epoch, True).error_code == ErrorCode.NONE
    assert coordinator.get(TID).state is TxnState.PREPARE_COMMIT
    (completion,) = coordinator.completions()
    assert (completion.commit, completion.partitions, completion.producer_epoch) == (True, {TP}, epoch)
    # While the markers are written, the next transaction has to wait.
    assert coordinator.add_partitions(TID, pid, epoch, [TP]) == ErrorCode.CONCURRENT_TRANSACTIONS
    assert coordinator.end_txn(TID, pid, epoch, True).error_code == ErrorCode.CONCURRENT_TRANSACTIONS
    assert coordinator.end_txn(TID, pid, epoch, False).error_code == ErrorCode.INVALID_TXN_STATE
    coordinator.complete(completion)
    meta = coordinator.get(TID)
    assert (meta.state, meta.partitions) == (TxnState.COMPLETE_COMMIT, set())
    assert coordinator.end_txn(TID, pid, epoch, True).error_code == ErrorCode.NONE  # a retry
    assert coordinator.end_txn(TID, pid, epoch, False).error_code == ErrorCode.INVALID_TXN_STATE
    assert coordinator.completions() == []


def test_end_without_a_transaction_is_an_invalid_state(open_coordinator):
    coordinator = open_coordinator()
    pid, epoch = _init(coordinator)
    assert coordinator.end_txn(TID, pid, epoch, True).error_code == ErrorCode.INVALID_TXN_STATE


def test_a_newer_instance_fences_the_old_producer(open_coordinator):
    coordinator = open_coordinator()
    pid, old = _init(coordinator)
    _, new = _init(coordinator)
    assert coordinator.add_partitions(TID, pid, old, [TP]) == ErrorCode.PRODUCER_FENCED
    assert coordinator.end_txn(TID, pid, old, True).error_code == ErrorCode.PRODUCER_FENCED
    assert coordinator.add_partitions(TID, pid + 1, new, [TP]) == ErrorCode.INVALID_PRODUCER_ID_MAPPING


def test_reinit_during_a_transaction_aborts_it_with_a_fenced_epoch(open_coordinator):
    coordinator = open_coordinator()
    pid, epoch = _init(coordinator)
    coordinator.add_partitions(TID, pid, epoch, [TP])
    assert coordinator.init_producer_id(TID, 60_000).error_code == ErrorCode.CONCURRENT_TRANSACTIONS
    (completion,) = coordinator.completions()
    assert (completion.commit, completion.producer_epoch) == (False, epoch + 1)
    coordinator.complete(completion)
    assert coordinator.get(TID).state is TxnState.COMPLETE_ABORT
    assert _init(coordinator) == (pid, epoch + 2)


def test_kip_360_names_the_current_epoch_and_a_retry_gets_the_same_answer(open_coordinator):
    coordinator = open_coordinator()
    pid, epoch = _init(coordinator)
    bumped = coordinator.init_producer_id(TID, 60_000, pid, epoch)
    assert (bumped.error_code, bumped.producer_epoch) == (ErrorCode.NONE, epoch + 1)
    retried = coordinator.init_producer_id(TID, 60_000, pid, epoch)
    assert (retried.error_code, retried.producer_epoch) == (ErrorCode.NONE, epoch + 1)
    assert coordinator.init_producer_id(TID, 60_000, pid, epoch + 5).error_code == ErrorCode.PRODUCER_FENCED


def test_a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced(open_coordinator, clock):
    coordinator = open_coordinator()
    pid, epoch = _init(coordinator, timeout_ms=5_000)
    coordinator.add_partitions(TID, pid, epoch, [TP])
    clock.now += 5_000
    assert not coordinator.tick(clock.now)
    clock.now += 1
    assert coordinator.tick(clock.now)
    (completion,) = coordinator.completions()
    assert (completion.commit, completion.producer_epoch) == (False, epoch + 1)
    assert coordinator.end_txn(TID, pid, epoch, True).error_code == ErrorCode.PRODUCER_FENCED


def test_an_idle_transactional_id_expires(open_coordinator, clock):
    coordinator = open_coordinator(id_expiration_ms=1_000)
    _init(coordinator)
    clock.now += 1_001
    coordinator.tick(clock.now)
    assert coordinator.get(TID) is None
    assert open_coordinator().get(TID) is None  # forgotten durably


def test_staged_offsets_travel_with_the_completion(open_coordinator):
    coordinator = open_coordinator()
    pid, epoch = _init(coordinator)
    offsets = {TopicPartition("orders", 0): CommittedOffset(42)}
    assert coordinator.stage_offsets(TID, pid, epoch, "g", offsets) == ErrorCode.INVALID_TXN_STATE
    assert coordinator.add_offsets(TID, pid, epoch, "g") == ErrorCode.NONE
    assert coordinator.stage_offsets(TID, pid, epoch - 1, "g", offsets) == ErrorCode.INVALID_PRODUCER_EPOCH
    assert coordinator.stage_offsets(TID, pid, epoch, "g", offsets) == ErrorCode.NONE
    assert coordinator.has_pending_offsets("g", TopicPartition("orders", 0))
    coordinator.end_txn(TID, pid, epoch, True)
    (completion,) = coordinator.completions()
    assert completion.offsets == {"g": offsets}
    coordinator.complete(completion)
    assert not coordinator.has_pending_offsets("g", TopicPartition("orders", 0))


def test_a_prepared_transaction_is_found_after_reopening(open_coordinator):
    coordinator = open_coordinator()
    pid, epoch = _init(coordinator)
    coordinator.add_partitions(TID, pid, epoch, [TP, ("orders", 1)])
    coordinator.end_txn(TID, pid, epoch, False)
    coordinator.close()
    reopened = open_coordinator()
    (completion,) = reopened.completions()
    assert (completion.commit, completion.partitions) == (False, {TP, ("orders", 1)})


@pytest.mark.parametrize("sync_journal", [True, False])
def test_the_journal_is_fsynced_with_durable_acks_and_written_at_once_without(open_coordinator, monkeypatch,
                                                                              sync_journal):
    """log.flush.on.ack=false leaves the journal to the OS as Kafka leaves __transaction_state: no fsync,
    yet every change is in the file at once, so a process killed without closing it loses none."""
    coordinator = open_coordinator(sync_journal=sync_journal)
    synced: list[int] = []
    monkeypatch.setattr("kafkacompat.group.journal.os.fsync", synced.append)
    pid, epoch = _init(coordinator)
    coordinator.add_partitions(TID, pid, epoch, [TP])
    coordinator.end_txn(TID, pid, epoch, True)
    monkeypatch.undo()
    assert bool(synced) is sync_journal
    (completion,) = open_coordinator().completions()  # read while the first is still open
    assert (completion.commit, completion.partitions) == (True, {TP})
    coordinator.close()


def test_verify_only_tells_whether_a_partition_is_in_the_transaction(open_coordinator):
    coordinator = open_coordinator()
    pid, epoch = _init(coordinator)
    coordinator.add_partitions(TID, pid, epoch, [TP])
    assert coordinator.verify_partitions(TID, pid, epoch, [TP, ("orders", 1)]) == {
        TP: ErrorCode.NONE, ("orders", 1): ErrorCode.INVALID_TXN_STATE}
    assert coordinator.verify_produce(TID, pid, epoch, ("orders", 1)) == ErrorCode.INVALID_TXN_STATE
    assert coordinator.verify_produce(TID, pid, epoch - 1, TP) == ErrorCode.INVALID_PRODUCER_EPOCH
    assert coordinator.verify_produce(TID, pid, epoch, TP) is None


def test_the_transition_table_refuses_moves_kafka_does_not_make():
    meta = TransactionMetadata(TID, 1, 0, 1000)
    with pytest.raises(IllegalTransition):
        meta.transition(TxnState.PREPARE_COMMIT, 0)
    meta.transition(TxnState.ONGOING, 5)
    assert meta.start_ms == 5
    meta.transition(TxnState.PREPARE_COMMIT, 6)
    with pytest.raises(IllegalTransition):
        meta.transition(TxnState.COMPLETE_ABORT, 7)
