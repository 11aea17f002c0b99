"""RecordBatch v2 (magic 2): a header view over a records blob.

The produce and fetch paths treat record batches as opaque byte ranges: they
read the fixed 61-byte header of each batch, check it, and patch at most the
base offset (and, for LogAppendTime topics, the max timestamp, the timestamp
type bit and the CRC) in place.  Nothing here copies a blob or visits a record
on those paths.

Record-level code exists only for the rare paths that need it -- an exact
offset-for-timestamp inside one batch, the key check of compacted topics, the
log cleaner (which also rebuilds batches from some of their records), and
tests -- and is the only place that decompresses or compresses.

Batch header, big-endian, 61 bytes::

    @0  base_offset int64            @23 last_offset_delta int32
    @8  batch_length int32           @27 base_timestamp int64
    @12 partition_leader_epoch int32 @35 max_timestamp int64
    @16 magic int8                   @43 producer_id int64
    @17 crc uint32 (CRC-32C of @21..) @51 producer_epoch int16
    @21 attributes int16             @53 base_sequence int32
                                     @57 records_count int32, records @61
"""

from __future__ import annotations

import enum
import gzip
import struct
from collections.abc import Iterator
from typing import NamedTuple

from kafkacompat.protocol import checksum

from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.primitives import encode_uvarint

BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")
BATCH_OVERHEAD = BATCH_HEADER.size  # 61
LOG_OVERHEAD = 12  # base_offset + batch_length: the part batch_length does not count
PARTITION_LEADER_EPOCH_OFFSET = 12
MAGIC_OFFSET = 16
CRC_OFFSET = 17
ATTRIBUTES_OFFSET = 21
MAX_TIMESTAMP_OFFSET = 35
CURRENT_MAGIC = 2

COMPRESSION_MASK = 0x07
TIMESTAMP_TYPE_BIT = 0x08
TRANSACTIONAL_BIT = 0x10
CONTROL_BIT = 0x20

NO_PRODUCER_ID = -1
NO_TIMESTAMP = -1
INT32_MAX = 2**31 - 1

_INT64 = struct.Struct(">q")
_INT16 = struct.Struct(">h")
_UINT32 = struct.Struct(">I")
_XERIAL_MAGIC = b"\x82SNAPPY\x00"
_XERIAL_HEADER = 16  # magic + int32 version + int32 minimum compatible version
_XERIAL_VERSIONS = struct.pack(">ii", 1, 1)
_XERIAL_BLOCK = 32 * 1024  # the Java client's block size
_INT32 = struct.Struct(">i")


class Compression(enum.IntEnum):
    NONE = 0
    GZIP = 1
    SNAPPY = 2
    LZ4 = 3
    ZSTD = 4


class BatchHeader(NamedTuple):
    """The parsed header of one batch, plus where the batch starts in its buffer."""

    position: int
    base_offset: int
    batch_length: int
    partition_leader_epoch: int
    magic: int
    crc: int
    attributes: int
    last_offset_delta: int
    base_timestamp: int
    max_timestamp: int
    producer_id: int
    producer_epoch: int
    base_sequence: int
    records_count: int

    @property
    def size(self) -> int:
        return self.batch_length + LOG_OVERHEAD

    @property
    def end(self) -> int:
        return self.position + self.batch_length + LOG_OVERHEAD

    @property
    def last_offset(self) -> int:
        return self.base_offset + self.last_offset_delta

    @property
    def compression(self) -> int:
        return self.attributes & COMPRESSION_MASK

    @property
    def is_log_append_time(self) -> bool:
        return bool(self.attributes & TIMESTAMP_TYPE_BIT)

    @property
    def is_transactional(self) -> bool:
        return bool(self.attributes & TRANSACTIONAL_BIT)

    @property
    def is_control(self) -> bool:
        return bool(self.attributes & CONTROL_BIT)

    @property
    def has_producer_id(self) -> bool:
        """Idempotent or transactional: subject to the producer sequence rules."""
        return self.producer_id > NO_PRODUCER_ID

    @property
    def last_sequence(self) -> int:
        """Sequence of the batch's last record; sequences wrap from INT32_MAX to 0."""
        if self.base_sequence < 0:
            return self.base_sequence
        return (self.base_sequence + self.last_offset_delta) % (INT32_MAX + 1)


def read_header(buf: bytes | bytearray | memoryview, position: int = 0) -> BatchHeader:
    """Unpack the 61-byte header at `position`; the caller guarantees the bytes exist."""
    return BatchHeader(position, *BATCH_HEADER.unpack_from(buf, position))


