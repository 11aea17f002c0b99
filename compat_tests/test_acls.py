"""ACLs through stock clients: the admin API, their durability and their enforcement.

Here every connection is ``User:ANONYMOUS``: a broker that names it in
``super.users`` lets a test set ACLs up, and a restart without it (ACLs are
durable) puts the principal under them. test_acls_principals.py does the
same for the principals SASL and client certificates give.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, NewTopic,
                                   ResourcePatternType, ResourceType)

from compat_helpers import sample_records, unique_topic
from confluent_clients import admin_client, create_topic, produce_records
from kafkacompat.client import KafkaClient

ANONYMOUS = "User:ANONYMOUS"
AUTHORIZER = {"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer"}
AS_SUPER_USER = {**AUTHORIZER, "super.users": ANONYMOUS}
FETCH, TOPIC_AUTHORIZATION_FAILED = 1, 29


def binding(kind: ResourceType, name: str, operation: AclOperation, pattern=ResourcePatternType.LITERAL,
            principal: str = ANONYMOUS, permission=AclPermissionType.ALLOW) -> AclBinding:
    return AclBinding(kind, name, pattern, principal, "*", operation, permission)


def everything(kind=ResourceType.ANY, name=None, pattern=ResourcePatternType.ANY, principal=None) -> AclBindingFilter:
    return AclBindingFilter(kind, name, pattern, principal, None, AclOperation.ANY, AclPermissionType.ANY)


def create_acls(bootstrap: str, acls: list[AclBinding]) -> None:
    admin = admin_client(bootstrap)
    for future in admin.create_acls(acls, request_timeout=15).values():
        future.result(timeout=20)


def described(bootstrap: str, acl_filter: AclBindingFilter) -> set[AclBinding]:
    admin = admin_client(bootstrap)  # must outlive the future
    return set(admin.describe_acls(acl_filter, request_timeout=15).result(timeout=20))


@pytest.mark.timeout(90)
def test_describe_and_delete_filters_return_exactly_what_was_created_and_acls_survive_restart(broker_factory):
    broker = broker_factory(AS_SUPER_USER)
    orders = binding(ResourceType.TOPIC, "orders", AclOperation.READ)
    orders_bob = binding(ResourceType.TOPIC, "orders", AclOperation.WRITE, principal="User:bob",
                         permission=AclPermissionType.DENY)
    logs = binding(ResourceType.TOPIC, "logs-", AclOperation.WRITE, ResourcePatternType.PREFIXED)
    any_topic = binding(ResourceType.TOPIC, "*", AclOperation.DESCRIBE)
    group = binding(ResourceType.GROUP, "billing", AclOperation.READ)
    cluster = binding(ResourceType.BROKER, "kafka-cluster", AclOperation.ALTER)
    created = {orders, orders_bob, logs, any_topic, group, cluster}
    create_acls(broker.bootstrap, list(created))

    assert described(broker.bootstrap, everything()) == created
    assert described(broker.bootstrap, everything(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL)) == {
        orders, orders_bob}
    assert described(broker.bootstrap, everything(ResourceType.TOPIC, "logs-app", ResourcePatternType.MATCH)) == {
        logs, any_topic}
    assert described(broker.bootstrap, everything(ResourceType.TOPIC, None, ResourcePatternType.PREFIXED)) == {logs}
    assert described(broker.bootstrap, everything(principal="User:bob")) == {orders_bob}
    assert described(broker.bootstrap, everything(ResourceType.GROUP)) == {group}

    broker.restart()
    assert described(broker.bootstrap, everything()) == created

    admin = admin_client(broker.bootstrap)
    (deleted,) = admin.delete_acls([everything(ResourceType.TOPIC, "orders", ResourcePatternType.LITERAL)],
                                   request_timeout=15).values()
    assert set(deleted.result(timeout=20)) == {orders, orders_bob}
    broker.restart()
    assert described(broker.bootstrap, everything()) == created - {orders, orders_bob}


@pytest.mark.timeout(60)
def test_invalid_acls_are_refused_with_invalid_request(broker_factory):
    broker = broker_factory(AS_SUPER_USER)
    admin = admin_client(broker.bootstrap)
    (future,) = admin.create_acls([binding(ResourceType.BROKER, "not-the-cluster", AclOperation.ALTER)],
                                  request_timeout=15).values()
    with pytest.raises(KafkaException) as refused:
        future.result(timeout=20)
    assert refused.value.args[0].code() == KafkaError.INVALID_REQUEST
    assert described(broker.bootstrap, everything()) == set()


def fetch_error(bootstrap: str, topic: str) -> int:
    """The partition error of one raw Fetch v12 of partition 0 (no client retries hide it)."""
    with KafkaClient(bootstrap) as client:
        answer = client.request(FETCH, 12, {
            "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [],
            "topics": [{"topic": topic, "partitions": [{"partition": 0, "current_leader_epoch": -1,
                                                       "fetch_offset": 0, "last_fetched_epoch": -1,
                                                       "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}]})
    ((partition,),) = [t.partitions for t in answer.responses]
    return partition.error_code


def first_consumer_error(bootstrap: str | dict, group: str, start: Callable[[Consumer], None],
                         timeout_s: float = 30) -> int:
    """The code of the first error a confluent consumer in ``group`` reports once ``start`` has run on it;
    ``bootstrap`` is an address or the client's settings (a None value removes one of the defaults)."""
    conf = {"bootstrap.servers": bootstrap} if isinstance(bootstrap, str) else bootstrap
    defaults = {"group.id": group, "enable.auto.commit": False, "session.timeout.ms": 6000}
    consumer = Consumer({k: v for k, v in {**defaults, **conf}.items() if v is not None})
    try:
        start(consumer)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is not None:
                return message.error().code()
            assert message is None, "a record was delivered to a principal that may not read"
        pytest.fail(f"no consumer error within {timeout_s}s")
    finally:
        consumer.close()


