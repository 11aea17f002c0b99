"""A handler that fails unexpectedly answers with UNKNOWN_SERVER_ERROR and keeps the connection open."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource

from kafkacompat import EmbeddedBroker
from kafkacompat.client import KafkaClient
from kafkacompat.handlers import dispatch
from kafkacompat.handlers.registry import ApiHandler
from kafkacompat.protocol.errors import ErrorCode

DESCRIBE_CONFIGS, METADATA = 32, 3


@pytest.fixture
def broker_with_failing_describe_configs(monkeypatch):
    async def fail(_request, _ctx):
        raise RuntimeError("injected fault in DescribeConfigs")

    monkeypatch.setitem(dispatch.REGISTRY, DESCRIBE_CONFIGS, ApiHandler(DESCRIBE_CONFIGS, fail))
    with EmbeddedBroker(isolation="thread") as broker:
        broker.create_topic("t", 2)
        yield broker


def test_stock_admin_sees_unknown_server_error(broker_with_failing_describe_configs) -> None:
    admin = AdminClient({"bootstrap.servers": broker_with_failing_describe_configs.bootstrap_servers})
    future = admin.describe_configs([ConfigResource("topic", "t")])[ConfigResource("topic", "t")]
    with pytest.raises(KafkaException) as raised:
        future.result(timeout=30)
    assert raised.value.args[0].code() == ErrorCode.UNKNOWN_SERVER_ERROR
    assert "t" in admin.list_topics(timeout=30).topics


def test_same_connection_serves_the_next_request(broker_with_failing_describe_configs) -> None:
    with KafkaClient(broker_with_failing_describe_configs.bootstrap_servers) as client:
        answer = client.request(DESCRIBE_CONFIGS, 4, {"resources": [
            {"resource_type": 2, "resource_name": "t", "configuration_keys": None}]})
        assert [(r.resource_name, r.error_code) for r in answer.results] == [("t", ErrorCode.UNKNOWN_SERVER_ERROR)]
        metadata = client.request(METADATA, 12, {"topics": None, "allow_auto_topic_creation": False})
        assert [t.name for t in metadata.topics] == ["t"]
