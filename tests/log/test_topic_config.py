"""Topic config table: types, defaults, validation and the typed LogConfig."""

from __future__ import annotations

import pytest

from kafkacompat.log.topic_config import TOPIC_CONFIGS, ConfigType, LogConfig, default_configs, validate_topic_configs
from kafkacompat.protocol.errors import ErrorCode, KafkaError


def test_every_default_passes_its_own_validation():
    assert validate_topic_configs(default_configs()) == default_configs()


def test_types_and_defaults_match_kafka_for_the_common_configs():
    expected = {
        "retention.ms": (ConfigType.LONG, "604800000"),
        "retention.bytes": (ConfigType.LONG, "-1"),
        "segment.bytes": (ConfigType.INT, "1073741824"),
        "segment.ms": (ConfigType.LONG, "604800000"),
        "cleanup.policy": (ConfigType.LIST, "delete"),
        "max.message.bytes": (ConfigType.INT, "1048588"),
        "message.timestamp.type": (ConfigType.STRING, "CreateTime"),
        "min.insync.replicas": (ConfigType.INT, "1"),
        "delete.retention.ms": (ConfigType.LONG, "86400000"),
        "index.interval.bytes": (ConfigType.INT, "4096"),
        "flush.messages": (ConfigType.LONG, "9223372036854775807"),
        "flush.ms": (ConfigType.LONG, "9223372036854775807"),
        "compression.type": (ConfigType.STRING, "producer"),
    }
    assert {name: (TOPIC_CONFIGS[name].type, TOPIC_CONFIGS[name].default) for name in expected} == expected


@pytest.mark.parametrize(
    "name, value",
    [
        ("retention.ms", "-2"),
        ("retention.ms", "1_000"),
        ("retention.ms", "1e3"),
        ("segment.bytes", "2147483648"),
        ("segment.bytes", "13"),
        ("cleanup.policy", "delete,archive"),
        ("message.timestamp.type", "createtime"),
        ("compression.type", "brotli"),
        ("min.insync.replicas", "0"),
        ("preallocate", "yes"),
        ("min.cleanable.dirty.ratio", "1.5"),
        ("min.cleanable.dirty.ratio", "nan"),
    ],
)
def test_bad_values_are_invalid_config(name, value):
    with pytest.raises(KafkaError) as info:
        validate_topic_configs({name: value})
    assert info.value.code == ErrorCode.INVALID_CONFIG
    assert name in info.value.message


@pytest.mark.parametrize(
    "name, value, stored",
    [
        ("cleanup.policy", "compact, delete", "compact, delete"),
        ("retention.ms", " -1 ", "-1"),
        ("preallocate", "TRUE", "TRUE"),
        ("min.cleanable.dirty.ratio", "0.25", "0.25"),
    ],
)
def test_good_values_are_stored_trimmed(name, value, stored):
    assert validate_topic_configs({name: value}) == {name: stored}


def test_log_config_is_typed():
    config = LogConfig.from_strings(
        {**default_configs(), "cleanup.policy": "compact,delete", "message.timestamp.type": "LogAppendTime"}
    )
    assert config.cleanup_policy == frozenset({"compact", "delete"})
    assert config.log_append_time is True
    assert config.segment_bytes == 1073741824
    assert LogConfig.defaults().log_append_time is False
