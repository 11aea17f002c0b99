"""ConsumerGroupHeartbeat through the coordinator, with an injected clock and an in-memory topic list."""

from __future__ import annotations

import uuid

import pytest
from group_helpers import form_group, join

from kafkacompat.group.consumer.membership import METADATA_REFRESH_MS, ConsumerGroupConfig, HeartbeatRequest, TopicMeta
from kafkacompat.group.coordinator import CommittedOffset, GroupCoordinator, LeavingMember, TopicPartition
from kafkacompat.protocol.errors import ErrorCode

SESSION_MS, HEARTBEAT_MS = 6000, 500
E = ErrorCode


class FakeTopics:
    def __init__(self, **partitions: int) -> None:
        self.topics: dict[str, TopicMeta] = {}
        for name, count in partitions.items():
            self.create(name, count)

    def create(self, name: str, count: int) -> uuid.UUID:
        meta = TopicMeta(name, uuid.uuid5(uuid.NAMESPACE_DNS, name), count)
        self.topics[name] = meta
        return meta.topic_id

    def by_name(self, name):
        return self.topics.get(name)

    def by_id(self, topic_id):
        return next((m for m in self.topics.values() if m.topic_id == topic_id), None)

    def names(self):
        return list(self.topics)


def tid(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_DNS, name)


@pytest.fixture
def topics() -> FakeTopics:
    return FakeTopics(orders=6)


@pytest.fixture
def coordinator(tmp_path, clock, topics):
    made = open_coordinator(tmp_path, clock, topics)
    yield made
    made.close()


def open_coordinator(path, clock, topics, **config) -> GroupCoordinator:
    return GroupCoordinator(path, clock, topics=topics, consumer_config=ConsumerGroupConfig(
        heartbeat_interval_ms=HEARTBEAT_MS, session_timeout_ms=SESSION_MS, **config))


def beat(coordinator, member_id, epoch, group="g", **fields):
    return coordinator.consumer_group_heartbeat(HeartbeatRequest(group, member_id, epoch, **fields))


def join_consumer(coordinator, member_id, group="g", topics=("orders",), **fields):
    fields.setdefault("subscribed_topic_names", list(topics))
    return beat(coordinator, member_id, 0, group, rebalance_timeout_ms=30_000, owned={}, **fields)


def partitions(result, topic="orders") -> set[int]:
    return set(result.assignment.get(tid(topic), ())) if result.assignment is not None else set()


def settle(coordinator, members: dict[str, int], rounds: int = 4) -> dict[str, set[int]]:
    """Heartbeat each member, reporting what it was last given, until nothing changes."""
    owned = {m: set() for m in members}
    for _ in range(rounds):
        for member_id in members:
            reported = {tid("orders"): frozenset(owned[member_id])}
            result = beat(coordinator, member_id, members[member_id], owned=reported)
            assert result.error is E.NONE, result
            members[member_id] = result.member_epoch
            if result.assignment is not None:
                owned[member_id] = partitions(result)
    return owned


def test_a_joining_member_gets_an_epoch_the_interval_and_its_partitions(coordinator):
    joined = join_consumer(coordinator, "a")
    assert (joined.error, joined.member_id, joined.member_epoch, joined.heartbeat_interval_ms) == (
        E.NONE, "a", 1, HEARTBEAT_MS)
    assert partitions(joined) == set(range(6))
    steady = beat(coordinator, "a", 1)
    assert (steady.error, steady.member_epoch, steady.assignment) == (E.NONE, 1, None)
    assert coordinator.rebalances == 1  # one target assignment; the steady heartbeat computed none


def test_a_second_member_gets_half_once_the_first_has_revoked(coordinator):
    join_consumer(coordinator, "a")
    b = join_consumer(coordinator, "b")
    assert (b.member_epoch, partitions(b)) == (2, set())  # its partitions are still a's
    a = beat(coordinator, "a", 1, owned={tid("orders"): frozenset(range(6))})
    assert a.member_epoch == 1 and len(partitions(a)) == 3  # revoke the other three first
    kept = partitions(a)
    a = beat(coordinator, "a", 1, owned={tid("orders"): frozenset(kept)})
    assert (a.member_epoch, a.assignment) == (2, None)  # nothing new for a: it keeps what it kept
    b = beat(coordinator, "b", 2)
    assert partitions(b) | kept == set(range(6)) and not kept & partitions(b)
    assert coordinator.consumer_group("g").state.value == "Stable"


