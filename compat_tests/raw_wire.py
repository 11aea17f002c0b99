"""Kafka requests and responses built and read by hand with `struct`.

Deliberately independent of `kafkacompat.protocol`: bytes sent from here are
evidence about the broker, not about our own encoder. Only the handful of
messages the compat tests need are spelled out.
"""

from __future__ import annotations

import socket
import struct

import crc32c

CLIENT_ID = "compat-raw"


# --- writing -----------------------------------------------------------------

def uvarint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def varint(value: int) -> bytes:
    """Zigzag varint, as used inside records."""
    return uvarint((value << 1) ^ (value >> 63))


def string(value: str) -> bytes:
    data = value.encode()
    return struct.pack(">h", len(data)) + data


def compact_string(value: str | None) -> bytes:
    if value is None:
        return uvarint(0)
    data = value.encode()
    return uvarint(len(data) + 1) + data


def compact_bytes(value: bytes | None) -> bytes:
    return uvarint(0) if value is None else uvarint(len(value) + 1) + value


EMPTY_TAGS = b"\x00"


def request_header(api_key: int, api_version: int, correlation_id: int, flexible: bool) -> bytes:
    """Request header v1, or v2 (v1 plus an empty tagged-field section) for flexible requests.
    The client id stays a classic int16-length string in both."""
    header = struct.pack(">hhi", api_key, api_version, correlation_id) + string(CLIENT_ID)
    return header + EMPTY_TAGS if flexible else header


