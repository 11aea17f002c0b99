"""The YAML spec loader: version ranges, the snake_case rule, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

import kafkacompat
from kafkacompat.protocol import specs
from kafkacompat.protocol.specs import (
    SpecError,
    VersionRange,
    check_specs_cover,
    load_specs,
    parse_spec,
    snake_case,
    specs_dir,
)


@pytest.mark.parametrize(
    ("kafka_name", "ours"),
    [("ThrottleTimeMs", "throttle_time_ms"), ("TopicId", "topic_id"), ("IsrNodes", "isr_nodes"),
     ("ProducerId", "producer_id"), ("timeoutMs", "timeout_ms"), ("Acks", "acks")],
)
def test_snake_case(kafka_name: str, ours: str) -> None:
    assert snake_case(kafka_name) == ours


def test_version_ranges() -> None:
    assert VersionRange.parse("3+") == VersionRange(3, None)
    assert VersionRange.parse("0-7") == VersionRange(0, 7)
    assert VersionRange.parse(5) == VersionRange(5, 5)
    assert VersionRange.parse("none") is None
    assert 7 in VersionRange(0, 7) and 8 not in VersionRange(0, 7) and 99 in VersionRange(3)


def _raw(**overrides):
    raw = {
        "name": "Example", "api_key": 99, "valid_versions": "0-2", "flexible_versions": "2+",
        "request": [{"name": "a", "type": "int32"},
                    {"name": "s", "type": "[]Item", "versions": "1+", "fields": [{"name": "b", "type": "string"}]}],
        "response": [{"name": "c", "type": "bool", "tag": 0, "tagged_versions": "2+", "default": True}],
    }
    raw.update(overrides)
    return raw


def test_parse_spec_builds_the_model() -> None:
    spec = parse_spec(_raw(), "example.yaml")
    assert (spec.api_key, spec.min_version, spec.max_version, spec.flexible_min_version) == (99, 0, 2, 2)
    items = spec.request[1]
    assert items.is_array and items.is_struct and items.element_type == "Item"
    assert not items.present_in(0) and items.present_in(2) and items.fields[0].name == "b"
    tagged = spec.response[0]
    assert tagged.tagged_in(2) and not tagged.tagged_in(1) and tagged.has_default and tagged.default is True


@pytest.mark.parametrize(
    "request_fields",
    [
        [{"name": "a", "type": "int32", "about": "prose does not belong here"}],
        [{"name": "a", "type": "Item"}],  # struct without fields
        [{"name": "a", "type": "int32", "fields": [{"name": "b", "type": "int8"}]}],
        [{"name": "a", "type": "int32", "tag": 0}],  # tag without tagged_versions
        [{"name": "a", "type": "int32", "versions": "none"}],
    ],
)
def test_malformed_fields_are_rejected(request_fields) -> None:
    with pytest.raises(SpecError):
        parse_spec(_raw(request=request_fields), "bad.yaml")


def test_specs_ship_inside_the_package_and_honour_the_env_var(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KAFKACOMPAT_SPECS_DIR", raising=False)
    packaged = Path(str(specs_dir()))
    assert packaged.parent == Path(kafkacompat.__file__).parent
    # The package's copy is the top-level protocol_specs/, file for file.
    top_level = Path(__file__).resolve().parents[2] / "protocol_specs"
    assert sorted(p.name for p in packaged.glob("*.yaml")) == sorted(p.name for p in top_level.glob("*.yaml"))
    monkeypatch.setenv("KAFKACOMPAT_SPECS_DIR", str(tmp_path))
    assert specs_dir() == tmp_path


def test_missing_specs_are_named(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KAFKACOMPAT_SPECS_DIR", str(tmp_path / "absent"))
    monkeypatch.setattr(specs, "_api_files", specs._api_files.__wrapped__)
    with pytest.raises(SpecError, match="no protocol specs directory"):
        check_specs_cover([18])
    (tmp_path / "absent").mkdir()
    (tmp_path / "absent" / "api_versions.yaml").write_text("api_key: 18\n")
    check_specs_cover([18])
    with pytest.raises(SpecError, match=r"API key\(s\) 0, 3 in"):
        check_specs_cover([0, 3, 18])


def test_shipped_specs_load() -> None:
    specs = load_specs()
    assert specs[0].name == "Produce" and specs[18].is_flexible(3) and not specs[18].is_flexible(2)
    assert specs[47].flexible_min_version is None
