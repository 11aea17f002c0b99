"""RecordBatch v2 header view: validation, in-place patching, record decoding."""

from __future__ import annotations

import struct

import crc32c
import pytest
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.records import (
    BATCH_OVERHEAD,
    INT32_MAX,
    Compression,
    batch_body,
    compress,
    decode_records,
    decompress,
    encode_batch,
    has_keyless_record,
    iter_raw_records,
    parse_batches,
    read_header,
    rebuild_batch,
    repair_max_timestamp,
    scan_valid_batches,
    set_base_offset,
    set_log_append_time,
)
from tests.log.batch_builder import GZIP, LZ4, NONE, SNAPPY, ZSTD, RecordSpec, build_batch

T0 = 1_700_000_000_000


def _recrc(batch: bytearray) -> bytearray:
    struct.pack_into(">I", batch, 17, crc32c.crc32c(bytes(batch[21:])))
    return batch


def _raises(code: ErrorCode, records) -> KafkaError:
    with pytest.raises(KafkaError) as info:
        parse_batches(records)
    assert info.value.code == code
    return info.value


def test_header_fields_of_an_idempotent_batch():
    batch = build_batch(
        [b"a", b"b", RecordSpec(b"c", timestamp=T0 + 7)],
        base_timestamp=T0,
        producer_id=42,
        producer_epoch=3,
        base_sequence=10,
        partition_leader_epoch=5,
        transactional=True,
    )
    [header] = parse_batches(batch)
    assert header.position == 0
    assert header.size == len(batch)
    assert header.end == len(batch)
    assert header.magic == 2
    assert header.partition_leader_epoch == 5
    assert header.records_count == 3
    assert header.last_offset_delta == 2
    assert header.base_timestamp == T0
    assert header.max_timestamp == T0 + 7
    assert (header.producer_id, header.producer_epoch, header.base_sequence) == (42, 3, 10)
    assert header.last_sequence == 12
    assert header.is_transactional and not header.is_control and not header.is_log_append_time
    assert header.compression == Compression.NONE


def test_several_batches_are_walked_in_order():
    blob = build_batch([b"x"] * 2) + build_batch([b"y"] * 5) + build_batch([b"z"])
    headers = parse_batches(blob)
    assert [h.records_count for h in headers] == [2, 5, 1]
    assert headers[1].position == headers[0].end
    assert headers[2].end == len(blob)


def test_parse_accepts_memoryview_and_bytearray():
    blob = build_batch([b"x"]) + build_batch([b"y"])
    assert parse_batches(memoryview(blob)) == parse_batches(bytearray(blob)) == parse_batches(blob)


def test_sequence_wraps_after_int32_max():
    [header] = parse_batches(build_batch([b"a", b"b", b"c"], producer_id=1, producer_epoch=0, base_sequence=INT32_MAX - 1))
    assert header.last_sequence == 0  # INT32_MAX - 1, INT32_MAX, 0


def test_crc_mismatch_is_corrupt_message():
    batch = bytearray(build_batch([b"hello"]))
    batch[-1] ^= 0xFF
    _raises(ErrorCode.CORRUPT_MESSAGE, batch)


def test_crc_of_a_later_batch_is_checked_too():
    second = bytearray(build_batch([b"b"]))
    second[BATCH_OVERHEAD] ^= 1
    _raises(ErrorCode.CORRUPT_MESSAGE, build_batch([b"a"]) + bytes(second))


@pytest.mark.parametrize("cut", [1, 20, BATCH_OVERHEAD - 1, BATCH_OVERHEAD + 1])
def test_truncated_records_are_corrupt(cut):
    batch = build_batch([b"hello", b"world"])
    _raises(ErrorCode.CORRUPT_MESSAGE, batch + batch[:cut])


def test_batch_length_smaller_than_header_is_corrupt():
    batch = bytearray(build_batch([b"x"]))
    struct.pack_into(">i", batch, 8, 10)
    _raises(ErrorCode.CORRUPT_MESSAGE, batch)


@pytest.mark.parametrize("magic", [0, 1])
def test_old_message_formats_are_unsupported(magic):
    batch = bytearray(build_batch([b"x"]))
    batch[16] = magic
    _raises(ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, batch)


