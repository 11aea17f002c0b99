"""aiokafka, unmodified, against the broker process.

aiokafka is asyncio and the suite runs in trio mode, so each test is a plain
function that runs its own event loop with `asyncio.run`. aiokafka's snappy,
lz4 and zstd codecs come from `cramjam`.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from compat_helpers import (Delivery, ReadRecord, SampleRecord, assert_keys_stick_to_partitions,
                            assert_round_trip, sample_records, unique_topic)
from recording_proxy import stored_batches

TIMESTAMP_TYPES = {0: "CreateTime", 1: "LogAppendTime"}
CODECS = {None: 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def run(coroutine):
    return asyncio.run(asyncio.wait_for(coroutine, timeout=90))


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, records: list[SampleRecord], **config) -> list[Delivery]:
    """Idempotent producer (acks=all); one Delivery per record, in send order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, **config)
    await producer.start()
    try:
        futures = [await producer.send(topic, key=r.key, value=r.value, headers=r.headers,
                                       timestamp_ms=r.timestamp_ms) for r in records]
        metadata = await asyncio.gather(*futures)
    finally:
        await producer.stop()
    # No check of m.timestamp: aiokafka 0.14 reports the first record's CreateTime for
    # every record of a batch. The consumers' view of timestamps is checked instead.
    return [Delivery(m.partition, m.offset) for m in metadata]


def normalise(message) -> ReadRecord:
    return ReadRecord(message.key, message.value, [(k, bytes(v)) for k, v in message.headers],
                      TIMESTAMP_TYPES[message.timestamp_type], message.timestamp)


async def read_until(consumer: AIOKafkaConsumer, expected: int, timeout_s: float = 30):
    """{(partition, offset): ReadRecord} once `expected` records arrived; then checks nothing more comes."""
    read: dict[tuple[int, int], ReadRecord] = {}
    deadline = time.monotonic() + timeout_s
    while len(read) < expected:
        assert time.monotonic() < deadline, f"read {len(read)} of {expected} records in {timeout_s}s"
        for messages in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
            for message in messages:
                assert (message.partition, message.offset) not in read, "record read twice"
                read[(message.partition, message.offset)] = normalise(message)
    assert await consumer.getmany(timeout_ms=300) == {}, "records beyond what was produced"
    return read


@pytest.mark.timeout(120)
@pytest.mark.parametrize("compression", list(CODECS), ids=lambda c: c or "none")
def test_idempotent_round_trip(broker, compression):
    topic = unique_topic(f"aio-{compression or 'none'}")
    records = sample_records(3000)

    async def scenario():
        await create_topic(broker.bootstrap, topic, 3)
        deliveries = await produce(broker.bootstrap, topic, records, compression_type=compression)
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                                    enable_auto_commit=False, auto_offset_reset="earliest")
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in range(3)]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            read = await read_until(consumer, len(records))
            counts = {tp: sum(1 for d in deliveries if d.partition == tp.partition) for tp in partitions}
            assert await consumer.beginning_offsets(partitions) == {tp: 0 for tp in partitions}
            assert await consumer.end_offsets(partitions) == counts
        finally:
            await consumer.stop()
        return deliveries, read

    deliveries, read = run(scenario())
    assert {d.partition for d in deliveries} == {0, 1, 2}
    assert_keys_stick_to_partitions(records, deliveries)
    assert_round_trip(records, deliveries, read)
    # The log holds what aiokafka sent: the requested codec, one producer id with sequences.
    batches = [b for p in range(3) for b in stored_batches(broker.bootstrap, topic, p)]
    assert {b.compression for b in batches} == {CODECS[compression]}
    assert len({b.producer_id for b in batches}) == 1 and all(b.base_sequence >= 0 for b in batches)


@pytest.mark.timeout(60)
def test_admin_metadata(broker):
    topic = unique_topic("aio-admin")

    async def scenario():
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15_000)
        await admin.start()
        try:
            response = await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
            assert [(t[0], t[1]) for t in response.topic_errors] == [(topic, 0)]
            again = await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
            assert again.topic_errors[0][1] == TopicAlreadyExistsError.errno
            return (await admin.describe_cluster(), await admin.list_topics(),
                    await admin.describe_topics([topic]))
        finally:
            await admin.close()

    cluster, topics, (described,) = run(scenario())
    (node,) = cluster["brokers"]
    assert (node["host"], node["port"]) == ("127.0.0.1", broker.port)
    assert cluster["controller_id"] == node["node_id"] and cluster["cluster_id"]
    assert topic in topics
    assert (described["topic"], described["error_code"]) == (topic, 0)
    assert sorted(p["partition"] for p in described["partitions"]) == [0, 1, 2, 3]
    assert {p["leader"] for p in described["partitions"]} == {node["node_id"]}


