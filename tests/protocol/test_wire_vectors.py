"""Message bodies against bytes worked out by hand from Kafka's protocol guide.

Each vector is independent of our encoder: it is written field by field from
the wire rules (int16 string lengths, int32 array counts, compact lengths +1,
a tagged-field section ending every flexible struct).
"""

from __future__ import annotations

import pytest
from protocol_bodies import plain

from kafkacompat.protocol import (
    decode_data,
    decode_request,
    decode_response,
    encode_data,
    encode_request,
    encode_request_frame,
    encode_response,
    parse_request,
)

VECTORS = [
    pytest.param(
        "request", 18, 3,
        {"client_software_name": "kcat", "client_software_version": "1.7.1"},
        "05 6b636174  06 312e372e31  00",
        id="ApiVersions-v3-request",
    ),
    pytest.param(
        "response", 18, 3,
        {"error_code": 0, "api_keys": [{"api_key": 0, "min_version": 0, "max_version": 11}],
         "throttle_time_ms": 0, "finalized_features_epoch": 5},
        "0000  02 0000 0000 000b 00  00000000  01 01 08 0000000000000005",
        id="ApiVersions-v3-response-with-tagged-epoch",
    ),
    pytest.param(
        "response", 18, 0,
        {"error_code": 35, "api_keys": [{"api_key": 18, "min_version": 0, "max_version": 4}]},
        "0023  00000001 0012 0000 0004",
        id="ApiVersions-v0-response",
    ),
    pytest.param(
        "request", 3, 0, {"topics": [{"name": "foo"}]},
        "00000001 0003 666f6f",
        id="Metadata-v0-request",
    ),
    pytest.param(
        "request", 3, 4, {"topics": None, "allow_auto_topic_creation": False},
        "ffffffff 00",
        id="Metadata-v4-request-all-topics",
    ),
    pytest.param(
        "request", 3, 9, {"topics": [{"name": "foo"}], "allow_auto_topic_creation": True},
        "02 04 666f6f 00  01  00  00  00",
        id="Metadata-v9-request",
    ),
    pytest.param(
        "response", 3, 0,
        {"brokers": [{"node_id": 1, "host": "h", "port": 9092}],
         "topics": [{"error_code": 0, "name": "t",
                     "partitions": [{"error_code": 0, "partition_index": 0, "leader_id": 1,
                                     "replica_nodes": [1], "isr_nodes": [1]}]}]},
        "00000001 00000001 0001 68 00002384"
        "00000001 0000 0001 74 00000001 0000 00000000 00000001 00000001 00000001 00000001 00000001",
        id="Metadata-v0-response",
    ),
    pytest.param(
        "request", 0, 3,
        {"transactional_id": None, "acks": -1, "timeout_ms": 30000,
         "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": b"\xab\xcd\xef"}]}]},
        "ffff ffff 00007530 00000001 0001 74 00000001 00000000 00000003 abcdef",
        id="Produce-v3-request",
    ),
    pytest.param(
        "request", 0, 9,
        {"transactional_id": None, "acks": -1, "timeout_ms": 30000,
         "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": b"\xab\xcd\xef"}]}]},
        "00 ffff 00007530 02 02 74 02 00000000 04 abcdef 00 00 00",
        id="Produce-v9-request",
    ),
    pytest.param(
        "response", 0, 10,
        {"responses": [{"name": "t", "partition_responses": [
            {"index": 0, "error_code": 0, "base_offset": 5, "log_append_time_ms": -1, "log_start_offset": 0,
             "current_leader": {"leader_id": 2, "leader_epoch": 3}}]}],
         "throttle_time_ms": 0},
        "02 02 74 02 00000000 0000 0000000000000005 ffffffffffffffff 0000000000000000 01 00"
        " 01 00 09 00000002 00000003 00  00  00000000 00",
        id="Produce-v10-response-with-tagged-leader",
    ),
    pytest.param(
        "request", 1, 12,
        {"cluster_id": "c", "replica_id": -1, "max_wait_ms": 500, "min_bytes": 1, "max_bytes": 1024,
         "isolation_level": 1, "session_id": 0, "session_epoch": -1,
         "topics": [{"topic": "t", "partitions": [{"partition": 0, "current_leader_epoch": -1,
                                                  "fetch_offset": 7, "last_fetched_epoch": -1,
                                                  "log_start_offset": -1, "partition_max_bytes": 4096}]}],
         "forgotten_topics_data": [], "rack_id": ""},
        "ffffffff 000001f4 00000001 00000400 01 00000000 ffffffff"
        " 02 02 74 02 00000000 ffffffff 0000000000000007 ffffffff ffffffffffffffff 00001000 00 00"
        " 01 01 01 00020263",
        id="Fetch-v12-request-with-tagged-cluster-id",
    ),
]


@pytest.mark.parametrize(("direction", "api_key", "version", "body", "hex_bytes"), VECTORS)
def test_vector(direction: str, api_key: int, version: int, body: dict, hex_bytes: str) -> None:
    encode, decode = (encode_request, decode_request) if direction == "request" else (encode_response, decode_response)
    expected = bytes.fromhex(hex_bytes.replace(" ", ""))
    assert encode(api_key, version, body).hex() == expected.hex()
    decoded = plain(decode(api_key, version, expected))
    for key, value in body.items():
        assert _subset(value, decoded[key]), key


def _subset(given, decoded) -> bool:
    """``given`` agrees with ``decoded`` on every key it names (decoded also has defaults)."""
    if isinstance(given, dict):
        return all(_subset(value, decoded[key]) for key, value in given.items())
    if isinstance(given, list):
        return len(given) == len(decoded) and all(map(_subset, given, decoded))
    return given == decoded


def test_api_versions_v3_request_frame() -> None:
    body = encode_request(18, 3, {"client_software_name": "kcat", "client_software_version": "1.7.1"})
    frame = encode_request_frame(18, 3, 1, "rdkafka", body)
    expected = "0000001e 0012 0003 00000001 0007 72646b61666b61 00" "056b636174 06312e372e31 00"
    assert frame.hex() == expected.replace(" ", "")
    header, body_view = parse_request(frame[4:])
    assert decode_request(header.api_key, header.api_version, body_view).client_software_name == "kcat"


def test_consumer_protocol_subscription_v1() -> None:
    obj = {"topics": ["a", "b"], "user_data": None, "owned_partitions": [{"topic": "a", "partitions": [0, 1]}]}
    expected = "00000002 0001 61 0001 62 ffffffff 00000001 0001 61 00000002 00000000 00000001"
    assert encode_data("ConsumerProtocolSubscription", 1, obj).hex() == expected.replace(" ", "")
    decoded = decode_data("ConsumerProtocolSubscription", 1, bytes.fromhex(expected))
    assert decoded.topics == ["a", "b"] and decoded.owned_partitions[0].partitions == [0, 1]


def test_consumer_protocol_assignment_v0() -> None:
    expected = "00000001 0001 74 00000002 00000000 00000003 00000002 beef"
    obj = {"assigned_partitions": [{"topic": "t", "partitions": [0, 3]}], "user_data": b"\xbe\xef"}
    assert encode_data("ConsumerProtocolAssignment", 0, obj).hex() == expected.replace(" ", "")
    assert decode_data("ConsumerProtocolAssignment", 0, bytes.fromhex(expected)).user_data == b"\xbe\xef"
