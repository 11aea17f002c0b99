"""KIP-848 consumer groups with librdkafka's ``group.protocol=consumer`` against the broker process.

The broker computes the assignments; members heartbeat with
ConsumerGroupHeartbeat and reconcile. These tests show the acceptance
behaviours with a stock client: disjoint, complete splits with both
server-side assignors, hand-over after close and after SIGKILL, every record
read once with commits, a regex picking up a later topic, the admin client's
view, a broker restart, and interplay with classic groups on the same topic
and group id.
"""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupTopicPartitions, ConsumerGroupType, KafkaError
from confluent_kafka import TopicPartition as RdTopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient

from compat_helpers import unique_topic, wait_until
from group_members import (
    ALL, KIP848_CONFIG, SESSION_TIMEOUT_MS, Member, check_takeover_after_close, check_takeover_after_kill, close_all,
    new_topic, poll_until_read, poll_until_split, produce,
)

BROKER_OVERRIDES = KIP848_CONFIG  # the module's `broker` (conftest)
CONSUMER = {"group.protocol": "consumer"}


def consumers(broker, group_id: str, topic: str, count: int, **config) -> list[Member]:
    return [Member(broker.bootstrap, group_id, topic, **CONSUMER, **config) for _ in range(count)]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("assignor", ["uniform", "range"])
def test_three_members_split_six_partitions_and_survivors_take_over_after_close(broker, assignor):
    topic, group_id = new_topic(broker, f"cg-split-{assignor}"), unique_topic("cg-split")
    group = consumers(broker, group_id, topic, 3, **{"group.remote.assignor": assignor})
    try:
        assert frozenset().union(*poll_until_split(group, 2)) == ALL
        if assignor == "range":  # contiguous ranges in member-id order
            assert sorted(sorted(m.partitions()) for m in group) == [[0, 1], [2, 3], [4, 5]]
        check_takeover_after_close(group, within_s=5)  # a clean close leaves with member epoch -1
    finally:
        close_all(group)


@pytest.mark.timeout(90)
def test_killed_member_loses_its_partitions_after_the_session_timeout(broker):
    topic, group_id = new_topic(broker, "cg-kill"), unique_topic("cg-kill")
    group = consumers(broker, group_id, topic, 2)
    try:
        check_takeover_after_kill(broker, group, group_id, topic, SESSION_TIMEOUT_MS, **CONSUMER)
    finally:
        close_all(group)


@pytest.mark.timeout(90)
def test_the_group_reads_every_record_once_and_resumes_at_its_commits(broker):
    topic, group_id = new_topic(broker, "cg-once"), unique_topic("cg-once")
    group = consumers(broker, group_id, topic, 3, **{"enable.auto.commit": False})
    try:
        poll_until_split(group, 2)
        produced = sorted((d.partition, d.offset) for d in produce(broker, topic, 300))
        read = poll_until_read(group, len(produced))
        assert sorted(read) == produced  # each record once, by exactly one member
        for member in group:
            member.consumer.commit(asynchronous=False)  # with its current member epoch (OffsetCommit v9)
    finally:
        close_all(group)
    more = sorted((d.partition, d.offset) for d in produce(broker, topic, 60))
    (successor,) = consumers(broker, group_id, topic, 1)
    try:
        assert sorted(poll_until_read([successor], len(more))) == more  # nothing before the commits again
    finally:
        successor.close()


@pytest.mark.timeout(90)
def test_a_restarted_static_member_gets_its_partitions_back_without_moving_the_others(broker):
    topic, group_id = new_topic(broker, "cg-static"), unique_topic("cg-static")
    group = [Member(broker.bootstrap, group_id, topic, **CONSUMER, **{"group.instance.id": f"i{n}"})
             for n in range(3)]
    try:
        shares = poll_until_split(group, 2)
        settled = [m.rebalances for m in group[:2]]
        group.pop().close()  # a static member leaves with epoch -2: its partitions wait for it
        group.append(Member(broker.bootstrap, group_id, topic, **CONSUMER, **{"group.instance.id": "i2"}))
        assert poll_until_split(group, 2, timeout_s=15) == shares
        assert [m.rebalances for m in group[:2]] == settled
    finally:
        close_all(group)


@pytest.mark.timeout(90)
def test_a_regex_subscription_picks_up_a_topic_created_later(broker):
    prefix = unique_topic("cg-rx")
    first = new_topic(broker, prefix, partitions=2)
    member = Member(broker.bootstrap, unique_topic("cg-rx"), f"^{prefix}-.*", **CONSUMER)
    try:
        wait_until(lambda: member.poll() or {tp.topic for tp in member.consumer.assignment()} == {first},
                   20, "the first matching topic assigned", 0)
        later = new_topic(broker, prefix, partitions=3)
        owned = wait_until(
            lambda: member.poll() or ({(tp.topic, tp.partition) for tp in member.consumer.assignment()}
                                      if len(member.consumer.assignment()) == 5 else None),
            30, "the later topic's partitions assigned", 0)
        assert owned == {(first, 0), (first, 1), (later, 0), (later, 1), (later, 2)}
    finally:
        member.close()