@pytest.mark.parametrize(("epoch", "error"), [(2, E.FENCED_MEMBER_EPOCH), (0, E.NONE)])
def test_epochs_ahead_are_fenced_and_a_rejoin_is_answered_in_full(coordinator, epoch, error):
    join_consumer(coordinator, "a")
    result = join_consumer(coordinator, "a") if epoch == 0 else beat(coordinator, "a", epoch)
    assert result.error is error
    if error is E.NONE:
        assert (result.member_epoch, partitions(result)) == (1, set(range(6)))


def test_a_lost_answer_is_forgiven_when_the_member_reports_only_partitions_it_kept(coordinator):
    join_consumer(coordinator, "a")
    join_consumer(coordinator, "b")
    a = beat(coordinator, "a", 1, owned={tid("orders"): frozenset(range(6))})
    kept = frozenset(partitions(a))
    beat(coordinator, "a", 1, owned={tid("orders"): kept})  # moves a to epoch 2; say this answer is lost
    retried = beat(coordinator, "a", 1, owned={tid("orders"): kept})
    assert (retried.error, retried.member_epoch) == (E.NONE, 2)
    assert beat(coordinator, "a", 1, owned={tid("orders"): frozenset(range(6))}).error is E.FENCED_MEMBER_EPOCH


def test_unknown_members_and_groups(coordinator):
    assert beat(coordinator, "x", 3).error is E.GROUP_ID_NOT_FOUND
    join_consumer(coordinator, "a")
    assert beat(coordinator, "x", 3).error is E.UNKNOWN_MEMBER_ID
    assert beat(coordinator, "x", -1).error is E.UNKNOWN_MEMBER_ID


@pytest.mark.parametrize(("fields", "error"), [
    ({"rebalance_timeout_ms": -1}, E.INVALID_REQUEST),
    ({"subscribed_topic_names": None}, E.INVALID_REQUEST),
    ({"owned": {tid("orders"): frozenset({1})}}, E.INVALID_REQUEST),
    ({"server_assignor": "sticky"}, E.UNSUPPORTED_ASSIGNOR),
    ({"subscribed_topic_regex": "(a)\\1"}, E.INVALID_REGULAR_EXPRESSION),
])
def test_malformed_joins_get_kafkas_errors(coordinator, fields, error):
    request = {"rebalance_timeout_ms": 30_000, "owned": {}, "subscribed_topic_names": ["orders"], **fields}
    assert beat(coordinator, "a", 0, **request).error is error


def test_the_group_refuses_members_beyond_its_maximum_size(tmp_path, clock, topics):
    coordinator = open_coordinator(tmp_path, clock, topics, max_size=2)
    try:
        assert join_consumer(coordinator, "a").error is join_consumer(coordinator, "b").error is E.NONE
        assert join_consumer(coordinator, "c").error is E.GROUP_MAX_SIZE_REACHED
        assert join_consumer(coordinator, "a").error is E.NONE  # a known member may still rejoin
    finally:
        coordinator.close()


def test_a_silent_member_is_fenced_after_the_session_timeout(coordinator, clock):
    join_consumer(coordinator, "a")
    join_consumer(coordinator, "b")
    epochs = {"a": 1, "b": 2}
    settle(coordinator, epochs)
    assert epochs == {"a": 2, "b": 2}
    clock.now += SESSION_MS - 1
    assert beat(coordinator, "b", 2).error is E.NONE
    coordinator.tick(clock.now)
    assert set(coordinator.consumer_group("g").members) == {"a", "b"}  # a's session is not over yet
    clock.now += 1
    coordinator.tick(clock.now)
    assert set(coordinator.consumer_group("g").members) == {"b"}
    assert partitions(beat(coordinator, "b", 2)) == set(range(6))


