"""DescribeCluster: this broker is the whole cluster and its controller."""

from __future__ import annotations

import pytest

from kafkacompat.handlers.cluster import UNSET_AUTHORIZED_OPERATIONS
from kafkacompat.protocol.errors import ErrorCode
from tests.handlers.test_topics import NODE_ID, broker, call, make_broker  # noqa: F401

DESCRIBE_CLUSTER = 60


@pytest.mark.parametrize("version", [0, 1])
async def test_describe_cluster_names_this_broker_as_the_cluster(broker, version):
    response = await call(broker, DESCRIBE_CLUSTER, version, {"include_cluster_authorized_operations": False})
    assert (response.error_code, response.error_message) == (ErrorCode.NONE, None)
    assert (response.cluster_id, response.controller_id) == ("kc-test-cluster", NODE_ID)
    assert [(b.broker_id, b.host, b.port, b.rack) for b in response.brokers] == [
        (NODE_ID, "broker.test", 19092, None)
    ]
    assert response.cluster_authorized_operations == UNSET_AUTHORIZED_OPERATIONS
    assert response.endpoint_type == 1


async def test_authorized_operations_are_everything_the_cluster_supports_without_an_authorizer(broker):
    response = await call(broker, DESCRIBE_CLUSTER, 1, {"include_cluster_authorized_operations": True})
    # CREATE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE.
    assert response.cluster_authorized_operations == 0b1_1111_1010_0000


@pytest.mark.parametrize(
    ("endpoint_type", "code"), [(2, ErrorCode.MISMATCHED_ENDPOINT_TYPE), (3, ErrorCode.UNSUPPORTED_ENDPOINT_TYPE)]
)
async def test_only_broker_endpoints_are_described(broker, endpoint_type, code):
    body = {"include_cluster_authorized_operations": False, "endpoint_type": endpoint_type}
    response = await call(broker, DESCRIBE_CLUSTER, 1, body)
    assert (response.error_code, response.brokers) == (code, [])
    assert response.error_message
