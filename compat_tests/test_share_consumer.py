"""KIP-932 share groups driven by confluent-kafka's ShareConsumer (librdkafka 2.16) against a real broker.

Members of one share group divide the records of one partition: each record
goes to one member per delivery attempt, a released record or one whose
acquisition lock runs out comes back with a higher delivery count, and
rejected or over-limit records are archived. Every test sets the group's
``share.auto.offset.reset`` to earliest with the admin client (Kafka's
default, latest, would skip records produced before the group first reads).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from compat_helpers import wait_until

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic  # noqa: E402

ACCEPT, RELEASE, REJECT = ck.AcknowledgeType.ACCEPT, ck.AcknowledgeType.RELEASE, ck.AcknowledgeType.REJECT
LOCK_MS = 2000
BROKER_CONFIG = {
    "group.share.heartbeat.interval.ms": "500",
    "group.share.record.lock.duration.ms": str(LOCK_MS),
    "group.share.min.record.lock.duration.ms": "1000",
    "group.share.delivery.count.limit": "3",
}


@pytest.fixture
def share_broker(broker_factory):
    return broker_factory(BROKER_CONFIG)


def _name(what: str) -> str:
    return f"share-{what}-{uuid.uuid4().hex[:8]}"


def _prepare(bootstrap: str, group: str, count: int, *, partitions: int = 1) -> str:
    """A new topic holding ``count`` records, one batch each (values v0, v1, ...), read from the start."""
    topic = _name("topic")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(10)
    resource = ConfigResource(ConfigResource.Type.GROUP, group, incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(10)
    producer = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
    for i in range(count):
        producer.produce(topic, value=f"v{i}".encode(), partition=0)
        producer.flush(10)  # one batch per record, so acquisition can split them between members
    return topic


def _consumer(bootstrap: str, group: str, topic: str, **config: Any) -> Any:
    consumer = ck.ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group, **config})
    consumer.subscribe([topic])
    return consumer


def _explicit(bootstrap: str, group: str, topic: str) -> Any:
    return _consumer(bootstrap, group, topic, **{"share.acknowledgement.mode": "explicit"})


@contextlib.contextmanager
def _explicit_reader(broker: Any, count: int) -> Iterator[tuple[str, str, Any]]:
    """A new group and topic of ``count`` records, and an explicit-mode consumer of it, closed afterwards."""
    group = _name("group")
    topic = _prepare(broker.bootstrap, group, count)
    consumer = _explicit(broker.bootstrap, group, topic)
    try:
        yield group, topic, consumer
    finally:
        consumer.close()


def _poll(consumer: Any, timeout_s: float = 1.0) -> list[Any]:
    messages = [m for m in consumer.poll(timeout_s)]
    assert [m.error() for m in messages if m.error() is not None] == []
    return messages


def _poll_until(consumer: Any, predicate, timeout_s: float, what: str) -> list[Any]:
    seen: list[Any] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        seen += _poll(consumer, 0.5)
        if predicate(seen):
            return seen
    raise AssertionError(f"timed out waiting for {what}; got {[(m.offset(), m.delivery_count()) for m in seen]}")


def test_two_members_share_one_partition_each_delivery_attempt_goes_to_one_member(share_broker) -> None:
    """Kafka's guarantee: no two deliveries of one offset with one delivery count, every offset delivered.

    A record may legitimately come twice, with a higher count the second time:
    librdkafka's close sends its closing ShareAcknowledge without accepting
    what the last poll returned, so the closing member's records are released
    and the other member, still polling, gets them again.
    """
    group = _name("group")
    count = 120
    topic = _prepare(share_broker.bootstrap, group, count)
    received: dict[str, list[tuple[int, bytes, int]]] = {"a": [], "b": []}
    stop = threading.Event()

    def member(name: str) -> None:
        consumer = _consumer(share_broker.bootstrap, group, topic, **{"max.poll.records": 5})
        try:
            while not stop.is_set():
                for m in _poll(consumer, 0.2):
                    received[name].append((m.offset(), m.value(), m.delivery_count()))
                time.sleep(0.05)  # leave the other member its turn at the partition
        finally:
            consumer.close()

    threads = [threading.Thread(target=member, args=(name,)) for name in received]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: len({offset for rows in list(received.values()) for offset, _, _ in list(rows)}) >= count,
                   30, "every record delivered")
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
    deliveries = sorted((offset, delivered) for rows in received.values() for offset, _, delivered in rows)
    assert len(deliveries) == len(set(deliveries)), f"an offset delivered twice with one count: {deliveries}"
    assert sorted({offset for offset, _ in deliveries}) == list(range(count))  # every record delivered
    assert received["a"] and received["b"], "both members got records of the one partition"
    for rows in received.values():
        assert all(value == f"v{offset}".encode() and 1 <= delivered <= 3 for offset, value, delivered in rows)


def test_a_released_record_is_redelivered_with_its_delivery_count_raised(share_broker) -> None:
    with _explicit_reader(share_broker, 3) as (_, _, consumer):
        first = _poll_until(consumer, lambda seen: len(seen) >= 3, 20, "the first delivery")
        assert [(m.offset(), m.delivery_count()) for m in first] == [(0, 1), (1, 1), (2, 1)]
        consumer.acknowledge(first[0], ACCEPT)
        consumer.acknowledge(first[1], RELEASE)
        consumer.acknowledge(first[2], ACCEPT)
        results = consumer.commit_sync(10)
        assert all(error is None for error in results.values())
        again = _poll_until(consumer, lambda seen: bool(seen), 20, "the released record")
        assert [(m.offset(), m.value(), m.delivery_count()) for m in again] == [(1, b"v1", 2)]
        consumer.acknowledge(again[0], ACCEPT)
        consumer.commit_sync(10)


def test_a_record_whose_lock_runs_out_goes_to_another_member_with_a_higher_count(share_broker) -> None:
    group = _name("group")
    topic = _prepare(share_broker.bootstrap, group, 2)
    holder = _explicit(share_broker.bootstrap, group, topic)
    other = _consumer(share_broker.bootstrap, group, topic)
    try:
        held = _poll_until(holder, lambda seen: len(seen) >= 2, 20, "the first delivery")
        acquired_at = time.monotonic()
        assert [(m.offset(), m.delivery_count()) for m in held] == [(0, 1), (1, 1)]
        # The holder never acknowledges; once the lock expires the records are the other member's.
        redelivered = _poll_until(other, lambda seen: len(seen) >= 2, 20, "the redelivery")
        assert time.monotonic() - acquired_at >= LOCK_MS / 1000 * 0.9
        assert [(m.offset(), m.value(), m.delivery_count()) for m in redelivered] == [(0, b"v0", 2), (1, b"v1", 2)]
    finally:
        other.close()
        holder.close()


def test_rejected_and_over_limit_records_are_archived(share_broker) -> None:
    with _explicit_reader(share_broker, 3) as (group, topic, consumer):
        counts = []
        for attempt in range(3):  # group.share.delivery.count.limit is 3
            seen = _poll_until(consumer, lambda seen: bool(seen), 20, f"delivery {attempt + 1}")
            by_offset = {m.offset(): m for m in seen}
            if attempt == 0:
                assert sorted(by_offset) == [0, 1, 2]
                consumer.acknowledge(by_offset[0], REJECT)
                consumer.acknowledge(by_offset[2], ACCEPT)
            assert 1 in by_offset and (sorted(by_offset) == [1] or attempt == 0)
            counts.append(by_offset[1].delivery_count())
            consumer.acknowledge(by_offset[1], RELEASE)
            consumer.commit_sync(10)
        assert counts == [1, 2, 3]
        # Record 0 was rejected and record 1 released at its third delivery: neither comes back.
        assert _poll(consumer, 3.0) == []
    from kafkacompat.client import KafkaClient

    with KafkaClient(share_broker.bootstrap) as client:
        answer = client.request(90, 0, {"groups": [{"group_id": group, "topics": None}]})
    partition = answer.groups[0].topics[0].partitions[0]
    assert (answer.groups[0].topics[0].topic_name, partition.start_offset) == (topic, 3)


def test_acknowledged_records_stay_acknowledged_across_a_restart(share_broker) -> None:
    with _explicit_reader(share_broker, 6) as (group, topic, consumer):
        seen = _poll_until(consumer, lambda seen: len(seen) >= 6, 20, "the first delivery")
        for m in seen:
            consumer.acknowledge(m, ACCEPT if m.offset() < 3 else RELEASE)
        consumer.commit_sync(10)
    share_broker.restart()
    consumer = _consumer(share_broker.bootstrap, group, topic)
    try:
        _three_to_five_come_back_counted(consumer)
    finally:
        consumer.close()


def _three_to_five_come_back_counted(consumer: Any) -> list[Any]:
    """After a restart, records 3-5 of a six-record topic come back, each delivered for the second time."""
    again = _poll_until(consumer, lambda seen: len(seen) >= 3, 60, "records 3-5 after the restart")
    assert [(m.offset(), m.value(), m.delivery_count()) for m in again] == [
        (3, b"v3", 2), (4, b"v4", 2), (5, b"v5", 2)]
    return again


@pytest.mark.parametrize("stop", ["restart", "kill"])
def test_records_acquired_but_not_acknowledged_come_back_counted_after_a_restart(share_broker, stop) -> None:
    """Accepted records never come back; acquired ones nobody acknowledged do, with delivery count 2.

    The acceptance's write holds the unacknowledged records as acquired
    once, so even a SIGKILL right after it keeps their delivery count; a
    clean stop releases them as it closes the consumer's connection. The
    holder is closed only after the restart, so it never gets to release them.
    """
    group = _name("group")
    topic = _prepare(share_broker.bootstrap, group, 6)
    holder = _explicit(share_broker.bootstrap, group, topic)
    try:
        seen = _poll_until(holder, lambda seen: len(seen) >= 6, 20, "the first delivery")
        assert [(m.offset(), m.delivery_count()) for m in seen] == [(n, 1) for n in range(6)]
        for m in seen[:3]:
            holder.acknowledge(m, ACCEPT)
        assert all(error is None for error in holder.commit_sync(10).values())
        if stop == "kill":
            share_broker.kill()
            share_broker.start()
        else:
            share_broker.restart()
    finally:
        holder.close()
    consumer = _explicit(share_broker.bootstrap, group, topic)
    try:
        for m in _three_to_five_come_back_counted(consumer):
            consumer.acknowledge(m, ACCEPT)
        consumer.commit_sync(10)
        assert _poll(consumer, 2.0) == []
    finally:
        consumer.close()


_HOLDER = """
import sys, time
import confluent_kafka as ck
bootstrap, group, topic = sys.argv[1:4]
consumer = ck.ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group,
                             "share.acknowledgement.mode": "explicit"})
