"""Message specs -> construct schemas, one per (API key, version, direction).

A schema is built on first use from the :mod:`kafkacompat.protocol.specs` model
and cached for the life of the process. Flexible versions switch strings, bytes,
records and arrays to their compact forms and end every struct, nested ones
included, with a tagged-field section.

Construct's ``compile()`` is not used: every class in a schema is one of ours
from :mod:`kafkacompat.protocol.primitives`, and construct can only link such
classes into compiled code, not inline them, so compiling buys nothing. The
speed comes from the primitives themselves (one ``struct`` call per run of
fixed-size fields, one per array of scalars).

Decoded messages hold every field the spec defines, in any version: fields
that the negotiated version lacks carry their defaults, so handlers read one
shape. Encoding takes that same shape; see :class:`~.primitives.FieldStruct`.
"""

from __future__ import annotations

import io
import struct
import uuid
from typing import Any, Callable, Mapping

from construct import Construct, ConstructError, Container

from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.primitives import (
    Array,
    Blob,
    FieldStruct,
    Fixed,
    GatherStream,
    Member,
    NullableStruct,
    Part,
    TaggedMember,
    Uuid,
    join_parts,
)
from kafkacompat.protocol.specs import ApiSpec, FieldSpec, SpecError, api_spec, data_spec

__all__ = [
    "DecodeError",
    "EncodeError",
    "request_schema",
    "response_schema",
    "data_schema",
    "decode_request",
    "encode_request",
    "decode_response",
    "encode_response",
    "encode_response_parts",
    "decode_data",
    "encode_data",
]


class DecodeError(ValueError):
    """The bytes are not a valid message of the given API key and version."""


class EncodeError(ValueError):
    """The body cannot be written in the given version (wrong type, null where not allowed, ...)."""


_FIXED_FORMATS = {"int8": "b", "int16": "h", "int32": "i", "int64": "q", "uint16": "H", "float64": "d", "bool": "?"}
_FIXED = {type_: Fixed(fmt) for type_, fmt in _FIXED_FORMATS.items()}
_UUID = Uuid()
_ZERO_UUID = uuid.UUID(int=0)
_ZEROS: dict[str, Any] = {
    **{type_: 0 for type_ in _FIXED_FORMATS},
    "float64": 0.0,
    "bool": False,
    "string": "",
    "bytes": b"",
    "records": b"",
    "uuid": _ZERO_UUID,
}


def default_value(field: FieldSpec, version: int) -> Any:
    """The value a field takes when a body omits it (or the version lacks it).

    The spec's ``default`` wins; otherwise null where the field is nullable in
    ``version``, else the type's zero (``[]`` for arrays, a struct of defaults).
    """
    if field.has_default:
        return field.default
    if field.nullable_in(version):
        return None
    if field.is_array:
        return []
    if field.is_struct:
        return Container((child.name, default_value(child, version)) for child in field.fields)
    return _ZEROS[field.type]


def _default_factory(field: FieldSpec, version: int) -> Callable[[], Any]:
    """A callable giving a fresh default, so decoded lists and structs are never shared."""
    value = default_value(field, version)
    if isinstance(value, list):
        return list
    if isinstance(value, Container):
        return lambda: default_value(field, version)
    return lambda: value


def _field_construct(field: FieldSpec, version: int, flexible: bool) -> Construct:
    nullable = field.nullable_in(version)
    if field.is_array:
        element = _value_construct(field, field.element_type, version, flexible, nullable=False)
        return Array(element, compact=flexible, nullable=nullable)
    return _value_construct(field, field.type, version, flexible, nullable=nullable)


def _value_construct(field: FieldSpec, type_: str, version: int, flexible: bool, *, nullable: bool) -> Construct:
    if type_ in _FIXED:
        return _FIXED[type_]
    if type_ == "uuid":
        return _UUID
    if type_ == "string":
        return Blob("compact" if flexible else "int16", nullable=nullable, text=True)
    if type_ in ("bytes", "records"):
        return Blob("compact" if flexible else "int32", nullable=nullable, text=False, by_reference=type_ == "records")
    struct_construct = build_struct(field.fields, version, flexible)
    return NullableStruct(struct_construct) if nullable else struct_construct


