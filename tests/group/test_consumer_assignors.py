"""The KIP-848 server-side assignors: complete, disjoint, balanced; uniform is sticky, range is contiguous."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kafkacompat.group.consumer.assignors import range_assignor, uniform

T1, T2, T3 = (uuid.UUID(int=n) for n in (1, 2, 3))


def flat(assignment) -> set[tuple[uuid.UUID, int]]:
    return {(t, p) for t, ps in assignment.items() for p in ps}


def counts(result) -> list[int]:
    return sorted(len(flat(a)) for a in result.values())


@pytest.mark.parametrize("assignor", [uniform, range_assignor])
def test_three_members_split_six_partitions_disjointly_and_completely(assignor):
    result = assignor({m: frozenset({T1}) for m in "abc"}, {T1: 6}, {})
    owned = [flat(a) for a in result.values()]
    assert counts(result) == [2, 2, 2]
    assert set().union(*owned) == {(T1, p) for p in range(6)}
    assert sum(map(len, owned)) == 6


def test_range_gives_contiguous_ranges_in_member_id_order_with_the_extra_ones_first():
    result = range_assignor({m: frozenset({T1, T2}) for m in "bca"}, {T1: 7, T2: 2}, {})
    assert {m: {t: sorted(ps) for t, ps in a.items()} for m, a in result.items()} == {
        "a": {T1: [0, 1, 2], T2: [0]}, "b": {T1: [3, 4], T2: [1]}, "c": {T1: [5, 6]}}


def test_uniform_moves_only_the_partitions_it_must_when_a_member_joins():
    before = uniform({m: frozenset({T1}) for m in "ab"}, {T1: 6}, {})
    after = uniform({m: frozenset({T1}) for m in "abc"}, {T1: 6}, before)
    assert counts(after) == [2, 2, 2]
    moved = sum(len(flat(before[m]) - flat(after[m])) for m in "ab")
    assert moved == 2  # exactly what the newcomer gets
    assert flat(after["a"]) <= flat(before["a"]) and flat(after["b"]) <= flat(before["b"])


def test_uniform_keeps_the_survivors_partitions_when_a_member_leaves():
    before = uniform({m: frozenset({T1}) for m in "abc"}, {T1: 6}, {})
    after = uniform({m: frozenset({T1}) for m in "ab"}, {T1: 6}, before)
    assert flat(before["a"]) <= flat(after["a"]) and flat(before["b"]) <= flat(after["b"])
    assert counts(after) == [3, 3]


def test_uniform_only_gives_a_member_topics_it_subscribes_to():
    result = uniform({"a": frozenset({T1}), "b": frozenset({T1, T2}), "c": frozenset({T2})}, {T1: 4, T2: 2}, {})
    assert {t for t, _ in flat(result["a"])} <= {T1} and {t for t, _ in flat(result["c"])} <= {T2}
    assert counts(result) == [2, 2, 2]


def test_unknown_topics_and_members_without_subscriptions_get_nothing():
    result = uniform({"a": frozenset({T1, T3}), "b": frozenset()}, {T1: 2}, {})
    assert flat(result["a"]) == {(T1, 0), (T1, 1)} and result["b"] == {}


@settings(max_examples=60, deadline=None)
@given(members=st.integers(1, 6), sizes=st.lists(st.integers(0, 9), min_size=1, max_size=3),
       previous=st.integers(0, 6))
def test_uniform_with_one_subscription_is_complete_and_within_one(members, sizes, previous):
    topics = {uuid.UUID(int=i + 1): n for i, n in enumerate(sizes)}
    subs = {f"m{i}": frozenset(topics) for i in range(members)}
    current = uniform({f"m{i}": frozenset(topics) for i in range(previous)}, topics, {}) if previous else {}
    result = uniform(subs, topics, current)
    owned = [flat(a) for a in result.values()]
    assert set().union(*owned) == {(t, p) for t, n in topics.items() for p in range(n)}
    assert sum(map(len, owned)) == sum(sizes)
    assert max(map(len, owned)) - min(map(len, owned)) <= 1
