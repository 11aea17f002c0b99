"""Log compaction seen through confluent-kafka and kafka-python: the latest value per key at its
original offset, tombstoned keys gone after delete.retention.ms, keyless records refused."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer
from confluent_kafka import TopicPartition as ConfluentPartition
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaPythonPartition

from compat_helpers import unique_topic, wait_until
from confluent_clients import ClientErrors, create_topic
from raw_wire import RawConnection, produce_v9_body, read_produce_v9, record_batch

PRODUCE, INVALID_RECORD = 0, 87

CLEANER = {"log.cleaner.backoff.ms": "200"}
SEGMENT_MS = 1000
TOPIC_CONFIG = {"cleanup.policy": "compact", "segment.bytes": "4096", "segment.ms": str(SEGMENT_MS),
                "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "2000"}
KEYS, VERSIONS, TOMBSTONED = 30, 8, range(0, 30, 6)

Entry = tuple[int, bytes, bytes | None]  # offset, key, value


def history() -> list[tuple[bytes, bytes | None]]:
    """Every key written VERSIONS times, then tombstones for some of them."""
    writes = [(b"key-%02d" % k, b"value-%d-of-key-%02d|" % (v, k) + b"x" * (k * 3)) for v in range(VERSIONS)
              for k in range(KEYS)]
    return writes + [(b"key-%02d" % k, None) for k in TOMBSTONED]


def latest(entries: list[Entry]) -> list[Entry]:
    """What compaction must leave: each key's last write, minus keys whose last write is a tombstone."""
    last = {key: (offset, key, value) for offset, key, value in entries}
    return sorted(entry for entry in last.values() if entry[2] is not None)


# -- confluent-kafka -------------------------------------------------------------------


def confluent_produce(bootstrap: str, topic: str, writes: list[tuple[bytes, bytes | None]]) -> list[Entry]:
    errors = ClientErrors()
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "compression.type": "lz4",
                         "linger.ms": 5, "batch.size": 2000, "error_cb": errors})
    acked: list[Entry] = []
    for key, value in writes:
        producer.produce(topic, key=key, value=value, partition=0,
                         on_delivery=lambda error, message: acked.append(
                             (message.offset(), message.key(), message.value()) if error is None else error))
        producer.poll(0)
    assert producer.flush(30) == 0
    errors.assert_none("producer")
    assert all(isinstance(entry, tuple) for entry in acked), acked
    return sorted(acked)


def confluent_read(bootstrap: str, topic: str) -> list[Entry]:
    """Everything from offset 0 up to the end of the partition."""
    errors = ClientErrors()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"compact-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "enable.partition.eof": True, "error_cb": errors})
    consumer.assign([ConfluentPartition(topic, 0, OFFSET_BEGINNING)])
    read: list[Entry] = []
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error() is not None:
                assert message.error().code() == KafkaError._PARTITION_EOF, message.error()
                break
            read.append((message.offset(), message.key(), message.value()))
        else:
            pytest.fail("confluent consumer never reached the end of the partition")
    finally:
        consumer.close()
    errors.assert_none("consumer")
    return read


# -- kafka-python ----------------------------------------------------------------------


def kafka_python_produce(bootstrap: str, topic: str, writes: list[tuple[bytes, bytes | None]]) -> list[Entry]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip", linger_ms=5, batch_size=2000)
    try:
        futures = [(key, value, producer.send(topic, key=key, value=value, partition=0)) for key, value in writes]
        return sorted((future.get(timeout=30).offset, key, value) for key, value, future in futures)
    finally:
        producer.close()


def kafka_python_read(bootstrap: str, topic: str) -> list[Entry]:
    partition = KafkaPythonPartition(topic, 0)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    try:
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        end = consumer.end_offsets([partition])[partition]
        read: list[Entry] = []
        deadline = time.monotonic() + 20
        while consumer.position(partition) < end:
            assert time.monotonic() < deadline, f"kafka-python stuck at {consumer.position(partition)} of {end}"
            for messages in consumer.poll(timeout_ms=200).values():
                read += [(m.offset, m.key, m.value) for m in messages]
        return read
    finally:
        consumer.close()


