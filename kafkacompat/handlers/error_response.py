"""One error answer for any request, built from the request and its response spec.

Kafka answers a request whose handler failed unexpectedly with the API's
error response (``AbstractRequest.getErrorResponse``): the error code in every
``error_code`` field, and the arrays that carry errors mirroring the topics,
partitions, groups or resources the request named, so a client can fail each
of them. This module builds that answer for every API from the specs alone,
sans I/O, for dispatch and for injected faults.

The mirroring rules, applied at each level of the response:

- a response array whose elements carry an ``error_code`` (directly or
  deeper) is paired with a request array of the same level: the one with
  the same name, else the first one not yet paired that names the same
  kind of resource (a shared key field such as a topic name, partition,
  group id; or bare values of a key field's type); other arrays stay empty,
  as DescribeLogDirs v0-2's results do for a refused request;
- each request element gives one response element; primitive fields are
  copied from request fields of the same name and type, or of a synonym
  (a Produce partition's ``index`` is a Fetch request's ``partition``),
  except 64-bit values: those are offsets and timestamps of the answer,
  and offsets without a spec default are -1 (Kafka's INVALID_OFFSET);
- a response array whose elements hold only an error (and arrays) answers
  the one request array left at its level entry by entry: CreateAcls'
  results, DeleteAcls' filter results;
- a request element that is a bare value (``partition_indexes``,
  ``topic_names``, ``groups``) fills the response element's first field of
  its type: the partition index, topic name or group id.

Record sets are empty (not null, as Kafka sends them). Every other field
keeps its default; the encoder fills those in.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping

from kafkacompat.protocol.specs import FieldSpec, api_spec

ERROR_CODE = "error_code"
# AddPartitionsToTxn names its per-partition code differently.
ERROR_CODES = (ERROR_CODE, "partition_error_code")
ERROR_MESSAGE = "error_message"
PRODUCE = 0
INVALID_OFFSET = -1
_OFFSET_SUFFIXES = ("offset", "watermark")
# Kafka's names for one key field that differ between a request and its response.
_SYNONYMS = {
    "partition_index": ("partition", "index", "partition_id"),
    "partition": ("partition_index", "index", "partition_id"),
    "index": ("partition_index", "partition", "partition_id"),
    "partition_id": ("partition_index", "partition", "index"),
    "name": ("topic", "topic_name", "user"),
    "topic": ("name", "topic_name"),
    "topic_name": ("name", "topic"),
    # AlterUserScramCredentials: results per user, mirrored from its deletions (Kafka also lists the
    # upserted users there; one request array is paired per response array here).
    "user": ("name",),
}


def error_response(api_key: int, version: int, request_body: Mapping[str, Any], code: int,
                   message: str | None = None) -> dict[str, Any] | None:
    """The response body answering `request_body` with `code` everywhere; None when Kafka sends none.

    None is Produce with acks=0: Kafka has no answer to send and closes the
    connection instead. `message` goes into every ``error_message`` field.
    """
    if api_key == PRODUCE and request_body.get("acks") == 0:
        return None
    spec = api_spec(api_key)
    return _Mirror(version, code, message).struct(spec.response, spec.request, request_body)


@functools.lru_cache(maxsize=None)
def _carries_errors(field: FieldSpec, version: int) -> bool:
    return any(child.present_in(version) and (child.name in ERROR_CODES or (child.is_struct and _carries_errors(child, version)))
               for child in field.fields)


class _Mirror:
    """Builds one error body; holds what every level shares."""

    def __init__(self, version: int, code: int, message: str | None) -> None:
        self.version = version
        self.code = int(code)
        self.message = message

    def struct(self, fields: tuple[FieldSpec, ...], request_fields: tuple[FieldSpec, ...],
               request: Mapping[str, Any] | None) -> dict[str, Any]:
        version = self.version
        present = [f for f in fields if f.present_in(version)]
        request_present = [f for f in request_fields if f.present_in(version)] if request is not None else []
        body: dict[str, Any] = {}
        for field in present:
            if field.is_array:
                continue
            if field.name in ERROR_CODES and field.type == "int16":
                body[field.name] = self.code
            elif field.name == ERROR_MESSAGE and (self.message is not None or field.nullable_in(version)):
                body[field.name] = self.message
            elif field.type == "records":
                body[field.name] = b""  # empty, never null: librdkafka cannot read a null record set
            elif field.type == "int64":
                if field.name.endswith(_OFFSET_SUFFIXES) and not field.has_default:
                    body[field.name] = INVALID_OFFSET
            elif not field.is_struct:
                source = _same_field(field, request_present)
                if source is not None:
                    body[field.name] = request[source.name]
        for field, source, items in _paired_arrays(present, request_present, request, version):
            body[field.name] = [self.element(field, source, element) for element in items]
        return body

    def element(self, field: FieldSpec, source: FieldSpec, value: Any) -> dict[str, Any]:
        if source.is_struct:
            return self.struct(field.fields, source.fields, value)
        element = self.struct(field.fields, (), None)
        target = next((f for f in field.fields if f.present_in(self.version) and not f.is_array
                       and f.type == source.element_type), None)
        if target is not None:
            element[target.name] = value
        return element


def _same_field(field: FieldSpec, request_fields: list[FieldSpec]) -> FieldSpec | None:
    names = (field.name, *_SYNONYMS.get(field.name, ()))
    for name in names:
        for candidate in request_fields:
            if candidate.name == name and candidate.type == field.type:
                return candidate
    return None


def _paired_arrays(fields: list[FieldSpec], request_fields: list[FieldSpec], request: Mapping[str, Any] | None,
                   version: int) -> list[tuple[FieldSpec, FieldSpec, list[Any]]]:
    """(response array, request array, its items) pairs: by name, then by resource (see the module docstring).

    One level down when no request array of this level names the resource:
    AlterReplicaLogDirs asks per log directory and is answered per topic, so
    its topics come from every directory.
    """
    wanted = [f for f in fields if f.is_array and f.is_struct and _carries_errors(f, version)]
    free = [f for f in request_fields if f.is_array]
    pairs = []
    for field in list(wanted):
        match = next((f for f in free if f.name == field.name), None)
        if match is not None:
            pairs.append((field, match, list(request[match.name] or ())))
            wanted.remove(field)
            free.remove(match)
    for field in wanted:
        match = next((f for f in free if _names_same_resource(field, f, version)), None)
        if match is not None:
            pairs.append((field, match, list(request[match.name] or ())))
            free.remove(match)
            continue
        for outer in (f for f in free if f.is_struct):
            inner = next((f for f in outer.fields if f.present_in(version) and f.is_array
                          and _names_same_resource(field, f, version)), None)
            if inner is not None:
                items = [item for entry in request[outer.name] or () for item in entry[inner.name] or ()]
                pairs.append((field, inner, items))
                break
        else:
            if _only_outcome(field, version) and len(free) == 1 and free[0].is_struct:
                pairs.append((field, free[0], list(request[free[0].name] or ())))
                free.clear()
    return pairs


def _only_outcome(field: FieldSpec, version: int) -> bool:
    """An array answering its request array entry by entry, naming nothing: CreateAcls' results."""
    return all(f.is_array or f.name in (ERROR_CODE, ERROR_MESSAGE) for f in field.fields if f.present_in(version))


_KEYS = frozenset({*_SYNONYMS, "topic_id", "group_id", "transactional_id", "resource_name", "key", "member_id"})


def _names_same_resource(field: FieldSpec, request_field: FieldSpec, version: int) -> bool:
    keys = {(f.name, f.type) for f in field.fields if f.present_in(version) and not f.is_array and f.name in _KEYS}
    if not request_field.is_struct:
        return any(key_type == request_field.element_type for _, key_type in keys)
    for child in request_field.fields:
        if child.present_in(version) and not child.is_array:
            names = {child.name, *_SYNONYMS.get(child.name, ())}
            if any(name in names and key_type == child.type for name, key_type in keys):
                return True
    return False