def test_unknown_magic_is_corrupt():
    batch = bytearray(build_batch([b"x"]))
    batch[16] = 3
    _raises(ErrorCode.CORRUPT_MESSAGE, batch)


def test_unknown_codec_is_corrupt():
    batch = bytearray(build_batch([b"x"]))
    struct.pack_into(">h", batch, 21, 6)
    _raises(ErrorCode.CORRUPT_MESSAGE, _recrc(batch))


def test_count_disagreeing_with_offset_delta_is_invalid_record():
    batch = bytearray(build_batch([b"x", b"y"]))
    struct.pack_into(">i", batch, 57, 3)
    _raises(ErrorCode.INVALID_RECORD, _recrc(batch))


def test_zero_count_is_invalid_record():
    batch = bytearray(build_batch([b"x"]))
    struct.pack_into(">i", batch, 23, -1)
    struct.pack_into(">i", batch, 57, 0)
    _raises(ErrorCode.INVALID_RECORD, _recrc(batch))


def test_empty_records_are_invalid():
    _raises(ErrorCode.INVALID_RECORD, b"")


def test_set_base_offset_keeps_the_crc_valid():
    batch = bytearray(build_batch([b"a", b"b"]))
    set_base_offset(batch, 0, 1234)
    [header] = parse_batches(batch)
    assert header.base_offset == 1234
    assert header.last_offset == 1235
    assert [r.offset for r in decode_records(batch)] == [1234, 1235]


def test_set_base_offset_inside_a_memoryview_patches_the_owner():
    blob = bytearray(build_batch([b"a"]) + build_batch([b"b"]))
    headers = parse_batches(memoryview(blob))
    set_base_offset(memoryview(blob), headers[1].position, 99)
    assert read_header(blob, headers[1].position).base_offset == 99


def test_log_append_time_rewrites_max_timestamp_attributes_and_crc():
    batch = bytearray(build_batch([RecordSpec(b"a", timestamp=T0), RecordSpec(b"b", timestamp=T0 + 5)], base_timestamp=T0))
    before = bytes(batch)
    [header] = parse_batches(batch)
    updated = set_log_append_time(batch, header, T0 + 1000)
    [reparsed] = parse_batches(batch)  # CRC valid again
    assert reparsed == updated
    assert reparsed.is_log_append_time and reparsed.max_timestamp == T0 + 1000
    assert reparsed.crc != header.crc
    assert batch[BATCH_OVERHEAD:] == before[BATCH_OVERHEAD:]  # records untouched
    assert [r.timestamp for r in decode_records(batch)] == [T0 + 1000, T0 + 1000]


@pytest.mark.parametrize("codec", [NONE, GZIP])
def test_a_max_timestamp_below_the_base_is_recomputed_from_the_records(codec):
    specs = [RecordSpec(b"a", timestamp=T0), RecordSpec(b"b", timestamp=T0 + 7), RecordSpec(b"c", timestamp=T0 + 3)]
    batch = bytearray(build_batch(specs, base_timestamp=T0, compression=codec, max_timestamp=-1))
    [header] = parse_batches(batch)
    repaired = repair_max_timestamp(batch, header)
    [reparsed] = parse_batches(batch)  # CRC valid again
    assert reparsed == repaired and reparsed.max_timestamp == T0 + 7
    assert [r.timestamp for r in decode_records(batch)] == [T0, T0 + 7, T0 + 3]


def test_a_plausible_max_timestamp_is_left_as_sent():
    batch = bytearray(build_batch([RecordSpec(b"a", timestamp=T0 + 9)], base_timestamp=T0, max_timestamp=T0 + 4))
    before = bytes(batch)
    [header] = parse_batches(batch)
    assert repair_max_timestamp(batch, header) == header and bytes(batch) == before


def test_decode_records_returns_keys_values_headers_timestamps():
    specs = [
        RecordSpec(b"v1", key=b"k1", headers=(("h", b"x"), ("empty", None)), timestamp=T0 + 3),
        RecordSpec(None, key=None, timestamp=T0 - 2),
        RecordSpec(b"", key=b""),
    ]
    batch = bytearray(build_batch(specs, base_timestamp=T0))
    set_base_offset(batch, 0, 50)
    records = decode_records(batch)
    assert [(r.offset, r.timestamp, r.key, r.value) for r in records] == [
        (50, T0 + 3, b"k1", b"v1"),
        (51, T0 - 2, None, None),
        (52, T0, b"", b""),
    ]
    assert records[0].headers == [("h", b"x"), ("empty", None)]
    assert records[1].headers == []