consumer.subscribe([topic])
held = 0
while held < int(sys.argv[4]):
    held += len([m for m in consumer.poll(0.5) if m.error() is None])
print("held", flush=True)
time.sleep(600)
"""


def test_a_killed_consumer_s_records_go_to_another_member_long_before_their_lock_ends(broker_factory) -> None:
    """SIGKILL ends the holder's connection: its share session ends there and its records are released."""
    import subprocess
    import sys

    broker = broker_factory({**BROKER_CONFIG, "group.share.record.lock.duration.ms": "60000",
                             "group.share.max.record.lock.duration.ms": "60000"})
    group = _name("group")
    topic = _prepare(broker.bootstrap, group, 3)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, broker.bootstrap, group, topic, "3"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        holder.kill()
        holder.wait(10)
        killed_at = time.monotonic()
        other = _consumer(broker.bootstrap, group, topic)
        try:
            again = _poll_until(other, lambda seen: len(seen) >= 3, 30, "the released records")
        finally:
            other.close()
        assert time.monotonic() - killed_at < 30  # the 60 s lock did not have to run out
        assert [(m.offset(), m.value(), m.delivery_count()) for m in again] == [
            (0, b"v0", 2), (1, b"v1", 2), (2, b"v2", 2)]
    finally:
        holder.kill()
        holder.wait(10)


