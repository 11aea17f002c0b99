"""The log cleaner: latest value per key, original offsets, tombstones, codecs, bounds and interruptions."""

from __future__ import annotations

import pytest
from kafka.record.default_records import DefaultRecordBatch

import kafkacompat.log.cleaner as cleaner_module
from kafkacompat.log.cleaner import CHECKPOINT_FILE, cleaning_jobs, read_checkpoint
from kafkacompat.log.partition_log import PartitionLog
from kafkacompat.log.recovery import CLEANER_STAGING_DIR
from kafkacompat.log.topic_config import LogConfig, default_configs
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.records import decode_records, scan_valid_batches
from tests.log.batch_builder import DEFAULT_TIMESTAMP as T0
from tests.log.batch_builder import GZIP, LZ4, NONE, SNAPPY, ZSTD, RecordSpec, build_batch

CODECS = {"none": NONE, "gzip": GZIP, "snappy": SNAPPY, "lz4": LZ4, "zstd": ZSTD}
DAY_MS = 86_400_000


@pytest.fixture
def compacted(tmp_path, clock):
    """compacted(**topic_configs) -> a compacted partition with small segments, on the same directory each call."""

    def factory(**overrides: str) -> PartitionLog:
        configs = {
            **default_configs(),
            "cleanup.policy": "compact",
            "segment.bytes": "600",
            "min.cleanable.dirty.ratio": "0.01",
            "index.interval.bytes": "100",
            **{k.replace("_", "."): v for k, v in overrides.items()},
        }
        return PartitionLog("t", 0, tmp_path / "t-0", LogConfig.from_strings(configs), clock)

    return factory


def clean(log: PartitionLog, now: int, dedupe_buffer_bytes: int = 1 << 20) -> list:
    """Run every due cleaning to the end, syncing tickets inline; returns the jobs run."""
    jobs = []
    for job in cleaning_jobs([log], now, dedupe_buffer_bytes):
        for ticket in job.run():
            if ticket is not None:
                ticket.sync()
        jobs.append(job)
    return jobs


