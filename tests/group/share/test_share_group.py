"""The share group state machine: joins, epochs, fencing, leaving, the simple assignor, topic changes."""

from __future__ import annotations

import uuid

import pytest

from kafkacompat.group.share.group import ShareGroup, ShareGroupState, simple_assignment
from kafkacompat.protocol.errors import ErrorCode

TOPIC_IDS = {"t": uuid.UUID(int=1), "u": uuid.UUID(int=2)}
SESSION_MS = 1000


class Topics:
    """What the log would say about topics: name -> partition count."""

    def __init__(self, **counts: int) -> None:
        self.counts = counts

    def __call__(self, name: str):
        return (TOPIC_IDS[name], self.counts[name]) if name in self.counts else None


def beat(group: ShareGroup, member: str, epoch: int, topics: Topics, subscribed=None, now: int = 0):
    return group.heartbeat(member, epoch, rack_id=None, subscribed_topic_names=subscribed, client_id="c",
                           client_host="/h", topics=topics, now_ms=now, session_timeout_ms=SESSION_MS, max_size=3)


def joined_and_initialized(group: ShareGroup, member: str, topics: Topics, subscribed) -> int:
    """Join, let the share state of the subscribed topics be initialized, heartbeat again: the member epoch."""
    beat(group, member, 0, topics, subscribed)
    group.initialize(topics)
    return beat(group, member, group.members[member].member_epoch, topics).member_epoch


def test_a_first_member_joins_with_epoch_1_and_gets_every_partition_once_their_state_is_initialized() -> None:
    group, topics = ShareGroup("g"), Topics(t=3)
    assert group.state is ShareGroupState.EMPTY
    joined = beat(group, "a", 0, topics, ["t"])
    assert (joined.error, joined.member_epoch, joined.assignment) == (ErrorCode.NONE, 1, {})
    assert group.state is ShareGroupState.STABLE and group.members["a"].session_deadline_ms == SESSION_MS
    # Kafka initializes a newly subscribed topic's share state after the heartbeat; it is assigned after that.
    assert group.needs_initializing(topics) and group.initialize(topics) and not group.needs_initializing(topics)
    assigned = beat(group, "a", 1, topics, now=100)
    assert (assigned.member_epoch, assigned.assignment) == (2, {TOPIC_IDS["t"]: (0, 1, 2)})
    steady = beat(group, "a", 2, topics, now=500)
    assert (steady.member_epoch, steady.assignment) == (2, None)  # nothing changed: no assignment sent
    assert group.initialize(topics) is False


def test_more_members_than_partitions_share_them_and_every_member_learns_its_new_assignment() -> None:
    group, topics = ShareGroup("g"), Topics(t=1)
    assert joined_and_initialized(group, "a", topics, ["t"]) == 2
    joined = beat(group, "b", 0, topics, ["t"])
    assert (joined.member_epoch, joined.assignment) == (3, {TOPIC_IDS["t"]: (0,)})
    again = beat(group, "a", 2, topics)
    assert (again.member_epoch, again.assignment) == (3, None)  # same partition: epoch moves, nothing to send
    topics.counts["t"] = 4  # the topic grows: its new partitions are assigned once initialized
    assert beat(group, "a", 3, topics).assignment is None
    assert group.initialize(topics)
    a = beat(group, "a", 4, topics)
    b = beat(group, "b", 3, topics)
    assert (a.member_epoch, a.assignment, b.assignment) == (5, {TOPIC_IDS["t"]: (0, 2)}, {TOPIC_IDS["t"]: (1, 3)})


@pytest.mark.parametrize(("members", "partitions", "expected"), [
    (["a", "b"], 5, {"a": (0, 2, 4), "b": (1, 3)}),
    (["a", "b", "c"], 2, {"a": (0,), "b": (1,), "c": (0,)}),
    ([], 3, {}),
])
def test_simple_assignment(members, partitions, expected) -> None:
    assert simple_assignment(members, partitions) == expected


def test_fenced_unknown_and_invalid_heartbeats_change_nothing() -> None:
    group, topics = ShareGroup("g"), Topics(t=2)
    beat(group, "a", 0, topics, ["t"])
    assert beat(group, "a", 5, topics).error is ErrorCode.FENCED_MEMBER_EPOCH
    assert beat(group, "x", 1, topics).error is ErrorCode.UNKNOWN_MEMBER_ID
    assert beat(group, "x", -1, topics).error is ErrorCode.UNKNOWN_MEMBER_ID
    assert beat(group, "y", 0, topics, []).error is ErrorCode.INVALID_REQUEST  # a join needs a subscription
    assert (group.group_epoch, list(group.members)) == (1, ["a"])


def test_the_group_refuses_members_past_its_maximum_size() -> None:
    group, topics = ShareGroup("g"), Topics(t=1)
    for member in "abc":
        beat(group, member, 0, topics, ["t"])
    assert beat(group, "d", 0, topics, ["t"]).error is ErrorCode.GROUP_MAX_SIZE_REACHED
    assert beat(group, "a", 0, topics, ["t"]).error is ErrorCode.NONE  # a known member may rejoin


def test_leaving_and_expiring_empty_the_group() -> None:
    group, topics = ShareGroup("g"), Topics(t=1, u=1)
    beat(group, "a", 0, topics, ["t"], now=0)
    beat(group, "b", 0, topics, ["u"], now=400)
    left = beat(group, "a", -1, topics)
    assert (left.member_epoch, left.left.member_id, group.group_epoch) == (-1, "a", 3)
    assert group.expired_members(SESSION_MS + 399) == []
    assert group.expired_members(SESSION_MS + 400) == ["b"]
    group.remove("b")
    assert group.state is ShareGroupState.EMPTY and group.group_epoch == 4


def test_a_subscription_to_a_topic_created_later_is_assigned_once_it_exists() -> None:
    group, topics = ShareGroup("g"), Topics()
    joined = beat(group, "a", 0, topics, ["t"])
    assert joined.assignment == {} and not group.needs_initializing(topics)
    topics.counts["t"] = 2
    assert group.needs_initializing(topics) and group.initialize(topics)
    later = beat(group, "a", joined.member_epoch, topics)
    assert (later.member_epoch, later.assignment) == (3, {TOPIC_IDS["t"]: (0, 1)})


def test_initialized_topics_survive_a_restore_and_older_state_counts_its_topics_as_initialized() -> None:
    group, topics = ShareGroup("g"), Topics(t=2)
    joined_and_initialized(group, "a", topics, ["t"])
    stored, member = group.snapshot(), group.member_snapshot("a")
    restored = ShareGroup.restore("g", stored, {"a": member}, session_deadline_ms=SESSION_MS)
    assert not restored.needs_initializing(topics)
    older = {key: value for key, value in stored.items() if key != "initialized"}
    assert not ShareGroup.restore("g", older, {"a": member}, session_deadline_ms=SESSION_MS).needs_initializing(topics)
    topics.counts["t"] = 3  # grown since: only the new partition waits
    assert restored.needs_initializing(topics)
