"""Transactions with kafka-python and aiokafka, unmodified: transactional producers commit and
abort, and read_committed consumers see exactly the committed records."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition as AioTopicPartition
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from compat_helpers import unique_topic
from confluent_clients import create_topic

pytestmark = pytest.mark.timeout(120)
COMMITTED = [b"c%d" % n for n in range(40)]
ABORTED = [b"a%d" % n for n in range(20)]


def kafka_python_read(bootstrap: str, topic: str, isolation: str, expected: int) -> list[bytes]:
    """Values read from partitions 0-1 until `expected` arrived, then a second's linger for extras."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    partitions = [TopicPartition(topic, 0), TopicPartition(topic, 1)]
    consumer.assign(partitions)
    consumer.seek_to_beginning(*partitions)
    values: list[bytes] = []
    try:
        deadline, linger = time.monotonic() + 30, None
        while linger is None or time.monotonic() < linger:
            assert time.monotonic() < deadline, f"read {len(values)} of {expected}"
            for records in consumer.poll(timeout_ms=200).values():
                values += [record.value for record in records]
            if linger is None and len(values) >= expected:
                linger = time.monotonic() + 1
    finally:
        consumer.close()
    return values


def test_kafka_python_transactional_producer_and_read_committed_consumer(broker):
    topic = unique_topic("txn-kafka-python")
    create_topic(broker.bootstrap, topic, partitions=2)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id=f"tid-{topic}")
    producer.init_transactions()
    for values, commit in ((COMMITTED[:20], True), (ABORTED, False), (COMMITTED[20:], True)):
        producer.begin_transaction()
        for number, value in enumerate(values):
            producer.send(topic, value=value, partition=number % 2)
        producer.flush()
        if commit:
            producer.commit_transaction()
        else:
            producer.abort_transaction()
    producer.close()
    assert sorted(kafka_python_read(broker.bootstrap, topic, "read_committed", len(COMMITTED))) == sorted(COMMITTED)
    assert sorted(kafka_python_read(broker.bootstrap, topic, "read_uncommitted", 60)) == sorted(COMMITTED + ABORTED)


async def _aiokafka_round(bootstrap: str, topic: str) -> tuple[list[bytes], list[bytes]]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, transactional_id=f"tid-{topic}")
    await producer.start()
    try:
        for values, commit in ((COMMITTED[:20], True), (ABORTED, False), (COMMITTED[20:], True)):
            await producer.begin_transaction()
            for number, value in enumerate(values):
                await producer.send(topic, value=value, partition=number % 2)
            if commit:
                await producer.commit_transaction()
            else:
                await producer.abort_transaction()
    finally:
        await producer.stop()
    return await _aiokafka_read(bootstrap, topic, "read_committed", len(COMMITTED)), \
        await _aiokafka_read(bootstrap, topic, "read_uncommitted", 60)


async def _aiokafka_read(bootstrap: str, topic: str, isolation: str, expected: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, isolation_level=isolation, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    values: list[bytes] = []
    try:
        consumer.assign([AioTopicPartition(topic, 0), AioTopicPartition(topic, 1)])
        deadline, linger = time.monotonic() + 30, None
        while linger is None or time.monotonic() < linger:
            assert time.monotonic() < deadline, f"read {len(values)} of {expected}"
            for records in (await consumer.getmany(timeout_ms=200)).values():
                values += [record.value for record in records]
            if linger is None and len(values) >= expected:
                linger = time.monotonic() + 1
    finally:
        await consumer.stop()
    return values


def test_aiokafka_transactional_producer_and_read_committed_consumer(broker):
    topic = unique_topic("txn-aiokafka")
    create_topic(broker.bootstrap, topic, partitions=2)
    committed, uncommitted = asyncio.run(_aiokafka_round(broker.bootstrap, topic))
    assert sorted(committed) == sorted(COMMITTED)
    assert sorted(uncommitted) == sorted(COMMITTED + ABORTED)
