"""Load the YAML message specs in ``protocol_specs/`` into a small, typed model.

The specs ship inside the package as ``kafkacompat/protocol_specs`` (in the
source tree a link to the top-level ``protocol_specs/``, the source of truth;
in a built wheel or sdist the files themselves) and are read through
:mod:`importlib.resources`, so an installed broker never looks at a checkout.

The specs are data: every field appears once, with the versions it exists in,
and :mod:`kafkacompat.protocol.schema` derives the per-version wire schemas
from this model. Nothing here knows about bytes.

Field names are Kafka's names in snake_case by one rule: an underscore goes
before every upper-case letter that is not the first character, then the whole
name is lower-cased (``ThrottleTimeMs`` -> ``throttle_time_ms``, ``TopicId`` ->
``topic_id``, ``timeoutMs`` -> ``timeout_ms``). :func:`snake_case` is that rule.
"""

from __future__ import annotations

import functools
import importlib.resources
import os
import re
from dataclasses import dataclass
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml

PRIMITIVE_TYPES = frozenset(
    {"int8", "int16", "int32", "int64", "uint16", "float64", "bool", "string", "bytes", "records", "uuid"}
)

_UPPER_AFTER_START = re.compile(r"(?<!^)([A-Z])")


def snake_case(kafka_name: str) -> str:
    """Kafka's CamelCase field name spelled the Python way (see module docstring)."""
    return _UPPER_AFTER_START.sub(r"_\1", kafka_name).lower()


@dataclass(frozen=True)
class VersionRange:
    """An inclusive version range; ``high is None`` means open-ended ("3+")."""

    low: int
    high: int | None = None

    def __contains__(self, version: int) -> bool:
        return self.low <= version and (self.high is None or version <= self.high)

    @classmethod
    def parse(cls, text: str | int | None) -> VersionRange | None:
        """Parse ``"3+"``, ``"0-7"``, ``"5"`` / ``5``; ``"none"`` gives None (no versions)."""
        if text is None:
            return None
        text = str(text).strip()
        if text == "none":
            return None
        if text.endswith("+"):
            return cls(int(text[:-1]))
        low, sep, high = text.partition("-")
        return cls(int(low), int(high) if sep else int(low))


ALL_VERSIONS = VersionRange(0)


@dataclass(frozen=True)
class FieldSpec:
    """One field of a message or nested struct, across all versions.

    ``type`` is the spec's type string: a primitive, ``[]<primitive>``,
    ``[]<StructName>`` or ``<StructName>``; struct types carry their ``fields``.
    ``has_default`` distinguishes an explicit ``default: null`` from no default.
    """

    name: str
    type: str
    versions: VersionRange
    nullable: VersionRange | None = None
    tag: int | None = None
    tagged_versions: VersionRange | None = None
    has_default: bool = False
    default: Any = None
    fields: tuple[FieldSpec, ...] = ()

    @property
    def is_array(self) -> bool:
        return self.type.startswith("[]")

    @property
    def element_type(self) -> str:
        """The type of one element for arrays, the type itself otherwise."""
        return self.type[2:] if self.is_array else self.type

    @property
    def is_struct(self) -> bool:
        return self.element_type not in PRIMITIVE_TYPES

    def present_in(self, version: int) -> bool:
        return version in self.versions

    def nullable_in(self, version: int) -> bool:
        return self.nullable is not None and version in self.nullable and version in self.versions

    def tagged_in(self, version: int) -> bool:
        return self.tag is not None and self.tagged_versions is not None and version in self.tagged_versions


@dataclass(frozen=True)
class ApiSpec:
    """One API key (request + response) or, with ``api_key is None``, a data schema.

    Data schemas (the consumer-protocol subscription and assignment) keep their
    single field list in ``request``; ``response`` is empty for them.
    """

    api_key: int | None
    name: str
    min_version: int
    max_version: int
    flexible_min_version: int | None
    request: tuple[FieldSpec, ...]
    response: tuple[FieldSpec, ...]

    def is_flexible(self, version: int) -> bool:
        return self.flexible_min_version is not None and version >= self.flexible_min_version

    def supports(self, version: int) -> bool:
        return self.min_version <= version <= self.max_version


class SpecError(ValueError):
    """A YAML spec file is malformed; raised at load time, never at request time."""


def specs_dir() -> Traversable:
    """Where the specs are read from: the package's own copy, or ``KAFKACOMPAT_SPECS_DIR``."""
    override = os.environ.get("KAFKACOMPAT_SPECS_DIR")
    if override:
        return Path(override)
    return importlib.resources.files("kafkacompat") / "protocol_specs"


def _spec_files() -> list[Traversable]:
    directory = specs_dir()
    if not directory.is_dir():
        raise SpecError(f"no protocol specs directory at {directory}")
    return sorted((entry for entry in directory.iterdir() if entry.name.endswith(".yaml")), key=lambda e: e.name)


_FIELD_KEYS = {"name", "type", "versions", "nullable", "tag", "tagged_versions", "default", "fields"}


def _parse_field(raw: dict[str, Any], where: str) -> FieldSpec:
    unknown = set(raw) - _FIELD_KEYS
    if unknown:
        raise SpecError(f"{where}: unknown keys {sorted(unknown)}")
    name = raw["name"]
    type_ = raw["type"]
    versions = VersionRange.parse(raw.get("versions", "0+"))
    if versions is None:
        raise SpecError(f"{where}.{name}: a field must exist in some version")
    children = tuple(_parse_field(child, f"{where}.{name}") for child in raw.get("fields", ()))
    element = type_[2:] if type_.startswith("[]") else type_
    if (element not in PRIMITIVE_TYPES) != bool(children):
        raise SpecError(f"{where}.{name}: struct types need 'fields', primitives must not have them")
    if ("tag" in raw) != ("tagged_versions" in raw):
        raise SpecError(f"{where}.{name}: 'tag' and 'tagged_versions' go together")
    return FieldSpec(
        name=name,
        type=type_,
        versions=versions,
        nullable=VersionRange.parse(raw.get("nullable")),
        tag=raw.get("tag"),
        tagged_versions=VersionRange.parse(raw.get("tagged_versions")),
        has_default="default" in raw,
        default=raw.get("default"),
        fields=children,
    )