def test_a_member_that_does_not_revoke_within_its_rebalance_timeout_is_fenced(coordinator, clock):
    beat(coordinator, "a", 0, rebalance_timeout_ms=2000, owned={}, subscribed_topic_names=["orders"])
    join_consumer(coordinator, "b")
    beat(coordinator, "a", 1)  # told to revoke three
    for _ in range(4):  # a keeps its session alive but never revokes
        clock.now += 500
        beat(coordinator, "a", 1)
        beat(coordinator, "b", 2)
        coordinator.tick(clock.now)
    assert set(coordinator.consumer_group("g").members) == {"b"}
    assert beat(coordinator, "a", 1).error is E.UNKNOWN_MEMBER_ID


def test_a_static_member_leaving_for_a_while_keeps_its_partitions_for_its_successor(coordinator):
    first = join_consumer(coordinator, "a1", instance_id="i")
    left = beat(coordinator, "a1", -2, instance_id="i")
    assert (left.error, left.member_epoch) == (E.NONE, -2)
    group = coordinator.consumer_group("g")
    epoch = group.group_epoch
    back = join_consumer(coordinator, "a2", instance_id="i")
    assert (back.error, back.member_epoch, partitions(back)) == (E.NONE, first.member_epoch, set(range(6)))
    assert group.group_epoch == epoch and set(group.members) == {"a2"}  # no new assignment
    assert join_consumer(coordinator, "a3", instance_id="i").error is E.UNRELEASED_INSTANCE_ID


def test_leaving_for_good_hands_the_partitions_on(coordinator):
    join_consumer(coordinator, "a")
    join_consumer(coordinator, "b")
    settle(coordinator, {"a": 1, "b": 2})
    left = beat(coordinator, "a", -1)
    assert (left.error, left.member_id, left.member_epoch) == (E.NONE, "a", -1)
    taken_over = beat(coordinator, "b", 2)
    assert (taken_over.member_epoch, partitions(taken_over)) == (3, set(range(6)))


def test_a_new_regex_is_resolved_after_the_heartbeat_that_brings_it_as_kafka_does(coordinator, clock, topics):
    topics.create("refunds-eu", 2)
    joined = join_consumer(coordinator, "a", topics=("orders",), subscribed_topic_regex="refunds.*")
    assert (joined.member_epoch, set(joined.assignment)) == (1, {tid("orders")})  # the named topic first
    coordinator.tick(clock.now)  # the regex is resolved: the group epoch moves
    resolved = beat(coordinator, "a", 1)
    assert (resolved.member_epoch, partitions(resolved, "refunds-eu")) == (2, {0, 1})
    # Left and subscribed again, the regex waits for its resolution again.
    beat(coordinator, "a", -1)
    again = join_consumer(coordinator, "b", topics=("orders",), subscribed_topic_regex="refunds.*")
    assert set(again.assignment) == {tid("orders")}
    coordinator.tick(clock.now)
    assert partitions(beat(coordinator, "b", again.member_epoch), "refunds-eu") == {0, 1}


def test_new_and_grown_topics_are_picked_up_by_name_and_by_regex(coordinator, clock, topics):
    join_consumer(coordinator, "a", topics=(), subscribed_topic_regex="orders|refunds.*")
    coordinator.tick(clock.now)
    assert partitions(beat(coordinator, "a", 1)) == set(range(6))
    topics.create("refunds-eu", 2)
    assert beat(coordinator, "a", 2).assignment is None  # not re-read until the refresh interval
    clock.now += METADATA_REFRESH_MS
    grown = beat(coordinator, "a", 2)
    assert (grown.member_epoch, partitions(grown, "refunds-eu")) == (3, {0, 1})
    topics.create("orders", 8)
    clock.now += METADATA_REFRESH_MS
    assert partitions(beat(coordinator, "a", 3)) == set(range(8))


