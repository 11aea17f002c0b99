"""The range assignor a ``consume --group`` leader runs, as Kafka's RangeAssignor assigns."""

from __future__ import annotations

from kafkacompat.group.consumer.assignors import range_assign


def test_consecutive_ranges_in_member_order_the_first_members_taking_the_remainder():
    assigned = range_assign({"c": ["t"], "a": ["t"], "b": ["t"]}, {"t": 7})
    assert assigned == {"a": {"t": [0, 1, 2]}, "b": {"t": [3, 4]}, "c": {"t": [5, 6]}}


def test_each_topic_is_ranged_over_its_own_subscribers_and_spare_members_get_nothing():
    assigned = range_assign({"m1": ["x", "y"], "m2": ["y"], "m3": ["x"]}, {"x": 1, "y": 3})
    assert assigned == {"m1": {"x": [0], "y": [0, 1]}, "m2": {"y": [2]}, "m3": {}}


def test_an_unknown_topic_assigns_nothing():
    assert range_assign({"m": ["gone"]}, {}) == {"m": {}}
