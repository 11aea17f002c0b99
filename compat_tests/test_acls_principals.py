"""ACLs matched against the principals that SASL and mTLS give a connection, with stock clients.

One broker from a secured Kafka's server.properties (security_helpers) with
Kafka's StandardAuthorizer on. ``User:ANONYMOUS`` (the PLAINTEXT listener,
where the tests set ACLs up as an operator on an internal listener would)
and ``User:root`` (a SCRAM user) are super users; everyone else gets only
what an ACL grants. Each test uses its own topics, groups and transactional
ids, so the ACLs one test creates never serve another.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AclOperation, AclPermissionType, AdminClient, ResourceType

from compat_helpers import unique_topic, wait_until
from confluent_clients import create_topic
from security_helpers import (
    PLAIN_PASSWORD,
    PLAIN_USER,
    SCRAM_PASSWORD,
    SCRAM_USER,
    Credentials,
    confluent_config,
    create_scram_user,
    kafka_python_config,
    produce_error,
)
from test_acls import AUTHORIZER, binding, create_acls, first_consumer_error
from test_security_clients import confluent_round_trip, kafka_python_round_trip, kafkajs_round_trip

from kafkacompat.client import KafkaClient

ROOT, ROOT_PASSWORD = "root", "root-secret"
SECURED_OVERRIDES = {**AUTHORIZER, "super.users": f"User:ANONYMOUS;User:{ROOT}"}
SASL = "SASL_PLAINTEXT"
USERS = {"PLAIN": Credentials(PLAIN_USER, PLAIN_PASSWORD), "SCRAM-SHA-512": Credentials(SCRAM_USER, SCRAM_PASSWORD)}
CLIENTS = ["confluent-kafka", "kafka-python"]


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def grant(secured, principal: str, *grants: tuple[ResourceType, str, AclOperation]) -> None:
    create_acls(secured.bootstrap, [binding(kind, name, op, principal=principal) for kind, name, op in grants])


def topic_for(secured, prefix: str) -> str:
    topic = unique_topic(prefix)
    create_topic(secured.bootstrap, topic, partitions=1)
    return topic


@pytest.mark.timeout(120)
def test_the_client_certificates_principal_is_what_acls_match(secured) -> None:
    """CN=app maps to User:app (ssl.principal.mapping.rules): granted, it produces and consumes in its
    group over the mTLS listener; the other certificate's principal is refused."""
    topic = topic_for(secured, "mtls-acl")
    grant(secured, "User:app", (ResourceType.TOPIC, topic, AclOperation.WRITE),
          (ResourceType.TOPIC, topic, AclOperation.READ), (ResourceType.GROUP, f"g-{topic}", AclOperation.READ))
    app = Credentials(certificate="app")
    assert confluent_round_trip(secured, "MTLS", None, app, topic) == [f"{topic}-{n}".encode() for n in range(5)]
    other = produce_error(confluent_config(secured, "MTLS", None, Credentials(certificate="other")), topic)
    assert other is not None and other.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def _confluent_write_only(secured, mechanism: str, topic: str, group: str, no_read_group: str) -> None:
    conf = confluent_config(secured, SASL, mechanism, USERS[mechanism])
    assert produce_error(conf, topic) is None
    assign = lambda consumer: consumer.assign([TopicPartition(topic, 0, 0)])  # noqa: E731
    assert first_consumer_error(conf, group, assign) == KafkaError.TOPIC_AUTHORIZATION_FAILED
    subscribe = lambda consumer: consumer.subscribe([topic])  # noqa: E731
    assert first_consumer_error(conf, no_read_group, subscribe) == KafkaError.GROUP_AUTHORIZATION_FAILED


