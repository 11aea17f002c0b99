"""CreateTopics (key 19), DeleteTopics (key 20) and CreatePartitions (key 37).

Each topic in a request succeeds or fails on its own, with the error code a
KRaft controller gives for it, checked in the controller's order: duplicates
within the request, the name, existence, configs, then the partition layout.
The replication factor may be up to the number of brokers, and a manual
assignment may name any of them (``broker.cluster`` checks and places the
replicas). Creation is immediate, so ``timeout_ms`` never matters.
"""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any, Callable, Iterator

from kafkacompat.handlers.configs import topic_config_entries
from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.log.log_manager import validate_topic_name
from kafkacompat.log.topic_config import default_configs, validate_topic_configs
from kafkacompat.protocol.errors import ErrorCode, KafkaError

API_CREATE_TOPICS = 19
API_DELETE_TOPICS = 20
API_CREATE_PARTITIONS = 37

ZERO_UUID = uuid.UUID(int=0)
# "Use the broker default" in CreateTopics' num_partitions and replication_factor.
USE_DEFAULT = -1
# DeleteTopics v3 introduced TOPIC_DELETION_DISABLED; older clients get INVALID_REQUEST.
FIRST_DELETION_DISABLED_VERSION = 3
# Kafka's controller refuses a request that would create more partitions than this.
MAX_PARTITIONS_PER_REQUEST = 10_000
TOO_MANY_PARTITIONS = "Excessively large number of partitions per request."
# The config fields CreateTopics v5+ reports for a created topic.
_CREATED_CONFIG_FIELDS = ("name", "value", "read_only", "config_source", "is_sensitive")


def _distinct(items: list[Any], key: Callable[[Any], Any]) -> Iterator[tuple[Any, bool]]:
    """The first item of each distinct key, and whether the key was repeated.

    Kafka answers a topic named twice in one request once, with INVALID_REQUEST.
    """
    counts = Counter(key(item) for item in items)
    seen = set()
    for item in items:
        if key(item) not in seen:
            seen.add(key(item))
            yield item, counts[key(item)] > 1


def _manual_layout(cluster: Any, wanted: Any) -> list[list[int]]:
    """The replicas of each partition of a manual assignment, after checking it the way Kafka does."""
    if wanted.replication_factor != USE_DEFAULT:
        raise KafkaError(
            ErrorCode.INVALID_REQUEST,
            "A manual partition assignment was specified, but replication factor was not set to -1.",
        )
    if wanted.num_partitions != USE_DEFAULT:
        raise KafkaError(
            ErrorCode.INVALID_REQUEST,
            "A manual partition assignment was specified, but numPartitions was not set to -1.",
        )
    indexes: set[int] = set()
    for assignment in wanted.assignments:
        if assignment.partition_index in indexes:
            raise KafkaError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"Found multiple manual partition assignments for partition {assignment.partition_index}",
            )
        cluster.check_assignment(list(assignment.broker_ids))
        indexes.add(assignment.partition_index)
    if indexes != set(range(len(indexes))):
        raise KafkaError(
            ErrorCode.INVALID_REPLICA_ASSIGNMENT, "partitions should be a consecutive 0-based integer sequence"
        )
    ordered = sorted(wanted.assignments, key=lambda assignment: assignment.partition_index)
    return [list(assignment.broker_ids) for assignment in ordered]