def build_struct(fields: tuple[FieldSpec, ...], version: int, flexible: bool) -> FieldStruct:
    """The wire layout of ``fields`` in ``version``: regular members, tagged members, absent ones."""
    members: list[Member] = []
    tagged: list[TaggedMember] = []
    absent: list[tuple[str, Callable[[], Any]]] = []
    for field in fields:
        make_default = _default_factory(field, version)
        if not field.present_in(version):
            absent.append((field.name, make_default))
            continue
        construct = _field_construct(field, version, flexible)
        default = default_value(field, version)
        if field.tagged_in(version):
            if not flexible:
                raise SpecError(f"{field.name}: tagged in v{version}, which is not flexible")
            tagged.append(TaggedMember(field.tag, field.name, construct, default, make_default))
        else:
            members.append(Member(field.name, construct, default, make_default))
    return FieldStruct(members, tagged if flexible else None, absent)


_cache: dict[tuple[str, int | str, int], FieldStruct] = {}


def _schema(direction: str, key: int | str, version: int, spec: ApiSpec | None) -> FieldStruct:
    cache_key = (direction, key, version)
    schema = _cache.get(cache_key)
    if schema is None:
        if spec is None or not spec.supports(version):
            raise KafkaError(ErrorCode.UNSUPPORTED_VERSION, f"no {direction} schema for {key} v{version}")
        fields = spec.response if direction == "response" else spec.request
        schema = _cache[cache_key] = build_struct(fields, version, spec.is_flexible(version))
    return schema


def request_schema(api_key: int, version: int) -> FieldStruct:
    """Raises ``KafkaError(UNSUPPORTED_VERSION)`` for keys or versions outside the specs."""
    return _schema("request", api_key, version, api_spec(api_key))


def response_schema(api_key: int, version: int) -> FieldStruct:
    return _schema("response", api_key, version, api_spec(api_key))


def data_schema(name: str, version: int) -> FieldStruct:
    """``name`` is the spec name or the file name (``consumer_protocol_assignment``)."""
    spec = data_spec(name)
    return _schema("data", spec.name if spec else name, version, spec)


_DECODE_FAILURES = (ConstructError, struct.error, UnicodeDecodeError, ValueError)
_ENCODE_FAILURES = (ConstructError, struct.error, UnicodeEncodeError, ValueError, TypeError, AttributeError)


def _decode(schema: FieldStruct, data: bytes | bytearray | memoryview, what: str) -> Container:
    try:
        return schema.parse_stream(io.BytesIO(data))
    except _DECODE_FAILURES as exc:
        raise DecodeError(f"{what}: {exc}") from exc


def _encode_parts(schema: FieldStruct, body: Mapping[str, Any], what: str) -> list[Part]:
    stream = GatherStream()
    try:
        schema.build_stream(body, stream)
    except _ENCODE_FAILURES as exc:
        raise EncodeError(f"{what}: {exc}") from exc
    return stream.parts()


def _encode(schema: FieldStruct, body: Mapping[str, Any], what: str) -> bytes:
    return join_parts(_encode_parts(schema, body, what))


def decode_request(api_key: int, version: int, data: bytes | bytearray | memoryview) -> Container:
    return _decode(request_schema(api_key, version), data, f"request {api_key} v{version}")


def encode_request(api_key: int, version: int, body: Mapping[str, Any]) -> bytes:
    return _encode(request_schema(api_key, version), body, f"request {api_key} v{version}")


def decode_response(api_key: int, version: int, data: bytes | bytearray | memoryview) -> Container:
    return _decode(response_schema(api_key, version), data, f"response {api_key} v{version}")


def encode_response(api_key: int, version: int, body: Mapping[str, Any]) -> bytes:
    return join_parts(encode_response_parts(api_key, version, body))


def encode_response_parts(api_key: int, version: int, body: Mapping[str, Any]) -> list[Part]:
    """The encoded response as parts in order: record sets of 16 KiB and more, and out-of-band ones, uncopied."""
    return _encode_parts(response_schema(api_key, version), body, f"response {api_key} v{version}")


def decode_data(name: str, version: int, data: bytes | bytearray | memoryview) -> Container:
    """Decode consumer-protocol bytes; versions above the newest we know read as the newest.

    Kafka's consumer protocol only ever appends fields, so a newer client's
    bytes begin with everything our newest version has, and trailing bytes
    are tolerated.
    """
    spec = data_spec(name)
    readable = min(version, spec.max_version) if spec is not None else version
    return _decode(data_schema(name, readable), data, f"{name} v{version}")


def encode_data(name: str, version: int, obj: Mapping[str, Any]) -> bytes:
    return _encode(data_schema(name, version), obj, f"{name} v{version}")
