"""DescribeLogDirs in a three-broker cluster: each broker lists only the partitions it holds a replica of."""

from __future__ import annotations

import pytest
from kafka.admin import KafkaAdminClient, NewTopic

from cluster_process import ClusterProcess
from compat_helpers import unique_topic

pytestmark = pytest.mark.timeout(120)


def test_each_broker_describes_the_log_dirs_of_its_own_replicas_only(tmp_path) -> None:
    process = ClusterProcess(tmp_path / "cluster")
    process.start()
    topic = unique_topic("logdirs")
    try:
        admin = KafkaAdminClient(bootstrap_servers=process.bootstrap)
        try:
            admin.create_topics([NewTopic(topic, 6, 1)])
            replicas = {index: process.partition(topic, index)["replicas"] for index in range(6)}
            described = admin.describe_log_dirs(brokers=[1, 2, 3])
        finally:
            admin.close()
    finally:
        process.stop()
    assert {r[0] for r in replicas.values()} == {1, 2, 3}, replicas  # every broker holds some, not all
    listed = {
        answer["broker"]: {partition["partition_index"]
                           for log_dir in answer["log_dirs"] for found in log_dir["topics"] if found["name"] == topic
                           for partition in found["partitions"]}
        for answer in described
    }
    assert listed == {node: {i for i, r in replicas.items() if node in r} for node in (1, 2, 3)}
