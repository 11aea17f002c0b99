"""Topic-level configs: Kafka's names, types and defaults, validation, and the typed view the log uses.

`TOPIC_CONFIGS` is the single table of topic configs this broker accepts.
DescribeConfigs reports types and defaults from it, CreateTopics/AlterConfigs
validate against it, and `LogConfig` turns an effective string map into the
typed values the log engine reads on its paths.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping
from typing import Any
from dataclasses import dataclass

from kafkacompat.protocol.errors import ErrorCode, KafkaError

LONG_MAX = 2**63 - 1
INT_MAX = 2**31 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
CREATE_TIME = "CreateTime"
LOG_APPEND_TIME = "LogAppendTime"


class ConfigType(enum.IntEnum):
    """DescribeConfigs' config_type codes."""

    UNKNOWN = 0
    BOOLEAN = 1
    STRING = 2
    INT = 3
    SHORT = 4
    LONG = 5
    DOUBLE = 6
    LIST = 7
    CLASS = 8
    PASSWORD = 9


@dataclass(frozen=True)
class ConfigDef:
    """One topic config: its type and default as Kafka reports them, and a parser that validates."""

    type: ConfigType
    default: str
    parse: Callable[[str], object]
    doc: str


def _bounded(pattern: re.Pattern[str], convert: Callable[[str], Any], kind: str, low: Any, high: Any) -> Callable[[str], Any]:
    """A parser for numbers written as ``pattern`` matches, within [low, high]."""

    def parse(raw: str) -> Any:
        if not pattern.fullmatch(raw):
            raise ValueError(f"not {kind}")
        value = convert(raw)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _integer(low: int, high: int) -> Callable[[str], int]:
    return _bounded(_INTEGER, int, "an integer", low, high)


def _double(low: float, high: float) -> Callable[[str], float]:
    return _bounded(_DECIMAL, float, "a number", low, high)


def _boolean(raw: str) -> bool:
    lowered = raw.lower()
    if lowered not in ("true", "false"):
        raise ValueError("must be true or false")
    return lowered == "true"


def _one_of(*choices: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return raw

    return parse


def _list_of(*choices: str) -> Callable[[str], frozenset[str]]:
    def parse(raw: str) -> frozenset[str]:
        items = [item.strip() for item in raw.split(",") if item.strip()]
        unknown = [item for item in items if item not in choices]
        if unknown:
            raise ValueError(f"items must be among {', '.join(choices)}")
        return frozenset(items)

    return parse


def _any_string(raw: str) -> str:
    return raw


_LONG = ConfigType.LONG
_INT = ConfigType.INT

TOPIC_CONFIGS: dict[str, ConfigDef] = {
    "cleanup.policy": ConfigDef(
        ConfigType.LIST, "delete", _list_of("compact", "delete"),
        "delete: drop old segments by retention.ms/retention.bytes. compact: keep the latest "
        "record per key (the log cleaner rewrites sealed segments; keyless records are refused).",
    ),
    "compression.type": ConfigDef(
        ConfigType.STRING, "producer",
        _one_of("uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"),
        "Accepted; batches are always stored as the producer compressed them.",
    ),
    "delete.retention.ms": ConfigDef(
        _LONG, "86400000", _integer(0, LONG_MAX),
        "Compacted topics: a tombstone is removed once its batch's timestamp is this much older than the cleaner's clock.",
    ),
    "file.delete.delay.ms": ConfigDef(
        _LONG, "60000", _integer(0, LONG_MAX), "Accepted; deleted segments are removed at once."
    ),
    "flush.messages": ConfigDef(
        _LONG, str(LONG_MAX), _integer(1, LONG_MAX),
        "Periodic flushing: fsync after this many records. A finite value (or flush.ms) overrides "
        "the broker's log.flush.on.ack for this topic.",
    ),
    "flush.ms": ConfigDef(
        _LONG, str(LONG_MAX), _integer(0, LONG_MAX),
        "Periodic flushing: fsync once this long has passed since the previous flush (checked on "
        "append and by the broker's maintenance task).",
    ),
    "index.interval.bytes": ConfigDef(
        _INT, "4096", _integer(0, INT_MAX), "Bytes appended between offset/time index entries."
    ),
    "max.compaction.lag.ms": ConfigDef(
        _LONG, str(LONG_MAX), _integer(1, LONG_MAX),
        "Compacted topics: clean regardless of the dirty ratio once the oldest uncleaned segment is this old.",
    ),
    "max.message.bytes": ConfigDef(
        _INT, "1048588", _integer(0, INT_MAX), "Largest record batch accepted, in bytes."
    ),
    "message.timestamp.after.max.ms": ConfigDef(
        _LONG, "3600000", _integer(0, LONG_MAX),
        "CreateTime topics refuse records (Produce names each one) whose timestamp is this far ahead of the broker clock.",
    ),
    "message.timestamp.before.max.ms": ConfigDef(
        _LONG, str(LONG_MAX), _integer(0, LONG_MAX),
        "CreateTime topics refuse records (Produce names each one) whose timestamp is this far behind the broker clock.",
    ),
    "message.timestamp.type": ConfigDef(
        ConfigType.STRING, CREATE_TIME, _one_of(CREATE_TIME, LOG_APPEND_TIME),
        "LogAppendTime stamps each batch with the broker clock on append.",
    ),
    "min.cleanable.dirty.ratio": ConfigDef(
        ConfigType.DOUBLE, "0.5", _double(0.0, 1.0),
        "Compacted topics: clean once uncleaned bytes are this fraction of the cleanable log.",
    ),
    "min.compaction.lag.ms": ConfigDef(
        _LONG, "0", _integer(0, LONG_MAX),
        "Compacted topics: segments holding records younger than this are not cleaned yet.",
    ),
    "min.insync.replicas": ConfigDef(
        _INT, "1", _integer(1, INT_MAX), "In-sync replicas an acks=all produce needs (NOT_ENOUGH_REPLICAS otherwise)."
    ),
    "preallocate": ConfigDef(
        ConfigType.BOOLEAN, "false", _boolean, "Accepted; segment files are never preallocated."
    ),
    "retention.bytes": ConfigDef(
        _LONG, "-1", _integer(-1, LONG_MAX), "Delete oldest segments while the partition is larger (-1: no limit)."
    ),
    "retention.ms": ConfigDef(
        _LONG, "604800000", _integer(-1, LONG_MAX),
        "Delete segments whose newest timestamp is older than this (-1: no limit).",
    ),
    "segment.bytes": ConfigDef(
        _INT, "1073741824", _integer(14, INT_MAX), "Roll to a new segment file at this size."
    ),
    "segment.index.bytes": ConfigDef(
        _INT, "10485760", _integer(8, INT_MAX), "Roll when the offset index reaches this size."
    ),
    "segment.jitter.ms": ConfigDef(
        _LONG, "0", _integer(0, LONG_MAX), "Accepted; rolls are not jittered."
    ),
    "segment.ms": ConfigDef(
        _LONG, "604800000", _integer(1, LONG_MAX),
        "Roll when an incoming batch is this much newer than the segment's first batch (an idle "
        "partition's expired active segment is rolled by retention).",
    ),
    "unclean.leader.election.enable": ConfigDef(
        ConfigType.BOOLEAN, "false", _boolean, "Accepted; meaningless with a single replica."
    ),
    "follower.replication.throttled.replicas": ConfigDef(
        ConfigType.LIST, "", _any_string, "Accepted; no replication."
    ),
    "leader.replication.throttled.replicas": ConfigDef(
        ConfigType.LIST, "", _any_string, "Accepted; no replication."
    ),
}


def validate_topic_configs(configs: Mapping[str, str | None]) -> dict[str, str]:
    """Check names and values; return the overrides as they will be stored.

    Raises KafkaError(INVALID_CONFIG) naming the first offending config.
    """
    accepted = {}
    for name, raw in configs.items():
        definition = TOPIC_CONFIGS.get(name)
        if definition is None:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"unknown topic config name: {name}")
        if raw is None:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"null value not supported for topic config {name}")
        value = raw.strip()
        try:
            definition.parse(value)
        except ValueError as exc:
            raise KafkaError(
                ErrorCode.INVALID_CONFIG, f"invalid value {raw!r} for topic config {name}: {exc}"
            ) from None
        accepted[name] = value
    return accepted


