"""The fault engine on its own: matching, limits, seeded probability, windows and counts, with a fake clock."""

from __future__ import annotations

import pytest

from kafkacompat.cluster.faults import FaultEngine, FaultRuleError, RequestFacts
from kafkacompat.handlers.resources import Resources
from kafkacompat.protocol.errors import ErrorCode

PRODUCE, FETCH, JOIN_GROUP = 0, 1, 11


class Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def facts(api_key: int = PRODUCE, version: int = 9, client_id: str | None = "app") -> RequestFacts:
    return RequestFacts(api_key, version, broker_id=1, client_id=client_id)


def named(topics=(), partitions=(), groups=(), transactional_ids=()) -> Resources:
    return Resources(set(topics), set(partitions), set(groups), set(transactional_ids))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(clock: Clock) -> FaultEngine:
    return FaultEngine(broker_id=1, clock=clock, seed=3)


def fires(engine: FaultEngine, request: RequestFacts | None = None, resources: Resources | None = None) -> bool:
    return engine.check(request or facts(), lambda: resources or Resources()) is not None


def test_no_rule_leaves_the_engine_unarmed_and_clearing_disarms_it(engine):
    assert not engine.armed
    rule = engine.add({"api": "Produce"})
    assert engine.armed
    assert engine.remove(rule.id) and not engine.armed
    engine.add({"api": "Fetch"})
    assert engine.clear() == 1 and not engine.armed and engine.list() == []


def test_api_by_name_or_key_and_version_range(engine):
    engine.add({"api": ["produce", 1], "versions": "7-9"})
    assert fires(engine, facts(PRODUCE, 9))
    assert fires(engine, facts(FETCH, 7))
    assert not fires(engine, facts(PRODUCE, 10))
    assert not fires(engine, facts(JOIN_GROUP, 8))


def test_open_version_range(engine):
    engine.add({"versions": "4+"})
    assert not fires(engine, facts(version=3))
    assert fires(engine, facts(version=4)) and fires(engine, facts(version=11))


def test_broker_client_principal_and_listener(engine):
    engine.add({"broker_id": 2})
    assert not fires(engine)  # this is broker 1
    engine.clear()
    engine.add({"client_id": "app", "principal": "User:ANONYMOUS", "listener": "PLAINTEXT"})
    assert fires(engine, facts(client_id="app"))
    assert not fires(engine, facts(client_id="other"))
    engine.clear()
    engine.add({"principal": "User:alice"})
    assert not fires(engine)


def test_topics_partitions_groups_and_transactional_ids(engine):
    engine.add({"topics": ["orders"], "partitions": [1]})
    assert fires(engine, resources=named(["orders"], [("orders", 1), ("orders", 0)]))
    assert not fires(engine, resources=named(["orders"], [("orders", 0)]))
    assert not fires(engine, resources=named(["other"], [("other", 1)]))
    engine.clear()
    engine.add({"groups": "g1"})
    assert fires(engine, facts(JOIN_GROUP), named(groups=["g1"]))
    assert not fires(engine, facts(JOIN_GROUP), named(groups=["g2"]))
    engine.clear()
    engine.add({"transactional_ids": ["tx"]})
    assert fires(engine, resources=named(transactional_ids=["tx"]))
    assert not fires(engine, resources=named())


def test_resources_are_computed_only_for_rules_that_ask(engine):
    engine.add({"api": "Produce"})
    asked = []
    engine.check(facts(), lambda: asked.append(1) or Resources())
    assert asked == []
    engine.add({"api": "Fetch", "topics": ["t"]})
    engine.check(facts(FETCH), lambda: asked.append(1) or named(["t"]))
    assert asked == [1]


def test_first_n_and_every_kth(engine):
    first = engine.add({"api": "Produce", "first": 2})
    assert [fires(engine) for _ in range(4)] == [True, True, False, False]
    assert (first.matched, first.injected) == (4, 2)
    engine.clear()
    engine.add({"api": "Produce", "every": 3})
    assert [fires(engine) for _ in range(7)] == [False, False, True, False, False, True, False]


def test_probability_with_a_seed_repeats_and_is_near_its_rate(clock):
    def run(seed: int) -> list[bool]:
        engine = FaultEngine(1, clock)
        engine.add({"probability": 0.3, "seed": seed})
        return [fires(engine) for _ in range(1000)]

    first, again, other = run(42), run(42), run(43)
    assert first == again
    assert first != other
    assert 230 < sum(first) < 370


