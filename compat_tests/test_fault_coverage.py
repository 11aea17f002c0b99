"""Every API key the broker serves answers an injected error: a decodable response of its version with the code.

Raw requests (every field set, from our specs) on the broker's port, with a
rule that refuses all requests of one client id; plus the mute that follows
a throttled answer, which no client exposes.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from kafkacompat.client import KafkaClient
from kafkacompat.handlers.error_response import ERROR_CODES
from kafkacompat.fuzz.campaign import advertised_versions
from kafkacompat.protocol import load_specs
from kafkacompat.tools.faults import FaultsClient
from tests.protocol.protocol_bodies import BodyMaker

PRODUCE, METADATA = 0, 3
POLICY_VIOLATION = 44
DESCRIBE_LOG_DIRS = 35
# Where Kafka's own error answer has no field for the code: DescribeLogDirs gained its
# top-level error_code in v3, and before it a refusal is an empty list of log dirs.
NO_ERROR_FIELD = {(DESCRIBE_LOG_DIRS, 0), (DESCRIBE_LOG_DIRS, 1), (DESCRIBE_LOG_DIRS, 2)}
pytestmark = pytest.mark.timeout(180)


def _error_codes(value: Any) -> set[int]:
    if isinstance(value, dict):
        return {code for name, item in value.items() if not name.startswith("_")
                for code in ([item] if name in ERROR_CODES else _error_codes(item))}
    if isinstance(value, list):
        return {code for item in value for code in _error_codes(item)}
    return set()


def _body(api_key: int, version: int) -> dict[str, Any]:
    body = BodyMaker(version).body(load_specs()[api_key].request)
    if api_key == PRODUCE:
        body["acks"] = -1  # acks=0 is never answered, injected error or not
    return body


def test_every_served_api_and_version_answers_an_injected_error(http_broker):
    faults = FaultsClient(http_broker.http)
    faults.clear()
    advertised = advertised_versions(("127.0.0.1", http_broker.port), 10)
    faults.add(client_id="coverage", error="POLICY_VIOLATION", message="injected")
    failures = []
    try:
        with KafkaClient(http_broker.bootstrap, client_id="coverage", timeout_s=10) as connection:
            for api_key, (low, high) in sorted(advertised.items()):
                for version in range(low, high + 1):
                    answer = connection.request(api_key, version, _body(api_key, version))
                    if (api_key, version) in NO_ERROR_FIELD:
                        if answer.results:
                            failures.append(f"API {api_key} v{version}: log dirs listed despite the error")
                    elif POLICY_VIOLATION not in _error_codes(answer):
                        failures.append(f"API {api_key} v{version}: codes {_error_codes(answer)}")
        [rule] = faults.list()
        assert rule["injected"] == sum(high - low + 1 for low, high in advertised.values())
    finally:
        faults.clear()
    assert not failures, "\n".join(failures)


def test_a_throttled_answer_mutes_the_connection_for_the_throttle_time(http_broker):
    faults = FaultsClient(http_broker.http)
    faults.clear()
    faults.add(api="Metadata", client_id="muted", action="throttle", throttle_ms=800, first=1)
    try:
        with KafkaClient(http_broker.bootstrap, client_id="muted", timeout_s=10) as connection:
            first = connection.request(METADATA, 9, {"topics": []})
            started = time.monotonic()
            second = connection.request(METADATA, 9, {"topics": []})
            waited = time.monotonic() - started
    finally:
        faults.clear()
    assert (first.throttle_time_ms, second.throttle_time_ms) == (800, 0)
    assert waited >= 0.7  # the next request was read only after the mute
