"""The admin APIs answered from a one-broker cluster's state: the edge cases of each."""

from __future__ import annotations

import pytest

from kafkacompat.broker import Broker
from kafkacompat.config import BrokerConfig
from kafkacompat.handlers.registry import RequestContext
from kafkacompat.protocol.errors import ErrorCode
from tests.handlers.test_delete_records import call

ALTER_CONFIGS, DESCRIBE_LOG_DIRS, ELECT_LEADERS = 33, 35, 43
DESCRIBE_CLIENT_QUOTAS, DESCRIBE_SCRAM, DESCRIBE_TOPIC_PARTITIONS = 48, 50, 75


@pytest.fixture
def ctx(tmp_path):
    broker = Broker(BrokerConfig({"log.dirs": str(tmp_path)}))
    broker.log_manager.create_topic("b", 2)
    broker.log_manager.create_topic("a", 1)
    yield RequestContext(broker=broker, client_host="127.0.0.1")
    broker.close()


async def test_electing_every_partition_reports_each_topic_with_nothing_elected(ctx):
    answer = await call(ctx, ELECT_LEADERS, 2, {"election_type": 1, "topic_partitions": None, "timeout_ms": 1})
    assert answer.error_code == ErrorCode.NONE
    assert sorted((r.topic, list(r.partition_result)) for r in answer.replica_election_results) == [
        ("a", []), ("b", [])]


async def test_an_unknown_election_type_fails_every_named_partition(ctx):
    body = {"election_type": 7, "topic_partitions": [{"topic": "b", "partitions": [0, 1]}], "timeout_ms": 1}
    answer = await call(ctx, ELECT_LEADERS, 2, body)
    assert answer.error_code == ErrorCode.INVALID_REQUEST
    (result,) = answer.replica_election_results
    assert [(p.partition_id, p.error_code, p.error_message) for p in result.partition_result] == [
        (0, ErrorCode.INVALID_REQUEST, "Unknown election type 7"),
        (1, ErrorCode.INVALID_REQUEST, "Unknown election type 7")]


@pytest.mark.parametrize(
    ("components", "code", "message"),
    [
        ([{"entity_type": "", "match_type": 2, "match": None}], ErrorCode.INVALID_REQUEST,
         "Invalid empty entity type."),
        ([{"entity_type": "user", "match_type": 2, "match": None}] * 2, ErrorCode.INVALID_REQUEST,
         "Entity type user cannot appear more than once in the filter."),
        ([{"entity_type": "group", "match_type": 2, "match": None}], ErrorCode.UNSUPPORTED_VERSION,
         "Unsupported entity type group"),
        ([{"entity_type": "user", "match_type": 1, "match": "x"}], ErrorCode.INVALID_REQUEST,
         "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."),
        ([{"entity_type": "user", "match_type": 9, "match": None}], ErrorCode.INVALID_REQUEST,
         "Unknown match type 9"),
        ([{"entity_type": "ip", "match_type": 2, "match": None},
          {"entity_type": "client-id", "match_type": 0, "match": "c"}], ErrorCode.INVALID_REQUEST,
         "Invalid entity filter component combination. IP filter component should not be used with user or "
         "clientId filter component."),
    ],
)
async def test_client_quota_filters_are_checked_as_kafka_checks_them(ctx, components, code, message):
    answer = await call(ctx, DESCRIBE_CLIENT_QUOTAS, 1, {"components": components, "strict": True})
    assert (answer.error_code, answer.error_message, answer.entries) == (code, message, None)


async def test_a_user_named_twice_is_a_duplicate_and_once_is_not_found(ctx):
    answer = await call(ctx, DESCRIBE_SCRAM, 0, {"users": [{"name": "x"}, {"name": "y"}, {"name": "x"}]})
    assert [(r.user, r.error_code) for r in answer.results] == [
        ("x", ErrorCode.DUPLICATE_RESOURCE), ("y", ErrorCode.RESOURCE_NOT_FOUND)]


async def test_describing_every_topic_partition_goes_in_name_order_from_the_cursor(ctx):
    body = {"topics": [], "response_partition_limit": 2000, "cursor": {"topic_name": "b", "partition_index": 1}}
    answer = await call(ctx, DESCRIBE_TOPIC_PARTITIONS, 0, body)
    assert [(t.name, [p.partition_index for p in t.partitions]) for t in answer.topics] == [("b", [1])]
    everything = await call(ctx, DESCRIBE_TOPIC_PARTITIONS, 0, {"topics": [], "cursor": None})
    assert [(t.name, len(t.partitions)) for t in everything.topics] == [("a", 1), ("b", 2)]
    assert everything.next_cursor is None


async def test_describe_log_dirs_for_every_topic(ctx):
    (result,) = (await call(ctx, DESCRIBE_LOG_DIRS, 4, {"topics": None})).results
    assert [(t.name, [p.partition_index for p in t.partitions]) for t in result.topics] == [("a", [0]), ("b", [0, 1])]


async def test_alter_configs_refuses_broker_configs_and_checks_the_shape_first(ctx):
    body = {"validate_only": False, "resources": [
        {"resource_type": 4, "resource_name": "1", "configs": [{"name": "log.retention.ms", "value": "1"}]},
        {"resource_type": 2, "resource_name": "a", "configs": [{"name": "retention.ms", "value": None}]},
        {"resource_type": 2, "resource_name": "zz", "configs": []},
        {"resource_type": 2, "resource_name": "b", "configs": [{"name": "no.such.config", "value": "1"}]}]}
    answer = await call(ctx, ALTER_CONFIGS, 2, body)
    assert [(r.resource_name, r.error_code) for r in answer.responses] == [
        ("1", ErrorCode.INVALID_CONFIG), ("a", ErrorCode.INVALID_REQUEST),
        ("zz", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), ("b", ErrorCode.INVALID_CONFIG)]
