"""Test-only encoder for v2 record batches, written independently of kafkacompat.protocol.records.

Other suites import it (`from tests.log.batch_builder import build_batch, RecordSpec`)
to produce realistic client bytes: records with keys, values, headers and
timestamps, optionally compressed the way clients compress them.
"""

from __future__ import annotations

import gzip
import struct
from collections.abc import Sequence
from dataclasses import dataclass

import crc32c

NONE, GZIP, SNAPPY, LZ4, ZSTD = range(5)
XERIAL_HEADER = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
DEFAULT_TIMESTAMP = 1_700_000_000_000


@dataclass(frozen=True)
class RecordSpec:
    value: bytes | None
    key: bytes | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp: int | None = None  # None: the batch's base timestamp


def varint(value: int) -> bytes:
    """Zigzag varint, as records use for every length and delta."""
    zigzag = (value << 1) ^ (value >> 63)
    out = bytearray()
    while True:
        byte = zigzag & 0x7F
        zigzag >>= 7
        if zigzag:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _nullable(data: bytes | None) -> bytes:
    return varint(-1) if data is None else varint(len(data)) + data


def encode_record(spec: RecordSpec, offset_delta: int, base_timestamp: int) -> bytes:
    timestamp = base_timestamp if spec.timestamp is None else spec.timestamp
    body = (
        b"\x00"
        + varint(timestamp - base_timestamp)
        + varint(offset_delta)
        + _nullable(spec.key)
        + _nullable(spec.value)
        + varint(len(spec.headers))
        + b"".join(_nullable(name.encode()) + _nullable(value) for name, value in spec.headers)
    )
    return varint(len(body)) + body


def compress(codec: int, data: bytes, *, xerial: bool = True) -> bytes:
    if codec == NONE:
        return data
    if codec == GZIP:
        return gzip.compress(data)
    import cramjam

    if codec == SNAPPY:
        if not xerial:
            return bytes(cramjam.snappy.compress_raw(data))
        # Two blocks, to exercise the block loop.
        half = len(data) // 2
        blocks = [bytes(cramjam.snappy.compress_raw(part)) for part in (data[:half], data[half:])]
        return XERIAL_HEADER + b"".join(struct.pack(">i", len(block)) + block for block in blocks)
    if codec == LZ4:
        return bytes(cramjam.lz4.compress(data))
    if codec == ZSTD:
        return bytes(cramjam.zstd.compress(data))
    raise ValueError(codec)


def build_batch(
    records: Sequence[RecordSpec | bytes],
    *,
    base_offset: int = 0,
    base_timestamp: int = DEFAULT_TIMESTAMP,
    compression: int = NONE,
    xerial: bool = True,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    partition_leader_epoch: int = -1,
    transactional: bool = False,
    control: bool = False,
    log_append_time: bool = False,
    max_timestamp: int | None = None,
) -> bytes:
    """One complete batch with a valid CRC, as a client would send it.

    ``max_timestamp`` overrides the field (Sarama 1.22 sends -1), else it is the records' maximum.
    """
    specs = [spec if isinstance(spec, RecordSpec) else RecordSpec(spec) for spec in records]
    timestamps = [base_timestamp if spec.timestamp is None else spec.timestamp for spec in specs]
    body = compress(
        compression,
        b"".join(encode_record(spec, delta, base_timestamp) for delta, spec in enumerate(specs)),
        xerial=xerial,
    )
    attributes = compression | (0x08 if log_append_time else 0) | (0x10 if transactional else 0)
    attributes |= 0x20 if control else 0
    after_crc = struct.pack(
        ">hiqqqhii",
        attributes,
        len(specs) - 1,
        base_timestamp,
        max(timestamps, default=base_timestamp) if max_timestamp is None else max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        len(specs),
    ) + body
    crc = crc32c.crc32c(after_crc)
    batch_length = 4 + 1 + 4 + len(after_crc)  # leader epoch, magic, crc, rest
    return struct.pack(">qiibI", base_offset, batch_length, partition_leader_epoch, 2, crc) + after_crc


def values(count: int, size: int = 10, prefix: bytes = b"v") -> list[bytes]:
    """`count` distinct values of `size` bytes each."""
    return [(prefix + b"%d-" % index).ljust(size, b".")[:size] for index in range(count)]


STORED_LEADER_EPOCH = 0  # the broker stamps every appended batch with its leader epoch


def stored_batch(records: list[RecordSpec | bytes], *, base_offset: int, **options) -> bytes:
    """A batch as the log stores it: offsets assigned and stamped with the leader epoch."""
    return build_batch(records, base_offset=base_offset, partition_leader_epoch=STORED_LEADER_EPOCH, **options)
