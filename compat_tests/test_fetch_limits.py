"""Fetch response size limits: the request's max_bytes, partition_max_bytes and the broker's fetch.max.bytes.

Kafka fills partitions in request order up to the smaller of the request's
max_bytes and the broker's fetch.max.bytes; the first record batch of the
response goes whole even when larger than a limit (KIP-74), later batches
only where they fit.
"""

from __future__ import annotations

import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

from compat_helpers import unique_topic
from confluent_clients import ClientErrors, create_topic
from kafkacompat.client import KafkaClient

FETCH = 1
RECORD_BYTES = 900_000


def _produce_large_records(bootstrap: str, topic: str, partitions: int, per_partition: int) -> None:
    errors = ClientErrors()
    producer = Producer({"bootstrap.servers": bootstrap, "error_cb": errors, "linger.ms": 0,
                         "message.max.bytes": 1_000_000})
    failures = []
    for partition in range(partitions):
        for index in range(per_partition):
            producer.produce(topic, value=bytes([partition, index]) * (RECORD_BYTES // 2), partition=partition,
                             on_delivery=lambda error, _m: error and failures.append(error))
            producer.flush(30)
    assert not failures and producer.flush(30) == 0
    errors.assert_none("producer")


def test_librdkafka_with_small_fetch_max_bytes_reads_large_records_from_three_partitions(broker):
    """Issue 12, defect 1: these exact settings used to get a 19 MB response and lose the connection."""
    topic = unique_topic("fetch-max-bytes")
    create_topic(broker.bootstrap, topic, 3)
    per_partition = 6
    _produce_large_records(broker.bootstrap, topic, 3, per_partition)
    errors = ClientErrors()
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_topic("g"),
                         "enable.auto.commit": False, "error_cb": errors,
                         "fetch.max.bytes": 1_000_000, "max.partition.fetch.bytes": 20_000_000,
                         "receive.message.max.bytes": 1_000_512})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(3)])
    read: dict[tuple[int, int], bytes] = {}
    deadline = time.monotonic() + 60
    try:
        while len(read) < 3 * per_partition and time.monotonic() < deadline:
            for message in consumer.consume(num_messages=100, timeout=0.5):
                assert message.error() is None, f"consumer error: {message.error()}"
                read[(message.partition(), message.offset())] = message.value()
    finally:
        consumer.close()
    errors.assert_none("consumer")
    assert sorted(read) == [(p, o) for p in range(3) for o in range(per_partition)]
    assert all(value == bytes([p, o]) * (RECORD_BYTES // 2) for (p, o), value in read.items())


def _fetch(client: KafkaClient, topic: str, max_bytes: int, partition_max_bytes: list[int]) -> list[tuple[int, int]]:
    """(partition, record bytes returned) for one Fetch v11 from offset 0 of each partition, in response order."""
    response = client.request(FETCH, 11, {
        "replica_id": -1, "max_wait_ms": 0, "min_bytes": 1, "max_bytes": max_bytes, "isolation_level": 0,
        "session_id": 0, "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [],
        "topics": [{"topic": topic, "partitions": [
            {"partition": p, "fetch_offset": 0, "log_start_offset": -1, "current_leader_epoch": -1,
             "partition_max_bytes": limit} for p, limit in enumerate(partition_max_bytes)]}]})
    (answer,) = response.responses
    return [(p.partition_index, len(p.records or b"")) for p in answer.partitions]


def test_raw_fetch_limits_follow_kip_74(broker_factory):
    server = broker_factory({"fetch.max.bytes": "2500000"})
    topic = unique_topic("fetch-limits")
    create_topic(server.bootstrap, topic, 3)
    _produce_large_records(server.bootstrap, topic, 3, 3)
    with KafkaClient(server.bootstrap) as client:
        # Read one partition at a time to learn each batch's size on disk.
        ((_, one_batch),) = _fetch(client, topic, 1, [1, 0, 0])[:1]
        assert RECORD_BYTES < one_batch < RECORD_BYTES + 1000
        big = 50_000_000
        # max_bytes below one batch: the first partition's first batch alone, nothing else.
        assert _fetch(client, topic, 1000, [big] * 3) == [(0, one_batch), (1, 0), (2, 0)]
        # Room for two batches: both from partition 0, in request order, none from the others.
        assert _fetch(client, topic, 2 * one_batch, [big] * 3) == [(0, 2 * one_batch), (1, 0), (2, 0)]
        # partition_max_bytes of one batch each: partitions fill in order until max_bytes runs out.
        assert _fetch(client, topic, 2 * one_batch + 10, [one_batch] * 3) == [(0, one_batch), (1, one_batch), (2, 0)]
        # A later partition whose first batch is over its own limit gets nothing; the first gets one batch.
        assert _fetch(client, topic, big, [10, 10, one_batch]) == [(0, one_batch), (1, 0), (2, one_batch)]
        # The broker's fetch.max.bytes caps a request asking for more: two batches fit in 2,500,000.
        assert _fetch(client, topic, big, [big] * 3) == [(0, 2 * one_batch), (1, 0), (2, 0)]
