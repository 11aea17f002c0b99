"""Consumer groups with stock clients against the broker process: split, move, fail over, resume.

librdkafka (confluent-kafka) members run in this process and are polled in
turn (their rebalances happen inside poll); the member that must die without
a word runs in a child process that gets SIGKILL. kafka-python and aiokafka
show that committed offsets survive a broker restart and that consumers
resume exactly there.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition as AioTopicPartition
from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions
from confluent_kafka import TopicPartition as RdTopicPartition
from confluent_kafka.admin import AdminClient
from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka import TopicPartition as KpTopicPartition

from compat_helpers import unique_topic, wait_until
from group_members import (
    ALL, SESSION_TIMEOUT_MS, Member, check_takeover_after_close, check_takeover_after_kill, close_all, members,
    new_topic, poll_until_read, poll_until_split, produce,
)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("assignor", ["range", "cooperative-sticky"])
def test_three_members_split_and_survivors_take_over_after_close(broker, assignor):
    topic, group_id = new_topic(broker, f"split-{assignor}"), unique_topic("split")
    group = members(broker, group_id, topic, 3, **{"partition.assignment.strategy": assignor})
    try:
        assert frozenset().union(*poll_until_split(group, 2)) == ALL
        check_takeover_after_close(group, within_s=10)  # a clean close sends LeaveGroup
    finally:
        close_all(group)


@pytest.mark.timeout(90)
def test_killed_member_loses_its_partitions_after_session_timeout(broker):
    topic, group_id = new_topic(broker, "kill"), unique_topic("kill")
    group = members(broker, group_id, topic, 2)
    try:
        check_takeover_after_kill(broker, group, group_id, topic, SESSION_TIMEOUT_MS,
                                  **{"session.timeout.ms": SESSION_TIMEOUT_MS, "heartbeat.interval.ms": 500})
    finally:
        close_all(group)


@pytest.mark.timeout(90)
def test_two_groups_each_read_everything_once(broker):
    topic = new_topic(broker, "two-groups")
    first = members(broker, unique_topic("first"), topic, 2)
    second = members(broker, unique_topic("second"), topic, 1)
    try:
        poll_until_split(first, 3)
        poll_until_split(second, 6)
        deliveries = produce(broker, topic, 300)
        produced = sorted((d.partition, d.offset) for d in deliveries)
        for group in (first, second):
            read = poll_until_read(group, len(produced))
            assert sorted(read) == produced  # every record, once per group
        for member, share in zip(first, (m.partitions() for m in first)):
            assert {partition for partition, _ in member.read} <= share
    finally:
        close_all(first + second)


@pytest.mark.timeout(90)
def test_static_member_restart_keeps_partitions_without_rebalance(broker):
    topic, group_id = new_topic(broker, "static"), unique_topic("static")
    static = {"session.timeout.ms": 20_000}
    group = [Member(broker.bootstrap, group_id, topic, **{"group.instance.id": f"i{n}", **static}) for n in range(3)]
    try:
        before = poll_until_split(group, 2)
        rebalances = [m.rebalances for m in group]
        group.pop().close()  # a static member leaves no LeaveGroup behind
        time.sleep(1)
        group.append(Member(broker.bootstrap, group_id, topic, **{"group.instance.id": "i2", **static}))
        after = poll_until_split(group, 2, timeout_s=15)
        assert after == before
        for _ in range(40):  # two seconds more: the others must not have been disturbed
            for member in group:
                member.poll()
        assert [m.rebalances for m in group[:2]] == rebalances[:2]
    finally:
        close_all(group)


@pytest.mark.timeout(90)
def test_auto_offset_reset_earliest_and_latest(broker):
    topic = new_topic(broker, "reset", partitions=2)
    old = produce(broker, topic, 40)
    earliest = members(broker, unique_topic("earliest"), topic, 1)
    latest = members(broker, unique_topic("latest"), topic, 1, **{"auto.offset.reset": "latest"})
    try:
        assert sorted(poll_until_read(earliest, len(old))) == sorted((d.partition, d.offset) for d in old)

        # A latest-reset member only sees what arrives after it found the end: send
        # markers until one gets through, then the real records.
        markers: list = []

        def saw_a_marker():
            markers.extend(produce(broker, topic, 1))
            for _ in range(10):
                latest[0].poll()
            return latest[0].read

        wait_until(saw_a_marker, 30, "the latest-reset member to read a marker", 0)
        new = produce(broker, topic, 10)
        read = set(poll_until_read(latest, 11))
        assert read.isdisjoint((d.partition, d.offset) for d in old)
        assert read >= {(d.partition, d.offset) for d in new}
        assert read <= {(d.partition, d.offset) for d in new + markers}
    finally:
        close_all(earliest + latest)


@pytest.mark.timeout(90)
def test_admin_client_lists_and_describes_groups(broker):
    topic, group_id = new_topic(broker, "admin"), unique_topic("admin")
    group = members(broker, group_id, topic, 2, **{"client.id": "admin-probe"})
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    simple_id = unique_topic("simple")
    simple = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": simple_id})
    try:
        shares = poll_until_split(group, 3)
        simple.commit(offsets=[RdTopicPartition(topic, 0, 5)], asynchronous=False)

        listed = admin.list_consumer_groups(request_timeout=15).result(timeout=20)
        assert not listed.errors
        by_id = {g.group_id: g for g in listed.valid}
        assert by_id[group_id].state == ConsumerGroupState.STABLE
        assert not by_id[group_id].is_simple_consumer_group
        assert by_id[simple_id].state == ConsumerGroupState.EMPTY and by_id[simple_id].is_simple_consumer_group
        stable_only = admin.list_consumer_groups(states={ConsumerGroupState.STABLE}).result(timeout=20)
        assert group_id in {g.group_id for g in stable_only.valid}
        assert simple_id not in {g.group_id for g in stable_only.valid}

        description = admin.describe_consumer_groups([group_id], request_timeout=15)[group_id].result(timeout=20)
        assert description.state == ConsumerGroupState.STABLE
        assert description.partition_assignor == "range"
        assert not description.is_simple_consumer_group
        assigned = sorted(sorted(tp.partition for tp in m.assignment.topic_partitions) for m in description.members)
        assert assigned == sorted(sorted(s) for s in shares)
        assert {m.client_id for m in description.members} == {"admin-probe"}
        assert {m.host for m in description.members} == {"/127.0.0.1"}

        (committed,) = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(simple_id, [RdTopicPartition(topic, 0)])]).values()
        assert [(tp.partition, tp.offset) for tp in committed.result(timeout=20).topic_partitions] == [(0, 5)]
    finally:
        simple.close()
        close_all(group)


@pytest.mark.timeout(120)
def test_kafka_python_commits_survive_broker_restart(broker_factory):
    broker = broker_factory()
    topic, group_id = new_topic(broker, "kp-restart", partitions=2), unique_topic("kp-restart")
    produced = {(d.partition, d.offset) for d in produce(broker, topic, 60)}

    def consumer() -> KafkaConsumer:
        return KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group_id,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=500,
                             request_timeout_ms=15_000)

    def read(kc: KafkaConsumer, at_least: int, seen: list) -> None:
        deadline = time.monotonic() + 30
        start = len(seen)
        while len(seen) - start < at_least:
            assert time.monotonic() < deadline, f"read {len(seen) - start} of {at_least}"
            for records in kc.poll(timeout_ms=200, max_records=10).values():
                seen.extend((r.partition, r.offset) for r in records)

    partitions = [KpTopicPartition(topic, p) for p in range(2)]
    first = consumer()
    seen: list[tuple[int, int]] = []
    read(first, 20, seen)
    first.commit()
    broker.restart()
    read(first, 10, seen)  # the same member keeps going after the restart...
    first.commit()  # ...and may still commit: the group came back with it
    committed = {tp.partition: first.committed(tp) for tp in partitions}
    first.close()
    for partition in range(2):
        offsets = [o for p, o in seen if p == partition]
        assert committed[partition] == max(offsets) + 1 if offsets else committed[partition] in (None, 0)

    second = consumer()
    rest: list[tuple[int, int]] = []
    read(second, len(produced) - len(seen), rest)
    second.close()
    assert sorted(seen + rest) == sorted(produced)  # resumed exactly at the commits: no gap, no repeat
    assert {p: min(o for q, o in rest if q == p) for p in {q for q, _ in rest}} == {
        p: committed[p] for p in {q for q, _ in rest}}


@pytest.mark.timeout(120)
def test_aiokafka_resumes_at_commits_after_broker_restart(broker_factory):
    broker = broker_factory()
    topic, group_id = new_topic(broker, "aio-restart", partitions=2), unique_topic("aio-restart")
    produced = sorted((d.partition, d.offset) for d in produce(broker, topic, 60))
    partitions = [AioTopicPartition(topic, p) for p in range(2)]

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group_id,
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=500)

    async def read(ac: AIOKafkaConsumer, at_least: int) -> list[tuple[int, int]]:
        seen: list[tuple[int, int]] = []
        deadline = time.monotonic() + 30
        while len(seen) < at_least:
            assert time.monotonic() < deadline, f"read {len(seen)} of {at_least}"
            for messages in (await ac.getmany(timeout_ms=200, max_records=10)).values():
                seen.extend((m.partition, m.offset) for m in messages)
        return seen

    async def before_restart():
        first = consumer()
        await first.start()
        try:
            seen = await read(first, 25)
            await first.commit()
            return seen, {tp.partition: await first.committed(tp) for tp in partitions}
        finally:
            await first.stop()

    async def after_restart(remaining: int):
        second = consumer()
        await second.start()
        try:
            committed = {tp.partition: await second.committed(tp) for tp in partitions}
            return committed, await read(second, remaining)
        finally:
            await second.stop()

    seen, committed = asyncio.run(before_restart())
    broker.restart()
    committed_after, rest = asyncio.run(after_restart(len(produced) - len(seen)))
    assert committed_after == committed
    assert sorted(seen + rest) == produced
    for partition, first_offset in {p: min(o for q, o in rest if q == p) for p, _ in rest}.items():
        assert first_offset == (committed[partition] or 0)



class _AssignmentRecorder(ConsumerRebalanceListener):
    def __init__(self, seen: list[frozenset[int]]) -> None:
        self.seen = seen

    def on_partitions_revoked(self, revoked) -> None:
        pass

    def on_partitions_assigned(self, assigned) -> None:
        self.seen.append(frozenset(tp.partition for tp in assigned))


def _member(client: str, bootstrap: str, topic: str, group: str, seen: list[frozenset[int]],
            stop: threading.Event) -> None:
    """One group member polling in its own thread until `stop`; every assignment it receives goes to `seen`."""
    if client == "confluent-kafka":
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                             "session.timeout.ms": SESSION_TIMEOUT_MS})
        consumer.subscribe([topic], on_assign=lambda c, parts: seen.append(frozenset(p.partition for p in parts)))
        poll = lambda: consumer.poll(0.05)  # noqa: E731
    else:
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                 session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=1000)
        consumer.subscribe([topic], listener=_AssignmentRecorder(seen))
        poll = lambda: consumer.poll(50)  # noqa: E731
    try:
        while not stop.is_set():
            poll()
    finally:
        consumer.close()


@pytest.mark.timeout(90)
@pytest.mark.parametrize("client", ["confluent-kafka", "kafka-python"])
@pytest.mark.parametrize("gap_ms", [1, 200])
def test_members_started_together_share_the_first_generation(broker_factory, client, gap_ms):
    # The broker's own group.initial.rebalance.delay.ms, not the tests' 0.
    broker = broker_factory({"group.initial.rebalance.delay.ms": None})
    topic = new_topic(broker, "together", partitions=4)
    group = unique_topic("together-group")
    seen: list[list[frozenset[int]]] = [[], []]
    stop = threading.Event()
    threads = []
    for number in range(2):
        if number:
            time.sleep(gap_ms / 1000)
        threads.append(threading.Thread(target=_member, args=(client, broker.bootstrap, topic, group,
                                                              seen[number], stop)))
        threads[-1].start()
    try:
        wait_until(lambda: all(seen), 20, "both members assigned")
        generations = re.findall(rf"group {re.escape(group)}: generation (\d+) with (\d+) members", broker.log_text())
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
    # One first generation: each member is handed its half at once. (A client may rejoin later on its
    # own, as kafka-python does when its metadata changed since it joined; Kafka rebalances then too.)
    assert generations[0] == ("1", "2"), generations
    assert sorted(map(len, (seen[0][0], seen[1][0]))) == [2, 2] and seen[0][0] | seen[1][0] == frozenset(range(4))
