"""Leader-epoch history: Kafka's checkpoint file, its lookup rules, and how PartitionLog keeps it."""

from __future__ import annotations

import struct

import pytest

from kafkacompat.log.leader_epochs import CHECKPOINT_FILE, EpochEntry, LeaderEpochCache, check_current_leader_epoch
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from tests.log.batch_builder import build_batch, values


def _history(tmp_path, *entries: tuple[int, int]) -> LeaderEpochCache:
    cache = LeaderEpochCache(tmp_path)
    for epoch, start in entries:
        cache.assign(epoch, start)
    return cache


def test_checkpoint_is_kafkas_text_layout_and_survives_reopening(tmp_path):
    _history(tmp_path, (0, 0), (3, 40), (5, 90))
    assert (tmp_path / CHECKPOINT_FILE).read_text() == "0\n3\n0 0\n3 40\n5 90\n"
    assert LeaderEpochCache(tmp_path).entries == [EpochEntry(0, 0), EpochEntry(3, 40), EpochEntry(5, 90)]


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        (5, (5, 120)),  # the current epoch ends at the log end
        (3, (3, 90)),  # an older one at the start of the next
        (4, (3, 90)),  # one this log never saw: the newest known below it, ending where the next starts
        (1, (0, 40)),
        (6, (-1, -1)),  # newer than any known
        (-1, (-1, -1)),
    ],
)
def test_end_offset_for_follows_kafkas_rules(tmp_path, requested, expected):
    assert _history(tmp_path, (0, 0), (3, 40), (5, 90)).end_offset_for(requested, 120) == expected


def test_an_epoch_older_than_the_history_ends_where_the_history_starts(tmp_path):
    assert _history(tmp_path, (2, 10), (4, 30)).end_offset_for(1, 50) == (1, 10)


def test_assign_ignores_older_epochs_and_drops_contradicted_entries(tmp_path):
    cache = _history(tmp_path, (0, 0), (3, 40))
    cache.assign(2, 50)
    assert cache.entries == [EpochEntry(0, 0), EpochEntry(3, 40)]
    cache.assign(4, 40)  # starts where epoch 3 started: epoch 3 had no records
    assert cache.entries == [EpochEntry(0, 0), EpochEntry(4, 40)]


def test_truncation_from_either_end(tmp_path):
    cache = _history(tmp_path, (0, 0), (3, 40), (5, 90))
    cache.truncate_from_start(50)
    assert cache.entries == [EpochEntry(3, 50), EpochEntry(5, 90)]
    cache.truncate_from_end(80)
    assert LeaderEpochCache(tmp_path).entries == [EpochEntry(3, 50)]


@pytest.mark.parametrize("text", ["", "1\n1\n0 0\n", "0\n2\n0 0\n", "0\n1\nx y\n", "0\n1\n0\n"])
def test_an_unreadable_checkpoint_is_an_empty_history(tmp_path, text):
    (tmp_path / CHECKPOINT_FILE).write_text(text)
    assert LeaderEpochCache(tmp_path).entries == []


def test_a_new_partition_records_epoch_zero_at_offset_zero(open_log):
    log = open_log()
    assert (log.directory / CHECKPOINT_FILE).read_text() == "0\n1\n0 0\n"
    log.append(build_batch(values(3, 10)))
    assert log.end_offset_for_epoch(0) == (0, 3)
    assert log.end_offset_for_epoch(1) == (-1, -1)


def test_appended_batches_carry_the_leader_epoch(open_log):
    log = open_log()
    log.append(build_batch(values(2, 10)) + build_batch(values(1, 10)))  # clients send epoch -1
    data = log.read(0, 1 << 20)
    second = len(build_batch(values(2, 10)))
    assert struct.unpack_from(">i", data, 12)[0] == struct.unpack_from(">i", data, second + 12)[0] == 0


def test_a_partition_without_checkpoint_records_its_epoch_at_the_log_end_on_first_use(open_log):
    log = open_log()
    log.append(build_batch(values(4, 10)))
    log.close()
    (log.directory / CHECKPOINT_FILE).unlink()  # as left by a broker that kept no history
    reopened = open_log()
    assert not (reopened.directory / CHECKPOINT_FILE).exists()  # opening reads and writes nothing
    reopened.append(build_batch(values(2, 10)))
    assert (reopened.directory / CHECKPOINT_FILE).read_text() == "0\n1\n0 4\n"
    assert reopened.end_offset_for_epoch(0) == (0, 6)


def test_delete_records_moves_the_first_epoch_start(open_log):
    log = open_log()
    log.append(build_batch(values(5, 10)))
    log.delete_records(3)
    assert (log.directory / CHECKPOINT_FILE).read_text() == "0\n1\n0 3\n"
    assert open_log().end_offset_for_epoch(0) == (0, 5)


@pytest.mark.parametrize(("current", "code"), [(1, ErrorCode.FENCED_LEADER_EPOCH), (3, ErrorCode.UNKNOWN_LEADER_EPOCH)])
def test_current_leader_epoch_is_checked_against_ours(open_log, current, code):
    log = open_log()
    log.leader_epoch = 2  # as after two leadership changes
    check_current_leader_epoch(-1, log)
    check_current_leader_epoch(2, log)
    with pytest.raises(KafkaError) as info:
        check_current_leader_epoch(current, log)
    assert info.value.code == code
