"""Admin APIs as stock admin clients call them: kafka-python's KafkaAdminClient and
confluent-kafka's AdminClient against a broker process.

Covers AlterConfigs (the non-incremental form), the log-dir APIs,
DescribeTopicPartitions paging, features (ApiVersions and UpdateFeatures,
durable across a restart), DescribeQuorum, and the read-only admin APIs that
Kafka answers with nothing configured.
"""

from __future__ import annotations

import pytest
from confluent_kafka import ElectionType, KafkaException, TopicPartition
from confluent_kafka.admin import AclBindingFilter, AclOperation, AclPermissionType, ConfigResource
from confluent_kafka.admin import ResourcePatternType, ResourceType
from kafka.admin import KafkaAdminClient
from kafka.errors import LogDirNotFoundError, NoError, SecurityDisabledError

from compat_helpers import sample_records, unique_topic
from confluent_clients import admin_client, create_topic, describe_topic_configs, produce_records

RETENTION_DEFAULT = "604800000"


def kafka_python_admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)


@pytest.mark.timeout(60)
def test_confluent_alter_configs_replaces_the_whole_set_of_overrides(broker):
    topic = unique_topic("alter-all")
    create_topic(broker.bootstrap, topic, partitions=1, config={"retention.ms": "3600000"})
    admin = admin_client(broker.bootstrap)
    resource = ConfigResource(ResourceType.TOPIC, topic, set_config={"segment.ms": "7200000"})
    (future,) = admin.alter_configs([resource], request_timeout=15).values()
    future.result(timeout=20)
    configs = describe_topic_configs(admin, topic)
    assert configs["segment.ms"].value == "7200000"
    assert (configs["retention.ms"].value, configs["retention.ms"].is_default) == (RETENTION_DEFAULT, True)


@pytest.mark.timeout(60)
def test_kafka_python_alter_configs_without_the_incremental_api(broker):
    """kafka-python's non-incremental path re-sends the other overrides, so both survive."""
    topic = unique_topic("alter-legacy")
    create_topic(broker.bootstrap, topic, partitions=1, config={"retention.ms": "3600000"})
    admin = kafka_python_admin(broker.bootstrap)
    try:
        from kafka.admin import ConfigResource as KafkaConfigResource, ConfigResourceType
        resource = KafkaConfigResource(ConfigResourceType.TOPIC, topic, configs={"segment.ms": "7200000"})
        assert admin.alter_configs([resource], incremental=False) == {"topic": {topic: "OK"}}
        (described,) = admin.describe_configs([KafkaConfigResource(ConfigResourceType.TOPIC, topic)]).values()
        configs = described[topic]
    finally:
        admin.close()
    assert (configs["segment.ms"]["value"], configs["retention.ms"]["value"]) == ("7200000", "3600000")


@pytest.mark.timeout(60)
def test_kafka_python_describes_and_moves_log_dirs(broker):
    topic = unique_topic("log-dirs")
    create_topic(broker.bootstrap, topic, partitions=2)
    produce_records(broker.bootstrap, topic, sample_records(50), partition=0)
    admin = kafka_python_admin(broker.bootstrap)
    here = str(broker.data_dir.absolute())
    try:
        (described,) = admin.describe_log_dirs({topic: [0, 1]})
        moved = admin.alter_replica_log_dirs({(topic, 0, 1): here, (topic, 1, 1): "/no/such/dir"})
    finally:
        admin.close()
    (log_dir,) = described["log_dirs"]
    assert (log_dir["error_code"], log_dir["log_dir"]) == (0, here)
    on_disk = sum(f.stat().st_size for f in (broker.data_dir / f"{topic}-0").glob("*.log"))
    (listed,) = log_dir["topics"]
    sizes = {p["partition_index"]: (p["partition_size"], p["offset_lag"], p["is_future_key"])
             for p in listed["partitions"]}
    assert on_disk > 0 and sizes == {0: (on_disk, 0, False), 1: (0, 0, False)}
    assert log_dir["total_bytes"] >= log_dir["usable_bytes"] > 0
    assert {(tpr.topic, tpr.partition): error for tpr, error in moved.items()} == {
        (topic, 0): NoError, (topic, 1): LogDirNotFoundError}


