"""CreateTopics, DeleteTopics and CreatePartitions against a real log on a temp dir.

Also home of the admin handler harness that test_configs.py and
test_cluster.py import: a stand-in broker holding the real LogManager and
BrokerConfig (only the Trio glue is absent), and ``call``, which sends a body
through the real codec both ways so every answer is proven to encode in the
version under test.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kafkacompat.broker import Broker
from kafkacompat.cluster.view import SingleBroker
from kafkacompat.config import BrokerConfig
from kafkacompat.group.share.coordinator import ShareCoordinator
from kafkacompat.handlers import cluster, configs, topics
from kafkacompat.handlers.registry import Request, RequestContext, build_registry
from kafkacompat.log.log_manager import LogManager
from kafkacompat.protocol import RequestHeader, decode_request, decode_response, encode_request, encode_response
from kafkacompat.protocol.errors import ErrorCode

CREATE_TOPICS, DELETE_TOPICS, CREATE_PARTITIONS = 19, 20, 37
NODE_ID = 1
ZERO_UUID = uuid.UUID(int=0)
ADMIN_HANDLERS = build_registry([topics, configs, cluster])


@dataclass
class AdminBroker:
    """The attributes of the broker object that the admin handlers use."""

    config: BrokerConfig
    log_manager: LogManager
    node_id: int = NODE_ID
    cluster_id: str = "kc-test-cluster"
    advertised_host: str = "broker.test"
    advertised_port: int = 19092
    share_groups: ShareCoordinator | None = None  # group configs live with the share coordinator
    authorizer: None = None

    def __post_init__(self) -> None:
        self.cluster = SingleBroker(self)

    def clock(self) -> int:
        return 1_700_000_000_000

    def address_for(self, listener_name: str) -> tuple[str, int]:
        return self.advertised_host, self.advertised_port

    brokers_for = Broker.brokers_for


@pytest.fixture
def make_broker(tmp_path: Path):
    opened: list[AdminBroker] = []

    def make(**broker_config: str) -> AdminBroker:
        config = BrokerConfig({"node.id": str(NODE_ID), **broker_config})
        data_dir = tmp_path / f"data{len(opened)}"
        broker = AdminBroker(config, LogManager(data_dir, config.topic_defaults(), lambda: 1_700_000_000_000))
        broker.share_groups = ShareCoordinator(data_dir, broker.clock, broker.log_manager)
        opened.append(broker)
        return broker

    yield make
    for broker in opened:
        broker.share_groups.close()
        broker.log_manager.close()


@pytest.fixture
def broker(make_broker) -> AdminBroker:
    return make_broker()


async def call(broker: AdminBroker, api_key: int, version: int, body: dict[str, Any]) -> Any:
    """Encode the request, run the handler, and return the response as a client would decode it."""
    handler = ADMIN_HANDLERS[api_key]
    assert handler.supports(version)
    decoded = decode_request(api_key, version, encode_request(api_key, version, body))
    request = Request(RequestHeader(api_key, version, 42, "admin-test"), decoded)
    response = await handler.handle(request, RequestContext(broker=broker, client_host="127.0.0.1"))
    return decode_response(api_key, version, encode_response(api_key, version, response))


def new_topic(name: str, num_partitions: int = 1, replication_factor: int = 1, **extra: Any) -> dict[str, Any]:
    return {"name": name, "num_partitions": num_partitions, "replication_factor": replication_factor, **extra}


async def create(broker: AdminBroker, *wanted: dict[str, Any], version: int = 7, validate_only: bool = False):
    response = await call(broker, CREATE_TOPICS, version, {"topics": list(wanted), "validate_only": validate_only})
    return response.topics


# -- CreateTopics ------------------------------------------------------------------


async def test_create_topic_reports_layout_id_and_configs(broker):
    [result] = await create(broker, new_topic("orders", 3, configs=[{"name": "retention.ms", "value": "3600000"}]))
    topic = broker.log_manager.topic("orders")
    assert (result.name, result.error_code, result.error_message) == ("orders", ErrorCode.NONE, None)
    assert len(topic.partitions) == 3 and topic.configs == {"retention.ms": "3600000"}
    assert result.topic_id == topic.topic_id != ZERO_UUID
    assert (result.num_partitions, result.replication_factor) == (3, 1)
    reported = {c.name: (c.value, c.config_source, c.read_only, c.is_sensitive) for c in result.configs}
    assert reported["retention.ms"] == ("3600000", configs.ConfigSource.TOPIC_CONFIG, False, False)
    assert reported["segment.bytes"] == ("1073741824", configs.ConfigSource.DEFAULT_CONFIG, False, False)
    assert [c.name for c in result.configs] == sorted(broker.log_manager.effective_config("orders"))


async def test_minus_one_takes_the_broker_defaults(make_broker):
    broker = make_broker(**{"num.partitions": "4"})
    [result] = await create(broker, new_topic("defaults", -1, -1))
    assert (result.error_code, result.num_partitions, result.replication_factor) == (ErrorCode.NONE, 4, 1)
    assert len(broker.log_manager.topic("defaults").partitions) == 4


async def test_explicit_broker_config_is_the_source_of_an_unset_topic_config(make_broker):
    broker = make_broker(**{"log.retention.ms": "1000"})
    [result] = await create(broker, new_topic("short-lived"))
    retention = next(c for c in result.configs if c.name == "retention.ms")
    assert (retention.value, retention.config_source) == ("1000", configs.ConfigSource.STATIC_BROKER_CONFIG)


@pytest.mark.parametrize(
    ("wanted", "code"),
    [
        (new_topic("rf3", 1, 3), ErrorCode.INVALID_REPLICATION_FACTOR),
        (new_topic("rf0", 1, 0), ErrorCode.INVALID_REPLICATION_FACTOR),
        (new_topic("rf-2", 1, -2), ErrorCode.INVALID_REPLICATION_FACTOR),
        (new_topic("zero", 0), ErrorCode.INVALID_PARTITIONS),
        (new_topic("negative", -5), ErrorCode.INVALID_PARTITIONS),
        (new_topic("bad/name"), ErrorCode.INVALID_TOPIC_EXCEPTION),
        (new_topic(""), ErrorCode.INVALID_TOPIC_EXCEPTION),
        (new_topic("x" * 250), ErrorCode.INVALID_TOPIC_EXCEPTION),
        (new_topic("c1", configs=[{"name": "no.such.config", "value": "1"}]), ErrorCode.INVALID_CONFIG),
        (new_topic("c2", configs=[{"name": "retention.ms", "value": "soon"}]), ErrorCode.INVALID_CONFIG),
        (new_topic("c3", configs=[{"name": "retention.ms", "value": None}]), ErrorCode.INVALID_CONFIG),
        (new_topic("c4", configs=[{"name": "cleanup.policy", "value": "shred"}]), ErrorCode.INVALID_CONFIG),
    ],
)
async def test_refused_topics_get_kafka_codes_and_are_not_created(broker, wanted, code):
    [result] = await create(broker, wanted)
    assert result.error_code == code
    assert result.error_message
    assert (result.num_partitions, result.replication_factor, result.configs) == (-1, -1, [])
    assert result.topic_id == ZERO_UUID
    assert broker.log_manager.topics() == []


async def test_existing_topic_is_reported_before_layout_problems(broker):
    await create(broker, new_topic("taken"))
    [result] = await create(broker, new_topic("taken", 2, 3))
    assert result.error_code == ErrorCode.TOPIC_ALREADY_EXISTS
    assert len(broker.log_manager.topic("taken").partitions) == 1


async def test_topic_named_twice_gets_one_invalid_request_answer(broker):
    results = await create(broker, new_topic("twice"), new_topic("once"), new_topic("twice", 2))
    assert [(r.name, r.error_code) for r in results] == [("twice", ErrorCode.INVALID_REQUEST), ("once", 0)]
    assert [t.name for t in broker.log_manager.topics()] == ["once"]


def assigned(*replica_lists: list[int], num_partitions: int = -1, replication_factor: int = -1) -> dict:
    assignments = [{"partition_index": i, "broker_ids": ids} for i, ids in enumerate(replica_lists)]
    return new_topic("manual", num_partitions, replication_factor, assignments=assignments)


async def test_manual_assignment_to_this_broker_is_accepted(broker):
    [result] = await create(broker, assigned([NODE_ID], [NODE_ID], [NODE_ID]))
    assert (result.error_code, result.num_partitions, result.replication_factor) == (ErrorCode.NONE, 3, 1)
    assert len(broker.log_manager.topic("manual").partitions) == 3


@pytest.mark.parametrize(
    ("wanted", "code"),
    [
        (assigned([NODE_ID, 2]), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
        (assigned([5]), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
        (assigned([]), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
        (assigned([NODE_ID, NODE_ID]), ErrorCode.INVALID_REPLICA_ASSIGNMENT),
        (assigned([NODE_ID], num_partitions=1), ErrorCode.INVALID_REQUEST),
        (assigned([NODE_ID], replication_factor=1), ErrorCode.INVALID_REQUEST),
        (
            new_topic("manual", -1, -1, assignments=[{"partition_index": 1, "broker_ids": [NODE_ID]}]),
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        ),
        (
            new_topic("manual", -1, -1, assignments=[{"partition_index": 0, "broker_ids": [NODE_ID]}] * 2),
            ErrorCode.INVALID_REPLICA_ASSIGNMENT,
        ),
    ],
)
async def test_manual_assignments_we_cannot_honour_are_refused(broker, wanted, code):
    [result] = await create(broker, wanted)
    assert result.error_code == code
    assert broker.log_manager.topic("manual") is None


async def test_validate_only_answers_like_a_creation_but_creates_nothing(broker):
    [result] = await create(
        broker, new_topic("dry-run", 2, configs=[{"name": "cleanup.policy", "value": "compact"}]), validate_only=True
    )
    assert (result.error_code, result.num_partitions, result.replication_factor) == (ErrorCode.NONE, 2, 1)
    assert result.topic_id == ZERO_UUID
    policy = next(c for c in result.configs if c.name == "cleanup.policy")
    assert (policy.value, policy.config_source) == ("compact", configs.ConfigSource.TOPIC_CONFIG)
    assert broker.log_manager.topic("dry-run") is None
    [refused] = await create(broker, new_topic("dry-run", 1, 3), validate_only=True)
    assert refused.error_code == ErrorCode.INVALID_REPLICATION_FACTOR


@pytest.mark.parametrize("version", range(2, 8))
async def test_create_topics_answers_encode_in_every_version(make_broker, version):
    broker = make_broker()
    results = await create(broker, new_topic("fine", 2), new_topic("bad", 1, 3), version=version)
    assert [(r.name, r.error_code) for r in results] == [("fine", 0), ("bad", ErrorCode.INVALID_REPLICATION_FACTOR)]
    assert results[1].error_message
    if version >= 5:
        assert results[0].num_partitions == 2 and len(results[0].configs) == len(configs.TOPIC_CONFIGS)
    if version >= 7:
        assert results[0].topic_id == broker.log_manager.topic("fine").topic_id


# -- DeleteTopics ------------------------------------------------------------------


@pytest.mark.parametrize("version", range(1, 6))
async def test_delete_by_name(broker, version):
    await create(broker, new_topic("doomed", 2), new_topic("kept"))
    response = await call(broker, DELETE_TOPICS, version, {"topic_names": ["doomed", "ghost"], "timeout_ms": 1000})
    assert [(r.name, r.error_code) for r in response.responses] == [
        ("doomed", ErrorCode.NONE),
        ("ghost", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    ]
    if version >= 5:
        assert response.responses[0].error_message is None and response.responses[1].error_message
    assert [t.name for t in broker.log_manager.topics()] == ["kept"]


async def test_delete_v6_by_id_and_by_name_reports_both(broker):
    [by_id, by_name] = await create(broker, new_topic("by-id"), new_topic("by-name"))
    ghost_id = uuid.uuid4()
    response = await call(
        broker,
        DELETE_TOPICS,
        6,
        {
            "topics": [
                {"name": None, "topic_id": by_id.topic_id},
                {"name": "by-name", "topic_id": ZERO_UUID},
                {"name": None, "topic_id": ghost_id},
                {"name": "by-name-too", "topic_id": by_name.topic_id},
            ],
            "timeout_ms": 1000,
        },
    )
    assert [(r.name, r.topic_id, r.error_code) for r in response.responses] == [
        ("by-id", by_id.topic_id, ErrorCode.NONE),
        ("by-name", by_name.topic_id, ErrorCode.NONE),
        (None, ghost_id, ErrorCode.UNKNOWN_TOPIC_ID),
        ("by-name-too", by_name.topic_id, ErrorCode.INVALID_REQUEST),
    ]
    assert broker.log_manager.topics() == []


async def test_delete_of_a_repeated_topic_is_refused_once(broker):
    await create(broker, new_topic("repeated"))
    response = await call(broker, DELETE_TOPICS, 4, {"topic_names": ["repeated", "repeated"]})
    assert [(r.name, r.error_code) for r in response.responses] == [("repeated", ErrorCode.INVALID_REQUEST)]
    assert broker.log_manager.topic("repeated") is not None


@pytest.mark.parametrize(("version", "code"), [(2, ErrorCode.INVALID_REQUEST), (3, ErrorCode.TOPIC_DELETION_DISABLED)])
async def test_delete_refused_when_deletion_is_disabled(make_broker, version, code):
    broker = make_broker(**{"delete.topic.enable": "false"})
    await create(broker, new_topic("protected"))
    response = await call(broker, DELETE_TOPICS, version, {"topic_names": ["protected"]})
    assert [(r.name, r.error_code) for r in response.responses] == [("protected", code)]
    assert broker.log_manager.topic("protected") is not None


# -- CreatePartitions --------------------------------------------------------------


def grow(name: str, count: int, assignments: list[list[int]] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "count": count,
        "assignments": None if assignments is None else [{"broker_ids": ids} for ids in assignments],
    }


async def grow_topics(broker, *wanted: dict[str, Any], version: int = 3, validate_only: bool = False):
    body = {"topics": list(wanted), "timeout_ms": 1000, "validate_only": validate_only}
    return [(r.name, r.error_code) for r in (await call(broker, CREATE_PARTITIONS, version, body)).results]


@pytest.mark.parametrize("version", range(0, 4))
async def test_create_partitions_grows_and_refuses_shrinking(broker, version):
    await create(broker, new_topic("a", 2), new_topic("b", 2), new_topic("c", 2))
    answers = await grow_topics(broker, grow("a", 5), grow("b", 2), grow("c", 1), grow("nope", 3), version=version)
    assert answers == [
        ("a", ErrorCode.NONE),
        ("b", ErrorCode.INVALID_PARTITIONS),
        ("c", ErrorCode.INVALID_PARTITIONS),
        ("nope", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION),
    ]
    assert [len(broker.log_manager.topic(n).partitions) for n in "abc"] == [5, 2, 2]


async def test_create_partitions_validate_only_changes_nothing(broker):
    await create(broker, new_topic("steady", 2))
    assert await grow_topics(broker, grow("steady", 4), validate_only=True) == [("steady", ErrorCode.NONE)]
    shrink = await grow_topics(broker, grow("steady", 1), validate_only=True)
    assert shrink == [("steady", ErrorCode.INVALID_PARTITIONS)]
    assert len(broker.log_manager.topic("steady").partitions) == 2


async def test_create_partitions_checks_manual_assignments(broker):
    await create(broker, new_topic("t", 1))
    assert await grow_topics(broker, grow("t", 3, [[NODE_ID]])) == [("t", ErrorCode.INVALID_REPLICA_ASSIGNMENT)]
    assert await grow_topics(broker, grow("t", 2, [[7]])) == [("t", ErrorCode.INVALID_REPLICA_ASSIGNMENT)]
    assert len(broker.log_manager.topic("t").partitions) == 1
    assert await grow_topics(broker, grow("t", 3, [[NODE_ID], [NODE_ID]])) == [("t", ErrorCode.NONE)]
    assert len(broker.log_manager.topic("t").partitions) == 3


async def test_create_partitions_for_a_repeated_topic_is_refused_once(broker):
    await create(broker, new_topic("t", 1))
    assert await grow_topics(broker, grow("t", 2), grow("t", 3)) == [("t", ErrorCode.INVALID_REQUEST)]
    assert len(broker.log_manager.topic("t").partitions) == 1


async def test_more_than_ten_thousand_partitions_in_one_request_are_refused_whole(broker):
    # Kafka's controller counts the partitions of every topic in the request first.
    answers = await create(broker, new_topic("small", 1), new_topic("big", 10_000))
    assert [(r.name, r.error_code, r.error_message) for r in answers] == [
        ("small", ErrorCode.POLICY_VIOLATION, "Excessively large number of partitions per request."),
        ("big", ErrorCode.POLICY_VIOLATION, "Excessively large number of partitions per request."),
    ]
    assert broker.log_manager.topics() == []
    await create(broker, new_topic("t", 1))
    assert await grow_topics(broker, grow("t", 2**31 - 1)) == [("t", ErrorCode.POLICY_VIOLATION)]
    assert len(broker.log_manager.topic("t").partitions) == 1
