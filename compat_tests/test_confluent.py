"""confluent-kafka (librdkafka), unmodified, against the broker process."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_END, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import (AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic, OffsetSpec, ResourceType)

from compat_helpers import assert_keys_stick_to_partitions, assert_round_trip, sample_records, unique_topic
from confluent_clients import (ClientErrors, admin_client, assigned_consumer, consume_records, create_topic,
                               describe_topic, describe_topic_configs, produce_records)

# Kafka's own defaults for topic configs nobody set.
KAFKA_TOPIC_DEFAULTS = {
    "cleanup.policy": "delete",
    "compression.type": "producer",
    "retention.ms": "604800000",
    "retention.bytes": "-1",
    "message.timestamp.type": "CreateTime",
    "max.message.bytes": "1048588",
    "segment.bytes": "1073741824",
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_idempotent_round_trip(broker, compression):
    topic = unique_topic(f"cf-{compression}")
    create_topic(broker.bootstrap, topic, partitions=3)
    records = sample_records(10_000)

    deliveries = produce_records(broker.bootstrap, topic, records, **{"compression.type": compression})
    assert {d.partition for d in deliveries} == {0, 1, 2}
    assert_keys_stick_to_partitions(records, deliveries)
    read = consume_records(broker.bootstrap, topic, [0, 1, 2], len(records))
    assert_round_trip(records, deliveries, read)


def alter_topic_config(admin, topic: str, name: str, value: str | None, operation: AlterConfigOpType) -> None:
    resource = ConfigResource(ResourceType.TOPIC, topic,
                              incremental_configs=[ConfigEntry(name, value, incremental_operation=operation)])
    (future,) = admin.incremental_alter_configs([resource], request_timeout=15).values()
    future.result(timeout=20)


def assert_topic_override(configs: dict[str, ConfigEntry], name: str, value: str) -> None:
    entry = configs[name]
    assert (entry.value, ConfigSource(entry.source), entry.is_default) == (
        value, ConfigSource.DYNAMIC_TOPIC_CONFIG, False), name


def assert_kafka_default(configs: dict[str, ConfigEntry], name: str) -> None:
    entry = configs[name]
    assert (entry.value, ConfigSource(entry.source), entry.is_default) == (
        KAFKA_TOPIC_DEFAULTS[name], ConfigSource.DEFAULT_CONFIG, True), name


@pytest.mark.timeout(60)
def test_admin_topic_lifecycle(broker):
    admin = admin_client(broker.bootstrap)
    topic = unique_topic("cf-admin")
    create_topic(broker.bootstrap, topic, partitions=2, config={"retention.ms": "3600000"})

    again = admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)], request_timeout=15)
    with pytest.raises(KafkaException) as failure:
        again[topic].result(timeout=20)
    assert failure.value.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS

    configs = describe_topic_configs(admin, topic)
    assert_topic_override(configs, "retention.ms", "3600000")
    for name in KAFKA_TOPIC_DEFAULTS.keys() - {"retention.ms"}:
        assert_kafka_default(configs, name)

    alter_topic_config(admin, topic, "retention.ms", "7200000", AlterConfigOpType.SET)
    alter_topic_config(admin, topic, "cleanup.policy", "compact", AlterConfigOpType.SET)
    configs = describe_topic_configs(admin, topic)
    assert_topic_override(configs, "retention.ms", "7200000")
    assert_topic_override(configs, "cleanup.policy", "compact")
    alter_topic_config(admin, topic, "retention.ms", None, AlterConfigOpType.DELETE)
    configs = describe_topic_configs(admin, topic)
    assert_kafka_default(configs, "retention.ms")
    assert_topic_override(configs, "cleanup.policy", "compact")

    (grown,) = admin.create_partitions([NewPartitions(topic, 4)], request_timeout=15).values()
    grown.result(timeout=20)
    assert sorted(admin.list_topics(topic, timeout=10).topics[topic].partitions) == [0, 1, 2, 3]
    records = sample_records(5)
    deliveries = produce_records(broker.bootstrap, topic, records, partition=3)
    assert [(d.partition, d.offset) for d in deliveries] == [(3, n) for n in range(5)]

    (deleted,) = admin.delete_topics([topic], operation_timeout=10, request_timeout=15).values()
    deleted.result(timeout=20)
    assert topic not in admin.list_topics(timeout=10).topics
    # Asked by name, but from a consumer: librdkafka's admin and producer handles would ask the
    # broker to auto-create it again, consumers do not.
    errors = ClientErrors()
    consumer = assigned_consumer(broker.bootstrap, errors, topic, [])
    unknown = consumer.list_topics(topic, timeout=10).topics[topic]
    consumer.close()
    assert unknown.error is not None and unknown.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
    assert topic not in admin.list_topics(timeout=10).topics
    errors.assert_none("consumer")


@pytest.mark.timeout(60)
def test_watermarks_and_offsets_for_times(broker):
    topic = unique_topic("cf-times")
    create_topic(broker.bootstrap, topic, partitions=2)
    records = sample_records(200, timestamp_step_ms=10)
    first_ts = records[0].timestamp_ms
    produce_records(broker.bootstrap, topic, records, partition=1)

    errors = ClientErrors()
    consumer = assigned_consumer(broker.bootstrap, errors, topic, [0, 1])
    assert consumer.get_watermark_offsets(TopicPartition(topic, 1), timeout=10, cached=False) == (0, 200)
    assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, 0)

    def offset_for(partition: int, timestamp_ms: int) -> int:
        (answer,) = consumer.offsets_for_times([TopicPartition(topic, partition, timestamp_ms)], timeout=10)
        assert answer.error is None
        return answer.offset

    assert offset_for(1, first_ts + 10 * 37) == 37          # exact hit
    assert offset_for(1, first_ts + 10 * 37 + 5) == 38      # first record at or after
    assert offset_for(1, first_ts - 1_000) == 0             # before everything
    assert offset_for(1, first_ts + 10 * 199) == 199        # the last record
    assert offset_for(1, first_ts + 10 * 199 + 1) == OFFSET_END  # past the end: Kafka answers -1
    assert offset_for(0, first_ts) == OFFSET_END            # empty partition
    consumer.close()
    errors.assert_none("consumer")

    admin = admin_client(broker.bootstrap)
    tp = TopicPartition(topic, 1)
    for spec, expected in ((OffsetSpec.earliest(), 0), (OffsetSpec.latest(), 200),
                           (OffsetSpec.for_timestamp(first_ts + 10 * 50 + 1), 51)):
        (future,) = admin.list_offsets({tp: spec}, request_timeout=15).values()
        assert future.result(timeout=20).offset == expected


@pytest.mark.timeout(60)
def test_metadata_and_cluster(broker):
    topic = unique_topic("cf-meta")
    create_topic(broker.bootstrap, topic, partitions=3)
    admin = admin_client(broker.bootstrap)

    metadata = admin.list_topics(timeout=10)
    assert len(metadata.brokers) == 1
    (node,) = metadata.brokers.values()
    assert (node.host, node.port) == ("127.0.0.1", broker.port)
    assert metadata.controller_id == node.id
    assert metadata.cluster_id
    described = metadata.topics[topic]
    assert described.error is None
    assert sorted(described.partitions) == [0, 1, 2]
    for partition in described.partitions.values():
        assert partition.error is None
        assert (partition.leader, partition.replicas, partition.isrs) == (node.id, [node.id], [node.id])

    cluster = admin.describe_cluster(request_timeout=15).result(timeout=20)
    assert cluster.cluster_id == metadata.cluster_id
    assert [(n.id, n.host, n.port) for n in cluster.nodes] == [(node.id, "127.0.0.1", broker.port)]
    assert cluster.controller.id == node.id

    topic_id, partition_ids = describe_topic(broker.bootstrap, topic)
    assert topic_id != (0, 0)
    assert partition_ids == [0, 1, 2]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("compression", ["none", "lz4"])
def test_log_append_time_topic_stamps_broker_time(broker, compression):
    """With message.timestamp.type=LogAppendTime consumers see the broker's clock, not the producer's."""
    topic = unique_topic("cf-appendtime")
    create_topic(broker.bootstrap, topic, partitions=1, config={"message.timestamp.type": "LogAppendTime"})
    records = sample_records(500)  # created ten minutes ago
    before_ms = int(time.time() * 1000)
    deliveries = produce_records(broker.bootstrap, topic, records, partition=0, **{"compression.type": compression})
    after_ms = int(time.time() * 1000)
    read = consume_records(broker.bootstrap, topic, [0], len(records))

    assert [(d.partition, d.offset) for d in deliveries] == [(0, n) for n in range(len(records))]
    for offset, record in enumerate(records):
        got = read[(0, offset)]
        assert (got.key, got.value, got.headers, got.timestamp_type) == (
            record.key, record.value, record.headers, "LogAppendTime")
        assert before_ms <= got.timestamp_ms <= after_ms, (offset, got.timestamp_ms, before_ms, after_ms)


@pytest.mark.timeout(60)
def test_seek_moves_an_assigned_consumer(broker):
    topic = unique_topic("ck-seek")
    create_topic(broker.bootstrap, topic, 1)
    records = sample_records(50)
    produce_records(broker.bootstrap, topic, records, partition=0)
    errors = ClientErrors()
    consumer = assigned_consumer(broker.bootstrap, errors, topic, [0])

    def next_message():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None:
                assert not message.error(), message.error()
                return message
        raise AssertionError("no record within 20 s")

    try:
        assert next_message().offset() == 0
        consumer.seek(TopicPartition(topic, 0, 37))
        moved = next_message()
        assert (moved.offset(), moved.key(), moved.value()) == (37, records[37].key, records[37].value)
        consumer.seek(TopicPartition(topic, 0, 5))
        assert next_message().offset() == 5
    finally:
        consumer.close()
    errors.assert_none("consumer")


@pytest.mark.timeout(60)
def test_incremental_append_and_subtract_edit_list_configs(broker):
    topic = unique_topic("cf-list-configs")
    create_topic(broker.bootstrap, topic, partitions=1)
    admin = admin_client(broker.bootstrap)

    def value(name: str) -> str:
        return describe_topic_configs(admin, topic)[name].value

    alter_topic_config(admin, topic, "cleanup.policy", "compact", AlterConfigOpType.APPEND)
    assert value("cleanup.policy") == "delete,compact"  # appended to Kafka's default
    alter_topic_config(admin, topic, "cleanup.policy", "compact", AlterConfigOpType.APPEND)
    assert value("cleanup.policy") == "delete,compact"  # items already present are not repeated
    alter_topic_config(admin, topic, "cleanup.policy", "delete", AlterConfigOpType.SUBTRACT)
    assert value("cleanup.policy") == "compact"
    throttled = "leader.replication.throttled.replicas"
    alter_topic_config(admin, topic, throttled, "0:1,1:1", AlterConfigOpType.APPEND)
    alter_topic_config(admin, topic, throttled, "0:1", AlterConfigOpType.SUBTRACT)
    assert value(throttled) == "1:1"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("operation", [AlterConfigOpType.APPEND, AlterConfigOpType.SUBTRACT])
def test_incremental_append_and_subtract_refuse_configs_that_are_not_lists(broker, operation):
    topic = unique_topic("cf-not-a-list")
    create_topic(broker.bootstrap, topic, partitions=1)
    admin = admin_client(broker.bootstrap)
    with pytest.raises(KafkaException) as info:
        alter_topic_config(admin, topic, "retention.ms", "5", operation)
    error = info.value.args[0]
    assert error.code() == KafkaError.INVALID_CONFIG
    assert f"Can't {operation.name} to key retention.ms because its type is not LIST." in error.str()
    assert describe_topic_configs(admin, topic)["retention.ms"].value == "604800000"
