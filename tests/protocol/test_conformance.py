"""Our YAML specs against Apache Kafka's own message definitions, version by version.

For each YAML file and every version in its valid range, the fields present
in that version must match Kafka's in order: snake_case name, type,
nullability, tag and tagged-ness, and default; valid and flexible versions
must agree too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kafkacompat.protocol.schema import default_value
from tests.reference_specs import LATER_THAN_REFERENCE, NEWER_THAN_REFERENCE, SAME_BODY_LATER_VERSIONS
from kafkacompat.protocol.specs import (
    ApiSpec,
    FieldSpec,
    VersionRange,
    load_data_specs,
    load_specs,
    snake_case,
)

KAFKA_SPECS = Path(__file__).resolve().parents[2] / ".." / "shared" / "kafka-message-specs"
if not KAFKA_SPECS.is_dir():
    pytest.skip(f"Kafka's message specs not found at {KAFKA_SPECS}", allow_module_level=True)


def _load_kafka(name: str) -> dict[str, Any]:
    text = (KAFKA_SPECS / f"{name}.json").read_text(encoding="utf-8")
    return json.loads("\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//")))


def _kafka_field(raw: dict[str, Any], commons: dict[str, list]) -> FieldSpec:
    """Kafka's JSON field in our model, so one comparison covers both."""
    type_ = raw["type"]
    element = type_[2:] if type_.startswith("[]") else type_
    children = raw.get("fields", commons.get(element, ()))
    assert "flexibleVersions" not in raw, f"{raw['name']}: per-field flexibleVersions is not modelled"
    default = raw.get("default")
    if isinstance(default, str):
        default = _kafka_default(type_, default)
    return FieldSpec(
        name=snake_case(raw["name"]),
        type=type_,
        versions=VersionRange.parse(raw["versions"]),
        nullable=VersionRange.parse(raw.get("nullableVersions")),
        tag=raw.get("tag"),
        tagged_versions=VersionRange.parse(raw.get("taggedVersions")),
        has_default="default" in raw,
        default=default,
        fields=tuple(_kafka_field(child, commons) for child in children),
    )


def _kafka_default(type_: str, text: str) -> Any:
    if text == "null":
        return None
    if type_ == "bool":
        return text == "true"
    if type_ in ("string", "bytes", "records"):
        return text
    return int(text, 0)


def _kafka_message(name: str) -> tuple[dict[str, Any], tuple[FieldSpec, ...]]:
    raw = _load_kafka(name)
    commons = {struct["name"]: struct["fields"] for struct in raw.get("commonStructs", ())}
    return raw, tuple(_kafka_field(field, commons) for field in raw["fields"])


def _layout(fields: tuple[FieldSpec, ...], version: int, flexible: bool) -> list[tuple]:
    """The per-version facts about a field list that decide its wire form and defaults."""
    rows = []
    for field in fields:
        if not field.present_in(version):
            continue
        rows.append(
            (
                field.name,
                field.type,
                field.nullable_in(version),
                field.tag if field.tagged_in(version) else None,
                default_value(field, version) if not field.is_struct else None,
                _layout(field.fields, version, flexible) if field.is_struct else None,
            )
        )
    return rows


def _check(ours: ApiSpec, raw: dict[str, Any], ours_fields, kafka_fields) -> None:
    valid = VersionRange.parse(raw["validVersions"])
    high = ours.max_version
    if ours.name in NEWER_THAN_REFERENCE:
        assert valid.high == NEWER_THAN_REFERENCE[ours.name] < high, ours.name
        high = valid.high  # only the versions the reference holds can be compared
    assert (ours.min_version, high) == (valid.low, SAME_BODY_LATER_VERSIONS.get(ours.name, valid.high))
    flexible = VersionRange.parse(raw["flexibleVersions"])
    assert ours.flexible_min_version == (flexible.low if flexible else None)
    for version in range(ours.min_version, high + 1):
        is_flexible = ours.is_flexible(version)
        assert _layout(ours_fields, version, is_flexible) == _layout(kafka_fields, version, is_flexible), (
            f"{ours.name} v{version}"
        )


def _check_later_than_reference(spec: ApiSpec, name: str) -> None:
    """Such an API is absent from the reference, or there only in versions below ours marked unstable."""
    if not (KAFKA_SPECS / f"{name}.json").exists():
        return
    raw = _load_kafka(name)
    assert raw["apiKey"] == spec.api_key
    # Kafka marks instability on the request only.
    unstable = _load_kafka(f"{spec.name}Request").get("latestVersionUnstable")
    assert unstable is True, f"{name}: the reference's versions are final, compare them"
    assert spec.min_version > VersionRange.parse(raw["validVersions"]).high


API_CASES = [
    pytest.param(spec, direction, id=f"{spec.name}-{direction}")
    for spec in load_specs().values()
    for direction in ("request", "response")
]


@pytest.mark.parametrize(("spec", "direction"), API_CASES)
def test_api_spec_matches_kafka(spec: ApiSpec, direction: str) -> None:
    if spec.name in LATER_THAN_REFERENCE:
        _check_later_than_reference(spec, f"{spec.name}{direction.capitalize()}")
        return
    raw, kafka_fields = _kafka_message(f"{spec.name}{direction.capitalize()}")
    assert raw["apiKey"] == spec.api_key
    ours_fields = spec.request if direction == "request" else spec.response
    _check(spec, raw, ours_fields, kafka_fields)


@pytest.mark.parametrize("name", sorted(load_data_specs()))
def test_data_spec_matches_kafka(name: str) -> None:
    spec = load_data_specs()[name]
    raw, kafka_fields = _kafka_message(name)
    assert raw["type"] == "data"
    _check(spec, raw, spec.request, kafka_fields)


def test_every_served_api_key_has_a_spec_and_every_spec_a_handler() -> None:
    from kafkacompat.handlers.dispatch import REGISTRY

    assert set(load_specs()) == set(REGISTRY)
    assert set(load_data_specs()) == {"ConsumerProtocolSubscription", "ConsumerProtocolAssignment"}
