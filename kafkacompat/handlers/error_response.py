"""A response to any request that carries one error code everywhere, built without running its handler.

Kafka answers a request it refuses as a whole (an injected fault, later an
authorization failure) with the response of that API in which every error
field holds the code and every per-resource array mirrors the request's:
the topics and partitions asked for come back, each with the error. This
builds that answer from the specs alone: arrays of the response are filled
from the request array they correspond to (same name, or the one whose
elements share an identifying field), identifying fields are copied, every
``error_code`` is set, and every other field keeps its default.
"""

from __future__ import annotations

from typing import Any, Mapping

from kafkacompat.protocol.specs import FieldSpec, api_spec

# Fields naming a resource, by groups of names that mean the same thing on both sides.
_IDENTITY_ALIASES = (
    ("name", "topic", "topic_name"),
    ("partition_index", "partition", "index", "partition_id"),
    ("topic_id",),
    ("group_id",),
    ("transactional_id",),
    ("resource_type",),
    ("resource_name",),
    ("key",),
)
_ALIASES = {name: group for group in _IDENTITY_ALIASES for name in group}
_PRIMITIVE_ARRAY_ITEMS = {"string", "int32", "int64", "int16", "int8", "uuid"}


def error_response(api_key: int, version: int, request_body: Mapping[str, Any], code: int,
                   message: str | None = None) -> dict[str, Any]:
    """The response body of ``api_key`` v``version`` answering ``request_body`` with ``code`` everywhere."""
    spec = api_spec(api_key)
    if spec is None:
        raise ValueError(f"API key {api_key} has no spec")
    return _fill(spec.request, spec.response, request_body, version, code, message)


def _fill(request_fields: tuple[FieldSpec, ...], response_fields: tuple[FieldSpec, ...],
          request: Mapping[str, Any], version: int, code: int, message: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {}
    request_arrays = {f.name: f for f in request_fields if f.is_array and f.present_in(version)}
    for field in response_fields:
        if not field.present_in(version):
            continue
        if field.name == "error_code":
            body[field.name] = code
        elif field.name == "error_message" and message is not None:
            body[field.name] = message
        elif field.is_array and field.fields:
            mirrored = _mirrored_array(field, request_arrays, request, version)
            if mirrored is not None:
                source, items = mirrored
                body[field.name] = [_element(source, field, item, version, code, message) for item in items]
        elif field.name in _ALIASES:
            value = _identity(request, field.name)
            if value is not None:
                body[field.name] = value
    return body


def _element(request_field: FieldSpec, response_field: FieldSpec, item: Any, version: int, code: int,
             message: str | None) -> dict[str, Any]:
    if isinstance(item, Mapping):
        return _fill(request_field.fields, response_field.fields, item, version, code, message)
    # A request array of plain values (topic names, group ids, partition numbers) names the resource itself.
    element = _fill((), response_field.fields, {}, version, code, message)
    for child in response_field.fields:
        if child.present_in(version) and child.name in _ALIASES and not child.is_array \
                and _same_kind(child.type, item):
            element[child.name] = item
            break
    return element


def _same_kind(field_type: str, value: Any) -> bool:
    return isinstance(value, str) == (field_type == "string") and not isinstance(value, (bytes, bytearray))


def _mirrored_array(field: FieldSpec, request_arrays: Mapping[str, FieldSpec], request: Mapping[str, Any],
                    version: int) -> tuple[FieldSpec, list[Any]] | None:
    """The request array (its spec and items) this response array answers item by item, if any.

    One level down when nothing matches here: AlterReplicaLogDirs asks per log
    directory and is answered per topic, over all directories.
    """
    present = {name: f for name, f in request_arrays.items() if request.get(name)}
    if field.name in present:
        return present[field.name], list(request[field.name])
    keys = {_ALIASES[c.name] for c in field.fields if c.name in _ALIASES}
    for name, candidate in present.items():
        if candidate.fields and keys & {_ALIASES[c.name] for c in candidate.fields if c.name in _ALIASES}:
            return candidate, list(request[name])
    for name, candidate in present.items():
        if not candidate.fields and candidate.element_type in _PRIMITIVE_ARRAY_ITEMS and keys:
            return candidate, list(request[name])
    for name, candidate in present.items():
        inner = {f.name: f for f in candidate.fields if f.is_array and f.present_in(version)}
        for item in request[name]:
            found = _mirrored_array(field, inner, item, version) if isinstance(item, Mapping) else None
            if found is not None:
                nested = [i for entry in request[name] if isinstance(entry, Mapping)
                          for i in entry.get(next(n for n, f in inner.items() if f is found[0])) or ()]
                return found[0], nested
    return None


def _identity(request: Mapping[str, Any], name: str) -> Any:
    for alias in _ALIASES[name]:
        if alias in request:
            return request[alias]
    return None
