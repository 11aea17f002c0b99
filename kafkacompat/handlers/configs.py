"""DescribeConfigs (key 32), AlterConfigs (key 33) and IncrementalAlterConfigs (key 44).

Topic configs are reported as Kafka reports them: every known topic config
with its effective value and where that value comes from. The source is the
head of a synonym chain — the topic override, then the broker config that
supplies the topic default (``retention.ms`` -> ``log.retention.ms``) if it was
set explicitly, then that broker config's built-in default. Clients such as
confluent-kafka decide "is this a default?" from that source alone.

AlterConfigs is the older, non-incremental form: the configs it names become
the resource's whole set of overrides, so an override it leaves out is
removed. Both forms check a request's shape the same way first.

Client metrics subscriptions (KIP-714) are ``client-metrics`` resources whose
configs (``metrics``, ``interval.ms``, ``match``) live in the broker's
ClientMetricsManager; a resource whose configs are all deleted is gone.

Broker configs are static on this broker (there is no dynamic broker config),
so they are read-only, the cluster-wide default resource ("") holds nothing,
and an alteration of a broker resource is refused as Kafka refuses a config
that cannot be updated dynamically.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from kafkacompat.config import BROKER_CONFIGS
from kafkacompat.group.share import configs as group_configs
from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.log.log_manager import validate_topic_name
from kafkacompat.log.topic_config import TOPIC_CONFIGS, ConfigType
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.telemetry.client_metrics import parse_configs as parse_client_metrics

# The client-metrics configs that are lists (APPEND and SUBTRACT apply); interval.ms is an int.
CLIENT_METRICS_LISTS = ("metrics", "match")

API_DESCRIBE_CONFIGS = 32
API_ALTER_CONFIGS = 33
API_INCREMENTAL_ALTER_CONFIGS = 44


class ResourceType(enum.IntEnum):
    TOPIC = 2
    BROKER = 4
    CLIENT_METRICS = 16
    GROUP = 32


class ConfigSource(enum.IntEnum):
    """Where a reported value comes from (the subset a static single broker can have)."""

    TOPIC_CONFIG = 1
    STATIC_BROKER_CONFIG = 4
    DEFAULT_CONFIG = 5
    CLIENT_METRICS_CONFIG = 7
    GROUP_CONFIG = 8


class AlterOp(enum.IntEnum):
    SET = 0
    DELETE = 1
    APPEND = 2
    SUBTRACT = 3


# Topic config -> the broker config that supplies its default.
_BROKER_SYNONYM = {d.topic_config: d.name for d in BROKER_CONFIGS.values() if d.topic_config}


def _synonym(name: str, value: str, source: ConfigSource) -> dict[str, Any]:
    return {"name": name, "value": value, "source": source}


def _broker_layers(config: Any, name: str) -> list[dict[str, Any]]:
    """A broker config's part of a synonym chain: its explicit value, then its default."""
    layers = []
    if not config.is_default(name):
        layers.append(_synonym(name, config.get(name), ConfigSource.STATIC_BROKER_CONFIG))
    layers.append(_synonym(name, BROKER_CONFIGS[name].default, ConfigSource.DEFAULT_CONFIG))
    return layers


def _entry(
    name: str,
    value: str,
    synonyms: list[dict[str, Any]],
    config_type: ConfigType,
    doc: str,
    *,
    read_only: bool,
    include_synonyms: bool,
    include_documentation: bool,
) -> dict[str, Any]:
    source = synonyms[0]["source"] if synonyms else ConfigSource.DEFAULT_CONFIG
    if config_type == ConfigType.PASSWORD:  # secrets are never shown, as Kafka hides them
        synonyms = [{**synonym, "value": None} for synonym in synonyms]
    return {
        "name": name,
        "value": None if config_type == ConfigType.PASSWORD else value,
        "read_only": read_only,
        "is_default": source == ConfigSource.DEFAULT_CONFIG,  # v0 says this instead of the source
        "config_source": source,
        "is_sensitive": config_type == ConfigType.PASSWORD,
        "synonyms": synonyms if include_synonyms else [],
        "config_type": config_type,
        "documentation": doc if include_documentation else None,
    }