@pytest.mark.parametrize(
    "codec, xerial",
    [(GZIP, True), (SNAPPY, True), (SNAPPY, False), (LZ4, True), (ZSTD, True)],
    ids=["gzip", "snappy-xerial", "snappy-raw", "lz4", "zstd"],
)
def test_compressed_batches_decode(codec, xerial):
    specs = [RecordSpec(b"value-%d" % i * 20, key=b"key-%d" % i, timestamp=T0 + i) for i in range(50)]
    batch = build_batch(specs, base_timestamp=T0, compression=codec, xerial=xerial)
    [header] = parse_batches(batch)
    assert header.compression == codec
    records = decode_records(batch)
    assert [(r.key, r.value, r.timestamp) for r in records] == [(s.key, s.value, s.timestamp) for s in specs]


def test_batches_encoded_by_kafka_python_parse_and_decode():
    builder = DefaultRecordBatchBuilder(
        magic=2, compression_type=DefaultRecordBatch.CODEC_GZIP, is_transactional=False,
        producer_id=7, producer_epoch=1, base_sequence=0, batch_size=1 << 20,
    )
    for i in range(5):
        builder.append(i, timestamp=T0 + i, key=b"k%d" % i, value=b"v%d" % i, headers=[("n", b"%d" % i)])
    blob = bytes(builder.build())
    [header] = parse_batches(blob)
    assert (header.records_count, header.producer_id, header.last_sequence) == (5, 7, 4)
    records = decode_records(blob)
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in records] == [
        (i, T0 + i, b"k%d" % i, b"v%d" % i, [("n", b"%d" % i)]) for i in range(5)
    ]


def test_kafka_python_reads_our_patched_batches():
    batch = bytearray(build_batch([RecordSpec(b"v", key=b"k", headers=(("a", b"1"),))], base_timestamp=T0))
    set_base_offset(batch, 0, 77)
    [header] = parse_batches(batch)
    set_log_append_time(batch, header, T0 + 9)
    theirs = DefaultRecordBatch(bytes(batch))
    assert theirs.validate_crc()
    assert theirs.base_offset == 77
    assert theirs.timestamp_type == 1
    [record] = list(theirs)
    assert (record.offset, record.timestamp, record.key, record.value) == (77, T0 + 9, b"k", b"v")


def test_scan_valid_batches_stops_at_a_torn_tail():
    good = build_batch([b"a"]) + build_batch([b"b", b"c"])
    torn = build_batch([b"d"] * 3)[:-4]
    assert [h.records_count for h in scan_valid_batches(good + torn)] == [1, 2]
    corrupted = bytearray(build_batch([b"e"]))
    corrupted[-1] ^= 1
    assert [h.records_count for h in scan_valid_batches(good + bytes(corrupted) + build_batch([b"f"]))] == [1, 2]
    assert list(scan_valid_batches(good, len(good))) == []


def test_records_of_a_none_batch_use_offset_deltas():
    batch = build_batch([b"a", b"b", b"c"], base_offset=10, compression=NONE)
    assert [r.offset for r in decode_records(batch)] == [10, 11, 12]


# -- record level: the key check of compacted topics and the cleaner's rebuilds ------------------


@pytest.mark.parametrize("codec", [NONE, GZIP, SNAPPY, LZ4, ZSTD], ids=["none", "gzip", "snappy", "lz4", "zstd"])
def test_compress_round_trips_every_codec(codec):
    data = b"".join(b"record %d " % n for n in range(20_000))  # several xerial blocks
    assert decompress(codec, compress(codec, data)) == data


def test_snappy_is_framed_in_xerial_blocks_like_the_java_client():
    data = bytes(range(256)) * 300
    framed = compress(Compression.SNAPPY, data)
    assert framed[:16] == b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    (first_block,) = struct.unpack_from(">i", framed, 16)
    assert 0 < first_block < len(framed) - 20  # 76800 bytes need three 32 KiB blocks