def test_time_window_from_when_the_rule_was_added(engine, clock):
    rule = engine.add({"start_ms": 100, "end_ms": 300})
    clock.now += 99
    assert not fires(engine)
    clock.now += 1
    assert fires(engine)
    clock.now += 199
    assert fires(engine)
    clock.now += 1
    assert not fires(engine)
    assert (rule.matched, rule.injected) == (2, 2)  # matches outside the window are not counted


def test_first_matching_rule_wins_and_counts_are_per_rule(engine):
    fetch = engine.add({"api": "Fetch", "action": "delay", "delay_ms": 50})
    anything = engine.add({"action": "close"})
    assert engine.check(facts(FETCH), Resources).action == "delay"
    assert engine.check(facts(PRODUCE), Resources).action == "close"
    assert [(v["id"], v["matched"], v["injected"]) for v in engine.list()] == [(fetch.id, 1, 1),
                                                                            (anything.id, 1, 1)]


def test_after_work_errors_follow_kafka_unless_told(engine):
    engine.add({"api": "Produce", "error": "REQUEST_TIMED_OUT"})
    injection = engine.check(facts(), Resources)
    assert injection.after_work and injection.error_code == ErrorCode.REQUEST_TIMED_OUT
    engine.clear()
    engine.add({"api": "Produce", "error": "NOT_LEADER_OR_FOLLOWER", "message": "moved"})
    injection = engine.check(facts(), Resources)
    assert not injection.after_work and injection.message == "moved"
    engine.clear()
    engine.add({"api": "Fetch", "error": 7})  # REQUEST_TIMED_OUT on a Fetch: nothing was applied
    assert not engine.check(facts(FETCH), Resources).after_work
    engine.clear()
    engine.add({"action": "close", "when": "after"})
    assert engine.check(facts(), Resources).after_work


def test_resource_scoped_error_targets_only_the_matching_partitions(engine):
    engine.add({"topics": ["a"], "partitions": [0], "scope": "resources", "error": "NOT_LEADER_OR_FOLLOWER"})
    injection = engine.check(facts(), lambda: named(["a", "b"], [("a", 0), ("a", 1), ("b", 0)]))
    assert injection.targeted.partitions == {("a", 0)} and not injection.targeted.topics


def test_random_delay_stays_in_its_range_and_repeats_with_the_seed(clock):
    def delays(seed: int) -> list[int]:
        engine = FaultEngine(1, clock)
        engine.add({"action": "delay", "delay_ms": 10, "delay_max_ms": 20, "seed": seed})
        return [engine.check(facts(), Resources).delay_ms for _ in range(50)]

    assert delays(5) == delays(5)
    assert all(10 <= d <= 20 for d in delays(5)) and len(set(delays(5))) > 3


def test_throttle_and_no_response(engine):
    engine.add({"api": "Fetch", "action": "throttle", "throttle_ms": 250})
    engine.add({"api": "Produce", "action": "no_response"})
    assert engine.check(facts(FETCH), Resources).throttle_ms == 250
    assert engine.check(facts(PRODUCE), Resources).action == "no_response"


@pytest.mark.parametrize("rule, reason", [
    ({"action": "explode"}, "action must be"),
    ({"api": "NoSuchApi"}, "unknown API"),
    ({"error": "NO_SUCH_ERROR"}, "unknown error"),
    ({"versions": "x"}, "versions must be"),
    ({"probability": 2}, "between 0 and 1"),
    ({"every": 0}, "every must be positive"),
    ({"partitions": [0]}, "partitions need topics"),
    ({"colour": "red"}, "unknown fault rule field"),
    ({"scope": "resources", "when": "after"}, "before the work"),
])
def test_bad_rules_are_refused_with_the_reason(engine, rule, reason):
    with pytest.raises(FaultRuleError, match=reason):
        engine.add(rule)
    assert not engine.armed


def test_every_injection_is_logged_once(engine, caplog):
    engine.add({"api": "Produce", "error": "NOT_LEADER_OR_FOLLOWER"})
    with caplog.at_level("WARNING", logger="kafkacompat.faults"):
        fires(engine)
        fires(engine, facts(FETCH))
    assert len(caplog.records) == 1
    assert "NOT_LEADER_OR_FOLLOWER" in caplog.records[0].getMessage()


def test_a_list_of_rules_is_added_whole_or_not_at_all(engine):
    with pytest.raises(FaultRuleError):
        engine.add_all([{"api": "Produce"}, {"api": "NoSuchApi"}])
    assert engine.list() == [] and not engine.armed
    added = engine.add_all([{"api": "Produce"}, {"api": "Fetch"}])
    assert [view["id"] for view in engine.list()] == [rule.id for rule in added] and engine.armed
