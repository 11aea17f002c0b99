"""DescribeConfigs and IncrementalAlterConfigs against a real log on a temp dir."""

from __future__ import annotations

from typing import Any

import pytest

from kafkacompat.config import BROKER_CONFIGS
from kafkacompat.handlers.configs import AlterOp, ConfigSource, ResourceType
from kafkacompat.log.topic_config import TOPIC_CONFIGS, ConfigType
from kafkacompat.protocol.errors import ErrorCode
from tests.handlers.test_topics import NODE_ID, broker, call, create, make_broker, new_topic  # noqa: F401

DESCRIBE_CONFIGS, INCREMENTAL_ALTER_CONFIGS = 32, 44
TOPIC, BROKER = ResourceType.TOPIC, ResourceType.BROKER
# The topic configs clients look at most; each must be reported with its real value.
KEY_TOPIC_CONFIGS = (
    "retention.ms", "retention.bytes", "segment.bytes", "segment.ms", "cleanup.policy", "max.message.bytes",
    "message.timestamp.type", "min.insync.replicas", "delete.retention.ms", "compression.type",
)


def resource(resource_type: int, name: str, keys: list[str] | None = None) -> dict[str, Any]:
    return {"resource_type": resource_type, "resource_name": name, "configuration_keys": keys}


async def describe(broker, *resources, version: int = 4, synonyms: bool = False, documentation: bool = False):
    body = {"resources": list(resources), "include_synonyms": synonyms, "include_documentation": documentation}
    return (await call(broker, DESCRIBE_CONFIGS, version, body)).results


def change(name: str, op: AlterOp, value: str | None) -> dict[str, Any]:
    return {"name": name, "config_operation": op, "value": value}


async def alter(broker, *resources, version: int = 1, validate_only: bool = False) -> list[tuple]:
    body = {"resources": list(resources), "validate_only": validate_only}
    response = await call(broker, INCREMENTAL_ALTER_CONFIGS, version, body)
    return [(r.resource_type, r.resource_name, r.error_code) for r in response.responses]


def topic_changes(name: str, *changes: dict[str, Any]) -> dict[str, Any]:
    return {"resource_type": TOPIC, "resource_name": name, "configs": list(changes)}


def by_name(result) -> dict[str, Any]:
    return {entry.name: entry for entry in result.configs}


# -- DescribeConfigs: topics -------------------------------------------------------


async def test_describe_topic_reports_every_known_config_with_its_effective_value(broker):
    await create(broker, new_topic("t", configs=[{"name": "retention.ms", "value": "60000"}]))
    [result] = await describe(broker, resource(TOPIC, "t"))
    assert (result.error_code, result.error_message) == (ErrorCode.NONE, None)
    assert (result.resource_type, result.resource_name) == (TOPIC, "t")
    entries = by_name(result)
    assert set(entries) == set(TOPIC_CONFIGS)
    effective = broker.log_manager.effective_config("t")
    for name in KEY_TOPIC_CONFIGS:
        entry = entries[name]
        assert entry.value == effective[name]
        assert (entry.read_only, entry.is_sensitive) == (False, False)
        assert entry.config_type == TOPIC_CONFIGS[name].type
        overridden = name == "retention.ms"
        assert entry.config_source == (ConfigSource.TOPIC_CONFIG if overridden else ConfigSource.DEFAULT_CONFIG)
        assert entry.synonyms == [] and entry.documentation is None
    assert entries["retention.ms"].value == "60000"
    assert entries["cleanup.policy"].config_type == ConfigType.LIST


async def test_synonym_chain_runs_from_topic_override_to_broker_setting_to_default(make_broker):
    broker = make_broker(**{"log.retention.ms": "7200000"})
    await create(broker, new_topic("t", configs=[{"name": "retention.ms", "value": "60000"}]))
    [result] = await describe(broker, resource(TOPIC, "t", ["retention.ms", "segment.bytes"]), synonyms=True)
    entries = by_name(result)
    assert [(s.name, s.value, s.source) for s in entries["retention.ms"].synonyms] == [
        ("retention.ms", "60000", ConfigSource.TOPIC_CONFIG),
        ("log.retention.ms", "7200000", ConfigSource.STATIC_BROKER_CONFIG),
        ("log.retention.ms", "604800000", ConfigSource.DEFAULT_CONFIG),
    ]
    assert [(s.name, s.source) for s in entries["segment.bytes"].synonyms] == [
        ("log.segment.bytes", ConfigSource.DEFAULT_CONFIG)
    ]


