"""PartitionLog: append/read, validation, indexes, rolls, recovery, timestamp lookups."""

from __future__ import annotations

import errno
import os

import pytest

from kafkacompat.log.file_slice import FileSlice
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.records import decode_records, parse_batches
from tests.log.batch_builder import DEFAULT_TIMESTAMP as T0
from tests.log.batch_builder import GZIP, LZ4, NONE, SNAPPY, ZSTD, RecordSpec, build_batch, stored_batch, values


def _offsets(data: bytes) -> list[int]:
    """Offsets of every record in a blob of whole batches (test-side decoding)."""
    return [record.offset for header in parse_batches(data) for record in decode_records(data[header.position : header.end])]


def _fill(log, batches: int, per_batch: int = 3, size: int = 20) -> list[bytes]:
    """Append `batches` batches; return the bytes each should be stored as (with assigned offsets)."""
    stored = []
    for _ in range(batches):
        records = values(per_batch, size)
        result = log.append(build_batch(records))
        stored.append(stored_batch(records, base_offset=result.base_offset))
    return stored


def test_append_then_read_is_byte_exact_except_the_base_offset(open_log):
    log = open_log()
    first = log.append(build_batch([b"a", b"b", b"c"]))
    second = log.append(build_batch([b"d", b"e"]) + build_batch([b"f"]))
    assert (first.base_offset, first.last_offset, first.log_append_time, first.duplicate) == (0, 2, -1, False)
    assert (second.base_offset, second.last_offset) == (3, 5)
    assert log.log_end_offset == log.high_watermark == 6
    assert log.log_start_offset == 0
    expected = (
        stored_batch([b"a", b"b", b"c"], base_offset=0)
        + stored_batch([b"d", b"e"], base_offset=3)
        + stored_batch([b"f"], base_offset=5)
    )
    assert log.read(0, 1 << 20) == expected
    assert (log.directory / "00000000000000000000.log").read_bytes() == expected


def test_append_patches_a_bytearray_in_place_and_leaves_bytes_alone(open_log):
    log = open_log()
    log.append(build_batch([b"x"]))
    original = build_batch([b"y"])
    mutable = bytearray(original)
    log.append(mutable)
    assert mutable == stored_batch([b"y"], base_offset=1)
    assert original != mutable


def test_read_starts_at_the_batch_containing_the_offset(open_log):
    log = open_log()
    stored = _fill(log, 4, per_batch=3)
    assert log.read(4, 1 << 20) == b"".join(stored[1:])
    assert log.read(3, 1 << 20) == b"".join(stored[1:])
    assert log.read(11, 1 << 20) == stored[3]


