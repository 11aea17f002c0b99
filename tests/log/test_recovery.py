"""Opening after clean and unclean stops: full scans past the recovery point, index rebuilds,
interrupted cleaner swaps, and the LogManager's clean-shutdown marker and recovery points."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from kafkacompat.log.durable import write_json_atomically
from kafkacompat.log.log_manager import CLEAN_SHUTDOWN_FILE, RECOVERY_POINTS_FILE, LogManager
from kafkacompat.log.partition_log import PartitionLog
from kafkacompat.log.recovery import CLEANER_STAGING_DIR, SWAP_JOURNAL
from kafkacompat.log.segment import LogSegment
from kafkacompat.log.topic_config import LogConfig, default_configs
from kafkacompat.protocol.records import scan_valid_batches
from tests.log.batch_builder import DEFAULT_TIMESTAMP as T0
from tests.log.batch_builder import build_batch, stored_batch, values

BATCH = len(build_batch(values(3, 20)))
CONFIG = LogConfig.from_strings({**default_configs(), "segment.bytes": str(2 * BATCH), "index.interval.bytes": "1"})


def _name(base: int, suffix: str) -> str:
    return f"{base:020d}{suffix}"


@pytest.fixture
def opener(tmp_path, clock):
    def open_log(recovery_point: int | None = None) -> PartitionLog:
        return PartitionLog("t", 0, tmp_path / "t-0", CONFIG, clock, recovery_point=recovery_point)

    return open_log


def _fill(log: PartitionLog, batches: int, producer_id: int = -1) -> list[bytes]:
    stored = []
    for n in range(batches):
        idempotent = {"producer_id": producer_id, "producer_epoch": 0, "base_sequence": 3 * n} if producer_id >= 0 else {}
        result = log.append(build_batch(values(3, 20), **idempotent))
        stored.append(stored_batch(values(3, 20), base_offset=result.base_offset, **idempotent))
    return stored


def _read_all(log: PartitionLog) -> bytes:
    """Every batch from the log start on, across segments (a read stays inside one segment)."""
    data, offset = b"", log.log_start_offset
    while chunk := log.read(offset, 1 << 20):
        data += chunk
        offset = list(scan_valid_batches(chunk))[-1].last_offset + 1
    return data


def test_unclean_open_scans_segments_past_the_recovery_point_only(opener):
    log = opener()
    stored = _fill(log, 6)  # segments at 0, 6, 12
    assert log.segment_base_offsets == [0, 6, 12]
    reopened = opener(recovery_point=6)
    assert reopened.recovery_stats.segments_scanned == 2  # the segments at 6 and 12
    assert _read_all(reopened) == b"".join(stored)
    everything = opener(recovery_point=0)
    assert everything.recovery_stats.segments_scanned == 3
    assert everything.recovery_stats.bytes_truncated == 0


def test_a_cut_inside_a_sealed_segment_ends_the_log_there(opener, tmp_path):
    log = opener()
    stored = _fill(log, 6, producer_id=7)
    log.close()
    directory = tmp_path / "t-0"
    middle = directory / _name(6, ".log")
    data = bytearray(middle.read_bytes())
    data[BATCH + 70] ^= 0xFF  # the second batch of the middle segment
    middle.write_bytes(bytes(data))
    reopened = opener(recovery_point=6)
    assert reopened.segment_base_offsets == [0, 6]
    assert reopened.log_end_offset == 9
    assert reopened.recovery_stats.bytes_truncated == BATCH + 2 * BATCH
    assert not (directory / _name(12, ".log")).exists()
    assert _read_all(reopened) == b"".join(stored[:3])
    # Producer state follows the log: the lost batch (sequence 9) is accepted again, at offset 9.
    retry = build_batch(values(3, 20), producer_id=7, producer_epoch=0, base_sequence=9)
    result = reopened.append(retry)
    assert (result.base_offset, result.duplicate) == (9, False)


def test_a_clean_open_only_checks_the_active_tail(opener):
    log = opener()
    _fill(log, 5)
    log.close()
    reopened = opener(recovery_point=None)
    assert reopened.recovery_stats.segments_scanned == 1
    assert reopened.recovery_stats.indexes_rebuilt == 0


@pytest.mark.parametrize("damage", ["delete-timeindex", "delete-index", "garbage-index"])
def test_missing_or_wrong_indexes_of_sealed_segments_are_rebuilt(opener, tmp_path, clock, damage):
    log = opener()
    for n in range(4):
        log.append(build_batch(values(3, 20), base_timestamp=T0 + 100 * n))
    log.close()
    directory = tmp_path / "t-0"
    index, timeindex = directory / _name(0, ".index"), directory / _name(0, ".timeindex")
    expected = index.read_bytes(), timeindex.read_bytes()
    if damage == "delete-timeindex":
        timeindex.unlink()
    elif damage == "delete-index":
        index.unlink()
    else:
        index.write_bytes(b"\x00\x00\x00\x05\x00\x00\x00\x11" * 3)
    reopened = opener(recovery_point=None)
    assert reopened.recovery_stats.indexes_rebuilt == 1
    assert (index.read_bytes(), timeindex.read_bytes()) == expected
    assert reopened.offset_for_timestamp(T0 + 50) == (3, T0 + 100)
    clock.now = T0 + 100 + 604_800_000  # the first segment's newest record is exactly retention.ms old
    assert reopened.apply_retention() == 0


def test_a_committed_swap_is_finished_at_open(opener, tmp_path):
    log = opener()
    stored = _fill(log, 6)
    log.close()
    directory = tmp_path / "t-0"
    staging = directory / CLEANER_STAGING_DIR
    staging.mkdir()
    # A "cleaned" copy of segments 0 and 6 merged: the first segment's batches only.
    for suffix in (".log", ".index", ".timeindex"):
        shutil.copy(directory / _name(0, suffix), staging / _name(0, suffix))
    write_json_atomically(directory / SWAP_JOURNAL, {"replaced": [6]})
    os.replace(staging / _name(0, ".log"), directory / _name(0, ".log"))  # the crash came mid-way
    reopened = opener(recovery_point=None)
    assert reopened.segment_base_offsets == [0, 12]
    assert not staging.exists() and not (directory / SWAP_JOURNAL).exists()
    assert not (directory / _name(6, ".index")).exists()
    assert reopened.read(0, 1 << 20) == stored[0] + stored[1]
    assert reopened.read(6, 1 << 20) == stored[4] + stored[5]  # offsets 6..11 are gone, 12 on remain


def test_an_uncommitted_swap_is_dropped_at_open(opener, tmp_path):
    log = opener()
    stored = _fill(log, 4)
    log.close()
    staging = tmp_path / "t-0" / CLEANER_STAGING_DIR
    staging.mkdir()
    (staging / _name(0, ".log")).write_bytes(b"half a cleaning")
    reopened = opener(recovery_point=None)
    assert not staging.exists()
    assert reopened.read(0, 1 << 20) == stored[0] + stored[1]


# -- LogManager ------------------------------------------------------------------


def _manager(data_dir: Path, clock) -> LogManager:
    return LogManager(data_dir, {"segment.bytes": str(2 * BATCH), "index.interval.bytes": "1"}, clock)


def test_clean_shutdown_marker_and_recovery_points(tmp_path, clock, caplog):
    data_dir = tmp_path / "data"
    manager = _manager(data_dir, clock)
    topic = manager.create_topic("t", 2)
    for _ in range(5):
        topic.partitions[0].append(build_batch(values(3, 20)))
    topic.partitions[0].flush()
    manager.checkpoint_recovery_points()
    for _ in range(2):
        topic.partitions[0].append(build_batch(values(3, 20)))  # past the checkpoint, never flushed

    with caplog.at_level(logging.INFO, logger="kafkacompat.log"):
        crashed = _manager(data_dir, clock)  # the first manager was never closed
    partition = crashed.partition("t", 0)
    assert partition.log_end_offset == 21
    # The segments at 12 and 18; partition 1 was fully fsynced at the checkpoint and opens unread.
    assert crashed.recovery_stats.segments_scanned == 2
    assert "log recovery after an unclean shutdown: 2 partitions, 2 segments scanned" in caplog.text
    crashed.close()
    assert (data_dir / CLEAN_SHUTDOWN_FILE).exists()
    assert (data_dir / RECOVERY_POINTS_FILE).exists()

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="kafkacompat.log"):
        clean = _manager(data_dir, clock)
    assert not (data_dir / CLEAN_SHUTDOWN_FILE).exists()
    assert clean.recovery_stats.segments_scanned == 0  # the marker's states stand for the files
    assert "log recovery after a clean shutdown" in caplog.text
    assert clean.partition("t", 0).log_end_offset == 21
    clean.close()


def test_a_clean_start_opens_no_partition_file_and_serves_the_same(tmp_path, clock, monkeypatch):
    data_dir = tmp_path / "data"
    manager = _manager(data_dir, clock)
    topic = manager.create_topic("t", 2)
    first = topic.partitions[0]
    stored = [first.append(build_batch(values(3, 20), producer_id=7, producer_epoch=0, base_sequence=3 * n))
              for n in range(5)]
    first.delete_records(4)
    manager.close()
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *args, **kw: opened.append(str(path)) or real_open(path, *args, **kw))
    reopened = _manager(data_dir, clock)
    assert [path for path in opened if "/t-" in path] == []
    monkeypatch.undo()
    partition = reopened.partition("t", 0)
    assert (partition.log_start_offset, partition.log_end_offset, partition.high_watermark) == (4, 15, 15)
    assert partition.segment_base_offsets == first.segment_base_offsets
    assert partition.read(12, 1 << 20) == stored_batch(values(3, 20), base_offset=12, producer_id=7,
                                                       producer_epoch=0, base_sequence=12)
    # Producer state came back with it: a retry of the last batch is a duplicate, the next sequence appends.
    retry = partition.append(build_batch(values(3, 20), producer_id=7, producer_epoch=0, base_sequence=12))
    assert retry.duplicate and retry.base_offset == stored[-1].base_offset
    assert partition.append(build_batch(values(3, 20), producer_id=7, producer_epoch=0, base_sequence=15)).base_offset == 15
    reopened.close()
    again = _manager(data_dir, clock)
    assert again.partition("t", 0).log_end_offset == 18 and again.partition("t", 1).log_end_offset == 0
    again.close()


def test_an_empty_marker_from_an_older_version_still_means_a_clean_stop(tmp_path, clock):
    data_dir = tmp_path / "data"
    manager = _manager(data_dir, clock)
    topic = manager.create_topic("t", 1)
    for _ in range(3):
        topic.partitions[0].append(build_batch(values(3, 20)))
    manager.close()
    (data_dir / CLEAN_SHUTDOWN_FILE).write_bytes(b"")
    reopened = _manager(data_dir, clock)
    assert reopened.recovery_stats.segments_scanned == 1  # only the active tail, as after a clean stop
    assert reopened.partition("t", 0).log_end_offset == 9
    reopened.close()


def test_maintenance_entry_points(tmp_path, clock):
    manager = _manager(tmp_path / "data", clock)
    topic = manager.create_topic("t", 1, {"retention.ms": "5000"})
    partition = topic.partitions[0]
    assert manager.partitions_needing_flush(clock.now) == [partition]  # its new directory
    manager.flush()
    assert manager.partitions_needing_flush(clock.now) == []
    partition.append(build_batch(values(3, 20), base_timestamp=T0))
    clock.now = T0 + 5000
    assert manager.apply_retention() == 0
    clock.now = T0 + 5001
    assert manager.apply_retention() == 1  # the expired active segment is rolled, then deleted
    assert (partition.segment_base_offsets, partition.log_start_offset) == ([3], 3)
    manager.close()


def test_an_unclean_start_opens_partitions_on_several_threads_in_order(tmp_path, clock):
    data_dir = tmp_path / "data"
    manager = _manager(data_dir, clock)
    topic = manager.create_topic("t", 6)
    for index, partition in enumerate(topic.partitions):
        for _ in range(index):
            partition.append(build_batch(values(3, 20)))
    crashed = LogManager(data_dir, {"segment.bytes": str(2 * BATCH), "index.interval.bytes": "1"}, clock,
                         recovery_threads=3)  # the first manager was never closed
    reopened = crashed.topic("t").partitions
    assert [(p.index, p.log_end_offset) for p in reopened] == [(n, 3 * n) for n in range(6)]
    assert crashed.recovery_stats.segments_scanned == sum(len(p.segment_base_offsets) for p in reopened)
    crashed.close()


def test_an_unclean_start_opens_partitions_fsynced_at_the_checkpoint_unread(tmp_path, clock, monkeypatch):
    data_dir = tmp_path / "data"
    manager = _manager(data_dir, clock)
    topic = manager.create_topic("t", 3)
    for partition in topic.partitions:
        partition.append(build_batch(values(3, 20), producer_id=7, base_sequence=0))
        partition.flush()
    expected = [_read_all(partition) for partition in topic.partitions]
    manager.checkpoint_recovery_points()
    topic.partitions[1].append(build_batch(values(3, 20), producer_id=7, base_sequence=3))  # after it: scanned
    topic.partitions[1].flush()
    expected[1] = _read_all(topic.partitions[1])
    scans = []
    real_recover = LogSegment.recover
    monkeypatch.setattr(LogSegment, "recover", lambda self, *a, **k: scans.append(self.log_path.parent.name)
                        or real_recover(self, *a, **k))

    crashed = _manager(data_dir, clock)  # the first manager was never closed
    assert scans == ["t-1"]
    reopened = crashed.topic("t").partitions
    assert [_read_all(partition) for partition in reopened] == expected
    assert [p.log_end_offset for p in reopened] == [3, 6, 3]
    assert all(p.active_producers[0].last_sequence == (5 if p.index == 1 else 2) for p in reopened)
    crashed.close()


def test_a_checkpointed_state_the_files_no_longer_match_is_not_trusted(tmp_path, clock):
    data_dir = tmp_path / "data"
    manager = _manager(data_dir, clock)
    partition = manager.create_topic("t", 1).partitions[0]
    partition.append(build_batch(values(3, 20)))
    partition.flush()
    manager.checkpoint_recovery_points()
    active = data_dir / "t-0" / _name(0, ".log")
    with open(active, "ab") as file:
        file.write(b"torn")  # a partial write after the checkpoint: the file grew
    crashed = _manager(data_dir, clock)
    assert crashed.recovery_stats.segments_scanned == 1 and crashed.recovery_stats.bytes_truncated == 4
    assert crashed.partition("t", 0).log_end_offset == 3
    crashed.close()
