"""A handler that fails unexpectedly: its request gets the API's error response, for every advertised version."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import trio

from kafkacompat.handlers import dispatch
from kafkacompat.handlers.error_response import error_response
from kafkacompat.handlers.registry import ApiHandler, RequestContext
from kafkacompat.protocol import decode_request, decode_response, encode_request, encode_request_frame, encode_response
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.protocol.frames import parse_response_frame
from kafkacompat.protocol.specs import api_spec
from tests.protocol.protocol_bodies import BodyMaker

UNKNOWN = ErrorCode.UNKNOWN_SERVER_ERROR
PRODUCE, FETCH, METADATA, OFFSET_FETCH, DESCRIBE_GROUPS = 0, 1, 3, 9, 15


def advertised_cases() -> list[tuple[int, int]]:
    return [(key, version) for key, handler in sorted(dispatch.REGISTRY.items())
            for version in range(handler.min_version, handler.max_version + 1)]


def request_body(api_key: int, version: int) -> Any:
    """A request with two elements in every array, as the decoder hands it to a handler."""
    body = BodyMaker(version).body(api_spec(api_key).request)
    if api_key == PRODUCE:
        body["acks"] = -1
    return decode_request(api_key, version, encode_request(api_key, version, body))


def error_codes(fields, version: int, value: Any) -> list[int]:
    """Every error code (``error_code``, AddPartitionsToTxn's ``partition_error_code``) in `value`, at any depth."""
    codes = []
    for field in fields:
        if not field.present_in(version) or value[field.name] is None:
            continue
        if field.name in ("error_code", "partition_error_code"):
            codes.append(value[field.name])
        elif field.is_struct:
            for element in value[field.name] if field.is_array else [value[field.name]]:
                codes.extend(error_codes(field.fields, version, element))
    return codes


async def answer_of_failing_handler(api_key: int, version: int, body: Any, monkeypatch) -> Any:
    async def fail(_request, _ctx):
        raise RuntimeError("injected")

    monkeypatch.setitem(dispatch.REGISTRY, api_key, ApiHandler(api_key, fail))
    frame = encode_request_frame(api_key, version, 77, "test", encode_request(api_key, version, body))
    ctx = RequestContext(broker=SimpleNamespace(metrics=None, faults=SimpleNamespace(armed=False), authorizer=None,
                                                quotas=SimpleNamespace(active=False),
                                                cluster=SimpleNamespace(replicated=False)),
                         client_host="127.0.0.1")
    answer = await dispatch.dispatch(frame[4:], ctx)
    correlation_id, response = parse_response_frame(api_key, version, answer[4:])
    assert correlation_id == 77
    return decode_response(api_key, version, response)


# DescribeLogDirs v0-2 has no error field outside its per-directory results, and
# Kafka refuses it with no results at all.
NO_ERROR_FIELD = {(35, 0), (35, 1), (35, 2)}


@pytest.mark.parametrize(("api_key", "version"), advertised_cases())
def test_failing_handler_gets_unknown_server_error_everywhere(api_key: int, version: int, monkeypatch, caplog) -> None:
    body = request_body(api_key, version)
    response = trio.run(answer_of_failing_handler, api_key, version, body, monkeypatch)
    codes = error_codes(api_spec(api_key).response, version, response)
    if (api_key, version) in NO_ERROR_FIELD:
        assert codes == [] and list(response.results) == []
    else:
        assert codes and set(codes) == {UNKNOWN}
    assert "injected" in caplog.text  # the stack trace is logged


@pytest.mark.parametrize("version", range(3, api_spec(PRODUCE).max_version + 1))
def test_produce_mirrors_topics_and_partitions(version: int) -> None:
    body = request_body(PRODUCE, version)
    answer = decode_response(PRODUCE, version, _encoded(PRODUCE, version, body))
    assert [t.name for t in answer.responses] == [t.name for t in body.topic_data]
    for topic, requested in zip(answer.responses, body.topic_data):
        assert [p.index for p in topic.partition_responses] == [p.index for p in requested.partition_data]
        assert all(p.base_offset == -1 and p.record_errors == [] for p in topic.partition_responses)


def test_fetch_mirrors_partitions_under_their_response_names() -> None:
    version = api_spec(FETCH).max_version
    body = request_body(FETCH, version)
    answer = decode_response(FETCH, version, _encoded(FETCH, version, body))
    assert [t.topic_id for t in answer.responses] == [t.topic_id for t in body.topics]
    assert [[p.partition_index for p in t.partitions] for t in answer.responses] == \
        [[p.partition for p in t.partitions] for t in body.topics]
    assert answer.error_code == UNKNOWN


def test_bare_values_fill_the_key_field() -> None:
    body = request_body(OFFSET_FETCH, 7)
    answer = decode_response(OFFSET_FETCH, 7, _encoded(OFFSET_FETCH, 7, body))
    assert [[p.partition_index for p in t.partitions] for t in answer.topics] == \
        [list(t.partition_indexes) for t in body.topics]
    groups = request_body(DESCRIBE_GROUPS, 5)
    described = decode_response(DESCRIBE_GROUPS, 5, _encoded(DESCRIBE_GROUPS, 5, groups))
    assert [g.group_id for g in described.groups] == list(groups.groups)


def test_arrays_without_errors_stay_empty_and_message_is_carried() -> None:
    version = api_spec(METADATA).max_version
    body = request_body(METADATA, version)
    answer = error_response(METADATA, version, body, UNKNOWN, "broken")
    assert "brokers" not in answer and len(answer["topics"]) == 2
    assert all(t["error_code"] == UNKNOWN for t in answer["topics"])


def test_produce_with_acks_0_gets_no_answer() -> None:
    body = request_body(PRODUCE, 9)
    body.acks = 0
    assert error_response(PRODUCE, 9, body, UNKNOWN) is None


def _encoded(api_key: int, version: int, body: Any) -> bytes:
    return encode_response(api_key, version, error_response(api_key, version, body, UNKNOWN, "broken"))