def parse_batches(records: bytes | bytearray | memoryview) -> list[BatchHeader]:
    """Check every batch of a client's records blob the way Kafka does on produce.

    Raises KafkaError: UNSUPPORTED_FOR_MESSAGE_FORMAT for magic 0/1 message
    sets, CORRUPT_MESSAGE for truncation, bad lengths, unknown magic, unknown
    codec or a CRC mismatch, INVALID_RECORD for an empty blob or a count that
    disagrees with the offset range.  Works on a memoryview: no copy.
    """
    view = memoryview(records)
    total = len(view)
    if total == 0:
        raise KafkaError(ErrorCode.INVALID_RECORD, "no record batch in the records")
    headers = []
    position = 0
    while position < total:
        header = _checked_header(view, position, total - position)
        if header.records_count <= 0:
            raise KafkaError(
                ErrorCode.INVALID_RECORD, f"invalid record count {header.records_count}"
            )
        if header.last_offset_delta + 1 != header.records_count:
            raise KafkaError(
                ErrorCode.INVALID_RECORD,
                f"last offset delta {header.last_offset_delta} disagrees with "
                f"record count {header.records_count}",
            )
        headers.append(header)
        position = header.end
    return headers


def scan_valid_batches(
    buf: bytes | bytearray | memoryview, position: int = 0
) -> Iterator[BatchHeader]:
    """Yield the well-formed batches from `position`, stopping silently at the first bad one.

    For recovering a log tail after an unclean stop: the caller truncates at
    the end of the last batch yielded.
    """
    view = memoryview(buf)
    total = len(view)
    while position < total:
        try:
            header = _checked_header(view, position, total - position)
        except KafkaError:
            return
        yield header
        position = header.end


def _checked_header(view: memoryview, position: int, remaining: int) -> BatchHeader:
    if remaining <= MAGIC_OFFSET:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "truncated record batch")
    magic = view[position + MAGIC_OFFSET]
    if magic in (0, 1):
        raise KafkaError(
            ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT,
            f"message format v{magic} is not supported; use record batches (magic 2)",
        )
    if magic != CURRENT_MAGIC:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"invalid magic {magic}")
    if remaining < BATCH_OVERHEAD:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "truncated record batch header")
    header = read_header(view, position)
    if header.batch_length < BATCH_OVERHEAD - LOG_OVERHEAD:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"batch length {header.batch_length} too small")
    if header.size > remaining:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record batch extends past the end of the records")
    if header.compression > Compression.ZSTD:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"unknown compression codec {header.compression}")
    if checksum.crc32c(view[position + ATTRIBUTES_OFFSET : header.end]) != header.crc:
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record batch CRC mismatch")
    return header


def set_base_offset(buf: bytearray | memoryview, position: int, base_offset: int) -> None:
    """Assign the batch's offsets. The CRC does not cover this field, so it stays valid."""
    _INT64.pack_into(buf, position, base_offset)


def set_partition_leader_epoch(buf: bytearray | memoryview, position: int, leader_epoch: int) -> None:
    """Stamp the leader epoch the batch was appended in; outside the CRC too."""
    _INT32.pack_into(buf, position + PARTITION_LEADER_EPOCH_OFFSET, leader_epoch)


def set_log_append_time(buf: bytearray | memoryview, header: BatchHeader, timestamp: int) -> BatchHeader:
    """Stamp a batch with the broker's time: max_timestamp, the timestamp-type bit, a new CRC.

    Consumers read every record's timestamp from max_timestamp when the bit is set,
    so the records themselves stay untouched.  Returns the updated header.
    """
    attributes = header.attributes | TIMESTAMP_TYPE_BIT
    _INT16.pack_into(buf, header.position + ATTRIBUTES_OFFSET, attributes)
    _INT64.pack_into(buf, header.position + MAX_TIMESTAMP_OFFSET, timestamp)
    return header._replace(attributes=attributes, max_timestamp=timestamp, crc=_reseal(buf, header))


def _reseal(buf: bytearray | memoryview, header: BatchHeader) -> int:
    """Write (and return) the CRC of the batch at `header.position` after its fields were patched."""
    crc = checksum.crc32c(memoryview(buf)[header.position + ATTRIBUTES_OFFSET : header.end])
    _UINT32.pack_into(buf, header.position + CRC_OFFSET, crc)
    return crc


