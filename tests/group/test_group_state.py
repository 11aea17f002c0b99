"""The state table, protocol bookkeeping, timers and the small value types."""

from __future__ import annotations

import pytest
from group_helpers import subscription

from kafkacompat.group.classic.consumer_protocol import subscribed_topics
from kafkacompat.group.results import PendingResult
from kafkacompat.group.classic.state import TRANSITIONS, Group, GroupState, Member
from kafkacompat.group.timers import Timers
from kafkacompat.protocol.errors import ErrorCode

S = GroupState


def member(member_id: str, protocols, instance: str | None = None) -> Member:
    return Member(member_id, instance, "client", "/127.0.0.1", 30_000, 10_000, list(protocols))


@pytest.mark.parametrize(
    ("source", "target"),
    [(S.EMPTY, S.STABLE), (S.EMPTY, S.COMPLETING_REBALANCE), (S.STABLE, S.EMPTY), (S.PREPARING_REBALANCE, S.STABLE)],
)
def test_illegal_transitions_are_refused(source, target):
    group = Group("g", 0)
    group.state = source
    with pytest.raises(RuntimeError):
        group.transition_to(target, 1)


def test_every_state_can_die_and_the_table_is_complete():
    assert set(TRANSITIONS) == set(GroupState)
    assert all(state in TRANSITIONS[S.DEAD] for state in GroupState)


def test_transition_records_time():
    group = Group("g", 5)
    group.transition_to(S.PREPARING_REBALANCE, 17)
    assert group.state is S.PREPARING_REBALANCE and group.state_timestamp_ms == 17


def test_protocol_support_follows_membership():
    group = Group("g", 0)
    group.add(member("a", [("range", b""), ("roundrobin", b"")]), "consumer")
    group.state = S.STABLE
    assert group.supports_protocols("consumer", ["roundrobin"])
    group.add(member("b", [("roundrobin", b"")]), "consumer")
    assert not group.supports_protocols("consumer", ["range"])
    assert not group.supports_protocols("connect", ["roundrobin"])
    assert group.select_protocol() == "roundrobin"
    group.remove("b")
    assert group.supports_protocols("consumer", ["range"])


def test_leader_passes_to_oldest_remaining_member():
    group = Group("g", 0)
    for name in "abc":
        group.add(member(name, [("range", b"")]), "consumer")
    assert group.leader_id == "a"
    group.remove("a")
    assert group.leader_id == "b"


def test_static_replacement_moves_identity_and_fences_old_requests():
    group = Group("g", 0)
    old = member("old", [("range", b"")], instance="i")
    old.assignment = b"mine"
    waiting: PendingResult = PendingResult()
    old.join_waiter = waiting
    group.add(old, "consumer")
    replaced = group.replace_static_member("i", "old", "new")
    assert waiting.result().error == ErrorCode.FENCED_INSTANCE_ID
    assert replaced.assignment == b"mine" and group.leader_id == "new"
    assert group.validate_member("old", "i") == ErrorCode.FENCED_INSTANCE_ID
    assert group.validate_member("new", "i") is None
    assert group.validate_member("new", "other") == ErrorCode.UNKNOWN_MEMBER_ID


def test_subscribed_topics_of_consumer_group():
    group = Group("g", 0)
    group.add(member("a", [("range", subscription("t", "u"))]), "consumer")
    group.add(member("b", [("range", subscription("v"))]), "consumer")
    group.protocol_name = "range"
    assert group.subscribed_topics() == {"t", "u", "v"}


@pytest.mark.parametrize("garbage", [b"", b"\x00\x00\x00\x00\x00\x05\x00\x01t", b"\x00\x00\xff\xff\xff\xff"])
def test_unreadable_subscription_is_unknown(garbage):
    assert subscribed_topics(garbage) is None


def test_timers_fire_in_order_and_reschedule_replaces():
    timers = Timers()
    timers.schedule("a", 30)
    timers.schedule("b", 10)
    timers.schedule("a", 20)
    timers.schedule("c", 5)
    timers.cancel("c")
    assert timers.next_deadline() == 10
    assert timers.pop_due(15) == "b"
    assert timers.pop_due(15) is None
    assert timers.pop_due(25) == "a"
    assert timers.next_deadline() is None


def test_timers_stay_small_under_constant_rescheduling():
    timers = Timers()
    for i in range(10_000):
        timers.schedule(("session", i % 3), i)
    assert len(timers._heap) <= 4 * 3 + 64
    assert timers.next_deadline() == 9_997


def test_pending_result_callbacks():
    seen = []
    pending: PendingResult[int] = PendingResult()
    pending.add_done_callback(seen.append)
    assert not pending.done()
    with pytest.raises(RuntimeError):
        pending.result()
    pending.resolve(3)
    pending.add_done_callback(seen.append)
    assert seen == [3, 3] and pending.result() == 3
    with pytest.raises(RuntimeError):
        pending.resolve(4)
