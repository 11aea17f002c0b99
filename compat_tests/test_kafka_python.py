"""kafka-python 3.x, unmodified and with its default settings, against the broker process."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from compat_helpers import (Delivery, ReadRecord, assert_keys_stick_to_partitions, assert_round_trip,
                            sample_records, unique_topic, wait_until)
from recording_proxy import stored_batches

TIMESTAMP_TYPES = {0: "CreateTime", 1: "LogAppendTime"}


@pytest.fixture
def admin(broker):
    client = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15_000)
    yield client
    client.close()


def new_consumer(broker) -> KafkaConsumer:
    """No group: partitions are assigned explicitly, nothing is committed."""
    return KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                         auto_offset_reset="earliest", request_timeout_ms=15_000)


def read_everything(consumer: KafkaConsumer, expected_count: int, timeout_s: float = 60):
    read: dict[tuple[int, int], ReadRecord] = {}
    deadline = time.monotonic() + timeout_s
    while len(read) < expected_count:
        assert time.monotonic() < deadline, f"read {len(read)} of {expected_count} records in {timeout_s}s"
        for records in consumer.poll(timeout_ms=500, max_records=5000).values():
            for r in records:
                assert (r.partition, r.offset) not in read, f"record at {(r.partition, r.offset)} read twice"
                read[(r.partition, r.offset)] = ReadRecord(
                    r.key, r.value, list(r.headers), TIMESTAMP_TYPES[r.timestamp_type], r.timestamp)
    assert consumer.poll(timeout_ms=500) == {}, "records beyond what was produced"
    return read


@pytest.mark.timeout(120)
def test_default_producer_round_trip(broker, admin):
    topic = unique_topic("kp-roundtrip")
    admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}})
    records = sample_records(10_000)

    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    # kafka-python silently drops idempotence if ApiVersions makes the broker look too old.
    assert producer.config["enable_idempotence"] is True
    assert producer.config["acks"] == -1
    futures = [producer.send(topic, key=r.key, value=r.value, headers=r.headers, timestamp_ms=r.timestamp_ms)
               for r in records]
    producer.flush(timeout=60)
    metadata = [f.get(timeout=10) for f in futures]
    producer.close(timeout=10)

    assert [m.timestamp for m in metadata] == [r.timestamp_ms for r in records]
    deliveries = [Delivery(m.partition, m.offset) for m in metadata]
    assert {d.partition for d in deliveries} == {0, 1, 2}
    assert_keys_stick_to_partitions(records, deliveries)

    consumer = new_consumer(broker)
    partitions = [TopicPartition(topic, p) for p in range(3)]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    read = read_everything(consumer, len(records))
    counts = {p: sum(1 for d in deliveries if d.partition == p.partition) for p in partitions}
    assert consumer.beginning_offsets(partitions) == {p: 0 for p in partitions}
    assert consumer.end_offsets(partitions) == counts
    consumer.close()
    assert_round_trip(records, deliveries, read)


@pytest.mark.timeout(60)
def test_metadata_and_delete_topic(broker, admin):
    topic = unique_topic("kp-meta")
    admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}})

    cluster = admin.describe_cluster()
    assert len(cluster["brokers"]) == 1
    (node,) = cluster["brokers"]
    assert (node["host"], node["port"]) == ("127.0.0.1", broker.port)
    assert cluster["controller_id"] == node["broker_id"]
    assert cluster["cluster_id"]

    assert topic in admin.list_topics()
    (described,) = admin.describe_topics([topic])
    assert (described["name"], described["error_code"], described["is_internal"]) == (topic, 0, False)
    assert sorted(p["partition_index"] for p in described["partitions"]) == [0, 1, 2]
    for partition in described["partitions"]:
        assert partition["error_code"] == 0
        assert partition["leader_id"] == node["broker_id"]
        assert partition["replica_nodes"] == [node["broker_id"]]
        assert partition["isr_nodes"] == [node["broker_id"]]

    consumer = new_consumer(broker)
    assert consumer.partitions_for_topic(topic) == {0, 1, 2}
    assert topic in consumer.topics()
    consumer.close()

    admin.delete_topics([topic])
    wait_until(lambda: topic not in admin.list_topics(), 10, "the deleted topic to leave the topic list")
    (gone,) = admin.describe_topics([topic])
    assert gone["error_code"] == 3  # UNKNOWN_TOPIC_OR_PARTITION


CODECS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("compression", sorted(CODECS))
def test_compressed_idempotent_round_trip(broker, admin, compression):
    topic = unique_topic(f"kp-{compression}")
    admin.create_topics({topic: {"num_partitions": 2, "replication_factor": 1}})
    records = sample_records(2_000)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=compression, linger_ms=20)
    futures = [producer.send(topic, key=r.key, value=r.value, headers=r.headers, timestamp_ms=r.timestamp_ms)
               for r in records]
    producer.flush(timeout=60)
    deliveries = [Delivery(m.partition, m.offset) for m in (f.get(timeout=10) for f in futures)]
    producer.close(timeout=10)

    # What reached the log really is compressed with the codec asked for, by one idempotent producer.
    # kafka-python sends a batch that compression would not shrink (a small one, cut by linger) uncompressed.
    batches = [b for p in (0, 1) for b in stored_batches(broker.bootstrap, topic, p)]
    codecs = {b.compression for b in batches}
    assert CODECS[compression] in codecs and codecs <= {0, CODECS[compression]}
    compressed = [b for b in batches if b.compression == CODECS[compression]]
    assert sum(b.records_count for b in compressed) > len(records) // 2
    assert len({b.producer_id for b in batches}) == 1 and all(b.producer_id >= 0 for b in batches)

    consumer = new_consumer(broker)
    consumer.assign([TopicPartition(topic, p) for p in (0, 1)])
    consumer.seek_to_beginning()
    read = read_everything(consumer, len(records))
    consumer.close()
    assert_round_trip(records, deliveries, read)


@pytest.mark.timeout(60)
def test_offsets_for_times_and_seek(broker, admin):
    topic = unique_topic("kp-times")
    admin.create_topics({topic: {"num_partitions": 1, "replication_factor": 1}})
    records = sample_records(100, first_timestamp_ms=1_700_000_000_000, timestamp_step_ms=10)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    for r in records:
        producer.send(topic, key=r.key, value=r.value, partition=0, timestamp_ms=r.timestamp_ms)
    producer.flush(timeout=30)
    producer.close(timeout=10)

    consumer = new_consumer(broker)
    tp = TopicPartition(topic, 0)
    found = consumer.offsets_for_times({tp: records[42].timestamp_ms - 5})[tp]
    assert (found.offset, found.timestamp) == (42, records[42].timestamp_ms)
    assert consumer.offsets_for_times({tp: records[-1].timestamp_ms + 1})[tp] is None
    consumer.assign([tp])
    consumer.seek(tp, found.offset)
    first = next(r for batch in iter(lambda: consumer.poll(timeout_ms=500), None) for r in batch.get(tp, []))
    assert (first.offset, first.value) == (42, records[42].value)
    consumer.close()
