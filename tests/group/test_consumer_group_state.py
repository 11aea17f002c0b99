"""The KIP-848 state machine alone: reconciliation revokes before it hands over, epochs, the group table."""

from __future__ import annotations

import uuid

import pytest

from kafkacompat.group.consumer.state import (
    GROUP_TRANSITIONS,
    ConsumerGroup,
    ConsumerGroupState,
    ConsumerMember,
    MemberState,
)

T = uuid.UUID(int=7)
S = ConsumerGroupState


def parts(*ps: int) -> dict[uuid.UUID, frozenset[int]]:
    return {T: frozenset(ps)}


def group_with_a_owning_everything() -> tuple[ConsumerGroup, ConsumerMember]:
    group = ConsumerGroup("g", 0)
    a = ConsumerMember("a", subscribed_topic_names=("t",))
    group.add(a)
    group.bump_group_epoch(1)
    group.set_target({"a": parts(0, 1, 2, 3)}, 1)
    assert group.reconcile(a, {})
    assert (a.member_epoch, a.state, a.assigned) == (1, MemberState.STABLE, parts(0, 1, 2, 3))
    group.refresh_state(1)
    return group, a


def test_a_partition_moves_only_after_its_owner_revoked_it():
    group, a = group_with_a_owning_everything()
    assert group.state is S.STABLE
    b = ConsumerMember("b", subscribed_topic_names=("t",))
    group.add(b)
    group.bump_group_epoch(2)
    assert group.state is S.ASSIGNING
    group.set_target({"a": parts(0, 1), "b": parts(2, 3)}, 2)
    assert group.state is S.RECONCILING

    group.reconcile(b, {})  # b is at the new epoch but its partitions are still a's
    assert (b.member_epoch, b.state, b.assigned) == (2, MemberState.UNRELEASED_PARTITIONS, {})
    group.reconcile(a, None)  # a keeps its epoch until it has revoked 2 and 3
    assert (a.member_epoch, a.state, a.assigned, a.pending_revocation) == (
        1, MemberState.UNREVOKED_PARTITIONS, parts(0, 1), parts(2, 3))
    assert not group.reconcile(a, parts(0, 1, 3))  # still owns 3: nothing moves
    assert not group.reconcile(b, None)
    assert group.reconcile(a, parts(0, 1))  # revoked: a moves to epoch 2
    assert (a.member_epoch, a.previous_member_epoch, a.state) == (2, 1, MemberState.STABLE)
    assert group.reconcile(b, None)
    assert (b.state, b.assigned) == (MemberState.STABLE, parts(2, 3))
    group.refresh_state(3)
    assert group.state is S.STABLE and group.owners == {(T, 0): "a", (T, 1): "a", (T, 2): "b", (T, 3): "b"}


def test_a_member_gets_the_free_partitions_at_once_and_waits_for_the_rest():
    group, a = group_with_a_owning_everything()
    group.target["a"] = parts(0, 1, 2, 3, 4, 5)  # the topic grew: 4 and 5 are free
    group.bump_group_epoch(2)
    group.set_target(dict(group.target), 2)
    group.reconcile(a, None)
    assert (a.member_epoch, a.state, a.assigned) == (2, MemberState.STABLE, parts(0, 1, 2, 3, 4, 5))


def test_removing_a_member_frees_its_partitions_for_the_others():
    group, a = group_with_a_owning_everything()
    b = ConsumerMember("b", subscribed_topic_names=("t",))
    group.add(b)
    group.bump_group_epoch(2)
    group.set_target({"a": parts(0, 1), "b": parts(2, 3)}, 2)
    group.reconcile(b, {})
    assert b.state is MemberState.UNRELEASED_PARTITIONS
    group.remove("a")
    group.bump_group_epoch(3)
    group.set_target({"b": parts(0, 1, 2, 3)}, 3)
    group.reconcile(b, None)
    assert (b.member_epoch, b.state, b.assigned) == (3, MemberState.STABLE, parts(0, 1, 2, 3))


def test_the_last_member_leaving_empties_the_group():
    group, _ = group_with_a_owning_everything()
    group.remove("a")
    group.bump_group_epoch(2)
    group.set_target({}, 2)
    assert group.state is S.EMPTY and group.owners == {}


@pytest.mark.parametrize("source", list(S))
@pytest.mark.parametrize("target", list(S))
def test_only_the_tabled_transitions_are_allowed(source, target):
    group = ConsumerGroup("g", 0)
    group.state = source
    if source in GROUP_TRANSITIONS.get(target, frozenset()):
        group.transition_to(target, 5)
        assert (group.state, group.state_timestamp_ms) == (target, 5)
    else:
        with pytest.raises(RuntimeError, match="illegal transition"):
            group.transition_to(target, 5)


def test_the_durable_form_round_trips_epochs_members_assignments_and_ownership():
    group, a = group_with_a_owning_everything()
    b = ConsumerMember("b", instance_id="i-b", subscribed_topic_regex="t.*", server_assignor="range")
    group.add(b)
    group.bump_group_epoch(2)
    group.set_target({"a": parts(0, 1), "b": parts(2, 3)}, 2)
    group.reconcile(a, None)
    group.subscription_metadata = (("t", str(T), 4),)
    restored = ConsumerGroup.from_json(group.to_json())
    assert restored.to_json() == group.to_json()
    assert restored.state is S.RECONCILING and restored.static_members == {"i-b": "b"}
    assert restored.owners == group.owners
    assert restored.members["a"].pending_revocation == parts(2, 3)