async def test_broker_setting_is_the_source_when_the_topic_has_no_override(make_broker):
    broker = make_broker(**{"log.retention.ms": "7200000"})
    await create(broker, new_topic("t"))
    [result] = await describe(broker, resource(TOPIC, "t", ["retention.ms"]))
    [entry] = result.configs
    assert (entry.value, entry.config_source) == ("7200000", ConfigSource.STATIC_BROKER_CONFIG)


async def test_configuration_keys_select_known_names_and_empty_means_all(broker):
    await create(broker, new_topic("t"))
    [some, every] = await describe(
        broker, resource(TOPIC, "t", ["segment.ms", "no.such.config"]), resource(TOPIC, "t", [])
    )
    assert [entry.name for entry in some.configs] == ["segment.ms"]
    assert len(every.configs) == len(TOPIC_CONFIGS)


async def test_documentation_only_when_asked(broker):
    await create(broker, new_topic("t"))
    [result] = await describe(broker, resource(TOPIC, "t", ["retention.ms"]), documentation=True)
    assert result.configs[0].documentation == TOPIC_CONFIGS["retention.ms"].doc


@pytest.mark.parametrize(
    ("name", "code"),
    [("ghost", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), ("bad name!", ErrorCode.INVALID_TOPIC_EXCEPTION)],
)
async def test_describe_missing_or_illegal_topic(broker, name, code):
    [result] = await describe(broker, resource(TOPIC, name))
    assert (result.error_code, result.resource_name, result.configs) == (code, name, [])
    assert result.error_message


# -- DescribeConfigs: brokers and other resources ----------------------------------


async def test_describe_own_broker_reports_static_read_only_configs(make_broker):
    broker = make_broker(**{"log.retention.ms": "7200000"})
    [result] = await describe(broker, resource(BROKER, str(NODE_ID)), synonyms=True)
    entries = by_name(result)
    assert result.error_code == 0 and set(entries) == set(BROKER_CONFIGS)
    assert all(entry.read_only for entry in entries.values())
    retention = entries["log.retention.ms"]
    assert (retention.value, retention.config_source, retention.config_type) == (
        "7200000", ConfigSource.STATIC_BROKER_CONFIG, ConfigType.LONG
    )
    assert [(s.value, s.source) for s in retention.synonyms] == [
        ("7200000", ConfigSource.STATIC_BROKER_CONFIG), ("604800000", ConfigSource.DEFAULT_CONFIG)
    ]
    partitions = entries["num.partitions"]
    assert (partitions.value, partitions.config_source, partitions.config_type) == (
        "1", ConfigSource.DEFAULT_CONFIG, ConfigType.INT
    )
    assert entries["auto.create.topics.enable"].config_type == ConfigType.BOOLEAN


async def test_describe_cluster_default_broker_resource_is_empty(broker):
    [result] = await describe(broker, resource(BROKER, ""))
    assert (result.error_code, result.configs) == (ErrorCode.NONE, [])


@pytest.mark.parametrize(("resource_type", "name"), [(BROKER, "7"), (BROKER, "one"), (8, str(NODE_ID)), (0, "unknown")])
async def test_describe_foreign_broker_or_unsupported_resource_is_invalid_request(broker, resource_type, name):
    [result] = await describe(broker, resource(resource_type, name))
    assert result.error_code == ErrorCode.INVALID_REQUEST
    assert (result.resource_type, result.resource_name, result.configs) == (resource_type, name, [])
    assert result.error_message


