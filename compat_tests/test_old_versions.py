"""The request versions Kafka 3.9 accepted and 4.0 dropped (KIP-896), on raw sockets.

Every frame is built and read by hand with `struct` (`raw_wire`), so these
bytes are evidence about the broker and not about our own codec. One old
version of each API whose lowest version moved is answered with its old body
layout; Produce v0-2 and Fetch v0-3, which would need records in message
format v0/v1, are still refused per partition with UNSUPPORTED_VERSION.
"""

from __future__ import annotations

import struct

import pytest

from compat_helpers import unique_topic
from raw_wire import RawConnection, Reader, read_api_versions_v0, record_batch, string

PRODUCE, FETCH, LIST_OFFSETS, API_VERSIONS = 0, 1, 2, 18
CREATE_TOPICS, DELETE_TOPICS, DESCRIBE_CONFIGS = 19, 20, 32
TOPIC_RESOURCE = 2
NONE, TOPIC_ALREADY_EXISTS, UNKNOWN_TOPIC_OR_PARTITION, UNSUPPORTED_VERSION = 0, 36, 3, 35
LATEST, EARLIEST = -1, -2

pytestmark = pytest.mark.timeout(60)


def array(items: list[bytes]) -> bytes:
    return struct.pack(">i", len(items)) + b"".join(items)


def create_topics_v0(connection: RawConnection, topic: str, partitions: int,
                     configs: dict[str, str]) -> list[tuple[str, int]]:
    """CreateTopics v0: no validate_only in the request, no throttle time or message in the answer."""
    config_entries = [string(name) + string(value) for name, value in configs.items()]
    body = array([string(topic) + struct.pack(">ih", partitions, 1) + array([]) + array(config_entries)])
    answer = connection.request(CREATE_TOPICS, 0, body + struct.pack(">i", 10_000), flexible=False)
    results = answer.array(lambda: (answer.string(), answer.int16()))
    answer.done()
    return results


def produce_v3(connection: RawConnection, topic: str, count: int) -> None:
    batch = record_batch([(b"k%d" % n, b"v%d" % n) for n in range(count)], 1_700_000_000_000)
    body = (struct.pack(">hhi", -1, -1, 10_000)  # null transactional id, acks=all, timeout
            + array([string(topic) + array([struct.pack(">i", 0) + struct.pack(">i", len(batch)) + batch])]))
    answer = connection.request(PRODUCE, 3, body, flexible=False)
    (_, partitions), = answer.array(lambda: (answer.string(), answer.array(
        lambda: (answer.int32(), answer.int16(), answer.int64(), answer.int64()))))
    assert answer.int32() == 0  # throttle_time_ms
    answer.done()
    assert [p[:3] for p in partitions] == [(0, NONE, 0)]


def list_offsets_v0(connection: RawConnection, topic: str, queries: list[tuple[int, int]]) -> list:
    """ListOffsets v0: (timestamp, max_num_offsets) per query; [(partition, error, old_style_offsets)]."""
    partitions = [struct.pack(">iqi", 0, timestamp, max_num) for timestamp, max_num in queries]
    answer = connection.request(LIST_OFFSETS, 0, struct.pack(">i", -1) + array([string(topic) + array(partitions)]),
                                flexible=False)
    (name, found), = answer.array(lambda: (answer.string(), answer.array(
        lambda: (answer.int32(), answer.int16(), answer.array(answer.int64)))))
    answer.done()
    assert name == topic
    return found


@pytest.fixture
def connection(broker):
    with RawConnection(broker.port) as opened:
        yield opened


def test_api_versions_advertise_the_old_versions(connection):
    error_code, ranges = read_api_versions_v0(connection.request(API_VERSIONS, 0, b"", flexible=False))
    assert error_code == NONE
    assert {key: ranges[key] for key in (PRODUCE, FETCH, LIST_OFFSETS, CREATE_TOPICS, DELETE_TOPICS,
                                         DESCRIBE_CONFIGS)} == {
        PRODUCE: (0, 12), FETCH: (0, 17), LIST_OFFSETS: (0, 10), CREATE_TOPICS: (0, 7), DELETE_TOPICS: (0, 6),
        DESCRIBE_CONFIGS: (0, 4)}


