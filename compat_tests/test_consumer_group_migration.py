"""KIP-848 online migration with stock clients against the broker process.

Two librdkafka classic members (eager ``range`` assignor) read a topic; a
confluent-kafka ``group.protocol=consumer`` member joins the same group, which
the broker upgrades to a consumer group keeping the others as classic members;
then it leaves and the group is classic again. kafka-python classic members
take the single-member parts (joining a consumer group, policy refusals).
Throughout, no partition is in two members' assignments at once, every record
is read, a record is read twice only after a commit failed (at-least-once),
and the committed offsets carry over. The policy variants show Kafka's
refusals: GROUP_ID_NOT_FOUND for a forbidden upgrade, and a consumer group of
classic members where the downgrade is forbidden.
"""

from __future__ import annotations

from collections import Counter

import pytest
from confluent_kafka import ConsumerGroupType, KafkaError
from confluent_kafka.admin import AdminClient
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import CommitFailedError

from compat_helpers import unique_topic, wait_until
from group_members import KIP848_CONFIG, PARTITIONS, SESSION_TIMEOUT_MS, Member, new_topic, produce
from kafkacompat.client import KafkaClient

BROKER_OVERRIDES = KIP848_CONFIG  # bidirectional, Kafka's default
CONSUMER_GROUP_HEARTBEAT, CONSUMER_GROUP_DESCRIBE = 68, 69
CLASSIC_MEMBER, CONSUMER_MEMBER = 0, 1


class ClassicMember:
    """A kafka-python consumer that commits what it read after every poll, noting the polls whose commit failed."""

    def __init__(self, bootstrap: str, group_id: str, topic: str) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group_id,
                                      enable_auto_commit=False, auto_offset_reset="earliest",
                                      session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=500,
                                      request_timeout_ms=15_000)
        # Knowing the topic before the first JoinGroup spares an immediate second rebalance, after which
        # kafka-python 3.0.12 was seen to stall without sending its SyncGroup (in a plain classic group).
        wait_until(lambda: self.consumer.partitions_for_topic(topic), 20, f"kafka-python to see {topic}")
        self.consumer.subscribe([topic])
        self.read: list[tuple[int, int]] = []
        self.uncommitted: set[tuple[int, int]] = set()

    def poll(self) -> None:
        batch = [(r.partition, r.offset) for records in self.consumer.poll(50).values() for r in records]
        self.read += batch
        if batch:
            try:
                self.consumer.commit()
            except CommitFailedError:
                self.uncommitted.update(batch)  # another member may read these again

    def partitions(self) -> frozenset[int]:
        return frozenset(tp.partition for tp in self.consumer.assignment())

    def close(self) -> None:
        self.consumer.close()


class CommittingMember(Member):
    """A librdkafka member of either protocol that commits synchronously after every batch."""

    def __init__(self, bootstrap: str, group_id: str, topic: str, protocol: str) -> None:
        super().__init__(bootstrap, group_id, topic, **{"group.protocol": protocol, "enable.auto.commit": False})
        self.uncommitted: set[tuple[int, int]] = set()

    def poll(self) -> None:
        before = len(self.read)
        super().poll()
        if len(self.read) > before:
            try:
                self.consumer.commit(asynchronous=False)
            except Exception:  # noqa: BLE001 - librdkafka raises KafkaException; the records stay readable again
                self.uncommitted.update(self.read[before:])


def consumer_protocol_member(bootstrap: str, group_id: str, topic: str) -> CommittingMember:
    return CommittingMember(bootstrap, group_id, topic, "consumer")


def classic_members(bootstrap: str, group_id: str, topic: str, count: int) -> list[CommittingMember]:
    """librdkafka classic members (eager ``range,roundrobin``), polled in turn with the others.

    Groups of two or more classic members use librdkafka, not kafka-python: kafka-python 3.0.12 drops a
    JoinGroup/SyncGroup round that completes between two of its polls and sends another JoinGroup, so two
    of its members polled in turn by one thread can keep each other rebalancing (against any broker).
    """
    return [CommittingMember(bootstrap, group_id, topic, "classic") for _ in range(count)]


def poll_group(group: list, until, what: str, timeout_s: float = 60):
    """Poll every member in turn until ``until()`` is true; at every turn no partition has two owners."""

    def step():
        for member in group:
            member.poll()
        owned = Counter(p for member in group for p in member.partitions())
        assert all(count == 1 for count in owned.values()), f"a partition with two owners: {owned}"
        return until()

    return wait_until(step, timeout_s, what, 0)


