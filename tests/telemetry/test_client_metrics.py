"""The client metrics manager: subscriptions, instances and pushes, with an injected clock."""

from __future__ import annotations

import uuid

import pytest

from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.records import Compression, compress
from kafkacompat.telemetry.client_metrics import ClientMetricsManager
from tests.log.conftest import FakeClock

metrics_pb2 = pytest.importorskip("opentelemetry.proto.metrics.v1.metrics_pb2")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_000_000)


@pytest.fixture
def manager(tmp_path, clock) -> ClientMetricsManager:
    return ClientMetricsManager(tmp_path, clock, telemetry_max_bytes=4096)


def _payload(value: float) -> bytes:
    data = metrics_pb2.MetricsData()
    metric = data.resource_metrics.add().scope_metrics.add().metrics.add(name="org.apache.kafka.x")
    metric.gauge.data_points.add(as_double=value)
    return data.SerializeToString()


def test_no_subscription_asks_for_nothing_every_five_minutes(manager) -> None:
    answer = manager.get_subscriptions(uuid.UUID(int=0), "app", "127.0.0.1")
    assert answer.instance_id.int != 0 and answer.requested_metrics == [] and answer.interval_ms == 300_000


def test_matching_subscriptions_union_prefixes_and_take_the_shortest_interval(manager, tmp_path, clock) -> None:
    manager.set_subscription("producers", {"metrics": "org.apache.kafka.producer.", "interval.ms": "1000",
                                           "match": "client_id=app-.*"})
    manager.set_subscription("slow", {"metrics": "org.apache.kafka.client.", "interval.ms": "60000"})
    manager.set_subscription("others", {"metrics": "*", "match": "client_id=batch"})
    app = manager.get_subscriptions(uuid.UUID(int=0), "app-1", "127.0.0.1")
    assert app.requested_metrics == ["org.apache.kafka.client.", "org.apache.kafka.producer."]
    assert app.interval_ms == 1000
    batch = manager.get_subscriptions(uuid.UUID(int=0), "batch", "127.0.0.1")
    assert batch.requested_metrics == [""] and batch.interval_ms == 60_000
    # Durable: a new manager over the same directory sees the same subscriptions.
    again = ClientMetricsManager(tmp_path, clock, telemetry_max_bytes=4096)
    assert sorted(again.subscriptions) == ["others", "producers", "slow"]
    assert again.subscription_configs("producers") == {
        "metrics": "org.apache.kafka.producer.", "interval.ms": "1000", "match": "client_id=app-.*"}
    # Changing what a client should push changes its subscription id.
    manager.set_subscription("slow", {})
    assert manager.get_subscriptions(app.instance_id, "app-1", "127.0.0.1").subscription_id != app.subscription_id
    assert sorted(manager.subscriptions) == ["others", "producers"]


@pytest.mark.parametrize("configs, reason", [
    ({"interval.ms": "50"}, "between"),
    ({"interval.ms": "soon"}, "integer"),
    ({"match": "client_rack=x"}, "selector"),
    ({"match": "client_id=("}, "client_id"),
    ({"colour": "blue"}, "Unknown"),
])
def test_bad_subscription_configs_are_refused(manager, configs, reason) -> None:
    with pytest.raises(KafkaError, match=reason) as refused:
        manager.set_subscription("bad", configs)
    assert refused.value.code == ErrorCode.INVALID_CONFIG
    assert manager.subscriptions == {}


def test_pushes_are_checked_as_kafka_checks_them(manager, clock) -> None:
    manager.set_subscription("all", {"metrics": "*", "interval.ms": "10000"})
    given = manager.get_subscriptions(uuid.UUID(int=0), "app", "127.0.0.1")
    instance, subscription = given.instance_id, given.subscription_id
    assert manager.push(uuid.UUID(int=0), subscription, False, 0, b"") == ErrorCode.INVALID_REQUEST
    assert manager.push(uuid.uuid4(), subscription, False, 0, b"") == ErrorCode.UNKNOWN_SUBSCRIPTION_ID
    assert manager.push(instance, subscription + 1, False, 0, b"") == ErrorCode.UNKNOWN_SUBSCRIPTION_ID
    assert manager.push(instance, subscription, False, 0, b"x" * 5000) == ErrorCode.TELEMETRY_TOO_LARGE
    assert manager.push(instance, subscription, False, 9, b"") == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    assert manager.push(instance, subscription, False, 0, b"\x0a\x09") == ErrorCode.INVALID_RECORD
    assert manager.push(instance, subscription, False, Compression.ZSTD,
                        compress(Compression.ZSTD, _payload(2.5))) == ErrorCode.NONE
    (point,) = manager.instances[instance].series.values()
    assert (point.metric, point.value) == ("org.apache.kafka.x", 2.5)
    clock.now += 4_999
    assert manager.push(instance, subscription, False, 0, _payload(3.0)) == ErrorCode.THROTTLING_QUOTA_EXCEEDED
    assert manager.push(instance, subscription, True, 0, _payload(3.5)) == ErrorCode.NONE  # terminating
    assert [p.value for p in manager.instances[instance].series.values()] == [3.5]


def test_silent_instances_are_forgotten_after_three_intervals(manager, clock) -> None:
    manager.set_subscription("fast", {"metrics": "*", "interval.ms": "1000"})
    quiet = manager.get_subscriptions(uuid.UUID(int=0), "quiet", "127.0.0.1").instance_id
    clock.now += 3_001
    manager.get_subscriptions(uuid.UUID(int=0), "newcomer", "127.0.0.1")
    assert quiet not in manager.instances