def repair_max_timestamp(buf: bytearray | memoryview, header: BatchHeader) -> BatchHeader:
    """Give a CreateTime batch whose max_timestamp is below its base timestamp its records' maximum.

    Kafka recomputes every batch's max_timestamp from its records; Sarama 1.22
    leaves the field at -1, which would put the batch out of every time-index
    lookup and past any retention.ms. Only such impossible values are fixed
    (reading the records), so well-formed batches cost one comparison.
    """
    if header.is_log_append_time or header.max_timestamp >= header.base_timestamp:
        return header
    _, body = batch_body(memoryview(buf)[header.position : header.end])
    newest = max((raw.timestamp_delta for raw in iter_raw_records(header, body)), default=0) + header.base_timestamp
    _INT64.pack_into(buf, header.position + MAX_TIMESTAMP_OFFSET, newest)
    return header._replace(max_timestamp=newest, crc=_reseal(buf, header))


# ---------------------------------------------------------------------------
# Record level: rare paths only -- an exact offset-for-timestamp inside one
# batch, the record checks of Kafka's LogValidator, the log cleaner, and tests.


class Record(NamedTuple):
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]
    attributes: int


class RawRecord(NamedTuple):
    """One record as it sits in a decompressed batch body: its fields and its byte span.

    The span includes the length prefix, so a record can be copied into another
    batch with the same base offset and base timestamp unchanged (its offset and
    timestamp are deltas from those).
    """

    start: int
    end: int
    attributes: int
    timestamp_delta: int
    offset_delta: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def batch_body(batch: bytes | bytearray | memoryview) -> tuple[BatchHeader, bytes]:
    """The header and the decompressed records of the one whole batch at byte 0 of `batch`."""
    header = read_header(batch)
    return header, decompress(header.compression, bytes(memoryview(batch)[BATCH_OVERHEAD : header.end]))


def iter_raw_records(header: BatchHeader, body: bytes) -> Iterator[RawRecord]:
    """Parse the `header.records_count` records of a decompressed body; CORRUPT_MESSAGE if they do not fit."""
    position = 0
    for _ in range(header.records_count):
        start = position
        length, position = _read_varint(body, position)
        end = position + length
        if length < 0 or end > len(body):
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record extends past the end of its batch")
        attributes = body[position]
        timestamp_delta, position = _read_varint(body, position + 1)
        offset_delta, position = _read_varint(body, position)
        key, position = _read_nullable_bytes(body, position)
        value, position = _read_nullable_bytes(body, position)
        header_count, position = _read_varint(body, position)
        record_headers = []
        for _ in range(header_count):
            name, position = _read_nullable_bytes(body, position)
            header_value, position = _read_nullable_bytes(body, position)
            record_headers.append(((name or b"").decode("utf-8"), header_value))
        if position != end:
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record length disagrees with its fields")
        yield RawRecord(start, end, attributes, timestamp_delta, offset_delta, key, value, record_headers)


def decode_records(batch: bytes | bytearray | memoryview) -> list[Record]:
    """Decode every record of the one whole batch that starts at byte 0 of `batch`."""
    header, body = batch_body(batch)
    log_append_time = header.max_timestamp if header.is_log_append_time else None
    return [
        Record(
            header.base_offset + raw.offset_delta,
            log_append_time if log_append_time is not None else header.base_timestamp + raw.timestamp_delta,
            raw.key,
            raw.value,
            raw.headers,
            raw.attributes,
        )
        for raw in iter_raw_records(header, body)
    ]


def rebuild_batch(header: BatchHeader, records: bytes, records_count: int, max_timestamp: int) -> bytes:
    """A batch with `header`'s identity holding `records_count` of its raw records (concatenated spans).

    Base offset, last offset delta, base timestamp, producer id, epoch and base
    sequence stay as they were, so the kept records keep their offsets and the
    batch keeps its sequence range, as in Kafka's cleaner.  The records are
    compressed again with the batch's own codec.
    """
    return seal_batch(header._replace(max_timestamp=max_timestamp, records_count=records_count),
                 compress(header.compression, records))


def seal_batch(header: BatchHeader, body: bytes) -> bytes:
    """``header`` (its batch length and CRC recomputed) followed by the (compressed) ``body``."""
    batch = bytearray(BATCH_OVERHEAD + len(body))
    BATCH_HEADER.pack_into(
        batch,
        0,
        header.base_offset,
        BATCH_OVERHEAD - LOG_OVERHEAD + len(body),
        header.partition_leader_epoch,
        CURRENT_MAGIC,
        0,
        header.attributes,
        header.last_offset_delta,
        header.base_timestamp,
        header.max_timestamp,
        header.producer_id,
        header.producer_epoch,
        header.base_sequence,
        header.records_count,
    )
    batch[BATCH_OVERHEAD:] = body
    _UINT32.pack_into(batch, CRC_OFFSET, checksum.crc32c(memoryview(batch)[ATTRIBUTES_OFFSET:]))
    return bytes(batch)


