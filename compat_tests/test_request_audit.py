"""Every request the broker decodes gets an answer it can encode (or Kafka's error), on an open connection.

For every (API key, version) the broker advertises, requests generated from
our specs: every nullable field null, every field at its default (empty
arrays), every field set, and odd ones from the fuzz generator (extreme
integers, large arrays, unknown tagged fields, topic ids no broker knows).
Each must be answered on the same connection with the right correlation id
and a body that decodes in that version. Metadata's lookups by topic id are
checked byte by byte on a raw socket.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

import pytest

from compat_helpers import unique_topic
from raw_wire import RawConnection, metadata_flexible_body, read_metadata_flexible

from kafkacompat.fuzz.campaign import advertised_versions, check_answer, connect, expects_answer
from kafkacompat.fuzz.generator import SHORT_WAITS_MS, OddRequests
from kafkacompat.protocol import decode_request, encode_request, encode_request_frame, load_specs
from tests.protocol.protocol_bodies import BodyMaker

METADATA = 3
INVALID_REQUEST, UNKNOWN_TOPIC_ID, NONE = 42, 100, 0
ODD_REQUESTS_PER_VERSION = 25

pytestmark = pytest.mark.timeout(240)


def _short_waits(value: Any, key: str = "") -> Any:
    """BodyMaker's distinct values, except that waits stay short (no long-poll or rebalance holds the test)."""
    if isinstance(value, dict):
        return {name: _short_waits(item, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_short_waits(item, key) for item in value]
    if key.endswith(("timeout_ms", "wait_ms")) and isinstance(value, int):
        return SHORT_WAITS_MS[-1]
    return value


def _bodies(api_key: int, version: int) -> list[tuple[str, dict[str, Any]]]:
    fields = load_specs()[api_key].request
    return [
        ("defaults", {}),
        ("every nullable field null", _short_waits(BodyMaker(version, nulls=True).body(fields))),
        ("every field set", _short_waits(BodyMaker(version).body(fields))),
    ]


def test_every_advertised_request_gets_a_decodable_answer(broker):
    address = ("127.0.0.1", broker.port)
    specs = load_specs()
    odd = OddRequests(specs, random.Random(12))
    failures = []
    connection = connect(address, timeout_s=15)
    correlation_id = 0
    advertised = advertised_versions(address, 10)
    assert set(advertised) <= set(specs), "the broker advertises an API key we have no spec for"
    for api_key, (low, high) in sorted(advertised.items()):
        for version in range(low, high + 1):
            frames = []
            for what, body in _bodies(api_key, version):
                correlation_id += 1
                encoded = encode_request(api_key, version, body)
                frame = encode_request_frame(api_key, version, correlation_id, "audit", encoded)
                frames.append((what, frame, decode_request(api_key, version, encoded)))
            for number in range(ODD_REQUESTS_PER_VERSION):
                correlation_id += 1
                frames.append((f"odd request {number}", *odd.frame(api_key, version, correlation_id)))
            for what, frame, body in frames:
                cid = int.from_bytes(frame[8:12], "big", signed=True)
                connection.send_frame(frame)
                if not expects_answer(api_key, body):
                    continue
                try:
                    problem = check_answer(connection, api_key, version, cid)
                except Exception as exc:  # noqa: BLE001 - a closed connection or a timeout both fail the case
                    problem = f"no answer: {exc!r}"
                    connection.close()
                    connection = connect(address, timeout_s=15)
                if problem:
                    failures.append(f"API {api_key} v{version}, {what}: {problem}")
    connection.close()
    assert not failures, "\n".join(failures[:40])
    log = broker.log_text()
    assert "unexpected error" not in log, log[log.index("unexpected error") - 300:][:4000]


def _metadata(port: int, version: int, topics: list[tuple[bytes, str | None]]):
    with RawConnection(port) as connection:
        return read_metadata_flexible(connection.request(METADATA, version, metadata_flexible_body(version, topics),
                                                         flexible=True), version)


def test_metadata_v12_finds_a_topic_by_its_id_and_says_unknown_topic_id_otherwise(broker, admin_topic):
    zero = bytes(16)
    [(code, name, topic_id, partitions)] = _metadata(broker.port, 12, [(zero, admin_topic)])
    assert (code, name, sorted(partitions)) == (NONE, admin_topic, [0, 1])
    assert topic_id != zero
    [(code, name, found_id, partitions)] = _metadata(broker.port, 12, [(topic_id, None)])
    assert (code, name, found_id, sorted(partitions)) == (NONE, admin_topic, topic_id, [0, 1])
    stranger = uuid.uuid4().bytes
    assert _metadata(broker.port, 12, [(stranger, None)]) == [(UNKNOWN_TOPIC_ID, None, stranger, [])]


@pytest.mark.parametrize("version", [10, 11])
def test_metadata_v10_and_v11_refuse_lookups_by_id_with_invalid_request(broker, admin_topic, version):
    # Kafka: topic names cannot be null before v12, and ids are not looked up; null names answer as "".
    stranger = uuid.uuid4().bytes
    answer = _metadata(broker.port, version, [(stranger, None), (bytes(16), admin_topic)])
    assert answer == [(INVALID_REQUEST, "", stranger, []), (INVALID_REQUEST, admin_topic, bytes(16), [])]


@pytest.fixture(scope="module")
def admin_topic(broker):
    from confluent_kafka.admin import AdminClient, NewTopic

    name = unique_topic("by-id")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, 2, 1)])[name].result(30)
    return name
