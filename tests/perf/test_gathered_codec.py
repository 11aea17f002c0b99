"""The codec's hot-path shapes that the perf work introduced.

Record sets decode as writable views of the request (no copy on Produce),
large record sets encode by reference (no copy on Fetch), gathered frames
equal the joined ones, and specs load one API at a time.
"""

from __future__ import annotations

import os
import uuid

import pytest

from kafkacompat.protocol import (
    RequestHeader,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    encode_response_frame,
    encode_response_parts,
    join_parts,
    parse_response_frame,
    response_frame_parts,
)
from kafkacompat.protocol.primitives import GatherStream
from kafkacompat.protocol.specs import api_spec, load_specs

PRODUCE, FETCH, API_VERSIONS = 0, 1, 18


def fetch_body(records: bytes, second: bytes = b"") -> dict:
    partitions = [{"partition_index": 0, "high_watermark": 9, "last_stable_offset": 9, "log_start_offset": 0,
                   "aborted_transactions": None, "preferred_read_replica": -1, "records": records}]
    if second:
        partitions.append({**partitions[0], "partition_index": 1, "records": second})
    return {"throttle_time_ms": 0, "error_code": 0, "session_id": 0,
            "responses": [{"topic": "t", "topic_id": uuid.UUID(int=7), "partitions": partitions}]}


@pytest.mark.parametrize("version", [3, 9, 11])
def test_produce_records_decode_as_a_writable_view_equal_to_what_was_sent(version):
    records = os.urandom(3000)
    frame = bytearray(encode_request(PRODUCE, version, {
        "acks": -1, "timeout_ms": 1000,
        "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": records}]}],
    }))
    decoded = decode_request(PRODUCE, version, memoryview(frame)).topic_data[0].partition_data[0].records
    assert isinstance(decoded, memoryview) and not decoded.readonly
    assert decoded == records
    decoded[0:8] = b"\x00" * 8  # the log patches the base offset in place...
    assert frame.find(records) >= 0  # ...in the decoder's buffer, not the caller's frame


def test_a_truncated_record_set_is_still_a_decode_error():
    from kafkacompat.protocol import DecodeError

    whole = encode_request(PRODUCE, 9, {
        "acks": 1, "timeout_ms": 10, "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": b"x" * 50}]}],
    })
    with pytest.raises(DecodeError):
        decode_request(PRODUCE, 9, whole[:-30])


class OutOfBandRecords:
    """Records whose bytes the encoder must not hold in memory, as a FileSlice's are."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.nbytes = len(data)
        self.reads = 0

    def tobytes(self) -> bytes:
        self.reads += 1
        return self.data


@pytest.mark.parametrize("version", [4, 12, 16])
def test_out_of_band_record_sets_stay_parts_of_their_own_however_small(version):
    records = OutOfBandRecords(os.urandom(100))
    parts = encode_response_parts(FETCH, version, fetch_body(records))
    assert sum(part is records for part in parts) == 1 and records.reads == 0
    joined = encode_response(FETCH, version, fetch_body(records.data))
    assert join_parts(parts) == joined and records.reads == 1
    header = RequestHeader(FETCH, version, 5, "c")
    frame = response_frame_parts(header, parts)
    assert join_parts(frame) == encode_response_frame(header, joined)
    assert encode_response(FETCH, version, fetch_body(records)) == joined  # a plain encoding reads it in


@pytest.mark.parametrize("version", [4, 11, 12, 16])
def test_large_record_sets_are_attached_not_copied(version):
    big, other = os.urandom(GatherStream.ATTACH_MIN), os.urandom(GatherStream.ATTACH_MIN + 1)
    parts = encode_response_parts(FETCH, version, fetch_body(big, other))
    assert sum(part is big for part in parts) == 1 and sum(part is other for part in parts) == 1
    assert b"".join(parts) == encode_response(FETCH, version, fetch_body(big, other))
    decoded = decode_response(FETCH, version, b"".join(parts))
    assert [p.records for p in decoded.responses[0].partitions] == [big, other]


def test_small_record_sets_stay_in_one_buffer():
    parts = encode_response_parts(FETCH, 12, fetch_body(b"r" * 100))
    assert len(parts) == 1 and isinstance(parts[0], bytes)


@pytest.mark.parametrize("api_key, version", [(FETCH, 11), (FETCH, 12), (API_VERSIONS, 3), (PRODUCE, 9)])
@pytest.mark.parametrize("size", [10, 70_000])
def test_a_gathered_frame_is_byte_for_byte_the_joined_frame(api_key, version, size):
    header = RequestHeader(api_key, version, correlation_id=42, client_id="c")
    if api_key == FETCH:
        body = fetch_body(os.urandom(size))
    elif api_key == API_VERSIONS:
        body = {"error_code": 0, "api_keys": [{"api_key": k, "min_version": 0, "max_version": 3} for k in range(size // 10)]}
    else:
        body = {"responses": [], "throttle_time_ms": 0}
    joined = encode_response_frame(header, encode_response(api_key, version, body))
    gathered = response_frame_parts(header, encode_response_parts(api_key, version, body))
    assert b"".join(gathered) == joined
    assert int.from_bytes(joined[:4], "big") == len(joined) - 4
    correlation_id, payload = parse_response_frame(api_key, version, joined[4:])
    assert correlation_id == 42 and decode_response(api_key, version, payload) is not None


def test_one_api_spec_at_a_time_is_the_same_spec_as_the_full_load():
    specs = load_specs()
    assert specs and all(api_spec(key) is spec for key, spec in specs.items())
    assert api_spec(9999) is None