@pytest.mark.timeout(90)
def test_admin_client_lists_and_describes_a_consumer_group(broker):
    topic, group_id = new_topic(broker, "cg-admin"), unique_topic("cg-admin")
    group = consumers(broker, group_id, topic, 2, **{"client.id": "cg-probe"})
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    try:
        shares = poll_until_split(group, 3)
        group[0].consumer.commit(offsets=[RdTopicPartition(topic, 0, 7)], asynchronous=False)
        listed = admin.list_consumer_groups(types={ConsumerGroupType.CONSUMER}, request_timeout=15).result(timeout=20)
        assert not listed.errors
        (listing,) = [g for g in listed.valid if g.group_id == group_id]
        assert (listing.type, listing.state) == (ConsumerGroupType.CONSUMER, ConsumerGroupState.STABLE)
        classic_only = admin.list_consumer_groups(types={ConsumerGroupType.CLASSIC}).result(timeout=20)
        assert group_id not in {g.group_id for g in classic_only.valid}

        description = admin.describe_consumer_groups([group_id], request_timeout=15)[group_id].result(timeout=20)
        assert description.type == ConsumerGroupType.CONSUMER
        assert description.state == ConsumerGroupState.STABLE
        assert description.partition_assignor == "uniform"
        assigned = sorted(sorted(tp.partition for tp in m.assignment.topic_partitions) for m in description.members)
        assert assigned == sorted(sorted(s) for s in shares)
        targets = sorted(sorted(tp.partition for tp in m.target_assignment.topic_partitions)
                         for m in description.members)
        assert targets == assigned
        assert {m.client_id for m in description.members} == {"cg-probe"}
        assert {m.host for m in description.members} == {"/127.0.0.1"}
        (committed,) = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group_id, [RdTopicPartition(topic, 0)])]).values()
        assert [(tp.partition, tp.offset) for tp in committed.result(timeout=20).topic_partitions] == [(0, 7)]
    finally:
        close_all(group)


@pytest.mark.timeout(120)
def test_the_group_keeps_working_across_a_broker_restart(broker_factory):
    broker = broker_factory(KIP848_CONFIG)
    topic, group_id = new_topic(broker, "cg-restart"), unique_topic("cg-restart")
    group = consumers(broker, group_id, topic, 3, **{"enable.auto.commit": False})
    try:
        shares = poll_until_split(group, 2)
        before = sorted((d.partition, d.offset) for d in produce(broker, topic, 120))
        assert sorted(poll_until_read(group, len(before))) == before
        for member in group:
            member.consumer.commit(asynchronous=False)
        broker.restart()
        after = sorted((d.partition, d.offset) for d in produce(broker, topic, 120))
        # Members heartbeat within the session timeout and keep their partitions: no rebalance.
        assert sorted(poll_until_read(group, len(before) + len(after), timeout_s=60)) == sorted(before + after)
        assert [m.partitions() for m in group] == shares
        for member in group:  # the restart itself: connections refused while the broker was down
            member.errors.errors[:] = [e for e in member.errors.errors
                                       if e.code() not in (KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)]
        group.pop().close()
        assert frozenset().union(*poll_until_split(group, 3)) == ALL  # and it still reassigns
    finally:
        close_all(group)


@pytest.mark.timeout(90)
def test_a_classic_group_and_a_consumer_group_read_one_topic_independently(broker):
    topic = new_topic(broker, "cg-beside")
    modern = consumers(broker, unique_topic("modern"), topic, 2)
    classic_id = unique_topic("classic")
    classic = [Member(broker.bootstrap, classic_id, topic) for _ in range(2)]
    try:
        poll_until_split(modern, 3)
        poll_until_split(classic, 3)
        produced = sorted((d.partition, d.offset) for d in produce(broker, topic, 200))
        assert sorted(poll_until_read(modern, len(produced))) == produced
        assert sorted(poll_until_read(classic, len(produced))) == produced
    finally:
        close_all(modern + classic)


def _read_and_commit(members: list[Member], count: int) -> list[tuple[int, int]]:
    try:
        poll_until_split(members, 6)
        read = poll_until_read(members, count)
        members[0].consumer.commit(asynchronous=False)
        return read
    finally:
        close_all(members)