@pytest.fixture
def secured(broker_factory):
    """A broker where ANONYMOUS may write but not read ``secured.topic``, use group ``secured.group`` (READ)
    and describe group ``secured.describe_only``, create and write ``app-*`` topics; nothing else."""
    broker = broker_factory(AS_SUPER_USER)
    topic, hidden = unique_topic("write-only"), unique_topic("hidden")
    create_topic(broker.bootstrap, topic, partitions=1)
    create_topic(broker.bootstrap, hidden, partitions=1)
    group, describe_only = f"g-{uuid.uuid4().hex[:8]}", f"d-{uuid.uuid4().hex[:8]}"
    create_acls(broker.bootstrap, [
        binding(ResourceType.TOPIC, topic, AclOperation.WRITE),
        binding(ResourceType.GROUP, group, AclOperation.READ),
        binding(ResourceType.GROUP, describe_only, AclOperation.DESCRIBE),
        binding(ResourceType.TOPIC, "app-", AclOperation.ALL, ResourcePatternType.PREFIXED),
        binding(ResourceType.BROKER, "kafka-cluster", AclOperation.IDEMPOTENT_WRITE),
    ])
    broker.overrides.pop("super.users")
    broker.restart()
    broker.topic, broker.hidden, broker.group, broker.describe_only = topic, hidden, group, describe_only
    return broker


@pytest.mark.timeout(120)
def test_a_principal_allowed_to_write_but_not_read_can_produce_and_is_refused_on_fetch(secured):
    records = sample_records(20)
    deliveries = produce_records(secured.bootstrap, secured.topic, records, partition=0)
    assert [d.offset for d in deliveries] == list(range(20))
    assert fetch_error(secured.bootstrap, secured.topic) == TOPIC_AUTHORIZATION_FAILED
    assign = lambda consumer: consumer.assign([TopicPartition(secured.topic, 0, 0)])  # noqa: E731
    assert first_consumer_error(secured.bootstrap, secured.group, assign) == KafkaError.TOPIC_AUTHORIZATION_FAILED


@pytest.mark.timeout(60)
def test_metadata_leaves_out_topics_the_principal_may_not_describe(secured):
    admin = admin_client(secured.bootstrap)
    listed = admin.list_topics(timeout=20).topics
    assert secured.topic in listed and secured.hidden not in listed
    named = admin.list_topics(secured.hidden, timeout=20).topics[secured.hidden]
    assert named.error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


@pytest.mark.timeout(90)
def test_group_read_is_required_to_join(secured):
    subscribe = lambda consumer: consumer.subscribe([secured.topic])  # noqa: E731
    assert first_consumer_error(secured.bootstrap, secured.describe_only, subscribe) == \
        KafkaError.GROUP_AUTHORIZATION_FAILED