def test_raw_records_span_their_bytes_and_fields():
    batch = build_batch([RecordSpec(b"v0", key=b"k0", headers=(("h", b"x"),)), RecordSpec(None, key=b"k1"),
                         RecordSpec(b"v2", timestamp=T0 + 9)], base_timestamp=T0, compression=GZIP)
    header, body = batch_body(batch)
    raws = list(iter_raw_records(header, body))
    assert [(r.offset_delta, r.timestamp_delta, r.key, r.value, r.headers) for r in raws] == [
        (0, 0, b"k0", b"v0", [("h", b"x")]), (1, 0, b"k1", None, []), (2, 9, None, b"v2", [])]
    assert raws[0].start == 0 and raws[0].end == raws[1].start and raws[-1].end == len(body)
    assert has_keyless_record(batch)
    assert not has_keyless_record(build_batch([RecordSpec(b"v", key=b"k")], compression=ZSTD))


@pytest.mark.parametrize("codec", [NONE, GZIP, SNAPPY, LZ4, ZSTD], ids=["none", "gzip", "snappy", "lz4", "zstd"])
def test_rebuild_keeps_the_batch_identity_around_a_subset_of_its_records(codec):
    specs = [RecordSpec(b"v%d" % n, key=b"k%d" % n, timestamp=T0 + n) for n in range(4)]
    original = build_batch(specs, base_offset=100, base_timestamp=T0, compression=codec,
                           producer_id=5, producer_epoch=1, base_sequence=40, partition_leader_epoch=3)
    header, body = batch_body(original)
    kept = [raw for raw in iter_raw_records(header, body) if raw.offset_delta in (1, 2)]
    rebuilt = rebuild_batch(header, b"".join(body[r.start : r.end] for r in kept), 2, T0 + 2)
    [new] = list(scan_valid_batches(rebuilt))  # the CRC holds
    assert new.size == len(rebuilt)
    for field in ("base_offset", "last_offset_delta", "producer_id", "producer_epoch", "base_sequence",
                  "partition_leader_epoch", "attributes", "base_timestamp"):
        assert getattr(new, field) == getattr(header, field), field
    assert (new.records_count, new.max_timestamp) == (2, T0 + 2)
    assert [(r.offset, r.key, r.timestamp) for r in decode_records(rebuilt)] == [
        (101, b"k1", T0 + 1), (102, b"k2", T0 + 2)]
    if codec in (NONE, GZIP):  # the codecs kafka-python can read here
        independent = DefaultRecordBatch(rebuilt)
        assert independent.validate_crc()
        assert [(r.offset, r.key, r.value) for r in independent] == [(101, b"k1", b"v1"), (102, b"k2", b"v2")]


# --- encode_batch: what the CLI producer sends

PRODUCED = [(b"k1", b"v1", [("h", b"1"), ("empty", None)]), (None, b"v2", []), (b"k3", None, [])]


def test_encode_batch_matches_the_independent_test_encoder_byte_for_byte():
    expected = build_batch([RecordSpec(v, k, tuple(h)) for k, v, h in PRODUCED], base_timestamp=1_700_000_000_123)
    assert encode_batch(PRODUCED, 1_700_000_000_123) == expected


@pytest.mark.parametrize("codec", list(Compression))
def test_encode_batch_round_trips_through_every_codec_and_kafka_python(codec):
    batch = encode_batch(PRODUCED, 1_700_000_000_000, codec)
    header = read_header(batch)
    assert (header.compression, header.records_count, header.last_offset_delta) == (codec, 3, 2)
    assert (header.producer_id, header.base_sequence) == (-1, -1)
    assert crc32c.crc32c(batch[21:]) == header.crc
    decoded = [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in decode_records(batch)]
    assert decoded == [(i, 1_700_000_000_000, k, v, h) for i, (k, v, h) in enumerate(PRODUCED)]
    theirs = DefaultRecordBatch(batch)
    assert theirs.validate_crc()
    assert [(r.key, r.value, list(r.headers)) for r in theirs] == [(k, v, h) for k, v, h in PRODUCED]