def topic_config_entries(
    broker: Any,
    overrides: Mapping[str, str],
    effective: Mapping[str, str],
    names: Iterable[str] | None = None,
    *,
    include_synonyms: bool = False,
    include_documentation: bool = False,
) -> list[dict[str, Any]]:
    """DescribeConfigs entries for a topic's configs (all known ones when ``names`` is None), by name.

    ``overrides`` are the topic's own settings, ``effective`` the values the log
    applies. CreateTopics v5+ reports a subset of these same entries.
    """
    wanted = TOPIC_CONFIGS if names is None else [n for n in names if n in TOPIC_CONFIGS]
    entries = []
    for name in sorted(set(wanted)):
        synonyms = []
        if name in overrides:
            synonyms.append(_synonym(name, overrides[name], ConfigSource.TOPIC_CONFIG))
        broker_name = _BROKER_SYNONYM.get(name)
        if broker_name is not None:
            synonyms.extend(_broker_layers(broker.config, broker_name))
        definition = TOPIC_CONFIGS[name]
        entries.append(
            _entry(
                name, effective[name], synonyms, definition.type, definition.doc,
                read_only=False, include_synonyms=include_synonyms, include_documentation=include_documentation,
            )
        )
    return entries


def _broker_entries(
    broker: Any, names: set[str] | None, *, include_synonyms: bool, include_documentation: bool
) -> list[dict[str, Any]]:
    entries = []
    for name in broker.config.broker_config_names():
        if names is not None and name not in names:
            continue
        definition = BROKER_CONFIGS[name]
        entries.append(
            _entry(
                name, broker.config.get(name), _broker_layers(broker.config, name), ConfigType[definition.type.upper()],
                definition.doc,
                read_only=True, include_synonyms=include_synonyms, include_documentation=include_documentation,
            )
        )
    return entries


def _check_broker_resource(broker: Any, resource_name: str) -> bool:
    """True for this broker's own resource, False for the cluster default (""); else INVALID_REQUEST."""
    if resource_name == "":
        return False
    try:
        node_id = int(resource_name)
    except ValueError:
        raise KafkaError(
            ErrorCode.INVALID_REQUEST, f"Broker id must be an integer, but it is: {resource_name}"
        ) from None
    if node_id != broker.node_id:
        raise KafkaError(
            ErrorCode.INVALID_REQUEST,
            f"Unexpected broker id, expected {broker.node_id} or empty string, but received {resource_name}",
        )
    return True


def _existing_topic(broker: Any, name: str) -> Any:
    validate_topic_name(name)
    topic = broker.log_manager.topic(name)
    if topic is None:
        raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic '{name}' does not exist.")
    return topic


def _describe_resource(broker: Any, resource: Any, include_synonyms: bool, include_documentation: bool) -> list:
    names = set(resource.configuration_keys) if resource.configuration_keys else None
    options = {"include_synonyms": include_synonyms, "include_documentation": include_documentation}
    if resource.resource_type == ResourceType.TOPIC:
        topic = _existing_topic(broker, resource.resource_name)
        effective = broker.log_manager.effective_config(topic.name)
        return topic_config_entries(broker, topic.configs, effective, names, **options)
    if resource.resource_type == ResourceType.BROKER:
        if not _check_broker_resource(broker, resource.resource_name):
            return []  # the cluster default holds dynamic defaults only, and we have none
        return _broker_entries(broker, names, **options)
    if resource.resource_type == ResourceType.CLIENT_METRICS:
        return _client_metrics_entries(broker, resource.resource_name, names, **options)
    if resource.resource_type == ResourceType.GROUP:
        return _group_entries(broker, resource.resource_name, names, **options)
    raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unsupported resource type: {resource.resource_type}")