def default_configs() -> dict[str, str]:
    return {name: definition.default for name, definition in TOPIC_CONFIGS.items()}


@dataclass(frozen=True)
class LogConfig:
    """The typed subset of a partition's effective config that the log engine enforces."""

    segment_bytes: int
    segment_ms: int
    segment_index_bytes: int
    index_interval_bytes: int
    retention_ms: int
    retention_bytes: int
    cleanup_policy: frozenset[str]
    max_message_bytes: int
    log_append_time: bool
    message_timestamp_after_max_ms: int
    message_timestamp_before_max_ms: int
    flush_messages: int
    flush_ms: int
    delete_retention_ms: int
    min_cleanable_dirty_ratio: float
    min_compaction_lag_ms: int
    max_compaction_lag_ms: int
    min_insync_replicas: int = 1

    @classmethod
    def from_strings(cls, values: Mapping[str, str]) -> LogConfig:
        """Build from a complete, already validated effective config (Kafka defaults filled in)."""

        def get(name: str):
            return TOPIC_CONFIGS[name].parse(values[name])

        return cls(
            segment_bytes=get("segment.bytes"),
            segment_ms=get("segment.ms"),
            segment_index_bytes=get("segment.index.bytes"),
            index_interval_bytes=get("index.interval.bytes"),
            retention_ms=get("retention.ms"),
            retention_bytes=get("retention.bytes"),
            cleanup_policy=get("cleanup.policy"),
            max_message_bytes=get("max.message.bytes"),
            log_append_time=get("message.timestamp.type") == LOG_APPEND_TIME,
            message_timestamp_after_max_ms=get("message.timestamp.after.max.ms"),
            message_timestamp_before_max_ms=get("message.timestamp.before.max.ms"),
            flush_messages=get("flush.messages"),
            flush_ms=get("flush.ms"),
            delete_retention_ms=get("delete.retention.ms"),
            min_cleanable_dirty_ratio=get("min.cleanable.dirty.ratio"),
            min_compaction_lag_ms=get("min.compaction.lag.ms"),
            max_compaction_lag_ms=get("max.compaction.lag.ms"),
            min_insync_replicas=get("min.insync.replicas"),
        )

    @classmethod
    def defaults(cls) -> LogConfig:
        return cls.from_strings(default_configs())