def size_prefixed(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + payload


def record_batch(key_values: list[tuple[bytes | None, bytes]], base_timestamp_ms: int,
                 corrupt_crc: bool = False) -> bytes:
    """A magic-2 batch, uncompressed, no producer id; `corrupt_crc` flips bits of a correct CRC."""
    records = bytearray()
    for offset_delta, (key, value) in enumerate(key_values):
        key_field = varint(-1) if key is None else varint(len(key)) + key
        body = (b"\x00" + varint(offset_delta) + varint(offset_delta)
                + key_field + varint(len(value)) + value + varint(0))
        records += varint(len(body)) + body
    last_delta = len(key_values) - 1
    after_crc = struct.pack(">hiqqqhii", 0, last_delta, base_timestamp_ms, base_timestamp_ms + last_delta,
                            -1, -1, -1, len(key_values)) + bytes(records)
    crc = crc32c.crc32c(after_crc) ^ (0xDEADBEEF if corrupt_crc else 0)
    after_length = struct.pack(">ibI", -1, 2, crc) + after_crc
    return struct.pack(">qi", 0, len(after_length)) + after_length


def api_versions_body(version: int) -> bytes:
    if version < 3:
        return b""
    return compact_string(CLIENT_ID) + compact_string("1.0") + EMPTY_TAGS


def produce_v9_body(topic: str, partition: int, batch: bytes) -> bytes:
    """acks=-1, 10 s timeout, one topic with one partition, no transactional id."""
    partition_data = struct.pack(">i", partition) + compact_bytes(batch) + EMPTY_TAGS
    topic_data = compact_string(topic) + uvarint(2) + partition_data + EMPTY_TAGS
    return compact_string(None) + struct.pack(">hi", -1, 10_000) + uvarint(2) + topic_data + EMPTY_TAGS


def metadata_v4_body(topics: list[str] | None, allow_auto_topic_creation: bool) -> bytes:
    if topics is None:
        listed = struct.pack(">i", -1)
    else:
        listed = struct.pack(">i", len(topics)) + b"".join(string(t) for t in topics)
    return listed + struct.pack(">?", allow_auto_topic_creation)


# --- reading -----------------------------------------------------------------

class Reader:
    """Sequential big-endian reader over one response body; `done()` checks nothing is left over."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise AssertionError(f"response too short: need {size} bytes at {self.pos} of {len(self.data)}")
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return value

    def int8(self) -> int:
        return self._unpack(">b")

    def int16(self) -> int:
        return self._unpack(">h")

    def int32(self) -> int:
        return self._unpack(">i")

    def int64(self) -> int:
        return self._unpack(">q")

    def boolean(self) -> bool:
        return self._unpack(">?")

    def uvarint(self) -> int:
        value = shift = 0
        while True:
            byte = self._unpack(">B")
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def raw(self, length: int) -> bytes:
        if self.pos + length > len(self.data):
            raise AssertionError(f"response too short: need {length} bytes at {self.pos} of {len(self.data)}")
        self.pos += length
        return self.data[self.pos - length:self.pos]

    def string(self) -> str | None:
        length = self.int16()
        return None if length < 0 else self.raw(length).decode()

    def compact_string(self) -> str | None:
        length = self.uvarint() - 1
        return None if length < 0 else self.raw(length).decode()

    def array(self, read_item) -> list | None:
        count = self.int32()
        return None if count < 0 else [read_item() for _ in range(count)]

    def compact_array(self, read_item) -> list | None:
        count = self.uvarint() - 1
        return None if count < 0 else [read_item() for _ in range(count)]

    def skip_tags(self) -> None:
        for _ in range(self.uvarint()):
            self.uvarint()
            self.raw(self.uvarint())

    def done(self) -> None:
        assert self.pos == len(self.data), f"{len(self.data) - self.pos} unexpected trailing bytes"


def read_api_versions_v0(body: Reader) -> tuple[int, dict[int, tuple[int, int]]]:
    """(error_code, {api_key: (min_version, max_version)})."""
    error_code = body.int16()
    ranges = body.array(lambda: (body.int16(), body.int16(), body.int16()))
    body.done()
    return error_code, {key: (low, high) for key, low, high in ranges}


def read_api_versions_v3(body: Reader) -> tuple[int, dict[int, tuple[int, int]]]:
    error_code = body.int16()

    def api_range():
        entry = (body.int16(), body.int16(), body.int16())
        body.skip_tags()
        return entry

    ranges = body.compact_array(api_range)
    body.int32()  # throttle_time_ms
    body.skip_tags()
    body.done()
    return error_code, {key: (low, high) for key, low, high in ranges}


def read_produce_v9(body: Reader, details: dict | None = None) -> dict[tuple[str, int], tuple[int, int]]:
    """{(topic, partition): (error_code, base_offset)}; `details` gets {(topic, partition): (record_errors,
    error_message)}, record_errors being [(batch_index, message)]."""
    results = {}

    def partition_response(topic):
        index, error_code, base_offset = body.int32(), body.int16(), body.int64()
        body.int64()  # log_append_time_ms
        body.int64()  # log_start_offset

        def record_error():
            entry = body.int32(), body.compact_string()
            body.skip_tags()
            return entry

        record_errors = body.compact_array(record_error)
        error_message = body.compact_string()
        body.skip_tags()
        results[(topic, index)] = (error_code, base_offset)
        if details is not None:
            details[(topic, index)] = (record_errors, error_message)

    def topic_response():
        topic = body.compact_string()
        body.compact_array(lambda: partition_response(topic))
        body.skip_tags()

    body.compact_array(topic_response)
    body.int32()  # throttle_time_ms
    body.skip_tags()
    body.done()
    return results


def read_metadata_v4(body: Reader) -> dict[str, tuple[int, dict[int, int]]]:
    """{topic: (error_code, {partition: partition_error_code})}."""
    body.int32()  # throttle_time_ms
    body.array(lambda: (body.int32(), body.string(), body.int32(), body.string()))  # brokers
    body.string()  # cluster_id
    body.int32()  # controller_id

    def partition():
        error_code, index = body.int16(), body.int32()
        body.int32()  # leader
        body.array(body.int32)  # replicas
        body.array(body.int32)  # isr
        return index, error_code

    def topic():
        error_code, name = body.int16(), body.string()
        body.boolean()  # is_internal
        return name, (error_code, dict(body.array(partition)))

    topics = dict(body.array(topic))
    body.done()
    return topics


def metadata_flexible_body(version: int, topics: list[tuple[bytes, str | None]]) -> bytes:
    """Metadata v10-12: (16-byte topic id, name or None) per topic; no auto-creation, no authorized operations."""
    listed = b"".join(topic_id + compact_string(name) + EMPTY_TAGS for topic_id, name in topics)
    flags = b"\x00" * (3 if version == 10 else 2)  # v10 still has include_cluster_authorized_operations
    return uvarint(len(topics) + 1) + listed + flags + EMPTY_TAGS


def read_metadata_flexible(body: Reader, version: int) -> list[tuple[int, str | None, bytes, list[int]]]:
    """Metadata v10-12: [(error_code, name, topic id, partition indexes)] in answer order."""
    body.int32()  # throttle_time_ms

    def broker():
        body.int32(), body.compact_string(), body.int32(), body.compact_string()
        body.skip_tags()

    body.compact_array(broker)
    body.compact_string()  # cluster_id
    body.int32()  # controller_id

    def partition():
        body.int16()
        index = body.int32()
        body.int32(), body.int32()  # leader id and epoch
        for _ in range(3):  # replicas, isr, offline replicas
            body.compact_array(body.int32)
        body.skip_tags()
        return index

    def topic():
        error_code, name, topic_id = body.int16(), body.compact_string(), body.raw(16)
        body.boolean()
        partitions = body.compact_array(partition)
        body.int32()  # topic_authorized_operations
        body.skip_tags()
        return error_code, name, topic_id, partitions

    topics = body.compact_array(topic)
    if version <= 10:
        body.int32()  # cluster_authorized_operations
    body.skip_tags()
    body.done()
    return topics


# --- the connection ----------------------------------------------------------

class RawConnection:
    """One plain TCP connection to the broker; the test decides every byte sent."""

    def __init__(self, port: int, timeout_s: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout_s)
        self.next_correlation_id = 1

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc_info) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _recv_exact(self, length: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < length:
            chunk = self.sock.recv(length - len(chunks))
            if not chunk:
                raise AssertionError(f"broker closed the connection after {len(chunks)} of {length} bytes")
            chunks += chunk
        return bytes(chunks)

    def read_frame(self) -> bytes:
        (size,) = struct.unpack(">i", self._recv_exact(4))
        return self._recv_exact(size)

    def request(self, api_key: int, api_version: int, body: bytes, flexible: bool,
                response_header_flexible: bool | None = None) -> Reader:
        """Send one request and return a Reader over the response body.

        The response header is checked here: the correlation id must echo ours,
        followed by an empty tagged-field section when the response header is
        v1 (flexible requests other than ApiVersions)."""
        correlation_id = self.next_correlation_id
        self.next_correlation_id += 1
        self.send(size_prefixed(request_header(api_key, api_version, correlation_id, flexible) + body))
        response = Reader(self.read_frame())
        assert response.int32() == correlation_id, "response carries the wrong correlation id"
        if flexible if response_header_flexible is None else response_header_flexible:
            assert response.uvarint() == 0, "response header has unexpected tagged fields"
        return response

    def assert_closed_by_broker(self, timeout_s: float = 10.0) -> None:
        """The broker must drop the connection without answering."""
        self.sock.settimeout(timeout_s)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return
        except TimeoutError:
            raise AssertionError(f"broker kept the connection open for {timeout_s}s") from None
        assert data == b"", f"broker answered instead of closing: {data[:64]!r}"