async def handle_describe_configs(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    results = []
    for resource in body.resources:
        result = {
            "error_code": ErrorCode.NONE,
            "error_message": None,
            "resource_type": resource.resource_type,
            "resource_name": resource.resource_name,
            "configs": [],
        }
        try:
            result["configs"] = _describe_resource(
                ctx.broker, resource, body.include_synonyms, body.include_documentation
            )
        except KafkaError as exc:
            result["error_code"], result["error_message"] = exc.code, exc.message
        results.append(result)
    return {"throttle_time_ms": 0, "results": results}


@dataclass(frozen=True)
class _Change:
    name: str
    op: AlterOp
    value: str | None


def _read_changes(configs: Iterable[Any], *, replace_all: bool = False) -> list[_Change]:
    """Check the shape of one resource's changes the way Kafka does before applying any.

    `replace_all` (AlterConfigs) entries carry no operation: each one sets its config.
    """
    configs = list(configs)
    if len({c.name for c in configs}) != len(configs):
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Error due to duplicate config keys")
    ops = [AlterOp.SET if replace_all else c.config_operation for c in configs]
    unknown_ops = sorted(set(ops) - set(AlterOp))
    if unknown_ops:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unknown config operation(s): {unknown_ops}")
    null_values = [c.name for c, op in zip(configs, ops) if c.value is None and op != AlterOp.DELETE]
    if null_values:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Null value not supported for : {', '.join(null_values)}")
    return [_Change(c.name, AlterOp(op), c.value) for c, op in zip(configs, ops)]


def _list_items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _edited_list(change: _Change, current: str) -> str:
    """APPEND adds the items not yet present, SUBTRACT removes the given items; only for LIST configs."""
    definition = TOPIC_CONFIGS.get(change.name)
    if definition is None or definition.type != ConfigType.LIST:
        raise KafkaError(
            ErrorCode.INVALID_CONFIG,
            f"Can't {change.op.name} to key {change.name} because its type is not LIST.",
        )
    items = _list_items(current)
    given = _list_items(change.value or "")
    if change.op == AlterOp.APPEND:
        items += [item for item in given if item not in items]
    else:
        items = [item for item in items if item not in given]
    return ",".join(items)


def _alter_topic(broker: Any, name: str, changes: list[_Change], validate_only: bool, replace_all: bool) -> None:
    if name == "":
        raise KafkaError(ErrorCode.INVALID_REQUEST, "Default topic resources are not allowed.")
    manager = broker.log_manager
    topic = _existing_topic(broker, name)
    effective = manager.effective_config(name)
    to_set: dict[str, str] = {}
    to_delete: list[str] = []
    for change in changes:
        if change.op == AlterOp.SET:
            to_set[change.name] = change.value
        elif change.op == AlterOp.DELETE:
            to_delete.append(change.name)
        else:
            to_set[change.name] = _edited_list(change, effective.get(change.name, ""))
    if replace_all:
        to_delete = [key for key in topic.configs if key not in to_set]
    broker.cluster.alter_topic_configs(name, to_set, to_delete, validate_only)


def _alter_broker(broker: Any, name: str, changes: list[_Change]) -> None:
    _check_broker_resource(broker, name)
    if changes:
        raise KafkaError(
            ErrorCode.INVALID_CONFIG,
            "Cannot update these configs dynamically: " + ", ".join(sorted(c.name for c in changes)),
        )


def _client_metrics_entries(broker: Any, name: str, names: set[str] | None, **options: bool) -> list[dict[str, Any]]:
    """A subscription's configs (KIP-714); none for a name no subscription has."""
    manager = broker.client_metrics
    if name not in manager.subscriptions:
        return []
    return [
        _entry(config, value, [_synonym(config, value, ConfigSource.CLIENT_METRICS_CONFIG)],
               ConfigType.LIST if config in CLIENT_METRICS_LISTS else ConfigType.INT, "", read_only=False, **options)
        for config, value in sorted(manager.subscription_configs(name).items())
        if names is None or config in names
    ]


def _alter_client_metrics(broker: Any, name: str, changes: list[_Change], validate_only: bool,
                          replace_all: bool) -> None:
    manager = broker.client_metrics
    current = {} if replace_all or name not in manager.subscriptions else manager.subscription_configs(name)
    wanted = dict(current)
    for change in changes:
        if change.op == AlterOp.SET:
            wanted[change.name] = change.value
        elif change.op == AlterOp.DELETE:
            wanted.pop(change.name, None)
        elif change.name not in CLIENT_METRICS_LISTS:
            raise KafkaError(ErrorCode.INVALID_CONFIG,
                             f"Can't {change.op.name} to key {change.name} because its type is not LIST.")
        else:
            items = _list_items(current.get(change.name, ""))
            given = _list_items(change.value or "")
            items = items + [i for i in given if i not in items] if change.op == AlterOp.APPEND else [
                i for i in items if i not in given]
            wanted[change.name] = ",".join(items)
    if validate_only:
        parse_client_metrics(name, wanted)
    else:
        manager.set_subscription(name, wanted)


def _group_entries(broker: Any, name: str, names: set[str] | None, **options: bool) -> list[dict[str, Any]]:
    """Every group config: the group's own value (GROUP_CONFIG), else the default that applies."""
    share = broker.share_groups
    explicit = share.group_configs(name)
    entries = []
    for config, default in sorted(group_configs.defaults(share.settings).items()):
        if names is not None and config not in names:
            continue
        value, source = (explicit[config], ConfigSource.GROUP_CONFIG) if config in explicit else (
            default, ConfigSource.DEFAULT_CONFIG)
        kind = ConfigType.STRING if config == "share.auto.offset.reset" else ConfigType.INT
        entries.append(_entry(config, value, [_synonym(config, value, source)], kind, "", read_only=False, **options))
    return entries


def _alter_group(broker: Any, name: str, changes: list[_Change], validate_only: bool, replace_all: bool) -> None:
    if not name:
        raise KafkaError(ErrorCode.INVALID_REQUEST, "A group resource needs a name.")
    share = broker.share_groups
    wanted = {} if replace_all else share.group_configs(name)
    for change in changes:
        if change.op == AlterOp.SET:
            wanted[change.name] = change.value or ""
        elif change.op == AlterOp.DELETE:
            wanted.pop(change.name, None)
        else:
            raise KafkaError(ErrorCode.INVALID_CONFIG,
                             f"Can't {change.op.name} to key {change.name} because its type is not LIST.")
    group_configs.validate(wanted, share.settings)
    if not validate_only:
        share.set_group_configs(name, wanted)


def _alter_resource(broker: Any, resource: Any, validate_only: bool, replace_all: bool) -> None:
    changes = _read_changes(resource.configs, replace_all=replace_all)
    if resource.resource_type == ResourceType.TOPIC:
        _alter_topic(broker, resource.resource_name, changes, validate_only, replace_all)
    elif resource.resource_type == ResourceType.BROKER:
        _alter_broker(broker, resource.resource_name, changes)
    elif resource.resource_type == ResourceType.CLIENT_METRICS:
        if not resource.resource_name:
            raise KafkaError(ErrorCode.INVALID_REQUEST, "A client metrics resource needs a name.")
        _alter_client_metrics(broker, resource.resource_name, changes, validate_only, replace_all)
    elif resource.resource_type == ResourceType.GROUP:
        _alter_group(broker, resource.resource_name, changes, validate_only, replace_all)
    else:
        raise KafkaError(ErrorCode.INVALID_REQUEST, f"Unsupported resource type: {resource.resource_type}")


def _alter_configs(request: Request, ctx: RequestContext, *, replace_all: bool) -> dict[str, Any]:
    body = request.body
    seen = Counter((r.resource_type, r.resource_name) for r in body.resources)
    responses = []
    for resource in body.resources:
        answer = {
            "error_code": ErrorCode.NONE,
            "error_message": None,
            "resource_type": resource.resource_type,
            "resource_name": resource.resource_name,
        }
        try:
            if seen[resource.resource_type, resource.resource_name] > 1:
                raise KafkaError(ErrorCode.INVALID_REQUEST, "Each resource must appear at most once.")
            _alter_resource(ctx.broker, resource, body.validate_only, replace_all)
        except KafkaError as exc:
            answer["error_code"], answer["error_message"] = exc.code, exc.message
        responses.append(answer)
    return {"throttle_time_ms": 0, "responses": responses}


async def handle_alter_configs(request: Request, ctx: RequestContext) -> dict[str, Any]:
    return _alter_configs(request, ctx, replace_all=True)


async def handle_incremental_alter_configs(request: Request, ctx: RequestContext) -> dict[str, Any]:
    return _alter_configs(request, ctx, replace_all=False)


API_HANDLERS = [
    ApiHandler(API_DESCRIBE_CONFIGS, handle_describe_configs),
    ApiHandler(API_ALTER_CONFIGS, handle_alter_configs),
    ApiHandler(API_INCREMENTAL_ALTER_CONFIGS, handle_incremental_alter_configs),
]