def _layout(broker: Any, wanted: Any) -> tuple[int, int, list[list[int]] | None]:
    """(partition count, replication factor, manual assignment) for a new topic, defaults resolved."""
    if wanted.assignments:
        assignments = _manual_layout(broker.cluster, wanted)
        return len(assignments), len(assignments[0]), assignments
    num_partitions = wanted.num_partitions
    if num_partitions == USE_DEFAULT:
        num_partitions = broker.config.get_int("num.partitions")
    if num_partitions < 1:
        raise KafkaError(
            ErrorCode.INVALID_PARTITIONS,
            f"Number of partitions was set to an invalid non-positive value: {num_partitions}.",
        )
    replication_factor = wanted.replication_factor
    if replication_factor == USE_DEFAULT:
        replication_factor = broker.config.get_int("default.replication.factor")
    if replication_factor < 1:
        raise KafkaError(
            ErrorCode.INVALID_REPLICATION_FACTOR,
            "Replication factor must be larger than 0, or -1 to use the default value.",
        )
    brokers = broker.cluster.max_replication_factor()
    if replication_factor > brokers:
        raise KafkaError(
            ErrorCode.INVALID_REPLICATION_FACTOR,
            f"Unable to replicate the partition {replication_factor} time(s): "
            f"this cluster has only {brokers} broker{'s' if brokers > 1 else ''}.",
        )
    return num_partitions, replication_factor, None


def _create_one(broker: Any, wanted: Any, validate_only: bool) -> dict[str, Any]:
    manager = broker.log_manager
    # The log checks all of this again; checking name, existence and configs
    # first gives Kafka's precedence (an existing topic asked for with three
    # replicas is TOPIC_ALREADY_EXISTS, not INVALID_REPLICATION_FACTOR).
    validate_topic_name(wanted.name)
    if manager.topic(wanted.name) is not None:
        raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"Topic '{wanted.name}' already exists.")
    configs = {config.name: config.value for config in wanted.configs}
    validate_topic_configs(configs)
    num_partitions, replication_factor, assignments = _layout(broker, wanted)
    if validate_only:
        overrides = manager.validate_new_topic(wanted.name, num_partitions, configs)
        # LogManager.effective_config's layering, for a topic that does not exist.
        effective = {**default_configs(), **manager.topic_defaults, **overrides}
        topic_id = ZERO_UUID  # nothing was created, so there is no id to hand out
    else:
        topic = broker.cluster.create_topic(wanted.name, num_partitions, configs, assignments, replication_factor)
        overrides, effective, topic_id = topic.configs, manager.effective_config(topic.name), topic.topic_id
    entries = topic_config_entries(broker, overrides, effective)
    return {
        "name": wanted.name,
        "topic_id": topic_id,
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "num_partitions": num_partitions,
        "replication_factor": replication_factor,
        "configs": [{field: entry[field] for field in _CREATED_CONFIG_FIELDS} for entry in entries],
    }


def _create_failure(name: str, code: ErrorCode, message: str) -> dict[str, Any]:
    return {
        "name": name,
        "topic_id": ZERO_UUID,
        "error_code": code,
        "error_message": message,
        "num_partitions": -1,
        "replication_factor": -1,
        "configs": [],
    }


def _requested_partitions(broker: Any, topics: list[Any]) -> int:
    """Partitions the request would create, counted as Kafka's controller counts them before anything else."""
    default = broker.config.get_int("num.partitions")
    total = 0
    for wanted in topics:
        if wanted.assignments:
            total += len(wanted.assignments)
        elif wanted.num_partitions == USE_DEFAULT:
            total += default
        elif wanted.num_partitions > 0:
            total += wanted.num_partitions
    return total


async def handle_create_topics(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    if _requested_partitions(ctx.broker, body.topics) > MAX_PARTITIONS_PER_REQUEST:
        refused = [_create_failure(wanted.name, ErrorCode.POLICY_VIOLATION, TOO_MANY_PARTITIONS)
                   for wanted in body.topics]
        return {"throttle_time_ms": 0, "topics": refused}
    results = []
    for wanted, repeated in _distinct(body.topics, lambda topic: topic.name):
        if repeated:
            results.append(_create_failure(wanted.name, ErrorCode.INVALID_REQUEST, "Duplicate topic name."))
            continue
        try:
            results.append(_create_one(ctx.broker, wanted, body.validate_only))
        except KafkaError as exc:
            results.append(_create_failure(wanted.name, exc.code, exc.message))
    return {"throttle_time_ms": 0, "topics": results}


def _delete_one(broker: Any, name: str | None, topic_id: uuid.UUID) -> dict[str, Any]:
    """Delete by name, or (v6) by id when the name is null; the result names both."""
    manager = broker.log_manager
    if name is not None:
        if topic_id != ZERO_UUID:
            raise KafkaError(ErrorCode.INVALID_REQUEST, "You may not specify both topic name and topic id.")
        topic = manager.topic(name)
        if topic is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Topic '{name}' does not exist.")
    else:
        topic = manager.topic_by_id(topic_id)
        if topic is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_ID, f"No topic has id {topic_id}.")
    broker.cluster.delete_topic(topic.name)
    return {"name": topic.name, "topic_id": topic.topic_id, "error_code": ErrorCode.NONE, "error_message": None}