@pytest.mark.timeout(120)
def test_an_empty_group_changes_protocol_both_ways_and_keeps_its_offsets(broker):
    topic, group_id = new_topic(broker, "cg-migrate"), unique_topic("cg-migrate")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    produced = sorted((d.partition, d.offset) for d in produce(broker, topic, 60))
    assert sorted(_read_and_commit([Member(broker.bootstrap, group_id, topic)], 60)) == produced

    def group_type():
        listed = admin.list_consumer_groups(request_timeout=15).result(timeout=20)
        return next(g.type for g in listed.valid if g.group_id == group_id)

    assert group_type() == ConsumerGroupType.CLASSIC
    second = sorted((d.partition, d.offset) for d in produce(broker, topic, 60))
    # Classic to consumer: the KIP-848 member starts at the classic group's commits.
    assert sorted(_read_and_commit(consumers(broker, group_id, topic, 1), 60)) == second
    assert group_type() == ConsumerGroupType.CONSUMER
    third = sorted((d.partition, d.offset) for d in produce(broker, topic, 60))
    # And back: a classic member resumes where the consumer group committed.
    assert sorted(_read_and_commit([Member(broker.bootstrap, group_id, topic)], 60)) == third
    assert group_type() == ConsumerGroupType.CLASSIC


@pytest.mark.timeout(90)
def test_a_classic_member_joins_a_consumer_group_with_members(broker):
    """librdkafka's classic protocol joins a KIP-848 group as a classic member; the group stays a consumer group."""
    topic, group_id = new_topic(broker, "cg-busy"), unique_topic("cg-busy")
    modern = consumers(broker, group_id, topic, 1)
    try:
        poll_until_split(modern, 6)
        modern.append(Member(broker.bootstrap, group_id, topic))
        assert frozenset().union(*poll_until_split(modern, 3)) == ALL
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})  # must outlive its futures
        listed = admin.list_consumer_groups(request_timeout=15).result(timeout=20)
        assert [g.type for g in listed.valid if g.group_id == group_id] == [ConsumerGroupType.CONSUMER]
    finally:
        close_all(modern)


@pytest.mark.timeout(90)
def test_kafka_python_admin_sees_a_consumer_group_through_describe_groups(broker):
    """kafka-python has no KIP-848 consumer, but its admin reads the group as Kafka shows it in DescribeGroups."""
    topic, group_id = new_topic(broker, "cg-kp-admin"), unique_topic("cg-kp-admin")
    group = consumers(broker, group_id, topic, 2)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15_000)
    try:
        shares = poll_until_split(group, 3)
        assert {"group_id": group_id, "protocol_type": "consumer", "group_state": "Stable",
                "group_type": "consumer"} in admin.list_groups(types_filter=["consumer"])
        assert group_id not in {g["group_id"] for g in admin.list_groups(types_filter=["classic"])}
        description = admin.describe_groups([group_id])[group_id]
        assert (description["group_state"], description["protocol_type"], description["protocol_data"]) == (
            "Stable", "consumer", "uniform")
        members = description["members"]
        assigned = sorted(sorted(p for a in m["member_assignment"]["assigned_partitions"] for p in a["partitions"])
                          for m in members)
        assert assigned == sorted(sorted(s) for s in shares)
        assert [m["member_metadata"]["topics"] for m in members] == [[topic], [topic]]
    finally:
        admin.close()
        close_all(group)


@pytest.mark.timeout(60)
def test_a_consumer_protocol_client_using_assign_commits_outside_group_management(broker):
    """librdkafka sends its own member id with epoch -1 here; Kafka takes the commit for an empty group."""
    topic, group_id = new_topic(broker, "cg-assign", partitions=1), unique_topic("cg-assign")
    produce(broker, topic, 10)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group_id, "enable.auto.commit": False,
                         **CONSUMER})
    try:
        consumer.assign([RdTopicPartition(topic, 0, 0)])
        read = wait_until(lambda: consumer.poll(0.5), 20, "a record from the assigned partition")
        assert read.error() is None
        (committed,) = consumer.commit(offsets=[RdTopicPartition(topic, 0, 7)], asynchronous=False)
        assert committed.error is None
        assert [tp.offset for tp in consumer.committed([RdTopicPartition(topic, 0)], timeout=10)] == [7]
    finally:
        consumer.close()


@pytest.mark.timeout(90)
def test_a_subscription_to_a_name_and_a_regex_gets_the_named_topic_first_as_kafka_resolves_regexes_later(broker):
    prefix = unique_topic("cg-rx-late")
    matched = new_topic(broker, prefix, partitions=2)
    named = new_topic(broker, "cg-rx-named", partitions=1)
    assignments: list[set[str]] = []
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": unique_topic("cg-rx-late"), **CONSUMER})
    try:
        consumer.subscribe([f"^{prefix}-.*", named],
                           on_assign=lambda _, partitions: assignments.append({tp.topic for tp in partitions}))
        wait_until(lambda: consumer.poll(0.2) or {tp.topic for tp in consumer.assignment()} == {matched, named},
                   30, "the regex's topic assigned after the named one", 0)
        assert assignments[0] == {named}  # KIP-848 incremental assigns: the named topic, then the match
        assert set().union(*assignments) == {matched, named}
    finally:
        consumer.close()