def test_a_read_committed_share_group_never_sees_aborted_records(share_broker) -> None:
    """``share.isolation.level`` is a group config: read_committed skips aborts, read_uncommitted sees all."""
    bootstrap = share_broker.bootstrap
    committed_group, uncommitted_group = _name("committed"), _name("uncommitted")
    topic = _prepare(bootstrap, committed_group, 1)  # v0, outside any transaction
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resources = [ConfigResource(ConfigResource.Type.GROUP, group, incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("share.isolation.level", level, incremental_operation=AlterConfigOpType.SET)])
        for group, level in ((committed_group, "read_committed"), (uncommitted_group, "read_uncommitted"))]
    for future in admin.incremental_alter_configs(resources).values():
        future.result(10)
    producer = ck.Producer({"bootstrap.servers": bootstrap, "transactional.id": _name("txn"), "linger.ms": 0})
    producer.init_transactions(30)
    for values, commit in (([b"c1", b"c2"], True), ([b"a1", b"a2"], False), ([b"c3"], True)):
        producer.begin_transaction()
        for value in values:
            producer.produce(topic, value=value, partition=0)
        producer.flush(10)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.abort_transaction(30)
    for group, expected in ((committed_group, [b"v0", b"c1", b"c2", b"c3"]),
                            (uncommitted_group, [b"v0", b"c1", b"c2", b"a1", b"a2", b"c3"])):
        consumer = _consumer(bootstrap, group, topic)
        try:
            seen = _poll_until(consumer, lambda seen, n=len(expected): len(seen) >= n, 30, f"{group}'s records")
            assert _poll(consumer, 1.0) == []
        finally:
            consumer.close()
        assert [m.value() for m in seen] == expected
