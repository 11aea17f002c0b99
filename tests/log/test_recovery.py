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
    assert crashed.recovery_stats.segments_scanned == 2 + 1  # the segments at 12 and 18, and partition 1's
    assert "log recovery after an unclean shutdown: 2 partitions, 3 segments scanned" in caplog.text
    crashed.close()
    assert (data_dir / CLEAN_SHUTDOWN_FILE).exists()
    assert (data_dir / RECOVERY_POINTS_FILE).exists()

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="kafkacompat.log"):
        clean = _manager(data_dir, clock)
    assert not (data_dir / CLEAN_SHUTDOWN_FILE).exists()
    assert clean.recovery_stats.segments_scanned == 2  # only the two active tails
    assert "log recovery after a clean shutdown" in caplog.text
    assert clean.partition("t", 0).log_end_offset == 21
    clean.close()


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
