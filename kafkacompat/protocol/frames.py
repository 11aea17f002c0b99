"""Request and response headers, and the 4-byte size prefix around them.

Header versions follow from the API's flexible versions: request header v2
(v1 plus a tagged-field section) and response header v1 (correlation id plus a
tagged-field section) in flexible versions, v1 / v0 otherwise. Two exceptions
are fixed by Kafka: ControlledShutdown v0 uses request header v0 (no client
id), and ApiVersions responses always use header v0, because a client that
does not yet know our versions must be able to read them. The client id stays
a classic int16-length string even in header v2 for the same reason.

Parsing works on a memoryview of the frame, so a Produce request's records are
not copied before the body decoder sees them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from kafkacompat.protocol.primitives import IN_MEMORY, Part, part_size
from kafkacompat.protocol.schema import DecodeError
from kafkacompat.protocol.specs import api_spec

API_VERSIONS_KEY = 18
CONTROLLED_SHUTDOWN_KEY = 7

_FIXED_HEADER = struct.Struct(">hhi")  # api_key, api_version, correlation_id
_INT16 = struct.Struct(">h")
_INT32 = struct.Struct(">i")
_NO_TAGGED_FIELDS = b"\x00"
_RESPONSE_HEAD = struct.Struct(">ii")  # size, correlation_id
_FLEXIBLE_RESPONSE_HEAD = struct.Struct(">iib")  # size, correlation_id, no tagged fields
# A first body part smaller than this is merged into the header rather than sent on its own.
_COALESCE_MAX = 64 * 1024


@dataclass(frozen=True)
class RequestHeader:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None


def _is_flexible(api_key: int, api_version: int) -> bool:
    """Unknown keys count as not flexible; versions past our newest keep the API's flexibility."""
    spec = api_spec(api_key)
    return spec is not None and spec.is_flexible(api_version)


def request_header_version(api_key: int, api_version: int) -> int:
    if api_key == CONTROLLED_SHUTDOWN_KEY and api_version == 0:
        return 0
    return 2 if _is_flexible(api_key, api_version) else 1


def response_header_version(api_key: int, api_version: int) -> int:
    if api_key == API_VERSIONS_KEY:
        return 0
    return 1 if _is_flexible(api_key, api_version) else 0


def _uvarint_at(buf: memoryview, pos: int) -> tuple[int, int]:
    """Read an unsigned varint (at most 5 bytes) at ``pos``; return it and the next position."""
    result = 0
    for shift in range(0, 35, 7):
        if pos >= len(buf):
            raise DecodeError("truncated varint in header")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
    raise DecodeError("varint longer than 5 bytes in header")


def _skip_tagged_fields(buf: memoryview, pos: int) -> int:
    count, pos = _uvarint_at(buf, pos)
    for _ in range(count):
        _, pos = _uvarint_at(buf, pos)
        size, pos = _uvarint_at(buf, pos)
        pos += size
        if pos > len(buf):
            raise DecodeError("tagged field overruns the header")
    return pos


def parse_request(frame: bytes | bytearray | memoryview) -> tuple[RequestHeader, memoryview]:
    """Split a request frame (the bytes after the size prefix) into header and body view.

    Works for API keys and versions we have no schema for, so the caller can
    always answer (for instance with UNSUPPORTED_VERSION).
    """
    buf = memoryview(frame).cast("B")
    if len(buf) < _FIXED_HEADER.size:
        raise DecodeError(f"request header needs {_FIXED_HEADER.size} bytes, frame has {len(buf)}")
    api_key, api_version, correlation_id = _FIXED_HEADER.unpack_from(buf)
    pos = _FIXED_HEADER.size
    client_id = None
    header_version = request_header_version(api_key, api_version)
    if header_version >= 1:
        if len(buf) < pos + 2:
            raise DecodeError("truncated client id length")
        (size,) = _INT16.unpack_from(buf, pos)
        pos += 2
        if size >= 0:
            if len(buf) < pos + size:
                raise DecodeError("truncated client id")
            try:
                client_id = str(buf[pos : pos + size], "utf-8")
            except UnicodeDecodeError as exc:
                raise DecodeError(f"client id is not UTF-8: {exc}") from exc
            pos += size
        elif size != -1:
            raise DecodeError(f"invalid client id length {size}")
    if header_version >= 2:
        pos = _skip_tagged_fields(buf, pos)
    return RequestHeader(api_key, api_version, correlation_id, client_id), buf[pos:]


Buffer = bytes | bytearray | memoryview


def _with_size_prefix(*parts: Buffer) -> bytes:
    size = sum(memoryview(part).nbytes for part in parts)
    return b"".join((_INT32.pack(size), *parts))


def response_frame_parts(header: RequestHeader, body_parts: list[Part]) -> list[Part]:
    """The response frame as parts to send in order: size prefix and header first, then the body's parts.

    The body's parts (see :func:`~.schema.encode_response_parts`) are not
    copied, so the records of a large Fetch go from the log to the socket as
    they were read, or straight from the file when they are out of band.
    """
    size = sum(map(part_size, body_parts))
    flexible_header = response_header_version(header.api_key, header.api_version) >= 1
    if flexible_header:
        head = _FLEXIBLE_RESPONSE_HEAD.pack(size + 5, header.correlation_id, 0)
    else:
        head = _RESPONSE_HEAD.pack(size + 4, header.correlation_id)
    if body_parts and isinstance(body_parts[0], IN_MEMORY) and part_size(body_parts[0]) < _COALESCE_MAX:
        return [head + body_parts[0], *body_parts[1:]]
    return [head, *body_parts]


def encode_response_frame(header: RequestHeader, body: Buffer) -> bytes:
    """Size prefix, the response header of the right version for ``header``'s API, and ``body``."""
    return b"".join(response_frame_parts(header, [body]))


def encode_request_frame(
    api_key: int, api_version: int, correlation_id: int, client_id: str | None, body: bytes | bytearray | memoryview
) -> bytes:
    """A complete request frame, as a client sends it (for tests and client tools)."""
    header = _FIXED_HEADER.pack(api_key, api_version, correlation_id)
    header_version = request_header_version(api_key, api_version)
    if header_version >= 1:
        if client_id is None:
            header += _INT16.pack(-1)
        else:
            encoded = client_id.encode("utf-8")
            header += _INT16.pack(len(encoded)) + encoded
    if header_version >= 2:
        header += _NO_TAGGED_FIELDS
    return _with_size_prefix(header, body)


def parse_response_frame(
    api_key: int, api_version: int, frame: bytes | bytearray | memoryview
) -> tuple[int, memoryview]:
    """Correlation id and body view of a response frame (the bytes after the size prefix)."""
    buf = memoryview(frame).cast("B")
    if len(buf) < 4:
        raise DecodeError(f"response header needs 4 bytes, frame has {len(buf)}")
    (correlation_id,) = _INT32.unpack_from(buf)
    pos = 4
    if response_header_version(api_key, api_version) >= 1:
        pos = _skip_tagged_fields(buf, pos)
    return correlation_id, buf[pos:]