def read_records(log: PartitionLog) -> list[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every record served, across segments."""
    records, offset = [], log.log_start_offset
    while chunk := log.read(offset, 1 << 20):
        for header in scan_valid_batches(chunk):
            batch = chunk[header.position : header.end]
            records += [(r.offset, r.key, r.value) for r in decode_records(batch) if r.offset >= offset]
        offset = header.last_offset + 1
    return records


def write_history(log: PartitionLog, rounds: int, keys: int, *, compression: int = NONE) -> dict[bytes, tuple[int, bytes | None]]:
    """Several values per key in batches of two records; returns each key's latest (offset, value)."""
    latest = {}
    for n in range(rounds * keys // 2):
        specs = [RecordSpec(b"value-%d-%d" % (n, i), key=b"key-%d" % ((2 * n + i) % keys)) for i in range(2)]
        result = log.append(build_batch(specs, base_timestamp=T0 + n, compression=compression))
        for i, spec in enumerate(specs):
            latest[spec.key] = (result.base_offset + i, spec.value)
    return latest


def expected(latest: dict[bytes, tuple[int, bytes | None]]) -> list:
    return sorted((offset, key, value) for key, (offset, value) in latest.items())


@pytest.mark.parametrize("codec", CODECS.values(), ids=CODECS.keys())
def test_only_the_latest_value_per_key_survives_at_its_original_offset(compacted, clock, codec):
    log = compacted()
    latest = write_history(log, rounds=6, keys=5, compression=codec)
    log.roll()
    [job] = clean(log, clock.now)
    assert job.groups_swapped > 0
    assert read_records(log) == expected(latest)
    assert log.log_end_offset == 30 and log.log_start_offset == 0
    for data in (log.read(offset, 1 << 20) for offset, _, _ in expected(latest)):
        for header in scan_valid_batches(data):
            assert header.compression == codec  # rebuilt batches keep their codec
    reopened = compacted()
    assert read_records(reopened) == expected(latest)


def test_a_rebuilt_batch_keeps_its_identity_and_decodes_with_another_implementation(compacted, clock):
    log = compacted()
    specs = [RecordSpec(b"old", key=b"a"), RecordSpec(b"keep", key=b"b"), RecordSpec(b"old", key=b"c")]
    log.append(build_batch(specs, compression=GZIP, producer_id=9, producer_epoch=2, base_sequence=0))
    log.append(build_batch([RecordSpec(b"new", key=b"a"), RecordSpec(b"new", key=b"c")], base_timestamp=T0 + 5))
    log.roll()
    clean(log, clock.now)
    data = log.read(0, 1 << 20)
    first = next(scan_valid_batches(data))
    assert (first.base_offset, first.last_offset_delta, first.records_count) == (0, 2, 1)
    assert (first.producer_id, first.producer_epoch, first.base_sequence) == (9, 2, 0)
    batch = DefaultRecordBatch(data[: first.end])
    assert batch.validate_crc()
    assert [(r.offset, r.key, r.value) for r in batch] == [(1, b"b", b"keep")]
    assert read_records(log) == [(1, b"b", b"keep"), (3, b"a", b"new"), (4, b"c", b"new")]


def test_tombstones_stay_for_delete_retention_ms_then_go(compacted, clock):
    log = compacted(delete_retention_ms=str(DAY_MS))
    log.append(build_batch([RecordSpec(b"v1", key=b"gone"), RecordSpec(b"v1", key=b"stays")]))
    log.append(build_batch([RecordSpec(None, key=b"gone")], base_timestamp=T0 + 10))
    log.roll()
    clean(log, clock.now + 1000)
    assert read_records(log) == [(1, b"stays", b"v1"), (2, b"gone", None)]
    assert read_checkpoint(log.directory).tombstones_due_ms == T0 + 10 + DAY_MS + 1
    assert clean(log, T0 + 10 + DAY_MS) == []  # not due yet, and nothing dirty
    [job] = clean(log, T0 + 10 + DAY_MS + 1)
    assert read_records(log) == [(1, b"stays", b"v1")]
    assert read_checkpoint(log.directory).tombstones_due_ms is None


def test_keyless_records_are_refused_on_produce_and_dropped_by_the_cleaner(compacted, clock, tmp_path):
    log = compacted()
    with pytest.raises(KafkaError) as info:
        log.append(build_batch([RecordSpec(b"k", key=b"k"), RecordSpec(b"no key")]))
    assert info.value.code == ErrorCode.INVALID_RECORD
    assert log.log_end_offset == 0
    log.close()
    deleting = compacted(cleanup_policy="delete")  # written before the topic turned compacted
    deleting.append(build_batch([RecordSpec(b"k", key=b"k"), RecordSpec(b"no key")]))
    deleting.roll()
    deleting.close()
    log = compacted(cleanup_policy="compact,delete")
    clean(log, clock.now)
    assert read_records(log) == [(0, b"k", b"k")]


def test_the_active_segment_and_young_segments_are_left_alone(compacted, clock):
    log = compacted(min_compaction_lag_ms="60000")
    write_history(log, rounds=2, keys=2)
    assert clean(log, clock.now) == []  # everything is in the active segment
    log.roll()
    assert clean(log, T0 + 59_999) == []  # younger than min.compaction.lag.ms
    assert len(clean(log, T0 + 60_010)) == 1


def test_unflushed_records_are_not_cleaned(tmp_path, clock):
    configs = {**default_configs(), "cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.01"}
    log = PartitionLog("t", 0, tmp_path / "t-0", LogConfig.from_strings(configs), clock, flush_on_ack=True)
    write_history(log, rounds=2, keys=2)
    log.roll()
    assert clean(log, clock.now) == []  # above the high watermark: not acknowledged yet
    log.flush()
    assert len(clean(log, clock.now)) == 1


def test_the_dirty_ratio_decides_when_a_partition_is_due(compacted, clock):
    log = compacted(min_cleanable_dirty_ratio="0.6", segment_bytes="2000")
    write_history(log, rounds=4, keys=4)
    log.roll()
    assert len(clean(log, clock.now)) == 1  # all dirty: ratio 1.0
    checkpoint = read_checkpoint(log.directory)
    assert checkpoint.first_dirty_offset == 16
    log.append(build_batch([RecordSpec(b"x", key=b"key-0")]))
    log.roll()
    assert clean(log, clock.now) == []  # one small dirty segment against the cleaned head
    for n in range(12):
        log.append(build_batch([RecordSpec(b"y%d" % n, key=b"key-1")]))
    log.roll()
    assert len(clean(log, clock.now)) == 1
    assert [key for _, key, _ in read_records(log)] == [b"key-2", b"key-3", b"key-0", b"key-1"]


def test_a_small_dedupe_buffer_cleans_in_several_passes(compacted, clock):
    log = compacted()
    latest = write_history(log, rounds=4, keys=10)  # 40 records, 10 keys, segments of ~6 batches
    log.roll()
    segments = log.segment_base_offsets
    clean(log, clock.now, dedupe_buffer_bytes=cleaner_module.MAP_ENTRY_BYTES)
    first_dirty = read_checkpoint(log.directory).first_dirty_offset
    assert first_dirty == segments[1]  # the map filled up after one segment
    for _ in range(len(segments)):
        clean(log, clock.now, dedupe_buffer_bytes=cleaner_module.MAP_ENTRY_BYTES)
    assert read_records(log) == expected(latest)


def test_a_cleaning_is_a_series_of_bounded_steps(compacted, clock, monkeypatch):
    monkeypatch.setattr(cleaner_module, "STEP_BYTES", 1)
    log = compacted(segment_bytes="100000")
    write_history(log, rounds=3, keys=4)  # 6 batches in one segment
    log.roll()
    [job] = cleaning_jobs([log], clock.now, 1 << 20)
    yields, synced = 0, []
    for step in job.run():
        if step is None:
            yields += 1
        else:  # the staged files, for the driver to fsync before the swap
            synced.append(len(step.fds))
            step.sync()
    assert yields == 6 + 6  # one batch per step, mapping then rewriting
    assert synced == [3] and job.groups_swapped == 1


def test_a_cleaning_stops_when_retention_deletes_its_segments(compacted, clock):
    log = compacted(cleanup_policy="compact,delete", retention_ms="1000", segment_bytes="100000")
    write_history(log, rounds=3, keys=4)
    log.roll()
    log.append(build_batch([RecordSpec(b"fresh", key=b"new")], base_timestamp=T0 + 100_000))
    [job] = cleaning_jobs([log], T0 + 10, 1 << 20)
    steps = job.run()
    next(steps)
    assert log.apply_retention(T0 + 50_000) == 1
    assert list(steps) == []
    assert job.groups_swapped == 0
    assert not (log.directory / CLEANER_STAGING_DIR).exists()
    assert not (log.directory / CHECKPOINT_FILE).exists()
    assert read_records(log) == [(12, b"new", b"fresh")]


def test_a_cleaning_stops_when_the_partition_is_closed(compacted, clock):
    log = compacted(segment_bytes="100000")
    write_history(log, rounds=3, keys=4)
    log.roll()
    [job] = cleaning_jobs([log], clock.now, 1 << 20)
    steps = job.run()
    next(steps)
    log.close()
    assert list(steps) == []
    assert not (log.directory / CLEANER_STAGING_DIR).exists()


def test_compaction_drops_aborted_batches_keeps_markers_and_the_aborted_index(compacted, clock, tmp_path):
    """An aborted value never shadows the committed one before it, and goes; the markers stay."""
    log = compacted(flush_messages="1")
    pid = 700

    def txn(sequence: int, value: bytes) -> None:
        log.append(build_batch([RecordSpec(value, key=b"k")], producer_id=pid, producer_epoch=0,
                               base_sequence=sequence, transactional=True))

    txn(0, b"committed")  # 0
    log.append_marker(pid, 0, True, 0)  # 1
    txn(1, b"aborted")  # 2
    log.append_marker(pid, 0, False, 0)  # 3
    for n in range(12):  # roll a few segments so the transactions are cleanable
        log.append(build_batch([RecordSpec(b"filler", key=b"other-%d" % n)]))
    clean(log, clock.now)
    kept = read_records(log)
    assert (0, b"k", b"committed") in kept and all(value != b"aborted" for _, _, value in kept)
    batches = []
    offset = log.log_start_offset
    while chunk := log.read(offset, 1 << 20):
        batches += list(scan_valid_batches(chunk))
        offset = batches[-1].last_offset + 1
    assert [b.base_offset for b in batches if b.is_control] == [1, 3]
    assert [(a.first_offset, a.last_offset) for a in log.aborted_transactions(0)] == [(2, 3)]
    log.flush()
    unclean = compacted(flush_messages="1")  # no close: the cleaned segment's .txnindex file is what is read
    assert [(a.first_offset, a.last_offset) for a in unclean.aborted_transactions(0)] == [(2, 3)]