@pytest.mark.parametrize("version", range(1, 5))
async def test_describe_answers_encode_in_every_version(broker, version):
    await create(broker, new_topic("t"))
    results = await describe(
        broker, resource(TOPIC, "t", ["retention.ms"]), resource(BROKER, str(NODE_ID), ["num.partitions"]),
        resource(TOPIC, "ghost"), version=version, synonyms=True, documentation=True,
    )
    assert [(r.error_code, [c.name for c in r.configs]) for r in results] == [
        (0, ["retention.ms"]), (0, ["num.partitions"]), (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, [])
    ]
    retention = results[0].configs[0]
    assert retention.config_source == ConfigSource.DEFAULT_CONFIG
    assert len(retention.synonyms) == 1
    if version >= 3:
        assert retention.config_type == ConfigType.LONG and retention.documentation


# -- IncrementalAlterConfigs -------------------------------------------------------


async def test_set_and_delete_change_the_topic_override(broker):
    await create(broker, new_topic("t"))
    assert await alter(broker, topic_changes("t", change("retention.ms", AlterOp.SET, "1000"))) == [(TOPIC, "t", 0)]
    assert broker.log_manager.topic("t").configs == {"retention.ms": "1000"}
    [entry] = (await describe(broker, resource(TOPIC, "t", ["retention.ms"])))[0].configs
    assert (entry.value, entry.config_source) == ("1000", ConfigSource.TOPIC_CONFIG)
    assert await alter(broker, topic_changes("t", change("retention.ms", AlterOp.DELETE, None))) == [(TOPIC, "t", 0)]
    assert broker.log_manager.topic("t").configs == {}


async def test_append_and_subtract_edit_list_configs(broker):
    await create(broker, new_topic("t"))
    await alter(broker, topic_changes("t", change("cleanup.policy", AlterOp.APPEND, "compact")))
    assert broker.log_manager.effective_config("t")["cleanup.policy"] == "delete,compact"
    await alter(broker, topic_changes("t", change("cleanup.policy", AlterOp.APPEND, "delete")))
    assert broker.log_manager.effective_config("t")["cleanup.policy"] == "delete,compact"
    await alter(broker, topic_changes("t", change("cleanup.policy", AlterOp.SUBTRACT, "delete")))
    assert broker.log_manager.effective_config("t")["cleanup.policy"] == "compact"


async def test_validate_only_checks_without_applying(broker):
    await create(broker, new_topic("t"))
    ok = topic_changes("t", change("segment.ms", AlterOp.SET, "5000"))
    bad = topic_changes("t", change("segment.ms", AlterOp.SET, "later"))
    assert await alter(broker, ok, validate_only=True) == [(TOPIC, "t", 0)]
    assert await alter(broker, bad, validate_only=True) == [(TOPIC, "t", ErrorCode.INVALID_CONFIG)]
    assert broker.log_manager.topic("t").configs == {}


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ([change("retention.ms", AlterOp.SET, "never")], ErrorCode.INVALID_CONFIG),
        ([change("no.such.config", AlterOp.SET, "1")], ErrorCode.INVALID_CONFIG),
        ([change("retention.ms", AlterOp.APPEND, "5")], ErrorCode.INVALID_CONFIG),
        ([change("retention.ms", AlterOp.SET, None)], ErrorCode.INVALID_REQUEST),
        (
            [change("retention.ms", AlterOp.SET, "1"), change("retention.ms", AlterOp.DELETE, None)],
            ErrorCode.INVALID_REQUEST,
        ),
        ([change("retention.ms", 9, "1")], ErrorCode.INVALID_REQUEST),
        (
            [change("segment.ms", AlterOp.SET, "5000"), change("retention.ms", AlterOp.SET, "x")],
            ErrorCode.INVALID_CONFIG,
        ),
    ],
)
async def test_refused_topic_changes_leave_the_topic_alone(broker, changes, code):
    await create(broker, new_topic("t"))
    assert await alter(broker, topic_changes("t", *changes)) == [(TOPIC, "t", code)]
    assert broker.log_manager.topic("t").configs == {}


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("ghost", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
        ("", ErrorCode.INVALID_REQUEST),
        ("a/b", ErrorCode.INVALID_TOPIC_EXCEPTION),
    ],
)
async def test_alter_missing_or_illegal_topic(broker, name, code):
    assert await alter(broker, topic_changes(name, change("retention.ms", AlterOp.SET, "1"))) == [(TOPIC, name, code)]


