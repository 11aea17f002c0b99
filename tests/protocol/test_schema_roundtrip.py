"""Every (API, version, direction) in the specs: encode a populated body, decode, compare, re-encode."""

from __future__ import annotations

import pytest
from protocol_bodies import BodyMaker, expected_decode, plain

from kafkacompat.protocol import (
    DecodeError,
    EncodeError,
    decode_data,
    decode_request,
    decode_response,
    encode_data,
    encode_request,
    encode_response,
    load_data_specs,
    load_specs,
)
from kafkacompat.protocol.errors import ErrorCode, KafkaError

CODECS = {"request": (encode_request, decode_request), "response": (encode_response, decode_response)}

CASES = [
    pytest.param(spec.api_key, version, direction, id=f"{spec.name}-v{version}-{direction}")
    for spec in load_specs().values()
    for version in range(spec.min_version, spec.max_version + 1)
    for direction in ("request", "response")
]


def _fields(api_key: int, direction: str):
    spec = load_specs()[api_key]
    return spec.request if direction == "request" else spec.response


def _cut_points(length: int) -> list[int]:
    """Strict prefix lengths to try: the first and last 12 and an even spread between."""
    points = set(range(min(length, 12))) | set(range(max(0, length - 12), length))
    points |= set(range(0, length, max(1, length // 24)))
    return sorted(points)


@pytest.mark.parametrize(("api_key", "version", "direction"), CASES)
@pytest.mark.parametrize("nulls", [False, True], ids=["values", "nulls"])
def test_round_trip(api_key: int, version: int, direction: str, nulls: bool) -> None:
    encode, decode = CODECS[direction]
    fields = _fields(api_key, direction)
    body = BodyMaker(version, nulls=nulls).body(fields)

    data = encode(api_key, version, body)
    decoded = decode(api_key, version, data)

    assert plain(decoded) == expected_decode(fields, version, body)
    assert encode(api_key, version, decoded) == data
    assert plain(decode(api_key, version, data + b"\x01\x02\x03")) == plain(decoded)
    for cut in _cut_points(len(data)):
        with pytest.raises(DecodeError):
            decode(api_key, version, memoryview(data)[:cut])


@pytest.mark.parametrize(("api_key", "version", "direction"), CASES)
def test_empty_body_encodes_defaults(api_key: int, version: int, direction: str) -> None:
    encode, decode = CODECS[direction]
    fields = _fields(api_key, direction)
    data = encode(api_key, version, {})
    decoded = decode(api_key, version, data)
    assert plain(decoded) == expected_decode(fields, version, {})
    assert encode(api_key, version, decoded) == data


@pytest.mark.parametrize("name", sorted(load_data_specs()))
def test_data_schemas_round_trip(name: str) -> None:
    spec = load_data_specs()[name]
    for version in range(spec.min_version, spec.max_version + 1):
        body = BodyMaker(version).body(spec.request)
        data = encode_data(name, version, body)
        assert plain(decode_data(name, version, data)) == expected_decode(spec.request, version, body)


def test_data_schema_reads_newer_versions_as_our_newest() -> None:
    spec = load_data_specs()["ConsumerProtocolSubscription"]
    newest = spec.max_version
    body = BodyMaker(newest).body(spec.request)
    data = encode_data("ConsumerProtocolSubscription", newest, body) + b"\x00\x07future"
    decoded = decode_data("ConsumerProtocolSubscription", newest + 5, data)
    assert plain(decoded) == expected_decode(spec.request, newest, body)


def test_unknown_key_or_version_is_unsupported_version() -> None:
    with pytest.raises(KafkaError) as unknown_key:
        decode_request(9999, 0, b"")
    assert unknown_key.value.code == ErrorCode.UNSUPPORTED_VERSION
    newest = load_specs()[3].max_version
    with pytest.raises(KafkaError) as too_new:
        encode_response(3, newest + 1, {})
    assert too_new.value.code == ErrorCode.UNSUPPORTED_VERSION


@pytest.mark.parametrize(
    "body",
    [
        {"acks": "all"},  # wrong type
        {"acks": 1 << 20},  # out of int16 range
        {"topic_data": [{"name": None}]},  # null in a non-nullable string
        {"topic_data": None},  # null in a non-nullable array
        {"topic_data": [{"partition_data": [{"records": 42}]}]},
    ],
)
def test_bad_bodies_raise_encode_error(body: dict) -> None:
    with pytest.raises(EncodeError):
        encode_request(0, 9, body)


def test_records_accept_bytes_like_values_and_decode_to_bytes() -> None:
    batch = b"\x00" * 61 + b"records"
    for value in (batch, bytearray(batch), memoryview(batch)):
        body = {"acks": 1, "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": value}]}]}
        for version in (3, 9):
            decoded = decode_request(0, version, encode_request(0, version, body))
            assert decoded.topic_data[0].partition_data[0].records == batch


def test_absent_fields_decode_to_their_defaults() -> None:
    """Handlers read one shape: fields the version lacks come back at Kafka's defaults."""
    metadata_v0 = decode_request(3, 0, encode_request(3, 0, {"topics": [{"name": "a"}]}))
    assert metadata_v0.allow_auto_topic_creation is True
    assert metadata_v0.topics[0].topic_id.int == 0
    produce_v2 = decode_request(0, 2, encode_request(0, 2, {"acks": 1, "transactional_id": "ignored"}))
    assert produce_v2.transactional_id is None
    fetch_v15 = decode_request(1, 15, encode_request(1, 15, {}))
    assert fetch_v15.replica_id == -1 and fetch_v15.replica_state == {"replica_id": -1, "replica_epoch": -1}
    assert fetch_v15.max_bytes == 0x7FFFFFFF


def test_decoded_defaults_are_not_shared_between_decodes() -> None:
    first = decode_request(1, 4, encode_request(1, 4, {}))
    first.forgotten_topics_data.append("mutated")
    first.replica_state.replica_id = 5
    second = decode_request(1, 4, encode_request(1, 4, {}))
    assert second.forgotten_topics_data == [] and second.replica_state.replica_id == -1


def test_data_schemas_answer_to_spec_and_file_names() -> None:
    obj = {"assigned_partitions": [{"topic": "t", "partitions": [1]}], "user_data": None}
    data = encode_data("ConsumerProtocolAssignment", 1, obj)
    assert encode_data("consumer_protocol_assignment", 1, obj) == data
    assert decode_data("consumer_protocol_assignment", 1, data) == decode_data("ConsumerProtocolAssignment", 1, data)
    with pytest.raises(KafkaError):
        decode_data("NoSuchSchema", 0, data)
