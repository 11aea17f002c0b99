"""Golden share-group frames: what librdkafka 2.16's ShareConsumer sent, and the answers it accepted.

Kafka's reference specs here predate the stable (v1) share-group APIs, so
these frames are the evidence that our YAML for ShareGroupHeartbeat,
ShareFetch and ShareAcknowledge matches what a real client speaks: each must
decode with our codec to the values of the capture run (recording_proxy.py
--share: the golden records, the first released once, the rest accepted)
and encode back to the same bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path

from kafkacompat.protocol import (decode_request, decode_response, encode_request, encode_request_frame,
                                  encode_response, parse_request, parse_response_frame)
from kafkacompat.protocol.records import decode_records, parse_batches
from recording_proxy import GOLDEN_RECORDS, SHARE_GOLDEN_DIR, SHARE_GOLDEN_GROUP, SHARE_GOLDEN_TOPIC

HEARTBEAT, FETCH, ACKNOWLEDGE = 76, 78, 79
FRAMES = SHARE_GOLDEN_DIR / "librdkafka"


def _unprefixed(path: Path) -> bytes:
    raw = path.read_bytes()
    assert struct.unpack_from(">i", raw)[0] == len(raw) - 4
    return raw[4:]


def _request(name: str):
    path = FRAMES / name
    header, body_view = parse_request(_unprefixed(path))
    body = decode_request(header.api_key, header.api_version, body_view)
    reencoded = encode_request_frame(header.api_key, header.api_version, header.correlation_id, header.client_id,
                                     encode_request(header.api_key, header.api_version, body))
    assert reencoded == path.read_bytes()
    return header, body


def _response(name: str):
    path = FRAMES / name
    request = _unprefixed(path.with_name(name.replace("_response_", "_request_")))
    api_key, version, correlation_id = struct.unpack_from(">hhi", request)
    answered, body_view = parse_response_frame(api_key, version, _unprefixed(path))
    assert answered == correlation_id
    body = decode_response(api_key, version, body_view)
    assert encode_response(api_key, version, body) == bytes(body_view)
    return body


def test_the_capture_holds_the_three_share_apis_at_v1() -> None:
    assert sorted(p.name for p in FRAMES.glob("*.bin")) == sorted(
        f"{stem}_{kind}_v1.bin" for stem in ("share_acknowledge", "share_fetch", "share_group_heartbeat")
        for kind in ("request", "response"))


def test_share_group_heartbeat_joins_with_the_subscription() -> None:
    header, body = _request("share_group_heartbeat_request_v1.bin")
    assert (header.api_key, body.group_id, body.member_epoch) == (HEARTBEAT, SHARE_GOLDEN_GROUP, 0)
    assert body.member_id and list(body.subscribed_topic_names) == [SHARE_GOLDEN_TOPIC]
    answer = _response("share_group_heartbeat_response_v1.bin")
    assert (answer.error_code, answer.member_id, answer.member_epoch) == (0, body.member_id, 1)
    (assigned,) = answer.assignment.topic_partitions
    assert assigned.topic_id.int != 0 and list(assigned.partitions) == [0]


def test_share_fetch_names_the_partition_by_topic_id_and_gets_acquired_records() -> None:
    header, body = _request("share_fetch_request_v1.bin")
    assert (header.api_key, body.group_id) == (FETCH, SHARE_GOLDEN_GROUP) and body.member_id
    assert body.max_records > 0 and body.max_wait_ms > 0
    (topic,) = body.topics
    assert topic.topic_id.int != 0 and [p.partition_index for p in topic.partitions] == [0]
    answer = _response("share_fetch_response_v1.bin")
    assert answer.error_code == 0 and answer.acquisition_lock_timeout_ms > 0
    (partition,) = answer.responses[0].partitions
    records = bytes(partition.records)
    values = [r.value for b in parse_batches(records) for r in decode_records(records[b.position:b.end])]
    acquired = [(a.first_offset, a.last_offset) for a in partition.acquired_records]
    assert values == [value for _, value, _ in GOLDEN_RECORDS] and acquired == [(0, len(GOLDEN_RECORDS) - 1)]


def test_share_acknowledge_releases_one_record_and_accepts_the_rest() -> None:
    header, body = _request("share_acknowledge_request_v1.bin")
    assert (header.api_key, body.group_id) == (ACKNOWLEDGE, SHARE_GOLDEN_GROUP) and body.share_session_epoch > 0
    (partition,) = body.topics[0].partitions
    batches = [(b.first_offset, b.last_offset, list(b.acknowledge_types)) for b in partition.acknowledgement_batches]
    assert batches == [(0, 0, [2]), (1, len(GOLDEN_RECORDS) - 1, [1])]
    answer = _response("share_acknowledge_response_v1.bin")
    assert answer.error_code == 0 and [p.error_code for p in answer.responses[0].partitions] == [0]
