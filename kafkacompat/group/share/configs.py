"""Group configs (Kafka's resource type GROUP) that share groups read, with Kafka's defaults and checks.

A group config is set per group id with IncrementalAlterConfigs and takes
effect for that group only; unset, the broker's group.share.* config applies
(share.auto.offset.reset and share.isolation.level have no broker config:
latest, read_uncommitted). Kafka's consumer.*
and streams.* group configs belong to protocols this broker lacks and are
refused as unknown.
"""

from __future__ import annotations

from typing import Callable, Mapping

from kafkacompat.group.share.coordinator import ShareSettings
from kafkacompat.protocol.errors import ErrorCode, KafkaError

AUTO_OFFSET_RESET_VALUES = ("earliest", "latest")
ISOLATION_LEVEL_VALUES = ("read_committed", "read_uncommitted")


def defaults(settings: ShareSettings) -> dict[str, str]:
    """Every share group config with the value that applies when the group sets none."""
    return {
        "share.auto.offset.reset": "latest",
        "share.heartbeat.interval.ms": str(settings.heartbeat_interval_ms),
        "share.isolation.level": "read_uncommitted",
        "share.record.lock.duration.ms": str(settings.record_lock_duration_ms),
        "share.session.timeout.ms": str(settings.session_timeout_ms),
    }


def _int_between(low: int, high: int) -> Callable[[str, str], None]:
    def check(name: str, value: str) -> None:
        try:
            number = int(value)
        except ValueError:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Invalid value {value} for configuration {name}: "
                                                       "Not a number of type INT") from None
        if not low <= number <= high:
            raise KafkaError(ErrorCode.INVALID_CONFIG,
                             f"Invalid value {value} for configuration {name}: must be in [{low}, {high}]")
    return check


def _one_of(*allowed: str) -> Callable[[str, str], None]:
    def check(name: str, value: str) -> None:
        if value not in allowed:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Invalid value {value} for configuration {name}: "
                                                       f"String must be one of: {', '.join(allowed)}")
    return check


def validate(configs: Mapping[str, str], settings: ShareSettings) -> None:
    """KafkaError(INVALID_CONFIG) for an unknown group config or a value out of range."""
    checks = {
        "share.auto.offset.reset": _one_of(*AUTO_OFFSET_RESET_VALUES),
        "share.heartbeat.interval.ms": _int_between(1, 2**31 - 1),
        "share.isolation.level": _one_of(*ISOLATION_LEVEL_VALUES),
        "share.record.lock.duration.ms": _int_between(settings.min_record_lock_duration_ms,
                                                      settings.max_record_lock_duration_ms),
        "share.session.timeout.ms": _int_between(1, 2**31 - 1),
    }
    for name, value in configs.items():
        if name not in checks:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"Unknown group config name: {name}")
        checks[name](name, value)
