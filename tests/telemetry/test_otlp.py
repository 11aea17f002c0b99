"""Our OTLP reader against messages built by OpenTelemetry's own protobuf classes."""

from __future__ import annotations

import pytest

from kafkacompat.telemetry.otlp import DataPoint, OtlpError, data_points, fields

metrics_pb2 = pytest.importorskip("opentelemetry.proto.metrics.v1.metrics_pb2")
common_pb2 = pytest.importorskip("opentelemetry.proto.common.v1.common_pb2")


def _kv(key: str, **value) -> "common_pb2.KeyValue":
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(**value))


def _metrics_data() -> bytes:
    data = metrics_pb2.MetricsData()
    resource_metrics = data.resource_metrics.add()
    resource_metrics.resource.attributes.append(_kv("client_id", string_value="app-1"))
    scope = resource_metrics.scope_metrics.add()
    gauge = scope.metrics.add(name="org.apache.kafka.producer.record.queue.time.avg")
    gauge.gauge.data_points.add(as_double=1.5, time_unix_nano=7, attributes=[_kv("topic", string_value="t")])
    total = scope.metrics.add(name="org.apache.kafka.producer.connection.creation.total")
    total.sum.data_points.add(as_int=-3, time_unix_nano=8)
    total.sum.is_monotonic = True
    histogram = scope.metrics.add(name="org.apache.kafka.client.request.latency")
    histogram.histogram.data_points.add(count=4, sum=10.25, time_unix_nano=9,
                                        attributes=[_kv("node.id", int_value=1), _kv("ok", bool_value=True)])
    return data.SerializeToString()


def test_gauges_sums_and_histograms_come_out_with_their_attributes() -> None:
    assert data_points(_metrics_data()) == [
        DataPoint("org.apache.kafka.producer.record.queue.time.avg", (("client_id", "app-1"), ("topic", "t")), 1.5, 7),
        DataPoint("org.apache.kafka.producer.connection.creation.total", (("client_id", "app-1"),), -3.0, 8),
        DataPoint("org.apache.kafka.client.request.latency.count",
                  (("client_id", "app-1"), ("node.id", "1"), ("ok", "true")), 4.0, 9),
        DataPoint("org.apache.kafka.client.request.latency.sum",
                  (("client_id", "app-1"), ("node.id", "1"), ("ok", "true")), 10.25, 9),
    ]


def test_empty_message_has_no_points() -> None:
    assert data_points(b"") == []


@pytest.mark.parametrize("garbage", [b"\x0a\x05ab", b"\x0b", b"\xff" * 11, b"\x0a"])
def test_truncated_or_odd_bytes_are_refused(garbage: bytes) -> None:
    with pytest.raises(OtlpError):
        data_points(garbage)


def test_wire_reader_keeps_repeated_fields_in_order() -> None:
    assert fields(b"\x08\x01\x08\x96\x01\x12\x02hi\x1d\x01\x02\x03\x04") == {
        1: [1, 150], 2: [b"hi"], 3: [b"\x01\x02\x03\x04"]}