async def handle_delete_topics(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    # v0-5 name topics in topic_names, v6 in topics (name or id); the codec
    # fills the list a version lacks with [], so both are read.
    wanted = [(name, ZERO_UUID) for name in body.topic_names] + [(t.name, t.topic_id) for t in body.topics]
    deletion_enabled = ctx.broker.config.get_bool("delete.topic.enable")
    responses = []
    for (name, topic_id), repeated in _distinct(wanted, lambda pair: pair[0] if pair[0] is not None else pair[1]):
        try:
            if repeated:
                raise KafkaError(
                    ErrorCode.INVALID_REQUEST, "Duplicate topic name." if name is not None else "Duplicate topic id."
                )
            if not deletion_enabled:
                raise KafkaError(
                    ErrorCode.TOPIC_DELETION_DISABLED
                    if request.version >= FIRST_DELETION_DISABLED_VERSION
                    else ErrorCode.INVALID_REQUEST,
                    "Topic deletion is disabled (delete.topic.enable=false).",
                )
            responses.append(_delete_one(ctx.broker, name, topic_id))
        except KafkaError as exc:
            responses.append(
                {"name": name, "topic_id": topic_id, "error_code": exc.code, "error_message": exc.message}
            )
    return {"throttle_time_ms": 0, "responses": responses}


def _grow_one(broker: Any, wanted: Any, validate_only: bool) -> None:
    manager = broker.log_manager
    # Existence and "must grow" first, exactly as the real call checks them.
    manager.create_partitions(wanted.name, wanted.count, validate_only=True)
    added = wanted.count - len(manager.topic(wanted.name).partitions)
    if added > MAX_PARTITIONS_PER_REQUEST:
        raise KafkaError(ErrorCode.POLICY_VIOLATION, TOO_MANY_PARTITIONS)
    if wanted.assignments is not None:
        if len(wanted.assignments) != added:
            raise KafkaError(
                ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                f"Attempted to add {added} additional partition(s), but {len(wanted.assignments)} "
                "assignment(s) were specified.",
            )
        for assignment in wanted.assignments:
            broker.cluster.check_assignment(list(assignment.broker_ids))
    if not validate_only:
        assignments = None if wanted.assignments is None else [list(a.broker_ids) for a in wanted.assignments]
        broker.cluster.create_partitions(wanted.name, wanted.count, assignments)


async def handle_create_partitions(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    results = []
    for wanted, repeated in _distinct(body.topics, lambda topic: topic.name):
        result = {"name": wanted.name, "error_code": ErrorCode.NONE, "error_message": None}
        try:
            if repeated:
                raise KafkaError(ErrorCode.INVALID_REQUEST, "Duplicate topic name.")
            _grow_one(ctx.broker, wanted, body.validate_only)
        except KafkaError as exc:
            result["error_code"], result["error_message"] = exc.code, exc.message
        results.append(result)
    return {"throttle_time_ms": 0, "results": results}


API_HANDLERS = [
    ApiHandler(API_CREATE_TOPICS, handle_create_topics),
    ApiHandler(API_DELETE_TOPICS, handle_delete_topics),
    ApiHandler(API_CREATE_PARTITIONS, handle_create_partitions),
]