def _parse_fields(raw: list[dict[str, Any]] | None, where: str) -> tuple[FieldSpec, ...]:
    return tuple(_parse_field(field, where) for field in raw or ())


def parse_spec(raw: dict[str, Any], where: str) -> ApiSpec:
    valid = VersionRange.parse(raw["valid_versions"])
    if valid is None or valid.high is None:
        raise SpecError(f"{where}: valid_versions must be a closed range")
    flexible = VersionRange.parse(raw["flexible_versions"])
    if raw.get("kind") == "data":
        request, response = _parse_fields(raw["fields"], where), ()
        api_key = None
    else:
        request = _parse_fields(raw["request"], f"{where}.request")
        response = _parse_fields(raw["response"], f"{where}.response")
        api_key = int(raw["api_key"])
    return ApiSpec(
        api_key=api_key,
        name=raw["name"],
        min_version=valid.low,
        max_version=valid.high,
        flexible_min_version=flexible.low if flexible else None,
        request=request,
        response=response,
    )


# libyaml's loader reads the specs about four times faster than the pure-Python
# one; same safe subset of YAML.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_API_KEY_LINE = re.compile(rb"^api_key:[ \t]*(\d+)[ \t]*$", re.MULTILINE)


@functools.cache
def _parse_file(path: Traversable) -> ApiSpec:
    with path.open(encoding="utf-8") as handle:
        return parse_spec(yaml.load(handle, Loader=_YAML_LOADER), path.name)


@functools.cache
def _api_files() -> dict[int, Traversable]:
    """API key -> spec file, from each file's top-level ``api_key:`` line, without parsing YAML.

    Lets :func:`api_spec` parse one file instead of all of them: a fresh
    broker answers its first request before the other specs are read.
    """
    files: dict[int, Traversable] = {}
    for path in _spec_files():
        match = _API_KEY_LINE.search(path.read_bytes())
        if match is None:
            continue
        api_key = int(match.group(1))
        if api_key in files:
            raise SpecError(f"{path.name}: API key {api_key} defined twice")
        files[api_key] = path
    return files


_VALID_VERSIONS_LINE = re.compile(rb"^valid_versions:[ \t]*(\S+)[ \t]*$", re.MULTILINE)


@functools.cache
def spec_version_range(api_key: int) -> tuple[int, int]:
    """An API's (min, max) version from its spec's top-level ``valid_versions:`` line, without parsing YAML.

    ApiVersions answers from these, so a fresh broker's first answer needs no
    spec parsed; :func:`api_spec` checks they agree with the parsed spec.
    """
    path = _api_files().get(api_key)
    match = _VALID_VERSIONS_LINE.search(path.read_bytes()) if path is not None else None
    versions = VersionRange.parse(match.group(1).decode()) if match else None
    if versions is None or versions.high is None:
        raise SpecError(f"API key {api_key} has no spec with a closed valid_versions line in {specs_dir()}")
    return versions.low, versions.high


@functools.cache
def api_spec(api_key: int) -> ApiSpec | None:
    """One API's spec (None for a key we have no spec for), parsed on first use."""
    path = _api_files().get(api_key)
    if path is None:
        return None
    spec = _parse_file(path)
    if spec.api_key != api_key:
        raise SpecError(f"{path.name}: api_key line says {api_key}, the spec says {spec.api_key}")
    if spec_version_range(api_key) != (spec.min_version, spec.max_version):
        raise SpecError(f"{path.name}: the valid_versions line disagrees with the parsed spec")
    return spec


@functools.cache
def _load_all() -> tuple[dict[int, ApiSpec], dict[str, ApiSpec]]:
    apis = {api_key: api_spec(api_key) for api_key in _api_files()}
    data: dict[str, ApiSpec] = {}
    for path in _spec_files():
        if path not in _api_files().values():
            spec = _parse_file(path)
            if spec.api_key is not None:
                raise SpecError(f"{path.name}: api_key {spec.api_key} is not on a top-level line of its own")
            data[spec.name] = spec
    return apis, data


def check_specs_cover(api_keys: list[int]) -> None:
    """Raise SpecError unless every one of these API keys has a spec file.

    Cheap (no YAML is parsed), so a broker can refuse to start without its
    specs instead of listening and then failing every request.
    """
    missing = sorted(set(api_keys) - set(_api_files()))
    if missing:
        raise SpecError(f"no protocol spec for API key(s) {', '.join(map(str, missing))} in {specs_dir()}")


def load_specs() -> dict[int, ApiSpec]:
    """All API specs by API key; loaded once per process."""
    return _load_all()[0]


def load_data_specs() -> dict[str, ApiSpec]:
    """The non-API data schemas (consumer-protocol bytes) by name."""
    return _load_all()[1]


def data_spec(name: str) -> ApiSpec | None:
    """A data schema by its spec name or its file name: ``ConsumerProtocolAssignment``
    and ``consumer_protocol_assignment`` are the same schema."""
    wanted = snake_case(name)
    return next((spec for spec in load_data_specs().values() if snake_case(spec.name) == wanted), None)
