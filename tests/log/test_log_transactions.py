"""Transactions in the log: control batches, the last stable offset and the aborted-transaction index."""

from __future__ import annotations

from kafkacompat.log.transactions import CONTROL_ABORT, CONTROL_COMMIT, control_batch, control_type
from kafkacompat.protocol.records import decode_records, parse_batches
from tests.log.batch_builder import build_batch

PID_A, PID_B = 500, 501


def _txn(sequence: int, count: int = 2, *, pid: int = PID_A, epoch: int = 0) -> bytes:
    return build_batch([b"t%d" % (sequence + i) for i in range(count)], producer_id=pid, producer_epoch=epoch,
                       base_sequence=sequence, transactional=True)


def _offsets(data: bytes) -> list[int]:
    return [header.base_offset for header in parse_batches(data)]


def test_a_control_batch_holds_one_record_of_kafkas_marker_shape():
    batch = control_batch(PID_A, 3, True, 7, 1234)
    (header,) = parse_batches(batch)
    assert header.is_control and header.is_transactional
    assert (header.producer_id, header.producer_epoch, header.base_sequence, header.records_count) == (PID_A, 3, -1, 1)
    (record,) = decode_records(batch)
    assert record.key == b"\x00\x00\x00\x01"  # version 0, type 1 (commit)
    assert record.value == b"\x00\x00\x00\x00\x00\x07"  # version 0, coordinator epoch 7
    assert control_type(bytes(batch)) == CONTROL_COMMIT
    assert control_type(bytes(control_batch(PID_A, 3, False, 7, 1234))) == CONTROL_ABORT


def test_an_open_transaction_holds_the_lso_until_its_marker(open_log):
    log = open_log(flush_messages="1")  # periodic flushing: the high watermark is the log end
    log.append(build_batch([b"plain"]))
    log.append(_txn(0))
    assert (log.last_stable_offset, log.high_watermark) == (1, 3)
    assert _offsets(log.read(0, 1 << 20, committed=True)) == [0]
    assert log.read(1, 1 << 20, committed=True) == b""
    assert _offsets(log.read(0, 1 << 20)) == [0, 1]
    assert log.append_marker(PID_A, 0, True, 0) == 3
    assert log.last_stable_offset == log.high_watermark == 4
    assert _offsets(log.read(0, 1 << 20, committed=True)) == [0, 1, 3]
    assert log.aborted_transactions(0) == []


def test_the_earliest_open_transaction_sets_the_lso(open_log):
    log = open_log(flush_messages="1")
    log.append(_txn(0, pid=PID_A))
    log.append(_txn(0, pid=PID_B))
    assert log.open_transactions == {PID_A: 0, PID_B: 2}
    log.append_marker(PID_B, 0, True, 0)
    assert log.last_stable_offset == 0
    log.append_marker(PID_A, 0, False, 0)
    assert log.last_stable_offset == log.log_end_offset == 6
    assert log.open_transactions == {}


def test_an_abort_enters_the_aborted_index_and_fetch_ranges_find_it(open_log):
    log = open_log(flush_messages="1")
    log.append(_txn(0))  # 0-1
    log.append_marker(PID_A, 0, False, 0)  # 2
    log.append(_txn(2))  # 3-4
    log.append_marker(PID_A, 0, True, 0)  # 5
    log.append(_txn(4))  # 6-7
    log.append_marker(PID_A, 0, False, 0)  # 8
    assert [(a.producer_id, a.first_offset, a.last_offset) for a in log.aborted_transactions(0)] == [
        (PID_A, 0, 2), (PID_A, 6, 8)]
    assert [a.first_offset for a in log.aborted_transactions(3)] == [6]
    assert log.aborted_transactions(9) == []
    assert log.is_aborted(PID_A, 0) and not log.is_aborted(PID_A, 3) and log.is_aborted(PID_A, 6)


def test_sequences_continue_across_transactions_in_one_epoch_and_restart_after_a_bump(open_log):
    log = open_log(flush_messages="1")
    log.append(_txn(0))
    log.append_marker(PID_A, 0, True, 0)
    log.append(_txn(2))  # same epoch: the sequence goes on
    log.append_marker(PID_A, 1, False, 0)  # an abort that fenced the producer bumped its epoch
    assert log.append(_txn(0, epoch=1)).base_offset == 6


def test_lso_and_aborted_index_survive_a_clean_restart(open_log):
    log = open_log(flush_messages="1")
    log.append(_txn(0, pid=PID_B))
    log.append_marker(PID_B, 0, False, 0)
    log.append(_txn(0))
    log.close()
    reopened = open_log(flush_messages="1")
    assert reopened.last_stable_offset == 3
    assert [a.first_offset for a in reopened.aborted_transactions(0)] == [0]
    reopened.append_marker(PID_A, 0, True, 0)
    assert reopened.last_stable_offset == 6


def test_recovery_replays_markers_after_the_snapshot_and_rebuilds_the_index(open_log, tmp_path):
    log = open_log(flush_messages="1")
    log.append(_txn(0, pid=PID_B))  # 0-1, aborted at 2
    log.append_marker(PID_B, 0, False, 0)
    log.roll()  # snapshot at 3
    log.append(_txn(0))  # 3-4, aborted at 5
    log.append_marker(PID_A, 0, False, 0)
    log.append(_txn(2))  # 6-7: open at the crash
    log.flush()
    torn = tmp_path / "t-0" / "00000000000000000003.txnindex"
    torn.write_bytes(torn.read_bytes()[:-5])  # cut short after the snapshot: the replay must rebuild it
    # an unclean stop: no close(), no clean state
    reopened = open_log(flush_messages="1")
    assert reopened.last_stable_offset == 6
    assert [(a.first_offset, a.last_offset) for a in reopened.aborted_transactions(0)] == [(0, 2), (3, 5)]
    assert len(torn.read_bytes()) == 24


def test_retention_keeps_an_open_transaction_and_drops_aborts_of_deleted_segments(open_log, clock):
    log = open_log(flush_messages="1", retention_ms="1000")
    log.append(_txn(0, pid=PID_B))  # 0-1
    log.append_marker(PID_B, 0, False, 0)  # 2
    log.roll()
    log.append(_txn(0))  # 3-4, open
    log.roll()
    log.append(build_batch([b"later"]))
    clock.now += 10_000
    assert log.apply_retention() == 1  # the segment holding the open transaction's start stays
    assert log.log_start_offset == 3
    assert log.aborted_transactions(0) == []
    assert log.last_stable_offset == 3
