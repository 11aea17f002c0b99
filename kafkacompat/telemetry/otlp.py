"""Just enough of OpenTelemetry's MetricsData protobuf to read what Kafka clients push.

A generic protobuf wire reader (varints, fixed 32/64-bit, length-delimited
fields) and the few messages of ``opentelemetry/proto/metrics/v1`` that carry
values: gauge and sum data points, and the count and sum of histograms.
Everything else (exemplars, exponential histograms, summaries) is skipped.
Sans I/O: bytes in, data points out.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import NamedTuple

WireFields = dict[int, list[int | bytes]]


class OtlpError(ValueError):
    """The bytes are not a MetricsData message."""


class DataPoint(NamedTuple):
    metric: str
    attributes: tuple[tuple[str, str], ...]
    value: float
    time_unix_nano: int


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if position >= len(data):
            raise OtlpError("truncated varint")
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise OtlpError("varint longer than 10 bytes")


def fields(data: bytes) -> WireFields:
    """Field number -> values in order: ints for varints, bytes for everything else."""
    found: WireFields = {}
    position = 0
    while position < len(data):
        tag, position = _varint(data, position)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 0:
            value, position = _varint(data, position)
        elif wire_type == 1:
            value, position = data[position:position + 8], position + 8
        elif wire_type == 2:
            length, position = _varint(data, position)
            value, position = data[position:position + length], position + length
        elif wire_type == 5:
            value, position = data[position:position + 4], position + 4
        else:
            raise OtlpError(f"unsupported wire type {wire_type} for field {number}")
        if position > len(data):
            raise OtlpError(f"field {number} runs past the end")
        found.setdefault(number, []).append(value)
    return found


def _bytes(message: WireFields, number: int) -> list[bytes]:
    return [v for v in message.get(number, []) if isinstance(v, bytes)]


def _text(message: WireFields, number: int) -> str:
    values = _bytes(message, number)
    return values[-1].decode("utf-8", "replace") if values else ""


def _fixed64(message: WireFields, number: int, signed: bool = False) -> int | None:
    values = [v for v in message.get(number, []) if isinstance(v, bytes) and len(v) == 8]
    return struct.unpack("<q" if signed else "<Q", values[-1])[0] if values else None


def _double(message: WireFields, number: int) -> float | None:
    values = [v for v in message.get(number, []) if isinstance(v, bytes) and len(v) == 8]
    return struct.unpack("<d", values[-1])[0] if values else None


def _any_value(data: bytes) -> str:
    value = fields(data)
    if 1 in value:
        return _text(value, 1)
    if 2 in value or 3 in value:
        number = value.get(2, value.get(3))[-1]
        return str(number) if 3 in value else str(bool(number)).lower()
    double = _double(value, 4)
    return "" if double is None else repr(double)


def _attributes(message: WireFields, number: int) -> tuple[tuple[str, str], ...]:
    pairs = []
    for raw in _bytes(message, number):
        key_value = fields(raw)
        pairs.append((_text(key_value, 1), _any_value(_bytes(key_value, 2)[-1]) if 2 in key_value else ""))
    return tuple(sorted(pairs))


def _number_points(name: str, container: bytes, resource: tuple[tuple[str, str], ...]) -> Iterator[DataPoint]:
    for raw in _bytes(fields(container), 1):
        point = fields(raw)
        value = _double(point, 4)
        if value is None:
            as_int = _fixed64(point, 6, signed=True)
            if as_int is None:
                continue
            value = float(as_int)
        yield DataPoint(name, resource + _attributes(point, 7), value, _fixed64(point, 3) or 0)


def _histogram_points(name: str, container: bytes, resource: tuple[tuple[str, str], ...]) -> Iterator[DataPoint]:
    for raw in _bytes(fields(container), 1):
        point = fields(raw)
        attributes, at = resource + _attributes(point, 9), _fixed64(point, 3) or 0
        yield DataPoint(name + ".count", attributes, float(_fixed64(point, 4) or 0), at)
        total = _double(point, 5)
        if total is not None:
            yield DataPoint(name + ".sum", attributes, total, at)


def data_points(metrics_data: bytes) -> list[DataPoint]:
    """Every gauge and sum data point, and histograms' count and sum, of one MetricsData message.

    Resource attributes (client id, ...) are folded into each point's attributes.
    """
    points: list[DataPoint] = []
    for resource_metrics in _bytes(fields(metrics_data), 1):
        message = fields(resource_metrics)
        resources = _bytes(message, 1)
        resource = _attributes(fields(resources[-1]), 1) if resources else ()
        for scope_metrics in _bytes(message, 2):
            for raw_metric in _bytes(fields(scope_metrics), 2):
                metric = fields(raw_metric)
                name = _text(metric, 1)
                for number in (5, 7):  # gauge, sum
                    for container in _bytes(metric, number):
                        points.extend(_number_points(name, container, resource))
                for container in _bytes(metric, 9):
                    points.extend(_histogram_points(name, container, resource))
    return points