@pytest.mark.timeout(90)
def test_a_prefixed_acl_covers_topics_created_later(secured):
    admin = admin_client(secured.bootstrap)
    later, outside = unique_topic("app-later"), unique_topic("other")
    futures = admin.create_topics([NewTopic(later, 1, 1), NewTopic(outside, 1, 1)], request_timeout=15)
    futures[later].result(timeout=20)
    with pytest.raises(KafkaException) as refused:
        futures[outside].result(timeout=20)
    assert refused.value.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    records = sample_records(5)
    assert len(produce_records(secured.bootstrap, later, records, partition=0)) == 5
    assert fetch_error(secured.bootstrap, later) == 0


@pytest.mark.timeout(90)
def test_a_super_user_bypasses_the_acls(secured):
    produce_records(secured.bootstrap, secured.topic, sample_records(3), partition=0)
    secured.overrides["super.users"] = ANONYMOUS
    secured.restart()
    assert fetch_error(secured.bootstrap, secured.topic) == 0
    assert fetch_error(secured.bootstrap, secured.hidden) == 0


@pytest.mark.timeout(60)
def test_produce_to_a_topic_without_write_is_refused(secured):
    producer = Producer({"bootstrap.servers": secured.bootstrap, "enable.idempotence": True,
                         "message.timeout.ms": 10_000})
    failures: list[KafkaError] = []
    producer.produce(secured.hidden, b"x", partition=0, on_delivery=lambda err, msg: failures.append(err))
    producer.flush(20)
    assert [f.code() for f in failures] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


@pytest.mark.timeout(90)
def test_kafka_python_creates_describes_and_deletes_acls_and_is_refused_a_read(broker_factory):
    from kafka import KafkaConsumer, TopicPartition as KafkaTopicPartition
    from kafka.admin import (ACL, ACLFilter, ACLOperation, ACLPermissionType, ACLResourcePatternType,
                             KafkaAdminClient, ResourcePattern, ResourcePatternFilter,
                             ResourceType as KafkaResourceType)
    from kafka.errors import TopicAuthorizationFailedError

    broker = broker_factory(AS_SUPER_USER)
    topic = unique_topic("kafka-python-acl")
    create_topic(broker.bootstrap, topic, partitions=1)
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap, request_timeout_ms=15_000)
    try:
        write = ACL(ANONYMOUS, "*", ACLOperation.WRITE, ACLPermissionType.ALLOW,
                    ResourcePattern(KafkaResourceType.TOPIC, topic, ACLResourcePatternType.LITERAL))
        prefixed = ACL("User:carol", "*", ACLOperation.READ, ACLPermissionType.DENY,
                       ResourcePattern(KafkaResourceType.TOPIC, "kp-", ACLResourcePatternType.PREFIXED))
        created = admin.create_acls([write, prefixed])
        assert created["failed"] == [] and len(created["succeeded"]) == 2
        acl_filter = ACLFilter(principal=None, host=None, operation=ACLOperation.ANY,
                               permission_type=ACLPermissionType.ANY,
                               resource_pattern=ResourcePatternFilter(KafkaResourceType.TOPIC, topic,
                                                                      ACLResourcePatternType.MATCH))
        acls, error = admin.describe_acls(acl_filter)
        assert error.errno == 0
        assert [(a.principal, a.operation, a.resource_pattern.resource_name) for a in acls] == [
            (ANONYMOUS, ACLOperation.WRITE, topic)]
        carol = ACLFilter(principal="User:carol", host=None, operation=ACLOperation.ANY,
                          permission_type=ACLPermissionType.ANY,
                          resource_pattern=ResourcePatternFilter(KafkaResourceType.ANY, None,
                                                                 ACLResourcePatternType.ANY))
        ((_, matches, error),) = admin.delete_acls([carol])
        assert error.errno == 0
        assert [(acl.principal, acl.resource_pattern.resource_name) for acl in matches] == [("User:carol", "kp-")]
    finally:
        admin.close()
    broker.overrides.pop("super.users")
    broker.restart()
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, request_timeout_ms=15_000,
                             enable_auto_commit=False)
    try:
        consumer.assign([KafkaTopicPartition(topic, 0)])
        consumer.seek(KafkaTopicPartition(topic, 0), 0)
        with pytest.raises(TopicAuthorizationFailedError):
            for _ in range(20):
                consumer.poll(timeout_ms=500)
    finally:
        consumer.close()