async def test_resource_named_twice_is_refused_both_times(broker):
    await create(broker, new_topic("t"))
    twice = topic_changes("t", change("retention.ms", AlterOp.SET, "1"))
    assert await alter(broker, twice, twice) == [(TOPIC, "t", ErrorCode.INVALID_REQUEST)] * 2
    assert broker.log_manager.topic("t").configs == {}


@pytest.mark.parametrize(
    ("name", "code"),
    [(str(NODE_ID), ErrorCode.INVALID_CONFIG), ("", ErrorCode.INVALID_CONFIG), ("9", ErrorCode.INVALID_REQUEST)],
)
async def test_broker_configs_are_static(broker, name, code):
    changes = {
        "resource_type": BROKER, "resource_name": name,
        "configs": [change("log.retention.ms", AlterOp.SET, "1")],
    }
    assert await alter(broker, changes) == [(BROKER, name, code)]


@pytest.mark.parametrize("version", [0, 1])
async def test_alter_answers_encode_in_every_version(broker, version):
    await create(broker, new_topic("t"))
    answers = await alter(
        broker, topic_changes("t", change("retention.ms", AlterOp.SET, "1")), topic_changes("ghost"), version=version
    )
    assert answers == [(TOPIC, "t", 0), (TOPIC, "ghost", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]


# -- group configs (resource type GROUP, read by share groups) ---------------------------

GROUP = ResourceType.GROUP


def group_changes(name: str, *changes: dict[str, Any]) -> dict[str, Any]:
    return {"resource_type": GROUP, "resource_name": name, "configs": list(changes)}


async def test_group_configs_default_then_set_validated_and_deleted(broker):
    [result] = await describe(broker, resource(GROUP, "g"))
    entries = by_name(result)
    assert {name: (e.value, e.config_source) for name, e in entries.items()} == {
        "share.auto.offset.reset": ("latest", ConfigSource.DEFAULT_CONFIG),
        "share.heartbeat.interval.ms": ("5000", ConfigSource.DEFAULT_CONFIG),
        "share.isolation.level": ("read_uncommitted", ConfigSource.DEFAULT_CONFIG),
        "share.record.lock.duration.ms": ("30000", ConfigSource.DEFAULT_CONFIG),
        "share.session.timeout.ms": ("45000", ConfigSource.DEFAULT_CONFIG),
    }
    assert await alter(broker, group_changes("g", change("share.auto.offset.reset", AlterOp.SET, "earliest"))) == [
        (GROUP, "g", ErrorCode.NONE)]
    [result] = await describe(broker, resource(GROUP, "g", ["share.auto.offset.reset"]))
    assert [(e.name, e.value, e.config_source) for e in result.configs] == [
        ("share.auto.offset.reset", "earliest", ConfigSource.GROUP_CONFIG)]
    refused = [
        group_changes("g", change("share.auto.offset.reset", AlterOp.SET, "sometime")),
        group_changes("g", change("share.isolation.level", AlterOp.SET, "read_sometimes")),
        group_changes("g", change("share.record.lock.duration.ms", AlterOp.SET, "1000")),  # below the 15000 floor
        group_changes("g", change("consumer.session.timeout.ms", AlterOp.SET, "45000")),
        group_changes("g", change("share.auto.offset.reset", AlterOp.APPEND, "latest")),
    ]
    for changes in refused:
        assert await alter(broker, changes) == [(GROUP, "g", ErrorCode.INVALID_CONFIG)]
    assert await alter(broker, group_changes("g", change("share.auto.offset.reset", AlterOp.DELETE, None))) == [
        (GROUP, "g", ErrorCode.NONE)]
    [result] = await describe(broker, resource(GROUP, "g", ["share.auto.offset.reset"]))
    assert result.configs[0].config_source == ConfigSource.DEFAULT_CONFIG
