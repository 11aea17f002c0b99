"""A three-broker cluster with a SASL listener and ACLs: security state is the cluster's, as in Kafka.

Each broker opens every configured listener; Metadata on the SASL listener
hands out every broker's SASL address; a SCRAM user and ACLs created through
one broker hold on all of them, so a producer writing to partitions led by
each broker is let in everywhere, and refused everywhere without the ACL.
"""

from __future__ import annotations

import re

import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

from cluster_process import ClusterProcess
from compat_helpers import unique_topic, wait_until
from security_helpers import create_scram_user

pytestmark = pytest.mark.timeout(150)

USER, PASSWORD = "carol", "carol-secret"


def _sasl_addresses(process: ClusterProcess) -> dict[int, str]:
    found = re.findall(r"kafkacompat listening on PLAINTEXT://\S+, SASL_PLAINTEXT://(\S+) .*broker-(\d+)",
                       process.log_text())
    return {int(node): address.rstrip(",") for address, node in found}


def _produce_to_every_partition(bootstrap: str, topic: str, partitions: int) -> list[KafkaError | None]:
    outcomes: list[KafkaError | None] = []
    producer = Producer({"bootstrap.servers": bootstrap, "security.protocol": "SASL_PLAINTEXT",
                         "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": USER, "sasl.password": PASSWORD,
                         "message.send.max.retries": 0, "enable.idempotence": False})
    for partition in range(partitions):
        producer.produce(topic, b"x", partition=partition, on_delivery=lambda err, _: outcomes.append(err))
    producer.flush(20)
    return outcomes


def test_a_scram_user_and_acls_made_through_one_broker_hold_on_every_broker_of_the_cluster(tmp_path) -> None:
    process = ClusterProcess(tmp_path / "cluster", overrides={
        "listeners": "PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:ANONYMOUS",
    })
    process.start()
    try:
        wait_until(lambda: len(_sasl_addresses(process)) == 3, 10, "every broker's SASL listener")
        sasl = _sasl_addresses(process)
        first_plaintext = process.bootstrap.split(",")[0]
        create_scram_user(_OneBroker(first_plaintext), USER, PASSWORD)  # through broker 1 only
        admin = AdminClient({"bootstrap.servers": first_plaintext})
        allowed, refused = unique_topic("secured"), unique_topic("closed")
        for future in admin.create_topics([NewTopic(allowed, 3, 3), NewTopic(refused, 3, 3)]).values():
            future.result(timeout=30)
        leaders = {process.leader(allowed, index) for index in range(3)}
        assert leaders == {1, 2, 3}, leaders  # the producer must reach every broker
        binding = AclBinding(ResourceType.TOPIC, allowed, ResourcePatternType.LITERAL, f"User:{USER}", "*",
                             AclOperation.WRITE, AclPermissionType.ALLOW)
        for future in admin.create_acls([binding]).values():
            future.result(timeout=10)

        # Bootstrapping on broker 2's SASL listener only: the others are found through its Metadata.
        assert _produce_to_every_partition(sasl[2], allowed, 3) == [None, None, None]
        codes = [error.code() if error else None for error in _produce_to_every_partition(sasl[3], refused, 3)]
        assert codes == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 3, codes
    finally:
        process.stop()


class _OneBroker:
    """What create_scram_user needs of a broker: its bootstrap address."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
