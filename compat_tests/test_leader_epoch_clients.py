"""Leader epochs as clients see them: OffsetForLeaderEpoch over a raw socket, across a restart,
and librdkafka's position validation (KIP-320) with the epochs it reads from fetched batches."""

from __future__ import annotations

import logging
import struct
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from compat_helpers import sample_records, unique_topic
from confluent_clients import ClientErrors, create_topic, produce_records
from raw_wire import EMPTY_TAGS, RawConnection, Reader, compact_string, string, uvarint

OFFSET_FOR_LEADER_EPOCH = 23
CONSUMER_REPLICA_ID = -1
UNKNOWN_TOPIC_OR_PARTITION, FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH = 3, 74, 75


def offset_for_leader_epoch_v4(port: int, topic: str, asks: list[tuple[int, int, int]]) -> list[tuple]:
    """asks: (partition, current_leader_epoch, leader_epoch) -> [(partition, error, leader_epoch, end_offset)]."""
    partitions = b"".join(struct.pack(">iii", *ask) + EMPTY_TAGS for ask in asks)
    body = (struct.pack(">i", CONSUMER_REPLICA_ID) + uvarint(2) + compact_string(topic)
            + uvarint(len(asks) + 1) + partitions + EMPTY_TAGS + EMPTY_TAGS)
    with RawConnection(port) as connection:
        reader = connection.request(OFFSET_FOR_LEADER_EPOCH, 4, body, flexible=True)
    assert reader.int32() == 0  # throttle time

    def partition(r: Reader = reader) -> tuple:
        error, index, epoch, end = r.int16(), r.int32(), r.int32(), r.int64()
        r.skip_tags()
        return index, error, epoch, end

    def topic_result(r: Reader = reader) -> list:
        assert r.compact_string() == topic
        answers = r.compact_array(partition)
        r.skip_tags()
        return answers

    (answers,) = reader.compact_array(topic_result)
    reader.skip_tags()
    reader.done()
    return answers


def offset_for_leader_epoch_v0(port: int, topic: str, partition: int, leader_epoch: int) -> tuple[int, int]:
    """The oldest form: no current epoch in, no epoch out -> (error, end_offset)."""
    body = struct.pack(">i", 1) + string(topic) + struct.pack(">iii", 1, partition, leader_epoch)
    with RawConnection(port) as connection:
        reader = connection.request(OFFSET_FOR_LEADER_EPOCH, 0, body, flexible=False)
    assert reader.int32() == 1 and reader.string() == topic and reader.int32() == 1
    error, index, end = reader.int16(), reader.int32(), reader.int64()
    reader.done()
    assert index == partition
    return error, end


@pytest.mark.timeout(120)
def test_epoch_end_offsets_are_kafkas_and_survive_a_restart(broker_factory):
    broker = broker_factory()
    topic = unique_topic("epochs")
    create_topic(broker.bootstrap, topic, partitions=2)
    produce_records(broker.bootstrap, topic, sample_records(25), partition=0)
    asks = [(0, 0, 0), (0, -1, 0), (0, -1, 1), (1, 0, 0), (0, 1, 0), (5, -1, 0)]
    expected = [(0, 0, 0, 25), (0, 0, 0, 25), (0, 0, -1, -1), (1, 0, 0, 0),
                (0, UNKNOWN_LEADER_EPOCH, -1, -1), (5, UNKNOWN_TOPIC_OR_PARTITION, -1, -1)]
    assert offset_for_leader_epoch_v4(broker.port, topic, asks) == expected
    assert offset_for_leader_epoch_v0(broker.port, topic, 0, 0) == (0, 25)
    checkpoint = broker.data_dir / f"{topic}-0" / "leader-epoch-checkpoint"
    assert checkpoint.read_text() == "0\n1\n0 0\n"  # Kafka's layout: version, count, "epoch start_offset"

    broker.restart()
    assert offset_for_leader_epoch_v4(broker.port, topic, asks) == expected
    assert checkpoint.read_text() == "0\n1\n0 0\n"


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.mark.timeout(120)
def test_librdkafka_validates_a_position_with_its_leader_epoch_and_reads_on(broker):
    """A seek that names a leader epoch makes librdkafka ask OffsetForLeaderEpoch before fetching;
    the records it then reads carry the epoch Metadata reports (0)."""
    topic = unique_topic("epochs-rdkafka")
    create_topic(broker.bootstrap, topic, partitions=1)
    produce_records(broker.bootstrap, topic, sample_records(30), partition=0)
    lines = _Lines()
    logger = logging.getLogger(f"rdkafka-{topic}")
    logger.addHandler(lines)
    logger.setLevel(logging.DEBUG)
    errors = ClientErrors()
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic, "enable.auto.commit": False,
                         "auto.offset.reset": "error", "error_cb": errors, "debug": "protocol,fetch",
                         "logger": logger})
    try:
        read: list[tuple[int, int | None]] = []
        consumer.assign([TopicPartition(topic, 0, 10, leader_epoch=0)])
        deadline = time.monotonic() + 30
        while len(read) < 20:
            assert time.monotonic() < deadline, f"read {len(read)} of 20 records; errors {errors.errors}"
            for message in consumer.consume(num_messages=100, timeout=0.2):
                assert message.error() is None, message.error()
                read.append((message.offset(), message.leader_epoch()))
    finally:
        consumer.close()
    assert read == [(offset, 0) for offset in range(10, 30)]
    errors.assert_none("consumer")
    assert any("Received OffsetForLeaderEpochResponse" in line for line in lines.lines), (
        "librdkafka never validated the position")
