"""Automatic topic creation (`auto.create.topics.enable`, `num.partitions`) as clients experience it."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError
from kafka import KafkaAdminClient, KafkaProducer
from kafka.errors import KafkaTimeoutError

from compat_helpers import assert_round_trip, sample_records, unique_topic, wait_until
from confluent_clients import (ClientErrors, admin_client, consume_records, idempotent_producer, produce_records,
                               send_records)
from raw_wire import RawConnection, metadata_v4_body, read_metadata_v4

UNKNOWN_TOPIC_OR_PARTITION = 3
LEADER_NOT_AVAILABLE = 5


def raw_metadata(broker, topic: str, allow_auto_topic_creation: bool) -> tuple[int, dict[int, int]]:
    """Metadata v4 for one topic: (topic error code, {partition: error code})."""
    with RawConnection(broker.port) as connection:
        body = metadata_v4_body([topic], allow_auto_topic_creation)
        topics = read_metadata_v4(connection.request(3, 4, body, flexible=False))
    assert list(topics) == [topic]
    return topics[topic]


@pytest.mark.timeout(90)
def test_enabled_creates_with_num_partitions(broker_factory):
    broker = broker_factory({"num.partitions": "4"})
    admin = admin_client(broker.bootstrap)

    by_confluent = unique_topic("auto-cf")
    records = sample_records(400)
    deliveries = produce_records(broker.bootstrap, by_confluent, records)
    described = admin.list_topics(by_confluent, timeout=10).topics[by_confluent]
    assert described.error is None
    assert sorted(described.partitions) == [0, 1, 2, 3]
    assert_round_trip(records, deliveries, consume_records(broker.bootstrap, by_confluent, [0, 1, 2, 3], 400))

    by_kafka_python = unique_topic("auto-kp")
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    sent = producer.send(by_kafka_python, key=b"k", value=b"v").get(timeout=30)
    assert (sent.topic, sent.offset) == (by_kafka_python, 0)
    assert producer.partitions_for(by_kafka_python) == {0, 1, 2, 3}
    producer.close(timeout=10)

    # A Metadata request that does not allow creation must not create, even with the broker's switch on.
    by_raw_request = unique_topic("auto-raw")
    assert raw_metadata(broker, by_raw_request, allow_auto_topic_creation=False) == (UNKNOWN_TOPIC_OR_PARTITION, {})
    assert by_raw_request not in admin.list_topics(timeout=10).topics
    error_code, _ = raw_metadata(broker, by_raw_request, allow_auto_topic_creation=True)
    assert error_code in (0, LEADER_NOT_AVAILABLE)  # Kafka may answer while the topic is being created
    wait_until(lambda: raw_metadata(broker, by_raw_request, False) == (0, {0: 0, 1: 0, 2: 0, 3: 0}), 10,
               "the auto-created topic to have 4 ready partitions")


def files_mentioning(directory, name: str) -> list[str]:
    """Paths under `directory` whose name or (small-file) content contains `name`."""
    hits = []
    for path in directory.rglob("*"):
        if name in path.name:
            hits.append(str(path))
        elif path.is_file() and path.stat().st_size < 1_000_000 and name.encode() in path.read_bytes():
            hits.append(str(path))
    return hits


@pytest.mark.timeout(90)
def test_disabled_reports_unknown_topic_and_creates_nothing(broker_factory):
    broker = broker_factory({"auto.create.topics.enable": "false"})
    topic = unique_topic("no-auto")

    errors = ClientErrors()
    producer = idempotent_producer(broker.bootstrap, errors, **{"topic.metadata.propagation.max.ms": 1000,
                                                                "message.timeout.ms": 15000})
    outcomes = send_records(producer, topic, sample_records(3))
    assert all(isinstance(o, KafkaError) for o in outcomes), outcomes
    assert {o.code() for o in outcomes} <= {KafkaError._UNKNOWN_TOPIC, KafkaError.UNKNOWN_TOPIC_OR_PART}, outcomes
    errors.assert_none("producer")
    described = admin_client(broker.bootstrap).list_topics(topic, timeout=10).topics[topic]
    assert described.error is not None and described.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART

    kafka_python = KafkaProducer(bootstrap_servers=broker.bootstrap, max_block_ms=2000)
    with pytest.raises(KafkaTimeoutError):  # kafka-python waits for metadata that never shows the topic
        kafka_python.send(topic, value=b"v").get(timeout=10)
    kafka_python.close(timeout=10)
    kafka_python_admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    (unknown,) = kafka_python_admin.describe_topics([topic])
    assert unknown["error_code"] == UNKNOWN_TOPIC_OR_PARTITION
    kafka_python_admin.close()

    assert raw_metadata(broker, topic, allow_auto_topic_creation=True) == (UNKNOWN_TOPIC_OR_PARTITION, {})
    assert topic not in admin_client(broker.bootstrap).list_topics(timeout=10).topics
    assert files_mentioning(broker.data_dir, topic) == []
