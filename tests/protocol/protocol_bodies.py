"""Representative message bodies generated from the specs, for codec tests.

Every field gets a value that differs from its default (distinct per field,
so swapped fields show up), arrays get two elements, and fields the version
lacks are filled in too, to check that encoders ignore them.
"""

from __future__ import annotations

import itertools
import uuid
from typing import Any

from construct import Container

from kafkacompat.protocol.schema import default_value
from kafkacompat.protocol.specs import FieldSpec


class BodyMaker:
    """Builds bodies; ``nulls=True`` puts None in every field nullable in the version."""

    def __init__(self, version: int, *, nulls: bool = False) -> None:
        self.version = version
        self.nulls = nulls
        self._counter = itertools.count(1)

    def body(self, fields: tuple[FieldSpec, ...]) -> dict[str, Any]:
        return {field.name: self.field_value(field) for field in fields}

    def field_value(self, field: FieldSpec) -> Any:
        if self.nulls and field.nullable_in(self.version):
            return None
        if field.is_array:
            return [self.element(field) for _ in range(2)]
        return self.element(field)

    def element(self, field: FieldSpec) -> Any:
        if field.is_struct:
            return self.body(field.fields)
        value = self.scalar(field.element_type)
        if not field.is_array and value == default_value(field, self.version):
            value = self.scalar(field.element_type)
        return value

    def scalar(self, type_: str) -> Any:
        n = next(self._counter)
        if type_ == "bool":
            return n % 2 == 1
        return {
            "int8": lambda: 2 + n % 100,
            "int16": lambda: 1000 + n,
            "int32": lambda: 100_000 + 7 * n,
            "int64": lambda: (1 << 40) + n,
            "uint16": lambda: 60_000 + n % 5000,
            "float64": lambda: n + 0.25,
            "string": lambda: f"s{n}-\u00e9",
            "bytes": lambda: bytes([n % 256]) * 3 + b"\x00\xff",
            "records": lambda: memoryview(b"batch-" + bytes([n % 256]) * 20),
            "uuid": lambda: uuid.UUID(int=n),
        }[type_]()


def expected_decode(fields: tuple[FieldSpec, ...], version: int, body: dict[str, Any]) -> dict[str, Any]:
    """What decoding the encoded ``body`` must give: present fields as given, others at defaults."""
    out: dict[str, Any] = {}
    for field in fields:
        if not field.present_in(version):
            out[field.name] = plain(default_value(field, version))
            continue
        value = body.get(field.name, default_value(field, version))
        if value is None:
            out[field.name] = None
        elif field.is_struct and field.is_array:
            out[field.name] = [expected_decode(field.fields, version, item) for item in value]
        elif field.is_struct:
            out[field.name] = expected_decode(field.fields, version, value)
        else:
            out[field.name] = plain(value)
    return out


def plain(value: Any) -> Any:
    """Containers to dicts, lists recursively, bytes-likes to bytes: comparable with ==."""
    if isinstance(value, (Container, dict)):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return value
