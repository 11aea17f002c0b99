"""Client quotas: rate windows on an injected clock, Kafka's throttle times, precedence and durability."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafkacompat.security.quotas import (
    CLIENT_ID, CONNECTION, IP, PRODUCE, REQUEST, USER, QuotaManager, QuotaStore, Rate, entity_of,
    invalid_entity, invalid_value,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def test_a_young_rate_counts_as_samples_minus_one_full_windows() -> None:
    rate = Rate(samples=11, window_ms=1000)
    rate.record(10_000, 0)
    assert rate.window_ms_at(0) == 10_000 and rate.per_second(0) == 1000
    rate.record(10_000, 15_500)  # the first sample has expired (11 windows old)
    assert rate.per_second(15_500) == 10_000 * 1000 / 10_000


def test_the_rate_spans_the_live_samples() -> None:
    rate = Rate(samples=2, window_ms=1000)
    for now in range(0, 3000, 100):
        rate.record(100, now)
    # samples started at 2000 and 1000 are live (1000 is under 2 windows old at 2900): 2000 bytes over 1900 ms
    assert rate.per_second(2900) == pytest.approx(2000 * 1000 / 1900)


@pytest.fixture
def manager(tmp_path: Path) -> tuple[QuotaManager, Clock]:
    clock = Clock()
    return QuotaManager(QuotaStore(tmp_path), clock, samples=11, window_s=1), clock


def test_throttle_time_is_the_excess_over_the_quota_times_the_window(manager) -> None:
    quotas, clock = manager
    quotas.alter([(entity_of([(CLIENT_ID, "app")]), PRODUCE, 1000.0)])
    assert quotas.record(PRODUCE, "ANONYMOUS", "app", 10_000) == 0  # 1000 B/s over the 10 s minimum window
    # 20,000 bytes over 10 s is 2000 B/s: (2000 - 1000) / 1000 * 10 s
    assert quotas.record(PRODUCE, "ANONYMOUS", "app", 10_000) == 10_000
    assert quotas.record(PRODUCE, "ANONYMOUS", "other", 10_000) == 0  # another client id has no quota
    clock.now += 100_000
    assert quotas.record(PRODUCE, "ANONYMOUS", "app", 5_000) == 0  # the old usage has expired


def test_throttle_time_is_bounded_by_the_whole_window_span(manager) -> None:
    quotas, _ = manager
    quotas.alter([(entity_of([(USER, None)]), PRODUCE, 1.0)])
    assert quotas.record(PRODUCE, "alice", "c", 1_000_000) == 11_000


def test_precedence_and_per_client_measurement_of_defaults(manager) -> None:
    quotas, _ = manager
    quotas.alter([
        (entity_of([(CLIENT_ID, None)]), PRODUCE, 1.0),
        (entity_of([(USER, "alice")]), PRODUCE, 2.0),
        (entity_of([(USER, "alice"), (CLIENT_ID, "special")]), PRODUCE, 3.0),
        (entity_of([(USER, None), (CLIENT_ID, None)]), REQUEST, 50.0),
    ])
    assert quotas.quota_for(PRODUCE, "alice", "special") == (3.0, ("alice", "special"))
    assert quotas.quota_for(PRODUCE, "alice", "other") == (2.0, ("alice", ""))
    assert quotas.quota_for(PRODUCE, "bob", "x") == (1.0, ("", "x"))  # the default client id, measured per client
    assert quotas.quota_for(REQUEST, "bob", "x") == (50.0, ("bob", "x"))
    assert quotas.quota_for(CONNECTION, "bob", "x") is None


def test_connection_creation_rate_per_ip_and_refusals_do_not_count(manager) -> None:
    quotas, clock = manager
    quotas.alter([(entity_of([(IP, None)]), CONNECTION, 1.0), (entity_of([(IP, "10.0.0.9")]), CONNECTION, 100.0)])
    accepted = [quotas.connection_throttle_ms("10.0.0.1") == 0 for _ in range(12)]
    assert accepted == [True] * 10 + [False] * 2  # 10 connections over the 10 s minimum window
    assert all(quotas.connection_throttle_ms("10.0.0.9") == 0 for _ in range(12))
    clock.now += 11_000
    assert quotas.connection_throttle_ms("10.0.0.1") == 0


def test_quotas_survive_reopening_and_removal(tmp_path: Path) -> None:
    store = QuotaStore(tmp_path)
    user, client = entity_of([(USER, "alice")]), entity_of([(CLIENT_ID, None)])
    store.alter([(user, PRODUCE, 100.0), (user, REQUEST, 20.0), (client, PRODUCE, 5.0)])
    store.alter([(user, REQUEST, None), (client, PRODUCE, None)])
    store.close()
    reopened = QuotaStore(tmp_path)
    assert dict(reopened.items()) == {user: {PRODUCE: 100.0}}
    reopened.close()
    assert dict(QuotaStore(tmp_path).items()) == {user: {PRODUCE: 100.0}}


def test_entity_and_value_checks() -> None:
    assert invalid_entity([]) == "Invalid empty client quota entity"
    assert "IP entity" in invalid_entity([(IP, None), (USER, "a")])
    assert "not a valid IP" in invalid_entity([(IP, "nonsense")])
    assert invalid_entity([("group", "g")]) == "Unhandled client quota entity type: group"
    assert invalid_entity([(USER, None), (CLIENT_ID, "c")]) is None
    assert invalid_value(entity_of([(USER, "a")]), PRODUCE, 1.5) == "Configuration producer_byte_rate must be a Long value"
    assert invalid_value(entity_of([(USER, "a")]), CONNECTION, 1) == "Invalid configuration key connection_creation_rate"
    assert invalid_value(entity_of([(IP, None)]), CONNECTION, 3) is None
    assert invalid_value(entity_of([(USER, "a")]), REQUEST, 12.5) is None


def test_an_entity_naming_a_type_twice_is_refused_not_a_crash() -> None:
    pairs = [(USER, "a"), (USER, None)]
    assert entity_of(pairs) == ((USER, "a"), (USER, None))
    assert invalid_entity(pairs) == "Duplicate entity type in the client quota entity"


def test_brokers_sharing_quota_values_each_measure_their_own_usage(tmp_path: Path) -> None:
    """A cluster's brokers share one store (a quota set through one holds on all) and throttle apart."""
    clock = Clock()
    store = QuotaStore(tmp_path)
    first, second = (QuotaManager(store, clock, samples=11, window_s=1) for _ in range(2))
    assert not second.active
    first.alter([(entity_of([(CLIENT_ID, "app")]), PRODUCE, 1000.0)])
    assert second.active
    assert first.record(PRODUCE, "ANONYMOUS", "app", 20_000) == 10_000
    assert second.record(PRODUCE, "ANONYMOUS", "app", 10_000) == 0  # broker 1's usage is not broker 2's
    first.alter([(entity_of([(CLIENT_ID, "app")]), PRODUCE, None)])
    assert not second.active
