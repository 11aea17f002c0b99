"""Idempotent producer rules on append, and their survival across restarts."""

from __future__ import annotations

import pytest

from kafkacompat.log.partition_log import PartitionLog
from kafkacompat.log.producer_state import BatchMetadata, ProducerEntry, ProducerStateManager
from kafkacompat.log.topic_config import LogConfig
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.records import INT32_MAX, parse_batches
from tests.log.batch_builder import build_batch

PID = 1000


def _batch(sequence: int, count: int = 2, *, pid: int = PID, epoch: int = 0) -> bytes:
    return build_batch([b"s%d" % (sequence + i) for i in range(count)], producer_id=pid, producer_epoch=epoch, base_sequence=sequence)


def _refused(log, batch: bytes, code: ErrorCode) -> None:
    end_before = log.log_end_offset
    with pytest.raises(KafkaError) as info:
        log.append(batch)
    assert info.value.code == code
    assert log.log_end_offset == end_before


def test_in_order_batches_are_appended(open_log):
    log = open_log()
    assert log.append(_batch(0)).base_offset == 0
    assert log.append(_batch(2, 3)).base_offset == 2
    assert log.append(_batch(5)).last_offset == 6


def test_a_retried_batch_is_a_duplicate_with_its_original_offsets(open_log):
    log = open_log()
    log.append(_batch(0))
    log.append(build_batch([b"other"]))  # non-idempotent traffic in between
    log.append(_batch(2))
    size = log.size_in_bytes
    retry = log.append(_batch(0))
    assert (retry.base_offset, retry.last_offset, retry.duplicate) == (0, 1, True)
    assert log.append(_batch(2)).base_offset == 3
    assert log.size_in_bytes == size
    assert log.log_end_offset == 5


def test_duplicates_are_recognised_among_the_last_five_batches_only(open_log):
    log = open_log()
    for sequence in range(0, 12, 2):
        log.append(_batch(sequence))
    assert log.append(_batch(2)).duplicate
    _refused(log, _batch(0), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)


def test_duplicate_on_log_append_time_returns_the_original_append_time(open_log, clock):
    log = open_log(message_timestamp_type="LogAppendTime")
    first = log.append(_batch(0), now_ms=111)
    assert log.append(_batch(0), now_ms=999).log_append_time == first.log_append_time == 111


def test_a_sequence_gap_is_out_of_order(open_log):
    log = open_log()
    log.append(_batch(0))
    _refused(log, _batch(3), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
    _refused(log, _batch(1), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)  # overlaps, not a duplicate
    assert log.append(_batch(2)).base_offset == 2


def test_an_unknown_producer_must_start_at_zero(open_log):
    log = open_log()
    _refused(log, _batch(5), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert log.append(_batch(0, pid=PID + 1)).base_offset == 0


def test_an_older_epoch_is_fenced(open_log):
    log = open_log()
    log.append(_batch(0, epoch=3))
    _refused(log, _batch(2, epoch=2), ErrorCode.INVALID_PRODUCER_EPOCH)
    _refused(log, _batch(0, epoch=2), ErrorCode.INVALID_PRODUCER_EPOCH)


def test_a_new_epoch_restarts_sequences_at_zero(open_log):
    log = open_log()
    log.append(_batch(0, epoch=0))
    log.append(_batch(2, epoch=0))
    _refused(log, _batch(4, epoch=1), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert log.append(_batch(0, epoch=1)).base_offset == 4
    assert log.append(_batch(2, epoch=1)).base_offset == 6
    # a batch of the old epoch is neither a duplicate nor acceptable any more
    _refused(log, _batch(2, epoch=0), ErrorCode.INVALID_PRODUCER_EPOCH)


def test_sequences_wrap_around_int32(tmp_path):
    manager = ProducerStateManager(tmp_path, expiration_ms=1000)
    seeded = BatchMetadata(INT32_MAX - 3, INT32_MAX - 1, 0, 2, 0)
    manager.producers[PID] = ProducerEntry(PID, 0, (seeded,), 0)

    def append(sequence: int, count: int, base_offset: int):
        headers = parse_batches(_batch(sequence, count))
        pending = manager.prepare(headers, [base_offset], [0], 0)
        manager.commit(pending)
        return pending

    wrapping = append(INT32_MAX, 3, 3)  # sequences INT32_MAX, 0, 1
    assert wrapping.duplicate is None
    assert manager.producers[PID].last_sequence == 1
    assert append(2, 1, 6).duplicate is None
    assert append(INT32_MAX, 3, 7).duplicate.base_offset == 3
    with pytest.raises(KafkaError) as info:
        append(4, 1, 7)
    assert info.value.code == ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER


def test_several_batches_of_one_producer_in_one_append_chain(open_log):
    log = open_log()
    result = log.append(_batch(0) + _batch(2) + _batch(4))
    assert (result.base_offset, result.last_offset) == (0, 5)
    _refused(log, _batch(6) + _batch(9), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert log.log_end_offset == 6


def test_state_survives_a_clean_reopen(open_log):
    log = open_log()
    log.append(_batch(0))
    log.append(_batch(2))
    log.close()
    reopened = open_log()
    retry = reopened.append(_batch(2))
    assert (retry.duplicate, retry.base_offset) == (True, 2)
    _refused(reopened, _batch(7), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert reopened.append(_batch(4)).base_offset == 4


def test_state_is_rebuilt_from_the_log_after_an_unclean_stop(open_log):
    probe = len(_batch(0))
    log = open_log(segment_bytes=str(3 * probe))
    for sequence in range(0, 20, 2):  # rolls (and snapshots) along the way
        log.append(_batch(sequence))
    log.append(_batch(0, pid=PID + 1, epoch=4))
    reopened = open_log(segment_bytes=str(3 * probe))  # no close(): replay after the last snapshot
    assert reopened.append(_batch(18)).duplicate
    assert reopened.append(_batch(0, pid=PID + 1, epoch=4)).duplicate
    _refused(reopened, _batch(0, pid=PID + 1, epoch=3), ErrorCode.INVALID_PRODUCER_EPOCH)
    assert reopened.append(_batch(20)).base_offset == 22


def test_an_unreadable_snapshot_falls_back_to_replaying_the_log(open_log):
    log = open_log()
    log.append(_batch(0))
    log.append(_batch(2))
    log.close()
    [snapshot] = [p for p in log.directory.iterdir() if p.suffix == ".snapshot"]
    snapshot.write_bytes(b"{not json")
    reopened = open_log()
    assert reopened.append(_batch(2)).duplicate
    assert not snapshot.exists()


def test_snapshots_beyond_a_truncated_log_end_are_ignored(open_log):
    log = open_log()
    log.append(_batch(0))
    log.close()
    reopened = open_log()
    reopened.append(_batch(2))
    reopened.close()  # snapshot at offset 4 records sequence 3
    segment = log.directory / "00000000000000000000.log"
    data = segment.read_bytes()
    segment.write_bytes(data[: len(_batch(0))])  # the second batch was never durable
    again = open_log()
    assert again.log_end_offset == 2
    assert again.append(_batch(2)).base_offset == 2  # not mistaken for a duplicate


def test_idle_producers_expire_on_roll(tmp_path, clock):
    log = PartitionLog("t", 0, tmp_path / "t-0", LogConfig.defaults(), clock, producer_id_expiration_ms=1000)
    log.append(_batch(0))
    clock.now += 1000
    log.roll()
    _refused(log, _batch(2), ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER)
    assert log.append(_batch(0)).base_offset == 2
