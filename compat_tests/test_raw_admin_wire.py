"""DescribeTopicPartitions paging and the feature fields of ApiVersions, byte by byte.

Frames are built and read by hand (raw_wire), so these show what goes over
the wire independently of our own codec: the nullable cursor struct (an int8
marker before its fields), Kafka's ordering and paging rules, and ApiVersions
v3's tagged feature fields.
"""

from __future__ import annotations

import struct
import uuid

import pytest

from compat_helpers import unique_topic
from confluent_clients import create_topic
from raw_wire import EMPTY_TAGS, RawConnection, Reader, api_versions_body, compact_string, uvarint

DESCRIBE_TOPIC_PARTITIONS, API_VERSIONS = 75, 18
UNKNOWN_TOPIC_OR_PARTITION, INVALID_TOPIC_EXCEPTION, INVALID_REQUEST = 3, 17, 42


def describe_topic_partitions(port: int, topics: list[str], limit: int,
                              cursor: tuple[str, int] | None = None) -> tuple[list[tuple], tuple[str, int] | None]:
    """-> ([(name, error, topic_id, [partition indexes], [leader epochs])], next cursor)."""
    listed = uvarint(len(topics) + 1) + b"".join(compact_string(t) + EMPTY_TAGS for t in topics)
    marker = b"\xff" if cursor is None else b"\x01" + compact_string(cursor[0]) + struct.pack(">i", cursor[1]) + EMPTY_TAGS
    body = listed + struct.pack(">i", limit) + marker + EMPTY_TAGS
    with RawConnection(port) as connection:
        reader = connection.request(DESCRIBE_TOPIC_PARTITIONS, 0, body, flexible=True)
    assert reader.int32() == 0

    def int32s(r: Reader = reader) -> list[int] | None:
        return r.compact_array(r.int32)

    def partition(r: Reader = reader) -> tuple[int, int]:
        error, index, leader, epoch = r.int16(), r.int32(), r.int32(), r.int32()
        replicas, isr, elr, last_elr, offline = int32s(), int32s(), int32s(), int32s(), int32s()
        assert (error, leader, replicas, isr, elr, last_elr, offline) == (0, 1, [1], [1], [], [], [])
        r.skip_tags()
        return index, epoch

    def topic(r: Reader = reader) -> tuple:
        error, name, topic_id, internal = r.int16(), r.compact_string(), uuid.UUID(bytes=r.raw(16)), r.boolean()
        partitions = r.compact_array(partition)
        r.int32()  # authorized operations
        r.skip_tags()
        assert internal is False
        return name, error, topic_id, [p[0] for p in partitions], [p[1] for p in partitions]

    topics_out = reader.compact_array(topic)
    next_cursor = None
    if reader.int8() == 1:
        next_cursor = (reader.compact_string(), reader.int32())
        reader.skip_tags()
    reader.skip_tags()
    reader.done()
    return topics_out, next_cursor


@pytest.mark.timeout(60)
def test_pages_follow_kafkas_order_and_cursor_rules(broker):
    b_topic, a_topic = unique_topic("raw-dtp-b"), unique_topic("raw-dtp-a")
    create_topic(broker.bootstrap, b_topic, partitions=2)
    create_topic(broker.bootstrap, a_topic, partitions=3)
    wanted = [b_topic, "no-such-topic-x", a_topic, "bad/name"]
    assert sorted(wanted) == ["bad/name", "no-such-topic-x", a_topic, b_topic]

    page, cursor = describe_topic_partitions(broker.port, wanted, limit=4)
    # Name order; unknown and illegal names take no room, so four partitions reach into b_topic.
    assert [(name, error, indexes) for name, error, _, indexes, _ in page] == [
        ("bad/name", INVALID_TOPIC_EXCEPTION, []), ("no-such-topic-x", UNKNOWN_TOPIC_OR_PARTITION, []),
        (a_topic, 0, [0, 1, 2]), (b_topic, 0, [0])]
    assert cursor == (b_topic, 1)
    assert all(epochs == [0] * len(indexes) for _, _, _, indexes, epochs in page)
    assert [topic_id == uuid.UUID(int=0) for _, _, topic_id, _, _ in page] == [True, True, False, False]

    # The cursor resumes inside b_topic; names before it are not repeated.
    rest, cursor = describe_topic_partitions(broker.port, wanted, limit=4, cursor=(b_topic, 1))
    assert [(name, error, indexes) for name, error, _, indexes, _ in rest] == [(b_topic, 0, [1])]
    assert cursor is None


@pytest.mark.timeout(60)
def test_a_full_page_points_at_the_next_topic_and_a_bad_cursor_is_refused(broker):
    first, second = sorted([unique_topic("raw-dtp-full"), unique_topic("raw-dtp-full")])
    create_topic(broker.bootstrap, first, partitions=2)
    create_topic(broker.bootstrap, second, partitions=1)
    page, cursor = describe_topic_partitions(broker.port, [first, second], limit=2)
    assert [(name, indexes) for name, _, _, indexes, _ in page] == [(first, [0, 1])]
    assert cursor == (second, 0)

    refused, cursor = describe_topic_partitions(broker.port, [first], limit=2, cursor=(second, 0))
    assert [(name, error) for name, error, *_ in refused] == [(first, INVALID_REQUEST)] and cursor is None
    refused, _ = describe_topic_partitions(broker.port, [first], limit=2, cursor=(first, -1))
    assert [(name, error) for name, error, *_ in refused] == [(first, INVALID_REQUEST)]


def api_versions_v3_features(port: int) -> dict:
    with RawConnection(port) as connection:
        reader = connection.request(API_VERSIONS, 3, api_versions_body(3), flexible=True,
                                    response_header_flexible=False)
    assert reader.int16() == 0

    def api_range(r: Reader = reader) -> None:
        r.int16(), r.int16(), r.int16()
        r.skip_tags()

    reader.compact_array(api_range)
    assert reader.int32() == 0  # throttle time
    tags = {}
    for _ in range(reader.uvarint()):
        tag, size = reader.uvarint(), reader.uvarint()
        tags[tag] = Reader(reader.raw(size))
    reader.done()

    def feature(r: Reader) -> tuple[str, int, int]:
        name, low, high = r.compact_string(), r.int16(), r.int16()
        r.skip_tags()
        return name, low, high

    supported = tags[0].compact_array(lambda: feature(tags[0]))
    epoch = tags[1].int64()
    finalized = tags[2].compact_array(lambda: feature(tags[2]))  # name, max level, min level
    assert 3 not in tags  # zk_migration_ready stays at its default, false
    return {"supported": supported, "epoch": epoch, "finalized": finalized}


@pytest.mark.timeout(60)
def test_api_versions_v3_carries_supported_and_finalized_features(broker):
    assert api_versions_v3_features(broker.port) == {
        "supported": [("metadata.version", 1, 21), ("group.version", 0, 1), ("share.version", 0, 1),
                      ("transaction.version", 0, 2)], "epoch": 0,
        "finalized": [("group.version", 1, 1), ("metadata.version", 21, 21), ("share.version", 1, 1),
                      ("transaction.version", 2, 2)]}