def test_read_returns_whole_batches_within_max_bytes_but_at_least_one(open_log):
    log = open_log()
    stored = _fill(log, 4)
    size = len(stored[0])
    assert log.read(0, 2 * size + size // 2) == stored[0] + stored[1]
    assert log.read(0, 10) == stored[0]
    assert log.read(0, 0) == stored[0]


@pytest.mark.parametrize("interval", ["1", "150", "4096"])
def test_the_whole_batch_cut_is_the_same_wherever_the_index_points(open_log, interval):
    log = open_log(index_interval_bytes=interval)
    stored = _fill(log, 80, per_batch=2)
    size = len(stored[0])
    for start in (0, 7, 40):
        for max_bytes in (0, size - 1, size, 5 * size + 3, 33 * size, 1 << 20):
            whole = max(1, min(max_bytes // size, 80 - start))
            assert log.read(2 * start, max_bytes) == b"".join(stored[start : start + whole])


def test_large_reads_come_back_as_file_slices_that_outlive_the_log(open_log):
    log = open_log()
    stored = _fill(log, 30)
    small = log.read(0, len(stored[0]), slice_from=10 * len(stored[0]))
    assert small == stored[0]  # under slice_from: read into memory
    sliced = log.read(0, 1 << 20, slice_from=10 * len(stored[0]))
    assert isinstance(sliced, FileSlice)
    assert (sliced.position, sliced.nbytes, len(sliced)) == (0, len(b"".join(stored)), len(b"".join(stored)))
    log.close()  # the slice holds a descriptor of its own
    assert sliced.tobytes() == b"".join(stored)
    fd = sliced.fileno()
    sliced.close()
    sliced.close()
    with pytest.raises(OSError):
        os.fstat(fd)


def test_out_of_descriptors_a_large_read_is_read_into_memory(open_log, monkeypatch):
    log = open_log()
    stored = _fill(log, 5)

    def no_descriptor_left(fd):
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(os, "dup", no_descriptor_left)
    assert log.read(0, 1 << 20, slice_from=1) == b"".join(stored)


def test_an_unsent_file_slice_closes_its_descriptor_when_dropped(open_log):
    log = open_log()
    _fill(log, 3)
    sliced = log.read(0, 1 << 20, slice_from=1)
    fd = sliced.fileno()
    del sliced
    with pytest.raises(OSError):
        os.fstat(fd)


def test_read_at_log_end_is_empty_and_beyond_is_out_of_range(open_log):
    log = open_log()
    _fill(log, 2)
    assert log.read(6, 1000) == b""
    for offset in (7, -1):
        with pytest.raises(KafkaError) as info:
            log.read(offset, 1000)
        assert info.value.code == ErrorCode.OFFSET_OUT_OF_RANGE


def test_corrupt_batch_writes_nothing(open_log):
    log = open_log()
    _fill(log, 1)
    good = build_batch([b"fine"])
    bad = bytearray(build_batch([b"broken"]))
    bad[-1] ^= 0x55
    size_before = os.path.getsize(log.directory / "00000000000000000000.log")
    with pytest.raises(KafkaError) as info:
        log.append(good + bytes(bad))
    assert info.value.code == ErrorCode.CORRUPT_MESSAGE
    assert log.log_end_offset == 3
    assert os.path.getsize(log.directory / "00000000000000000000.log") == size_before
    assert log.append(good).base_offset == 3


@pytest.mark.parametrize(
    "configs, batch, code",
    [
        ({"max_message_bytes": "100"}, build_batch(values(5, 30)), ErrorCode.MESSAGE_TOO_LARGE),
        ({"segment_bytes": "200"}, build_batch(values(3, 30)) * 2, ErrorCode.RECORD_LIST_TOO_LARGE),
        ({}, build_batch([b"c"], control=True), ErrorCode.INVALID_RECORD),
        ({}, build_batch([b"s"], producer_id=5, producer_epoch=0, base_sequence=-1), ErrorCode.INVALID_RECORD),
        ({}, build_batch([RecordSpec(b"f", timestamp=T0 + 3_600_001)]), ErrorCode.INVALID_TIMESTAMP),
    ],
    ids=["too-large", "list-too-large", "control", "no-sequence", "future-timestamp"],
)
def test_policy_violations_are_rejected_before_writing(open_log, configs, batch, code):
    log = open_log(**configs)
    with pytest.raises(KafkaError) as info:
        log.append(batch)
    assert info.value.code == code
    assert log.log_end_offset == 0
    assert log.size_in_bytes == 0


def test_log_append_time_stamps_batches_with_the_broker_clock(open_log, clock):
    log = open_log(message_timestamp_type="LogAppendTime")
    clock.now = T0 + 500
    result = log.append(build_batch([RecordSpec(b"a", timestamp=1), RecordSpec(b"b", timestamp=2)], base_timestamp=1))
    assert result.log_append_time == T0 + 500
    data = log.read(0, 1000)
    [header] = parse_batches(data)  # CRC rewritten correctly
    assert header.is_log_append_time and header.max_timestamp == T0 + 500
    assert [r.timestamp for r in decode_records(data)] == [T0 + 500, T0 + 500]
    assert log.append(build_batch([b"c"]), now_ms=T0 + 900).log_append_time == T0 + 900


def test_a_batch_sent_without_max_timestamp_is_found_by_time(open_log):
    """Sarama 1.22 leaves max_timestamp at -1; the log stores the records' maximum, as Kafka does."""
    log = open_log()
    log.append(build_batch([RecordSpec(b"a", timestamp=T0), RecordSpec(b"b", timestamp=T0 + 5)],
                           base_timestamp=T0, max_timestamp=-1))
    [header] = parse_batches(log.read(0, 1000))
    assert header.max_timestamp == T0 + 5
    assert log.offset_for_timestamp(T0 + 1) == (1, T0 + 5)
    assert log.max_timestamp_offset() == (1, T0 + 5)


def test_sparse_index_gets_entries_and_finds_every_offset(open_log):
    log = open_log(index_interval_bytes="200")
    stored = _fill(log, 60, per_batch=2)
    index_size = os.path.getsize(log.directory / "00000000000000000000.index")
    assert index_size and index_size % 8 == 0
    assert index_size // 8 >= 60 * len(stored[0]) // 300
    for offset in range(0, 120):
        assert log.read(offset, 1) == stored[offset // 2]


def test_rolls_at_segment_bytes_and_reads_across_segments(open_log):
    probe = len(build_batch(values(3, 20)))
    log = open_log(segment_bytes=str(3 * probe))
    stored = _fill(log, 7)
    assert log.segment_base_offsets == [0, 9, 18]
    names = sorted(p.name for p in log.directory.iterdir() if p.suffix == ".log")
    assert names == ["00000000000000000000.log", "00000000000000000009.log", "00000000000000000018.log"]
    assert log.read(8, 1 << 20) == b"".join(stored[2:3])  # a read stays inside one segment
    assert log.read(9, 1 << 20) == b"".join(stored[3:6])
    assert _offsets(log.read(19, 1 << 20)) == [18, 19, 20]


def test_rolls_when_record_time_passes_segment_ms(open_log):
    log = open_log(segment_ms="1000")
    log.append(build_batch([b"a"], base_timestamp=T0))
    log.append(build_batch([b"b"], base_timestamp=T0 + 1000))
    assert log.segment_base_offsets == [0]
    log.append(build_batch([b"c"], base_timestamp=T0 + 1001))
    assert log.segment_base_offsets == [0, 2]


def test_reopen_after_close_restores_everything(open_log):
    log = open_log(index_interval_bytes="100", segment_bytes="1000")
    stored = _fill(log, 20)
    log.close()
    reopened = open_log(index_interval_bytes="100", segment_bytes="1000")
    assert reopened.log_end_offset == 60
    assert len(reopened.segment_base_offsets) > 2
    assert reopened.segment_base_offsets == log.segment_base_offsets
    for offset in range(60):
        assert reopened.read(offset, 1) == stored[offset // 3]
    assert reopened.append(build_batch([b"next"])).base_offset == 60
    assert _offsets(reopened.read(60, 1000)) == [60]


def test_reopen_without_close_truncates_a_torn_tail(open_log):
    log = open_log(index_interval_bytes="50")
    stored = _fill(log, 10)
    segment = log.directory / "00000000000000000000.log"
    with open(segment, "ab") as f:
        f.write(build_batch([b"torn"] * 5, base_offset=30)[:-7])
    with open(log.directory / "00000000000000000000.index", "ab") as f:
        f.write(b"\x00\x00\x00\x63\x00\x10\x00\x00\x01\x02\x03")  # an entry past the data + a torn one
    reopened = open_log(index_interval_bytes="50")
    assert reopened.log_end_offset == 30
    assert segment.stat().st_size == sum(map(len, stored))
    assert os.path.getsize(log.directory / "00000000000000000000.index") % 8 == 0
    assert reopened.read(0, 1 << 20) == b"".join(stored)
    for offset in range(30):
        assert reopened.read(offset, 1) == stored[offset // 3]
    assert reopened.append(build_batch([b"after"])).base_offset == 30


def test_reopen_without_close_stops_at_a_corrupt_batch(open_log):
    log = open_log()
    stored = _fill(log, 3)
    corrupted = bytearray(build_batch([b"bad"], base_offset=9))
    corrupted[-2] ^= 0xFF
    with open(log.directory / "00000000000000000000.log", "ab") as f:
        f.write(bytes(corrupted) + build_batch([b"after-bad"], base_offset=10))
    reopened = open_log()
    assert reopened.log_end_offset == 9
    assert reopened.read(0, 1 << 20) == b"".join(stored)


def test_reopen_rebuilds_lost_index_entries(open_log):
    log = open_log(index_interval_bytes="100")
    stored = _fill(log, 30)
    index = log.directory / "00000000000000000000.index"
    entries = os.path.getsize(index) // 8
    os.truncate(index, 8)  # as if the process died before writing the other entries
    reopened = open_log(index_interval_bytes="100")
    assert os.path.getsize(index) // 8 == entries
    assert reopened.read(45, 1) == stored[15]


@pytest.mark.parametrize("codec", [NONE, GZIP, SNAPPY, LZ4, ZSTD], ids=["none", "gzip", "snappy", "lz4", "zstd"])
def test_offset_for_timestamp_is_exact_inside_a_batch(open_log, codec):
    log = open_log()
    log.append(build_batch([RecordSpec(b"early", timestamp=T0 - 100)], base_timestamp=T0 - 100))
    stamps = [T0, T0 + 10, T0 + 20, T0 + 5]
    log.append(build_batch([RecordSpec(b"r%d" % i, timestamp=t) for i, t in enumerate(stamps)], compression=codec))
    assert log.offset_for_timestamp(0) == (0, T0 - 100)
    assert log.offset_for_timestamp(T0 - 99) == (1, T0)
    assert log.offset_for_timestamp(T0 + 6) == (2, T0 + 10)
    assert log.offset_for_timestamp(T0 + 11) == (3, T0 + 20)
    assert log.offset_for_timestamp(T0 + 20) == (3, T0 + 20)
    assert log.offset_for_timestamp(T0 + 21) is None
    assert log.max_timestamp_offset() == (3, T0 + 20)


def test_offset_for_timestamp_across_segments_with_time_index(open_log):
    log = open_log(segment_bytes="2000", index_interval_bytes="100")
    for i in range(100):
        log.append(build_batch([RecordSpec(b"v", timestamp=T0 + 10 * i), RecordSpec(b"w", timestamp=T0 + 10 * i + 5)]))
    assert len(log.segment_base_offsets) > 3
    for i in range(0, 100, 7):
        assert log.offset_for_timestamp(T0 + 10 * i) == (2 * i, T0 + 10 * i)
        assert log.offset_for_timestamp(T0 + 10 * i + 1) == (2 * i + 1, T0 + 10 * i + 5)
    log.close()
    reopened = open_log(segment_bytes="2000", index_interval_bytes="100")
    assert reopened.offset_for_timestamp(T0 + 503) == (101, T0 + 505)
    assert reopened.max_timestamp_offset() == (199, T0 + 995)


def test_max_timestamp_offset_keeps_the_first_of_equal_maxima(open_log):
    log = open_log()
    assert log.max_timestamp_offset() is None
    log.append(build_batch([RecordSpec(b"a", timestamp=T0), RecordSpec(b"b", timestamp=T0 + 50), RecordSpec(b"c", timestamp=T0)]))
    log.append(build_batch([RecordSpec(b"d", timestamp=T0 + 50)]))
    assert log.max_timestamp_offset() == (1, T0 + 50)


def test_offset_for_timestamp_respects_the_log_start_offset(open_log):
    log = open_log()
    log.append(build_batch([RecordSpec(b"a", timestamp=T0), RecordSpec(b"b", timestamp=T0 + 1), RecordSpec(b"c", timestamp=T0 + 2)]))
    log.delete_records(2)
    assert log.offset_for_timestamp(T0) == (2, T0 + 2)


def test_delete_records_moves_the_start_and_survives_reopen(open_log):
    probe = len(build_batch(values(3, 20)))
    log = open_log(segment_bytes=str(2 * probe))
    _fill(log, 6)
    assert log.delete_records(7) == 7
    assert log.segment_base_offsets == [6, 12]
    with pytest.raises(KafkaError) as info:
        log.read(6, 100)
    assert info.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    assert _offsets(log.read(7, 100)) == [6, 7, 8]
    assert log.append(build_batch([b"x"])).log_start_offset == 7
    with pytest.raises(KafkaError):
        log.delete_records(100)
    log.close()
    assert open_log(segment_bytes=str(2 * probe)).log_start_offset == 7


def test_delete_records_to_the_end_keeps_the_log_end_offset(open_log):
    log = open_log()
    _fill(log, 2)
    assert log.delete_records(-1) == 6
    assert log.segment_base_offsets == [6]
    assert log.read(6, 100) == b""
    assert log.append(build_batch([b"x"])).base_offset == 6


def test_retention_by_time_and_by_size(open_log, clock):
    probe = len(build_batch(values(3, 20)))
    log = open_log(segment_bytes=str(2 * probe), retention_ms="1000")
    for i in range(6):
        log.append(build_batch(values(3, 20), base_timestamp=T0 + 100 * i))
    assert log.segment_base_offsets == [0, 6, 12]
    clock.now = T0 + 1150  # the first segment's newest record is T0 + 100
    assert log.apply_retention() == 1
    assert (log.segment_base_offsets, log.log_start_offset) == ([6, 12], 6)
    clock.now = T0 + 10_000
    assert log.apply_retention() == 2
    assert (log.segment_base_offsets, log.log_start_offset, log.log_end_offset) == ([18], 18, 18)

    sized = open_log(segment_bytes=str(2 * probe), retention_bytes=str(3 * probe))
    assert sized.log_end_offset == 18
    for _ in range(6):
        sized.append(build_batch(values(3, 20)))
    assert sized.apply_retention(T0) == 1
    assert sized.size_in_bytes <= 4 * probe


def test_compact_only_topics_are_not_deleted_by_retention(open_log, clock):
    log = open_log(cleanup_policy="compact", retention_ms="1")
    for batch in range(2):
        log.append(build_batch([RecordSpec(b"v", key=b"k%d" % i) for i in range(3)]))
    clock.now = T0 + 10_000
    assert log.apply_retention() == 0
    assert log.log_start_offset == 0


@pytest.mark.parametrize("chunk", [13, 100, 257])
def test_recovery_scans_batches_that_straddle_read_chunks(open_log, monkeypatch, chunk):
    import kafkacompat.log.segment as segment_module

    log = open_log()
    stored = [stored_batch(values(n, 40), base_offset=0) for n in (1, 5, 2, 9)]
    offsets = [log.append(batch).base_offset for batch in stored]
    with open(log.directory / "00000000000000000000.log", "ab") as f:
        f.write(build_batch([b"torn"] * 3, base_offset=17)[:-1])
    monkeypatch.setattr(segment_module, "_RECOVERY_CHUNK", chunk)
    reopened = open_log()
    assert reopened.log_end_offset == 17
    expected = b"".join(stored_batch(values(n, 40), base_offset=o) for n, o in zip((1, 5, 2, 9), offsets))
    assert reopened.read(0, 1 << 20) == expected


def test_recovery_of_a_segment_holding_no_valid_batch(open_log):
    log = open_log()
    (log.directory / "00000000000000000000.log").write_bytes(b"\x00" * 100)
    reopened = open_log()
    assert reopened.log_end_offset == 0
    assert reopened.size_in_bytes == 0
    assert reopened.append(build_batch([b"fresh"])).base_offset == 0


def test_a_closed_partition_refuses_calls_instead_of_touching_stale_descriptors(open_log):
    log = open_log()
    _fill(log, 1)
    log.close()
    log.close()  # idempotent
    for call, args in [(log.append, (build_batch([b"x"]),)), (log.read, (0, 100)), (log.offset_for_timestamp, (0,))]:
        with pytest.raises(KafkaError) as info:
            call(*args)
        assert info.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def test_sealed_segments_hold_only_their_log_descriptor_once_flushed(open_log, clock):
    """A roll hands the sealed files' descriptors to the next flush instead of fsyncing on the spot."""
    probe = len(build_batch(values(3, 20)))
    log = open_log(segment_bytes=str(probe), index_interval_bytes="0")
    before = len(os.listdir("/proc/self/fd"))
    _fill(log, 10)
    assert len(log.segment_base_offsets) == 10
    assert log.needs_flush(clock.now)
    log.flush()
    assert not log.needs_flush(clock.now)
    assert len(os.listdir("/proc/self/fd")) - before <= 9 + 2


def test_damage_inside_a_sealed_segment_fails_the_read_not_the_broker(open_log):
    probe = len(build_batch(values(3, 20)))
    log = open_log(segment_bytes=str(2 * probe))
    _fill(log, 4)
    log.close()
    sealed = log.directory / "00000000000000000000.log"
    data = bytearray(sealed.read_bytes())
    data[probe + 8 : probe + 12] = b"\xff\xff\xff\xf4"  # second batch claims length -12
    sealed.write_bytes(bytes(data))
    reopened = open_log(segment_bytes=str(2 * probe))
    with pytest.raises(KafkaError) as info:
        reopened.read(4, 1 << 20)
    assert info.value.code == ErrorCode.KAFKA_STORAGE_ERROR
    assert _offsets(reopened.read(6, 1 << 20)) == [6, 7, 8, 9, 10, 11]