def _varint(value: int) -> bytes:
    return encode_uvarint((value << 1) ^ (value >> 63))


def _nullable_bytes(data: bytes | None) -> bytes:
    return _varint(-1) if data is None else _varint(len(data)) + data


def encode_batch(
    records: list[tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]],
    timestamp: int,
    compression: int = Compression.NONE,
) -> bytes:
    """A client's batch of (key, value, headers) records, all stamped ``timestamp``, without a producer id.

    What a producer sends: base offset 0 (the broker assigns offsets),
    CreateTime, no idempotence, the body compressed with ``compression``.
    """
    encoded = []
    for delta, (key, value, headers) in enumerate(records):
        fields = b"".join((
            b"\x00\x00", _varint(delta), _nullable_bytes(key), _nullable_bytes(value), _varint(len(headers)),
            *(_nullable_bytes(name.encode()) + _nullable_bytes(data) for name, data in headers),
        ))
        encoded.append(_varint(len(fields)) + fields)
    header = BatchHeader(0, 0, 0, -1, CURRENT_MAGIC, 0, compression, len(records) - 1, timestamp, timestamp,
                         NO_PRODUCER_ID, -1, -1, len(records))
    return seal_batch(header, compress(compression, b"".join(encoded)))


def _cramjam():
    """snappy, lz4 and zstd need the optional `cramjam` package."""
    try:
        import cramjam
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise KafkaError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, "this codec needs the cramjam package") from exc
    return cramjam


def decompress(codec: int, data: bytes) -> bytes:
    """Inflate a batch body."""
    if codec == Compression.NONE:
        return data
    if codec == Compression.GZIP:
        return gzip.decompress(data)
    cramjam = _cramjam()
    if codec == Compression.SNAPPY:
        if data.startswith(_XERIAL_MAGIC):
            return _xerial_snappy_decompress(data, cramjam.snappy.decompress_raw)
        return bytes(cramjam.snappy.decompress_raw(data))
    if codec == Compression.LZ4:
        return bytes(cramjam.lz4.decompress(data))
    if codec == Compression.ZSTD:
        return bytes(cramjam.zstd.decompress(data))
    raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"unknown compression codec {codec}")


def compress(codec: int, data: bytes) -> bytes:
    """Deflate a batch body in the framing Kafka's Java client writes (xerial blocks for snappy, lz4 frames)."""
    if codec == Compression.NONE:
        return data
    if codec == Compression.GZIP:
        return gzip.compress(data, compresslevel=6)
    cramjam = _cramjam()
    if codec == Compression.SNAPPY:
        blocks = (
            bytes(cramjam.snappy.compress_raw(data[start : start + _XERIAL_BLOCK]))
            for start in range(0, len(data), _XERIAL_BLOCK)
        )
        framed = b"".join(_INT32.pack(len(block)) + block for block in blocks)
        return _XERIAL_MAGIC + _XERIAL_VERSIONS + framed
    if codec == Compression.LZ4:
        return bytes(cramjam.lz4.compress(data))
    if codec == Compression.ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise KafkaError(ErrorCode.CORRUPT_MESSAGE, f"unknown compression codec {codec}")


def _xerial_snappy_decompress(data: bytes, decompress_raw) -> bytes:
    """Java clients frame snappy as xerial blocks: a 16-byte header then [int32 length][raw block]..."""
    chunks = []
    position = _XERIAL_HEADER
    while position < len(data):
        (length,) = _INT32.unpack_from(data, position)
        position += 4
        if length < 0 or position + length > len(data):
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "truncated snappy block")
        chunks.append(bytes(decompress_raw(data[position : position + length])))
        position += length
    return b"".join(chunks)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    """Zigzag-encoded varint/varlong, as used inside records."""
    result = 0
    shift = 0
    while True:
        if position >= len(data):
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), position
        shift += 7
        if shift > 63:
            raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "varint too long")


def _read_nullable_bytes(data: bytes, position: int) -> tuple[bytes | None, int]:
    length, position = _read_varint(data, position)
    if length < 0:
        return None, position
    end = position + length
    if end > len(data):
        raise KafkaError(ErrorCode.CORRUPT_MESSAGE, "record field extends past the end of its batch")
    return data[position:end], end