def split_evenly(group: list) -> bool:
    shares = [member.partitions() for member in group]
    share = PARTITIONS // len(group)
    return all(len(s) == share for s in shares) and len(frozenset().union(*shares)) == PARTITIONS


def read_positions(group: list) -> list[tuple[int, int]]:
    return [position for member in group for position in member.read]


def check_read(group: list, produced: list[tuple[int, int]]) -> None:
    """Every record read; one read twice only where a commit had failed."""
    read = Counter(read_positions(group))
    assert set(read) == set(produced)
    again = {position for position, count in read.items() if count > 1}
    assert again <= set().union(*(member.uncommitted for member in group)), sorted(again)


def everything_read(group: list, produced: list[tuple[int, int]]):
    return lambda: set(produced) <= set(read_positions(group))


def group_listing(bootstrap: str, group_id: str) -> dict:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    try:
        return next(g for g in admin.list_groups() if g["group_id"] == group_id)
    finally:
        admin.close()


def member_types(bootstrap: str, group_id: str) -> dict[str, int]:
    """ConsumerGroupDescribe v1's member_type per member id (no stock client reads it yet)."""
    with KafkaClient(bootstrap) as client:
        (described,) = client.request(CONSUMER_GROUP_DESCRIBE, 1, {
            "group_ids": [group_id], "include_authorized_operations": False}).groups
    assert described.error_code == 0
    return {m.member_id: m.member_type for m in described.members}


def committed(bootstrap: str, group_id: str, topic: str) -> dict[int, int]:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    try:
        offsets = admin.list_group_offsets({group_id: None})[group_id]
    finally:
        admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic}


def close_all(group: list) -> None:
    for member in group:
        member.close()


@pytest.mark.timeout(240)
def test_a_classic_group_upgrades_when_a_consumer_protocol_member_joins_and_downgrades_when_it_leaves(broker):
    topic, group_id = new_topic(broker, "mig"), unique_topic("mig")
    classic = classic_members(broker.bootstrap, group_id, topic, 2)
    group: list = list(classic)
    try:
        produced = [(d.partition, d.offset) for d in produce(broker, topic, 120)]
        poll_group(group, lambda: split_evenly(group) and everything_read(group, produced)(),
                   "two classic members to split the topic and read it")
        assert (group_listing(broker.bootstrap, group_id)["group_type"],
                group_listing(broker.bootstrap, group_id)["protocol_type"]) == ("classic", "consumer")

        # Upgrade: the consumer-protocol member joins the classic group with members.
        modern = consumer_protocol_member(broker.bootstrap, group_id, topic)
        group.append(modern)
        produced += [(d.partition, d.offset) for d in produce(broker, topic, 120)]
        poll_group(group, lambda: split_evenly(group) and everything_read(group, produced)(),
                   "three members, one of them KIP-848, to share the topic and read what came next")
        admin = AdminClient({"bootstrap.servers": broker.bootstrap})  # must outlive its futures
        listed = admin.list_consumer_groups(request_timeout=15).result(timeout=20)
        assert [g.type for g in listed.valid if g.group_id == group_id] == [ConsumerGroupType.CONSUMER], listed
        types = member_types(broker.bootstrap, group_id)
        assert sorted(types.values()) == [CLASSIC_MEMBER, CLASSIC_MEMBER, CONSUMER_MEMBER]
        assert modern.partitions() and len(modern.partitions()) == PARTITIONS // 3

        # Downgrade: the last consumer-protocol member leaves; the classic members rebalance classically.
        group.remove(modern)
        modern.close()
        produced += [(d.partition, d.offset) for d in produce(broker, topic, 120)]
        poll_group(group, lambda: split_evenly(group) and everything_read(group + [modern], produced)(),
                   "the two classic members to take everything back")
        listing = group_listing(broker.bootstrap, group_id)
        assert (listing["group_type"], listing["protocol_type"], listing["group_state"]) == (
            "classic", "consumer", "Stable")
        check_read(group + [modern], produced)
        ends = Counter(p for p, _ in produced)
        assert committed(broker.bootstrap, group_id, topic) == {p: ends[p] for p in range(PARTITIONS)}
    finally:
        close_all(group)