def test_describe_configs_v0_flags_defaults(connection):
    topic = unique_topic("old-describe")
    assert create_topics_v0(connection, topic, 1, {"retention.ms": "3600000"}) == [(topic, NONE)]
    request = array([struct.pack(">b", TOPIC_RESOURCE) + string(topic) + struct.pack(">i", -1)])  # all keys
    answer = connection.request(DESCRIBE_CONFIGS, 0, request, flexible=False)
    assert answer.int32() == 0  # throttle_time_ms

    def entry():  # v0: no config_source, no synonyms; is_default sits between read_only and is_sensitive
        return answer.string(), (answer.string(), answer.boolean(), answer.boolean(), answer.boolean())

    def result():
        return (answer.int16(), answer.string(), answer.int8(), answer.string()), dict(answer.array(entry))

    (head, configs), = answer.array(result)
    answer.done()
    assert head == (NONE, None, TOPIC_RESOURCE, topic)
    assert configs["retention.ms"] == ("3600000", False, False, False)
    assert configs["cleanup.policy"] == ("delete", False, True, False)
    assert all(is_default for name, (_, _, is_default, _) in configs.items() if name != "retention.ms")


def test_create_topics_v0_and_delete_topics_v0(connection):
    topic = unique_topic("old-create")
    assert create_topics_v0(connection, topic, 2, {}) == [(topic, NONE)]
    assert create_topics_v0(connection, topic, 2, {}) == [(topic, TOPIC_ALREADY_EXISTS)]
    answer = connection.request(DELETE_TOPICS, 0, array([string(topic)]) + struct.pack(">i", 10_000), flexible=False)
    deleted = answer.array(lambda: (answer.string(), answer.int16()))  # v0: no throttle time
    answer.done()
    assert deleted == [(topic, NONE)]
    assert list_offsets_v0(connection, topic, [(LATEST, 1)]) == [(0, UNKNOWN_TOPIC_OR_PARTITION, [])]


def test_list_offsets_v0_answers_a_list_of_offsets(connection):
    topic = unique_topic("old-offsets")
    assert create_topics_v0(connection, topic, 1, {}) == [(topic, NONE)]
    produce_v3(connection, topic, 3)
    found = list_offsets_v0(connection, topic, [(LATEST, 1), (EARLIEST, 1), (1_700_000_000_001, 1), (LATEST, 0)])
    assert found == [(0, NONE, [3]), (0, NONE, [0]), (0, NONE, [1]), (0, NONE, [])]


def test_produce_v2_is_refused_per_partition(connection):
    topic = unique_topic("old-produce")
    assert create_topics_v0(connection, topic, 1, {}) == [(topic, NONE)]
    batch = record_batch([(b"k", b"v")], 1_700_000_000_000)
    body = struct.pack(">hi", -1, 10_000) + array(
        [string(topic) + array([struct.pack(">i", 0) + struct.pack(">i", len(batch)) + batch])])
    answer = connection.request(PRODUCE, 2, body, flexible=False)
    (name, partitions), = answer.array(lambda: (answer.string(), answer.array(
        lambda: (answer.int32(), answer.int16(), answer.int64(), answer.int64()))))
    assert answer.int32() == 0  # throttle_time_ms
    answer.done()
    assert name == topic and [p[:2] for p in partitions] == [(0, UNSUPPORTED_VERSION)]
    assert list_offsets_v0(connection, topic, [(LATEST, 1)]) == [(0, NONE, [0])]  # nothing written


@pytest.mark.parametrize("version", [0, 3])
def test_fetch_below_v4_is_refused_per_partition(connection, version):
    topic = unique_topic("old-fetch")
    assert create_topics_v0(connection, topic, 1, {}) == [(topic, NONE)]
    produce_v3(connection, topic, 2)
    max_bytes = struct.pack(">i", 1 << 20) if version >= 3 else b""
    body = (struct.pack(">iii", -1, 0, 1) + max_bytes
            + array([string(topic) + array([struct.pack(">iqi", 0, 0, 1 << 20)])]))
    answer: Reader = connection.request(FETCH, version, body, flexible=False)
    if version >= 1:
        assert answer.int32() == 0  # throttle_time_ms

    def partition():
        index, error_code, high_watermark = answer.int32(), answer.int16(), answer.int64()
        size = answer.int32()
        return index, error_code, high_watermark, answer.raw(max(size, 0))

    responses = answer.array(lambda: (answer.string(), answer.array(partition)))
    answer.done()
    assert responses == [(topic, [(0, UNSUPPORTED_VERSION, -1, b"")])]