def _kafka_python_write_only(secured, mechanism: str, topic: str, group: str, no_read_group: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition as KafkaTopicPartition
    from kafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

    conf = kafka_python_config(secured, SASL, mechanism, USERS[mechanism])
    producer = KafkaProducer(**conf)
    try:
        assert producer.send(topic, b"x", partition=0).get(timeout=20).offset >= 0
    finally:
        producer.close()
    for group_id, start, refusal in [
        (group, lambda c: c.assign([KafkaTopicPartition(topic, 0)]), TopicAuthorizationFailedError),
        (no_read_group, lambda c: c.subscribe([topic]), GroupAuthorizationFailedError),
    ]:
        consumer = KafkaConsumer(group_id=group_id, enable_auto_commit=False, auto_offset_reset="earliest",
                                 request_timeout_ms=15_000, **conf)
        try:
            start(consumer)
            with pytest.raises(refusal):
                for _ in range(40):
                    consumer.poll(timeout_ms=500)
        finally:
            consumer.close()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("mechanism", list(USERS))
@pytest.mark.parametrize("client", CLIENTS)
def test_a_sasl_user_allowed_to_write_but_not_read_produces_is_refused_on_fetch_and_needs_group_read(
        secured, client: str, mechanism: str) -> None:
    topic, group, no_read_group = topic_for(secured, "write-only"), fresh("g"), fresh("g-describe")
    principal = f"User:{USERS[mechanism].user}"
    grant(secured, principal, (ResourceType.TOPIC, topic, AclOperation.WRITE),
          (ResourceType.GROUP, group, AclOperation.READ), (ResourceType.GROUP, no_read_group, AclOperation.DESCRIBE))
    check = _confluent_write_only if client == "confluent-kafka" else _kafka_python_write_only
    check(secured, mechanism, topic, group, no_read_group)


@pytest.fixture(scope="module")
def root(secured) -> Credentials:
    create_scram_user(secured, ROOT, ROOT_PASSWORD)
    return Credentials(ROOT, ROOT_PASSWORD)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("client", [*CLIENTS, "kafkajs"])
def test_a_super_user_bypasses_the_acls(secured, root, client: str) -> None:
    topic = topic_for(secured, "no-acls")  # no ACL names it, its group or root
    round_trip = {"confluent-kafka": confluent_round_trip, "kafka-python": kafka_python_round_trip,
                  "kafkajs": kafkajs_round_trip}[client]
    assert round_trip(secured, SASL, "SCRAM-SHA-512", root, topic) == [f"{topic}-{n}".encode() for n in range(5)]


def _confluent_create_acl_error(secured, who: Credentials, mechanism: str, topic: str) -> int | None:
    admin = AdminClient(confluent_config(secured, SASL, mechanism, who))
    (future,) = admin.create_acls([binding(ResourceType.TOPIC, topic, AclOperation.READ,
                                           principal=f"User:{who.user}")], request_timeout=15).values()
    try:
        future.result(timeout=20)
    except KafkaException as refused:
        return refused.args[0].code()
    return None


def _kafka_python_create_acl_error(secured, who: Credentials, mechanism: str, topic: str) -> int | None:
    from kafka.admin import (ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, KafkaAdminClient,
                             ResourcePattern, ResourceType as KafkaResourceType)

    admin = KafkaAdminClient(request_timeout_ms=15_000, **kafka_python_config(secured, SASL, mechanism, who))
    try:
        created = admin.create_acls([ACL(f"User:{who.user}", "*", ACLOperation.READ, ACLPermissionType.ALLOW,
                                         ResourcePattern(KafkaResourceType.TOPIC, topic,
                                                         ACLResourcePatternType.LITERAL))])
    finally:
        admin.close()
    if not created["failed"]:
        return None
    (error,) = created["failed"]  # kafka-python lists the error class of each refused ACL
    return error.errno


@pytest.mark.timeout(120)
@pytest.mark.parametrize("client", CLIENTS)
def test_create_acls_needs_alter_on_the_cluster(secured, root, client: str) -> None:
    """A user who may write a topic still may not grant himself READ on it; a super user may."""
    topic = topic_for(secured, "self-grant")
    grant(secured, f"User:{PLAIN_USER}", (ResourceType.TOPIC, topic, AclOperation.ALL))
    create_acl_error = _confluent_create_acl_error if client == "confluent-kafka" else _kafka_python_create_acl_error
    alice = USERS["PLAIN"]
    assert create_acl_error(secured, alice, "PLAIN", topic) == KafkaError.CLUSTER_AUTHORIZATION_FAILED
    assert create_acl_error(secured, root, "SCRAM-SHA-512", topic) is None


@pytest.mark.timeout(120)
def test_a_transactional_producer_needs_write_on_its_transactional_id(secured) -> None:
    topic, allowed_id, other_id = topic_for(secured, "txn-acl"), fresh("tx-ok"), fresh("tx-denied")
    grant(secured, f"User:{PLAIN_USER}", (ResourceType.TOPIC, topic, AclOperation.WRITE),
          (ResourceType.TRANSACTIONAL_ID, allowed_id, AclOperation.WRITE))
    conf = confluent_config(secured, SASL, "PLAIN", USERS["PLAIN"])

    denied = Producer({**conf, "transactional.id": other_id})
    with pytest.raises(KafkaException) as refused:
        denied.init_transactions(20)
    assert refused.value.args[0].code() == KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED

    producer = Producer({**conf, "transactional.id": allowed_id})
    producer.init_transactions(20)
    producer.begin_transaction()
    producer.produce(topic, b"committed", partition=0)
    producer.commit_transaction(20)


@pytest.mark.timeout(120)
def test_a_kip848_member_subscribing_to_a_topic_it_may_not_describe_is_not_admitted(secured) -> None:
    """ConsumerGroupHeartbeat needs DESCRIBE on every subscribed topic (KafkaApis refuses the heartbeat
    with TOPIC_AUTHORIZATION_FAILED), so the member never joins and never hears of the hidden topic."""
    seen, hidden, group = topic_for(secured, "seen"), topic_for(secured, "hidden"), fresh("g-848")
    grant(secured, f"User:{PLAIN_USER}", (ResourceType.TOPIC, seen, AclOperation.READ),
          (ResourceType.GROUP, group, AclOperation.READ))
    consumer = Consumer({**confluent_config(secured, SASL, "PLAIN", USERS["PLAIN"]), "group.id": group,
                         "group.protocol": "consumer"})
    try:
        consumer.subscribe([seen, hidden])
        errors: list[int] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and KafkaError.TOPIC_AUTHORIZATION_FAILED not in errors:
            message = consumer.poll(0.5)
            assert message is None or message.error() is not None, "a member that was refused read a record"
            errors += [message.error().code()] if message is not None else []
        assert KafkaError.TOPIC_AUTHORIZATION_FAILED in errors
        consumer.poll(2)  # heartbeats go on while the member is asked for its groups
        admin = AdminClient({"bootstrap.servers": secured.bootstrap})
        listed = admin.list_consumer_groups(request_timeout=15).result(timeout=20).valid
        assert group not in {g.group_id for g in listed}  # the coordinator never saw the member
    finally:
        consumer.close()


@pytest.mark.timeout(120)
def test_a_kip848_regex_subscription_matches_only_topics_the_member_may_describe(secured) -> None:
    """Kafka resolves a member's regex against the topics it may DESCRIBE: a matching topic hidden from
    alice is never in her assignment, as the broker's own view (ConsumerGroupDescribe) shows."""
    prefix = fresh("rx848")
    seen, hidden, group = topic_for(secured, f"{prefix}-seen"), topic_for(secured, f"{prefix}-hidden"), fresh("g-rx")
    grant(secured, f"User:{PLAIN_USER}", (ResourceType.TOPIC, seen, AclOperation.READ),
          (ResourceType.GROUP, group, AclOperation.READ))
    consumer = Consumer({**confluent_config(secured, SASL, "PLAIN", USERS["PLAIN"]), "group.id": group,
                         "group.protocol": "consumer"})

    def target_topics() -> set[str] | None:
        with KafkaClient(secured.bootstrap) as client:  # the unauthenticated listener sees every topic
            (described,) = client.request(69, 0, {"group_ids": [group], "include_authorized_operations": False}).groups
        if described.error_code or not described.members:
            return None
        return {t.topic_name for m in described.members for t in m.target_assignment.topic_partitions}

    try:
        consumer.subscribe([f"^{prefix}-.*"])
        wait_until(lambda: consumer.poll(0.2) or {tp.topic for tp in consumer.assignment()} == {seen}, 30,
                   "the visible topic assigned")
        assert target_topics() == {seen}, hidden
    finally:
        consumer.close()