def policy_broker(broker_factory, policy: str, prefix: str):
    """A broker with this migration policy, a new topic on it, and a group id."""
    broker = broker_factory({**KIP848_CONFIG, "group.consumer.migration.policy": policy})
    return broker, new_topic(broker, prefix), unique_topic(prefix)


def _heartbeat_join(bootstrap: str, group_id: str, topic: str):
    with KafkaClient(bootstrap) as client:
        return client.request(CONSUMER_GROUP_HEARTBEAT, 0, {
            "group_id": group_id, "member_id": "", "member_epoch": 0, "instance_id": None, "rack_id": None,
            "rebalance_timeout_ms": 30_000, "subscribed_topic_names": [topic], "server_assignor": None,
            "topic_partitions": []})


@pytest.mark.timeout(120)
@pytest.mark.parametrize("policy", ["disabled", "downgrade"])
def test_an_upgrade_the_policy_forbids_is_group_id_not_found(broker_factory, policy):
    broker, topic, group_id = policy_broker(broker_factory, policy, "mig-no")
    classic = [ClassicMember(broker.bootstrap, group_id, topic)]
    try:
        poll_group(classic, lambda: classic[0].partitions() == frozenset(range(PARTITIONS)), "the classic member")
        refused = _heartbeat_join(broker.bootstrap, group_id, topic)
        assert (refused.error_code, refused.error_message) == (
            KafkaError.GROUP_ID_NOT_FOUND,
            f"Cannot upgrade classic group {group_id} to consumer group: the online upgrade is disabled.")
        # librdkafka takes the refusal as fatal, as it does against Kafka.
        modern = consumer_protocol_member(broker.bootstrap, group_id, topic)
        try:
            def fatal():
                errors = [m.error() for m in modern.consumer.consume(num_messages=10, timeout=0.1) if m.error()]
                return next((e for e in errors + modern.errors.errors
                             if e.fatal() or e.code() == KafkaError._FATAL), None)

            assert wait_until(fatal, 30, "librdkafka's fatal error").str().endswith(
                "ConsumerGroupHeartbeat fatal error: Broker: The group id does not exist"), modern.errors.errors
        finally:
            modern.consumer.close()
        poll_group(classic, lambda: True, "the classic member")
        assert classic[0].partitions() == frozenset(range(PARTITIONS))
        assert group_listing(broker.bootstrap, group_id)["group_type"] == "classic"
    finally:
        close_all(classic)


@pytest.mark.timeout(180)
def test_without_downgrade_the_classic_members_stay_in_a_consumer_group(broker_factory):
    broker, topic, group_id = policy_broker(broker_factory, "upgrade", "mig-up")
    classic = classic_members(broker.bootstrap, group_id, topic, 2)
    group: list = list(classic)
    try:
        poll_group(group, lambda: split_evenly(group), "two classic members")
        modern = consumer_protocol_member(broker.bootstrap, group_id, topic)
        group.append(modern)
        poll_group(group, lambda: split_evenly(group), "three members")
        group.remove(modern)
        modern.close()
        poll_group(group, lambda: split_evenly(group), "the classic members to take everything back")
        assert group_listing(broker.bootstrap, group_id)["group_type"] == "consumer"
        assert sorted(member_types(broker.bootstrap, group_id).values()) == [CLASSIC_MEMBER, CLASSIC_MEMBER]
    finally:
        close_all(group)


@pytest.mark.timeout(180)
def test_a_consumer_group_with_classic_members_downgrades_under_the_downgrade_policy(broker_factory):
    broker, topic, group_id = policy_broker(broker_factory, "downgrade", "mig-down")
    modern = consumer_protocol_member(broker.bootstrap, group_id, topic)
    group: list = [modern]
    try:
        poll_group(group, lambda: len(modern.partitions()) == PARTITIONS, "the consumer-protocol member")
        classic = ClassicMember(broker.bootstrap, group_id, topic)  # joins the consumer group, any policy allows it
        group.append(classic)
        poll_group(group, lambda: split_evenly(group), "a KIP-848 and a kafka-python member")
        assert group_listing(broker.bootstrap, group_id)["group_type"] == "consumer"
        group.remove(modern)
        modern.close()
        poll_group(group, lambda: classic.partitions() == frozenset(range(PARTITIONS)), "the kafka-python member")
        assert group_listing(broker.bootstrap, group_id)["group_type"] == "classic"
    finally:
        close_all(group)