def test_a_regex_matches_only_topics_the_member_may_describe(coordinator, clock, topics):
    topics.create("orders-secret", 3)
    join_consumer(coordinator, "a", topics=(), subscribed_topic_regex="orders.*",
                  may_describe=lambda name: name != "orders-secret")
    coordinator.tick(clock.now)
    visible = beat(coordinator, "a", 1)
    assert set(visible.assignment) == {tid("orders")}
    # Another member's ACLs do not widen a's regex; b, who may describe everything, gets orders-secret.
    both = join_consumer(coordinator, "b", topics=(), subscribed_topic_regex="orders.*")
    assert partitions(both, "orders-secret") == {0, 1, 2}
    assert tid("orders-secret") not in coordinator.consumer_group("g").target["a"]


def test_assignments_and_epochs_survive_a_restart(tmp_path, clock, topics):
    coordinator = open_coordinator(tmp_path, clock, topics)
    join_consumer(coordinator, "a")
    join_consumer(coordinator, "b")
    owned = settle(coordinator, {"a": 1, "b": 2})
    coordinator.close()
    clock.now += SESSION_MS - 1  # the restart took most of a session; members get a fresh one
    reopened = open_coordinator(tmp_path, clock, topics)
    try:
        reopened.tick(clock.now + 1)
        group = reopened.consumer_group("g")
        assert (group.group_epoch, group.assignment_epoch, group.state.value) == (2, 2, "Stable")
        assert {m: set(group.members[m].assigned[tid("orders")]) for m in "ab"} == owned
        assert beat(reopened, "a", 2).error is E.NONE
    finally:
        reopened.close()


def commit(coordinator, member_id, epoch, version=9):
    return coordinator.commit_offsets("g", epoch, member_id, {TopicPartition("orders", 0): CommittedOffset(5)},
                                      version=version)[TopicPartition("orders", 0)]


def test_offset_commits_carry_the_member_epoch(coordinator):
    join_consumer(coordinator, "a")
    assert commit(coordinator, "a", 1) is E.NONE
    assert commit(coordinator, "a", 0) is E.STALE_MEMBER_EPOCH
    assert commit(coordinator, "a", 2) is E.FENCED_MEMBER_EPOCH
    assert commit(coordinator, "x", 1) is E.UNKNOWN_MEMBER_ID
    assert commit(coordinator, "a", 1, version=8) is E.UNSUPPORTED_VERSION
    assert commit(coordinator, "", -1) is E.UNKNOWN_MEMBER_ID  # only members commit for a group with members
    assert coordinator.offset_fetch_error("g", "a", 0) is E.STALE_MEMBER_EPOCH
    assert coordinator.offset_fetch_error("g", "a", 1) is None
    assert commit(coordinator, "not-a-member", -1) is E.UNKNOWN_MEMBER_ID


def test_a_consumer_outside_group_management_commits_to_an_empty_consumer_group_whatever_its_member_id(
        coordinator):
    # librdkafka with group.protocol=consumer and assign() sends its own member id with epoch -1.
    join_consumer(coordinator, "a")
    beat(coordinator, "a", -1)  # leaves: the consumer group is empty
    assert commit(coordinator, "rdkafka-generated-id", -1) is E.NONE
    assert commit(coordinator, "rdkafka-generated-id", 3) is E.UNKNOWN_MEMBER_ID


def test_empty_groups_change_protocol_and_keep_their_offsets_whatever_the_policy(tmp_path, clock, topics):
    coordinator = open_coordinator(tmp_path, clock, topics, migration_policy="disabled")
    (member_id,) = form_group(coordinator, 1)
    assert join_consumer(coordinator, "m").error is E.GROUP_ID_NOT_FOUND  # a classic member is there
    coordinator.leave_group("g", [LeavingMember(member_id)])
    coordinator.commit_offsets("g", -1, "", {TopicPartition("orders", 0): CommittedOffset(4)})
    assert join_consumer(coordinator, "m").error is E.NONE
    assert [g.group_type for g in coordinator.list_groups()] == ["consumer"]
    beat(coordinator, "m", -1)
    assert join(coordinator, "g").result().error in (E.NONE, E.MEMBER_ID_REQUIRED)
    assert [g.group_type for g in coordinator.list_groups()] == ["classic"]
    assert coordinator.fetch_offsets("g", None)[TopicPartition("orders", 0)].offset == 4
    coordinator.close()
