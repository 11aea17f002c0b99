"""Cross-check against an independent codec: kafka-python's own message classes.

For every (API, version, direction) that both we and kafka-python know, the
bytes we encode must decode in kafka-python and re-encode to the same bytes.
"""

from __future__ import annotations

import importlib
import pkgutil

import pytest
from protocol_bodies import BodyMaker

from kafkacompat.protocol import encode_request, encode_response, load_specs

kafka_protocol = pytest.importorskip("kafka.protocol")
from kafka.protocol.api_message import ApiMessage  # noqa: E402

API_VERSIONS = 18


def _kafka_python_classes() -> dict[tuple[int, str], type]:
    for module in pkgutil.walk_packages(kafka_protocol.__path__, "kafka.protocol."):
        importlib.import_module(module.name)
    found: dict[tuple[int, str], type] = {}
    pending = [ApiMessage]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if getattr(cls, "_class_version", None) is None and getattr(cls, "_json", None):
            found[(cls.API_KEY, cls.type)] = cls
    return found


CLASSES = _kafka_python_classes()
ENCODERS = {"request": encode_request, "response": encode_response}


def _cases():
    for spec in load_specs().values():
        for direction in ("request", "response"):
            cls = CLASSES.get((spec.api_key, direction))
            if cls is None:
                continue
            low, high = cls.valid_versions
            for version in range(max(low, spec.min_version), min(high, spec.max_version) + 1):
                yield pytest.param(spec.api_key, version, direction, id=f"{spec.name}-v{version}-{direction}")


CASES = list(_cases())


def test_kafka_python_covers_most_of_our_versions() -> None:
    assert len(CASES) > 250


@pytest.mark.parametrize(("api_key", "version", "direction"), CASES)
@pytest.mark.parametrize("nulls", [False, True], ids=["values", "nulls"])
def test_kafka_python_reencodes_our_bytes(api_key: int, version: int, direction: str, nulls: bool) -> None:
    spec = load_specs()[api_key]
    fields = spec.request if direction == "request" else spec.response
    body = BodyMaker(version, nulls=nulls).body(fields)
    if api_key == API_VERSIONS and direction == "response":
        # kafka-python reads any failed ApiVersions response as v0 (Kafka's fallback rule).
        body["error_code"] = 0
    ours = ENCODERS[direction](api_key, version, body)

    message = CLASSES[(api_key, direction)].decode(ours, version=version)
    for slot in ("_header", "_min_version", "_max_version"):
        if not hasattr(message, slot):  # decode() skips __init__; encode() reads these
            setattr(message, slot, None)
    assert bytes(message.encode(version=version)) == ours