@pytest.mark.timeout(60)
def test_kafka_python_pages_through_topic_partitions(broker):
    first, second = sorted([unique_topic("dtp"), unique_topic("dtp")])
    create_topic(broker.bootstrap, first, partitions=3)
    create_topic(broker.bootstrap, second, partitions=2)
    admin = kafka_python_admin(broker.bootstrap)
    pages = []
    try:
        cursor = None
        while True:
            page = admin.describe_topic_partitions([second, first], response_partition_limit=2, cursor=cursor)
            pages.append([(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in page["topics"]])
            cursor = page["next_cursor"]
            if cursor is None:
                break
    finally:
        admin.close()
    assert pages == [[(first, [0, 1])], [(first, [2]), (second, [0])], [(second, [1])]]


@pytest.mark.timeout(90)
def test_features_are_reported_updated_and_durable(broker_factory):
    broker = broker_factory()
    admin = kafka_python_admin(broker.bootstrap)
    try:
        assert admin.describe_features() == {
            "metadata.version": {"supported": (1, 21), "finalized": (21, 21), "finalized_epoch": 0},
            "share.version": {"supported": (0, 1), "finalized": (1, 1), "finalized_epoch": 0},
            "group.version": {"supported": (0, 1), "finalized": (1, 1), "finalized_epoch": 0},
            "transaction.version": {"supported": (0, 2), "finalized": (2, 2), "finalized_epoch": 0}}
        with pytest.raises(Exception, match="INVALID_UPDATE_VERSION|InvalidUpdateVersion|might delete metadata"):
            admin.update_features({"metadata.version": ("SAFE_DOWNGRADE", 16)})  # 17 changed the format
        with pytest.raises(Exception, match="does not support this feature"):
            admin.update_features({"kraft.version": 1})  # no KIP-853 quorum changes here
        assert admin.update_features({"metadata.version": ("SAFE_DOWNGRADE", 20)}, validate_only=True) == {
            "metadata.version": "OK"}
        assert admin.describe_features()["metadata.version"]["finalized"] == (21, 21)
        assert admin.update_features({"metadata.version": ("SAFE_DOWNGRADE", 18)}) == {"metadata.version": "OK"}
    finally:
        admin.close()
    broker.restart()
    admin = kafka_python_admin(broker.bootstrap)
    try:
        features = admin.describe_features()
    finally:
        admin.close()
    assert features["metadata.version"] == {"supported": (1, 21), "finalized": (18, 18), "finalized_epoch": 1}
    assert features["transaction.version"]["finalized"] == (2, 2)


@pytest.mark.timeout(60)
def test_kafka_python_describes_the_quorum_of_one(broker):
    admin = kafka_python_admin(broker.bootstrap)
    try:
        quorum = admin.describe_metadata_quorum()
    finally:
        admin.close()
    (topic,) = quorum["topics"]
    (partition,) = topic["partitions"]
    assert (topic["topic_name"], partition["error"], partition["leader_id"]) == ("__cluster_metadata", None, 1)
    assert [v["replica_id"] for v in partition["current_voters"]] == [1] and partition["observers"] == []
    assert quorum["nodes"] == [{"node_id": 1, "listeners": [
        {"name": "PLAINTEXT", "host": "127.0.0.1", "port": broker.port}]}]


@pytest.mark.timeout(60)
def test_kafka_python_read_only_admin_calls_get_kafkas_empty_answers(broker):
    topic = unique_topic("admin-reads")
    create_topic(broker.bootstrap, topic, partitions=1)
    admin = kafka_python_admin(broker.bootstrap)
    try:
        elected = admin.elect_leaders(0, {topic: [0]})
        reassignments = admin.list_partition_reassignments()
        everyone = admin.describe_user_scram_credentials()
        alice = admin.describe_user_scram_credentials(["alice"])
    finally:
        admin.close()
    (result,) = elected.replica_election_results
    assert [(p.partition_id, p.error_code) for p in result.partition_result] == [(0, 84)]  # ELECTION_NOT_NEEDED
    assert reassignments == {} and everyone == {}
    assert alice == {"alice": {"error": "Attempt to describe a user credential that does not exist: alice",
                               "credential_infos": []}}


@pytest.mark.timeout(60)
def test_confluent_acls_elections_and_scram_without_security_configured(broker):
    topic = unique_topic("confluent-admin")
    create_topic(broker.bootstrap, topic, partitions=1)
    admin = admin_client(broker.bootstrap)
    acl_filter = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                                  AclOperation.ANY, AclPermissionType.ANY)
    # librdkafka drops DescribeAcls' error code, so SECURITY_DISABLED reads as no bindings (kafka-python sees it)
    assert admin.describe_acls(acl_filter, request_timeout=15).result(timeout=20) == []
    elected = admin.elect_leaders(ElectionType.PREFERRED, [TopicPartition(topic, 0)]).result(timeout=20)
    assert [error.code() for error in elected.values()] == [84]  # ELECTION_NOT_NEEDED
    scram = admin.describe_user_scram_credentials(["bob"])["bob"]
    with pytest.raises(KafkaException, match="does not exist"):
        scram.result(timeout=20)


@pytest.mark.timeout(60)
def test_kafka_python_knows_security_is_disabled(broker):
    from kafka.admin import ACLFilter, ACLOperation, ACLPermissionType, ResourcePatternFilter
    from kafka.admin import ACLResourcePatternType, ResourceType as KafkaResourceType
    admin = kafka_python_admin(broker.bootstrap)
    try:
        acl_filter = ACLFilter(principal=None, host="*", operation=ACLOperation.ANY,
                               permission_type=ACLPermissionType.ANY,
                               resource_pattern=ResourcePatternFilter(KafkaResourceType.TOPIC, None,
                                                                      ACLResourcePatternType.ANY))
        with pytest.raises(SecurityDisabledError):
            admin.describe_acls(acl_filter)
    finally:
        admin.close()


@pytest.mark.timeout(60)
def test_kafka_python_describes_the_idempotent_producers_of_a_partition(broker):
    from kafka import TopicPartition as KafkaTopicPartition
    topic = unique_topic("producers")
    create_topic(broker.bootstrap, topic, partitions=2)
    records = sample_records(20)
    produce_records(broker.bootstrap, topic, records, partition=0)  # one idempotent librdkafka producer
    admin = kafka_python_admin(broker.bootstrap)
    try:
        states = admin.describe_producers([KafkaTopicPartition(topic, 0), KafkaTopicPartition(topic, 1)])
    finally:
        admin.close()
    (producer,) = states[KafkaTopicPartition(topic, 0)].active_producers
    assert producer.producer_id >= 0 and producer.producer_epoch == 0
    assert producer.last_sequence == len(records) - 1  # sequences 0..19 on this partition
    assert producer.last_timestamp == records[-1].timestamp_ms  # the last batch ends with the newest record
    assert (producer.coordinator_epoch, producer.current_transaction_start_offset) == (-1, -1)
    assert states[KafkaTopicPartition(topic, 1)].active_producers == []