PRODUCERS = {"confluent": confluent_produce, "kafka-python": kafka_python_produce}
READERS = {"confluent": confluent_read, "kafka-python": kafka_python_read}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("client", PRODUCERS)
def test_consumers_from_zero_see_the_latest_value_per_key_at_its_original_offset(broker_factory, client):
    broker = broker_factory(CLEANER)
    topic = unique_topic(f"compact-{client}")
    create_topic(broker.bootstrap, topic, partitions=1, config=TOPIC_CONFIG)
    produce = PRODUCERS[client]
    acked = produce(broker.bootstrap, topic, history())
    assert [offset for offset, _, _ in acked] == list(range(len(history())))
    time.sleep(SEGMENT_MS / 1000 + 0.1)
    # A later write rolls the history out of the active segment (segment.ms), which is never compacted.
    acked += produce(broker.bootstrap, topic, [(b"sentinel", b"rolls the segment")])
    expected = latest(acked)
    assert len(expected) == KEYS - len(TOMBSTONED) + 1

    wait_until(lambda: READERS[client](broker.bootstrap, topic) == expected, 30,
               f"{client} to read the compacted log")
    for reader in READERS.values():  # and the other client library reads the same
        assert reader(broker.bootstrap, topic) == expected


@pytest.mark.timeout(60)
def test_tombstones_are_served_until_delete_retention_ms_then_removed(broker_factory):
    broker = broker_factory(CLEANER)
    topic = unique_topic("tombstones")
    create_topic(broker.bootstrap, topic, partitions=1, config={**TOPIC_CONFIG, "delete.retention.ms": "4000"})
    acked = confluent_produce(broker.bootstrap, topic, [(b"a", b"1"), (b"b", b"1"), (b"a", None)])
    time.sleep(SEGMENT_MS / 1000 + 0.1)
    acked += confluent_produce(broker.bootstrap, topic, [(b"c", b"rolls the segment")])
    compacted = [(1, b"b", b"1"), (2, b"a", None), (3, b"c", b"rolls the segment")]
    wait_until(lambda: confluent_read(broker.bootstrap, topic) == compacted, 10, "the tombstone to supersede a=1")
    wait_until(lambda: confluent_read(broker.bootstrap, topic) == latest(acked), 15, "the tombstone to expire")


@pytest.mark.timeout(30)
def test_keyless_records_are_refused_on_compacted_topics(broker):
    topic = unique_topic("compact-keyless")
    create_topic(broker.bootstrap, topic, partitions=1, config={"cleanup.policy": "compact"})
    outcomes = []
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "enable.idempotence": False})
    for key in (None, b"k"):  # one batch each: Kafka refuses a batch as a whole
        producer.produce(topic, key=key, value=b"v", partition=0,
                         on_delivery=lambda error, message: outcomes.append(error))
        assert producer.flush(15) == 0
    assert [error.code() if error else None for error in outcomes] == [KafkaError.INVALID_RECORD, None]
    assert confluent_read(broker.bootstrap, topic) == [(0, b"k", b"v")]


@pytest.mark.timeout(30)
def test_only_the_keyless_records_of_a_batch_fail_with_invalid_record(broker):
    # KIP-467: the broker names each bad record, so librdkafka fails exactly
    # those with INVALID_RECORD and the rest of their batch as collateral.
    topic = unique_topic("compact-record-errors")
    create_topic(broker.bootstrap, topic, partitions=1, config={"cleanup.policy": "compact"})
    outcomes: dict[int, KafkaError | None] = {}
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "enable.idempotence": False,
                         "linger.ms": 500})
    keys = [b"a", None, b"c", None, None, b"f"]
    for number, key in enumerate(keys):
        producer.produce(topic, key=key, value=b"v%d" % number, partition=0,
                         on_delivery=lambda error, message, number=number: outcomes.__setitem__(number, error))
    assert producer.flush(15) == 0
    codes = [outcomes[number].code() if outcomes[number] else None for number in range(len(keys))]
    collateral, bad = KafkaError._INVALID_DIFFERENT_RECORD, KafkaError.INVALID_RECORD
    assert codes == [collateral, bad, collateral, bad, bad, collateral]
    assert confluent_read(broker.bootstrap, topic) == []


def test_produce_names_each_keyless_record_in_record_errors(broker):
    topic = unique_topic("compact-raw-record-errors")
    create_topic(broker.bootstrap, topic, partitions=1, config={"cleanup.policy": "compact"})
    batch = record_batch([(b"a", b"1"), (None, b"2"), (b"c", b"3"), (None, b"4")], int(time.time() * 1000))
    details: dict = {}
    with RawConnection(broker.port) as connection:
        answer = read_produce_v9(connection.request(PRODUCE, 9, produce_v9_body(topic, 0, batch), flexible=True),
                                 details)
    assert answer == {(topic, 0): (INVALID_RECORD, -1)}
    record_errors, error_message = details[(topic, 0)]
    why = f"Compacted topic cannot accept message without key in topic partition {topic}-0"
    assert record_errors == [(1, why), (3, why)]
    assert error_message == ("One or more records have been rejected due to 2 record errors in total, and only "
                             f"showing the first three errors at most: [RecordError(batchIndex=1, message='{why}'), "
                             f"RecordError(batchIndex=3, message='{why}')]")
