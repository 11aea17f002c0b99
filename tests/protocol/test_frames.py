"""Request/response headers and size prefixes, checked against hand-built frames."""

from __future__ import annotations

import struct

import pytest

from kafkacompat.protocol import (
    DecodeError,
    RequestHeader,
    encode_request_frame,
    encode_response_frame,
    parse_request,
    parse_response_frame,
    request_header_version,
    response_header_version,
)


@pytest.mark.parametrize(
    ("api_key", "api_version", "expected"),
    [
        (0, 8, 1), (0, 9, 2), (1, 11, 1), (1, 12, 2), (3, 8, 1), (3, 9, 2),
        (18, 2, 1), (18, 3, 2), (18, 99, 2),  # ApiVersions newer than we know: still header v2
        (7, 0, 0),  # ControlledShutdown v0
        (7, 1, 1), (999, 3, 1),  # keys without a spec: header v1
    ],
)
def test_request_header_version(api_key: int, api_version: int, expected: int) -> None:
    assert request_header_version(api_key, api_version) == expected


@pytest.mark.parametrize(
    ("api_key", "api_version", "expected"),
    [(0, 8, 0), (0, 9, 1), (3, 12, 1), (18, 0, 0), (18, 3, 0), (18, 4, 0), (999, 0, 0)],
)
def test_response_header_version(api_key: int, api_version: int, expected: int) -> None:
    assert response_header_version(api_key, api_version) == expected


def test_parse_request_header_v1() -> None:
    # Metadata v1: key 3, version 1, correlation id 7, client id "ab", then the body.
    frame = bytes.fromhex("0003" "0001" "00000007" "0002" "6162" "ffffffff")
    header, body = parse_request(frame)
    assert header == RequestHeader(api_key=3, api_version=1, correlation_id=7, client_id="ab")
    assert bytes(body) == b"\xff\xff\xff\xff"
    assert isinstance(body, memoryview)


def test_parse_request_header_v2_skips_tagged_fields_and_keeps_classic_client_id() -> None:
    # Metadata v9; client id is int16-prefixed even here; one unknown tagged field (tag 5, 2 bytes).
    frame = bytes.fromhex("0003" "0009" "0000002a" "0003" "636c69" "01" "0502aabb" "01")
    header, body = parse_request(frame)
    assert header == RequestHeader(3, 9, 42, "cli")
    assert bytes(body) == b"\x01"


def test_parse_request_null_client_id_and_header_v0() -> None:
    header, body = parse_request(bytes.fromhex("0000" "0003" "00000001" "ffff" "99"))
    assert header.client_id is None and bytes(body) == b"\x99"
    header, body = parse_request(bytes.fromhex("0007" "0000" "00000002" "0102"))
    assert header == RequestHeader(7, 0, 2, None)
    assert bytes(body) == b"\x01\x02"


def test_parse_request_for_unknown_apis_and_versions() -> None:
    unknown_key = bytes.fromhex("0fa0" "0003" "00000005" "0001" "78" "deadbeef")
    header, body = parse_request(unknown_key)
    assert header == RequestHeader(4000, 3, 5, "x") and bytes(body) == bytes.fromhex("deadbeef")
    future_api_versions = bytes.fromhex("0012" "0063" "00000006" "0001" "78" "00" "0101" "00")
    header, body = parse_request(future_api_versions)
    assert header == RequestHeader(18, 99, 6, "x") and bytes(body) == bytes.fromhex("010100")


@pytest.mark.parametrize(
    "frame",
    [
        "0003000100",  # shorter than key + version + correlation id
        "000300010000000700",  # half a client id length
        "0003000100000007000561",  # client id shorter than its length
        "000300010000000700fe",  # client id of 254 bytes, none given
        "00030001000000078000",  # negative length other than -1
        "0003000900000007ffff",  # v2 header without its tagged section
        "0003000900000007ffff010509aa",  # tagged field longer than the frame
        "0003000100000007000280ff",  # client id not UTF-8
    ],
)
def test_malformed_request_headers_raise_decode_error(frame: str) -> None:
    with pytest.raises(DecodeError):
        parse_request(bytes.fromhex(frame))


def test_encode_request_frame_matches_hand_built_bytes() -> None:
    body = b"\x01\x02"
    v1 = encode_request_frame(3, 1, 7, "ab", body)
    assert v1.hex() == "0000000e" "0003" "0001" "00000007" "0002" "6162" "0102"
    v2 = encode_request_frame(3, 9, 7, None, body)
    assert v2.hex() == "0000000d" "0003" "0009" "00000007" "ffff" "00" "0102"
    v0 = encode_request_frame(7, 0, 7, "ignored", body)
    assert v0.hex() == "0000000a" "0007" "0000" "00000007" "0102"


def test_request_frames_round_trip_through_parse_request() -> None:
    frame = encode_request_frame(1, 12, 99, "consumer-1", memoryview(b"body"))
    (size,) = struct.unpack(">i", frame[:4])
    assert size == len(frame) - 4
    header, body = parse_request(memoryview(frame)[4:])
    assert header == RequestHeader(1, 12, 99, "consumer-1") and bytes(body) == b"body"


def test_encode_response_frame_picks_header_version() -> None:
    flexible = encode_response_frame(RequestHeader(3, 9, 5, "c"), b"\xaa")
    assert flexible.hex() == "00000006" "00000005" "00" "aa"
    classic = encode_response_frame(RequestHeader(3, 8, 5, "c"), b"\xaa")
    assert classic.hex() == "00000005" "00000005" "aa"
    api_versions = encode_response_frame(RequestHeader(18, 3, 5, "c"), b"\xaa")
    assert api_versions.hex() == "00000005" "00000005" "aa"


def test_parse_response_frame() -> None:
    correlation_id, body = parse_response_frame(3, 9, bytes.fromhex("00000005" "01" "0001ff" "aa"))
    assert correlation_id == 5 and bytes(body) == b"\xaa"
    correlation_id, body = parse_response_frame(18, 3, bytes.fromhex("00000006" "aa"))
    assert correlation_id == 6 and bytes(body) == b"\xaa"
    with pytest.raises(DecodeError):
        parse_response_frame(3, 9, bytes.fromhex("000000"))