@pytest.mark.timeout(120)
def test_group_consume_commit_and_resume(broker):
    """Two members split the partitions, commit what they read; a newcomer resumes after the commits."""
    topic, group = unique_topic("aio-group"), unique_topic("aio-group")
    records = sample_records(600)
    partitions = [TopicPartition(topic, p) for p in range(4)]

    def member() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                session_timeout_ms=10_000, heartbeat_interval_ms=500)

    async def caught_up(consumer: AIOKafkaConsumer) -> bool:
        assigned = list(consumer.assignment())
        if not assigned:
            return False
        ends = await consumer.end_offsets(assigned)
        return all([await consumer.position(tp) == ends[tp] for tp in assigned])

    async def share_work(first: AIOKafkaConsumer, second: AIOKafkaConsumer) -> dict:
        """Polls both until each owns partitions and has read them to the end."""
        read: dict[tuple[int, int], ReadRecord] = {}
        deadline = time.monotonic() + 60
        while not (await caught_up(first) and await caught_up(second)):
            assert time.monotonic() < deadline, f"group read {len(read)} of {len(records)}"
            for consumer in (first, second):
                for messages in (await consumer.getmany(timeout_ms=200)).values():
                    for message in messages:
                        read[(message.partition, message.offset)] = normalise(message)
        return read

    async def scenario():
        await create_topic(broker.bootstrap, topic, 4)
        deliveries = await produce(broker.bootstrap, topic, records)
        first, second = member(), member()
        await first.start()
        await second.start()
        try:
            read = await share_work(first, second)
            assignments = [first.assignment(), second.assignment()]
            await first.commit()
            await second.commit()
            committed = {tp: await first.committed(tp) for tp in partitions}
        finally:
            await first.stop()
            await second.stop()
        more = sample_records(10, first_timestamp_ms=records[-1].timestamp_ms + 1)
        more_deliveries = await produce(broker.bootstrap, topic, more)
        newcomer = member()
        await newcomer.start()
        try:
            resumed = await read_until(newcomer, len(more))
        finally:
            await newcomer.stop()
        return deliveries, read, assignments, committed, more, more_deliveries, resumed

    deliveries, read, assignments, committed, more, more_deliveries, resumed = run(scenario())
    assert_round_trip(records, deliveries, read)
    assert all(assignments) and assignments[0].isdisjoint(assignments[1])
    assert assignments[0] | assignments[1] == set(partitions)
    counts = {tp: sum(1 for d in deliveries if d.partition == tp.partition) for tp in partitions}
    assert committed == counts
    assert set(resumed) == {(d.partition, d.offset) for d in more_deliveries}
    assert [resumed[(d.partition, d.offset)].value for d in more_deliveries] == [r.value for r in more]


@pytest.mark.timeout(60)
def test_offsets_for_times_and_seek(broker):
    topic = unique_topic("aio-seek")
    records = sample_records(200, timestamp_step_ms=10)
    tp = TopicPartition(topic, 0)

    async def scenario():
        await create_topic(broker.bootstrap, topic, 1)
        await produce(broker.bootstrap, topic, records)
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False)
        await consumer.start()
        try:
            consumer.assign([tp])
            found = await consumer.offsets_for_times({tp: records[120].timestamp_ms - 5})
            past_end = await consumer.offsets_for_times({tp: records[-1].timestamp_ms + 1})
            consumer.seek(tp, found[tp].offset)
            after_seek = await read_until(consumer, len(records) - 120)
            consumer.seek(tp, 7)
            (again,) = (await consumer.getmany(tp, timeout_ms=2000, max_records=1))[tp]
        finally:
            await consumer.stop()
        return found, past_end, after_seek, again

    found, past_end, after_seek, again = run(scenario())
    assert (found[tp].offset, found[tp].timestamp) == (120, records[120].timestamp_ms)
    assert past_end == {tp: None}
    assert sorted(offset for _, offset in after_seek) == list(range(120, len(records)))
    assert after_seek[(0, 150)].value == records[150].value
    assert (again.offset, again.key, again.value) == (7, records[7].key, records[7].value)
