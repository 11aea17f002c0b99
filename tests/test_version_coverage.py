"""Every (API, version) the broker advertises is exercised against a live broker.

The list of cases is the dispatch REGISTRY itself, so a new API or a widened
version range gets a case the moment it is advertised, and fails until an
exercise below knows how to drive it. Each case sends one real request of
that exact version (built by our codec, over TCP, to a broker process) and
checks that the answer decodes and says what Kafka would say. Setup steps
(creating topics, joining groups) use each API's newest version; the request
under test is the one with the parametrized version.
"""

from __future__ import annotations

import json
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from compat_tests.compat_helpers import BrokerProcess
from kafkacompat.client import KafkaClient
from kafkacompat.handlers.dispatch import REGISTRY
from kafkacompat.protocol import encode_data
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.protocol.specs import VersionRange, load_specs
from tests.log.batch_builder import RecordSpec, build_batch
from tests.reference_specs import LATER_THAN_REFERENCE, NEWER_THAN_REFERENCE, SAME_BODY_LATER_VERSIONS

PRODUCE, FETCH, LIST_OFFSETS, METADATA = 0, 1, 2, 3
OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR, JOIN_GROUP = 8, 9, 10, 11
HEARTBEAT, LEAVE_GROUP, SYNC_GROUP, DESCRIBE_GROUPS, LIST_GROUPS = 12, 13, 14, 15, 16
API_VERSIONS, CREATE_TOPICS, DELETE_TOPICS, DELETE_RECORDS, INIT_PRODUCER_ID = 18, 19, 20, 21, 22
OFFSET_FOR_LEADER_EPOCH, DESCRIBE_ACLS, ALTER_CONFIGS, ALTER_REPLICA_LOG_DIRS, DESCRIBE_LOG_DIRS = 23, 29, 33, 34, 35
CREATE_ACLS, DELETE_ACLS, ALTER_CLIENT_QUOTAS = 30, 31, 49
CREATE_TOKEN, RENEW_TOKEN, EXPIRE_TOKEN, DESCRIBE_TOKENS, ELECT_LEADERS = 38, 39, 40, 41, 43
LIST_REASSIGNMENTS, DESCRIBE_CLIENT_QUOTAS, DESCRIBE_SCRAM_CREDENTIALS = 46, 48, 50
SASL_HANDSHAKE, SASL_AUTHENTICATE, ALTER_SCRAM_CREDENTIALS = 17, 36, 51
ALTER_REASSIGNMENTS = 45
DESCRIBE_QUORUM, UPDATE_FEATURES, DESCRIBE_PRODUCERS, DESCRIBE_TOPIC_PARTITIONS = 55, 57, 61, 75
DESCRIBE_CONFIGS, CREATE_PARTITIONS, DELETE_GROUPS = 32, 37, 42
INCREMENTAL_ALTER_CONFIGS, OFFSET_DELETE, DESCRIBE_CLUSTER = 44, 47, 60
GET_TELEMETRY_SUBSCRIPTIONS, PUSH_TELEMETRY, LIST_CLIENT_METRICS_RESOURCES = 71, 72, 74
SHARE_GROUP_HEARTBEAT, SHARE_GROUP_DESCRIBE, SHARE_FETCH, SHARE_ACKNOWLEDGE = 76, 77, 78, 79
DESCRIBE_SHARE_GROUP_OFFSETS, ALTER_SHARE_GROUP_OFFSETS, DELETE_SHARE_GROUP_OFFSETS = 90, 91, 92
GROUP_RESOURCE = 32
CONSUMER_GROUP_HEARTBEAT, CONSUMER_GROUP_DESCRIBE = 68, 69
ADD_PARTITIONS_TO_TXN, ADD_OFFSETS_TO_TXN, END_TXN, TXN_OFFSET_COMMIT = 24, 25, 26, 28
DESCRIBE_TRANSACTIONS, LIST_TRANSACTIONS = 65, 66

TOPIC_RESOURCE = 2
FIRST_TIMESTAMP = int(time.time() * 1000) - 60_000
SEEDED = 3  # records in the shared topic, one batch, timestamps FIRST_TIMESTAMP + 0, 1, 2


def advertised_cases() -> list[tuple[int, int]]:
    return [(key, version) for key, handler in sorted(REGISTRY.items())
            for version in range(handler.min_version, handler.max_version + 1)]


class Session:
    """One connection to the broker plus the shared fixtures the exercises lean on.

    `topic` has two partitions; partition 0 holds SEEDED records. Names made by
    `name()` are unique per case, so cases never see each other's groups or topics.
    """

    def __init__(self, broker: BrokerProcess) -> None:
        self.broker = broker
        self.client = KafkaClient(broker.bootstrap, client_id="version-coverage")
        self.topic = "coverage"
        self.create_topic(self.topic, 2)
        answer = self.call(PRODUCE, newest(PRODUCE), produce_body(self.topic, 0, seed_batch()))
        assert answer.responses[0].partition_responses[0].error_code == ErrorCode.NONE
        self.topic_id = self.describe_topic(self.topic).topic_id

    def call(self, api_key: int, version: int, body: dict[str, Any]) -> Any:
        return self.client.request(api_key, version, body)

    def name(self, what: str, version: int) -> str:
        return f"cov-{what}-v{version}"

    def create_topic(self, name: str, partitions: int = 1) -> None:
        answer = self.call(CREATE_TOPICS, newest(CREATE_TOPICS), {"topics": [
            {"name": name, "num_partitions": partitions, "replication_factor": 1}], "timeout_ms": 10_000})
        assert answer.topics[0].error_code == ErrorCode.NONE, answer

    def describe_topic(self, name: str) -> Any:
        answer = self.call(METADATA, newest(METADATA), {"topics": [{"name": name}]})
        (topic,) = answer.topics
        assert topic.error_code == ErrorCode.NONE, topic
        return topic

    def commit(self, group: str, offset: int) -> None:
        answer = self.call(OFFSET_COMMIT, newest(OFFSET_COMMIT), commit_body(group, self.topic, offset))
        assert answer.topics[0].partitions[0].error_code == ErrorCode.NONE, answer

    def join(self, group: str, version: int | None = None) -> tuple[str, int]:
        """Join a fresh group as its only member; its member id and generation."""
        version = newest(JOIN_GROUP) if version is None else version
        body = {"group_id": group, "session_timeout_ms": 10_000, "rebalance_timeout_ms": 10_000,
                "member_id": "", "protocol_type": "consumer",
                "protocols": [{"name": "range", "metadata": subscription(self.topic)}]}
        answer = self.call(JOIN_GROUP, version, body)
        if answer.error_code == ErrorCode.MEMBER_ID_REQUIRED:
            assert version >= 4, "MEMBER_ID_REQUIRED is only for JoinGroup v4+"
            answer = self.call(JOIN_GROUP, version, {**body, "member_id": answer.member_id})
        assert answer.error_code == ErrorCode.NONE, answer
        assert answer.member_id and answer.leader == answer.member_id
        assert answer.generation_id >= 1
        assert [m.member_id for m in answer.members] == [answer.member_id]
        return answer.member_id, answer.generation_id

    def join_and_sync(self, group: str) -> tuple[str, int]:
        member_id, generation_id = self.join(group)
        answer = self.call(SYNC_GROUP, newest(SYNC_GROUP), sync_body(group, member_id, generation_id, self.topic))
        assert answer.error_code == ErrorCode.NONE, answer
        return member_id, generation_id


def newest(api_key: int) -> int:
    return REGISTRY[api_key].max_version


def seed_batch() -> bytes:
    return build_batch([RecordSpec(b"v%d" % n, key=b"k%d" % n, timestamp=FIRST_TIMESTAMP + n) for n in range(SEEDED)],
                       base_timestamp=FIRST_TIMESTAMP)


def produce_body(topic: str, partition: int, records: bytes) -> dict[str, Any]:
    return {"transactional_id": None, "acks": -1, "timeout_ms": 10_000,
            "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": records}]}]}


def commit_body(group: str, topic: str, offset: int, member_id: str = "", generation_id: int = -1) -> dict:
    return {"group_id": group, "generation_id_or_member_epoch": generation_id, "member_id": member_id,
            "topics": [{"name": topic, "partitions": [
                {"partition_index": 0, "committed_offset": offset, "committed_metadata": "m"}]}]}


def subscription(topic: str) -> bytes:
    """ConsumerProtocolSubscription v0, with its int16 version prefix, as consumers send it."""
    return struct.pack(">h", 0) + encode_data("consumer_protocol_subscription", 0, {"topics": [topic]})


def assignment(topic: str) -> bytes:
    return struct.pack(">h", 0) + encode_data(
        "consumer_protocol_assignment", 0, {"assigned_partitions": [{"topic": topic, "partitions": [0, 1]}]})


def sync_body(group: str, member_id: str, generation_id: int, topic: str) -> dict[str, Any]:
    return {"group_id": group, "generation_id": generation_id, "member_id": member_id,
            "protocol_type": "consumer", "protocol_name": "range",
            "assignments": [{"member_id": member_id, "assignment": assignment(topic)}]}


# --- the exercises: one per API key, each takes the version under test ---------

Exercise = Callable[[Session, int], None]
EXERCISES: dict[int, Exercise] = {}


def exercises(api_key: int) -> Callable[[Exercise], Exercise]:
    def register(function: Exercise) -> Exercise:
        EXERCISES[api_key] = function
        return function
    return register


@exercises(PRODUCE)
def produce(session: Session, version: int) -> None:
    """v0-2 are advertised for librdkafka's sake but refused on use, as Kafka 4 does."""
    topic = session.name("produce", version)
    session.create_topic(topic)
    batch = build_batch([RecordSpec(b"value", key=b"key")], base_timestamp=FIRST_TIMESTAMP)
    (answer,) = session.call(PRODUCE, version, produce_body(topic, 0, batch)).responses
    (partition,) = answer.partition_responses
    assert (answer.name, partition.index) == (topic, 0)
    if version < 3:
        assert partition.error_code == ErrorCode.UNSUPPORTED_VERSION
        return
    assert (partition.error_code, partition.base_offset) == (ErrorCode.NONE, 0)
    if version >= 2:
        assert partition.log_append_time_ms == -1  # CreateTime topic
    if version >= 5:
        assert partition.log_start_offset == 0
    if version >= 3:
        transactional_produce(session, topic, version)


def transactional_produce(session: Session, topic: str, version: int) -> None:
    """A transactional batch with no AddPartitionsToTxn: v12 (transactions v2) adds its partition, older
    versions are refused as Kafka's verification refuses them (KIP-890 part 1)."""
    tid = session.name("produce-txn", version)
    pid, epoch = transactional_producer(session, tid)
    batch = build_batch([RecordSpec(b"t")], base_timestamp=FIRST_TIMESTAMP, producer_id=pid, producer_epoch=epoch,
                        base_sequence=0, transactional=True)
    (answer,) = session.call(PRODUCE, version, {**produce_body(topic, 0, batch), "transactional_id": tid}).responses
    (partition,) = answer.partition_responses
    (state,) = session.call(DESCRIBE_TRANSACTIONS, newest(DESCRIBE_TRANSACTIONS),
                            {"transactional_ids": [tid]}).transaction_states
    if version >= 12:
        assert (partition.error_code, partition.base_offset) == (ErrorCode.NONE, 1)
        assert (state.transaction_state, [(t.topic, list(t.partitions)) for t in state.topics]) == (
            "Ongoing", [(topic, [0])])
    else:
        assert partition.error_code == ErrorCode.INVALID_TXN_STATE
        assert state.transaction_state == "Empty"


@exercises(FETCH)
def fetch(session: Session, version: int) -> None:
    topic_ref = {"topic_id": session.topic_id} if version >= 13 else {"topic": session.topic}
    body = {"max_wait_ms": 0, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
            "topics": [{**topic_ref, "partitions": [
                {"partition": 0, "fetch_offset": 1, "partition_max_bytes": 1 << 20}]}]}
    answer = session.call(FETCH, version, body)
    (topic,) = answer.responses
    if version >= 13:
        assert topic.topic_id == session.topic_id
    else:
        assert topic.topic == session.topic
    if version >= 7:
        assert answer.error_code == ErrorCode.NONE
    (partition,) = topic.partitions
    if version < 4:  # message format v0/v1 would need down-conversion, which the broker refuses
        assert (partition.partition_index, partition.error_code) == (0, ErrorCode.UNSUPPORTED_VERSION)
        assert (partition.high_watermark, bytes(partition.records)) == (-1, b"")
        return
    assert (partition.partition_index, partition.error_code) == (0, ErrorCode.NONE)
    assert partition.high_watermark == SEEDED
    # The one seeded batch holds offset 1, so it comes back whole: base offset
    # 0, then (past the leader epoch the broker may stamp) the bytes we sent.
    records = bytes(partition.records)
    assert struct.unpack_from(">q", records)[0] == 0
    assert records[16:] == seed_batch()[16:]


@exercises(LIST_OFFSETS)
def list_offsets(session: Session, version: int) -> None:
    queries = {-2: (0, -1), -1: (SEEDED, -1), FIRST_TIMESTAMP + 1: (1, FIRST_TIMESTAMP + 1)}
    body = {"replica_id": -1, "isolation_level": 0, "timeout_ms": 10_000, "topics": [{
        "name": session.topic, "partitions": [{"partition_index": 0, "timestamp": t} for t in queries]}]}
    (topic,) = session.call(LIST_OFFSETS, version, body).topics
    if version == 0:  # a list of offsets (max_num_offsets defaults to 1), no timestamps
        got = {query: (p.error_code, list(p.old_style_offsets)) for query, p in zip(queries, topic.partitions)}
        assert got == {query: (ErrorCode.NONE, [offset]) for query, (offset, _) in queries.items()}
        return
    got = {query: (p.error_code, p.offset, p.timestamp) for query, p in zip(queries, topic.partitions)}
    assert got == {query: (ErrorCode.NONE, *expected) for query, expected in queries.items()}


@exercises(METADATA)
def metadata(session: Session, version: int) -> None:
    topics = [{"name": session.topic}]
    answer = session.call(METADATA, version, {"topics": topics, "allow_auto_topic_creation": False})
    (broker,) = answer.brokers
    assert (broker.host, broker.port) == ("127.0.0.1", session.broker.port)
    if version >= 1:
        assert answer.controller_id == broker.node_id
    if version >= 2:
        assert answer.cluster_id
    (topic,) = answer.topics
    assert (topic.name, topic.error_code) == (session.topic, ErrorCode.NONE)
    if version >= 10:
        assert topic.topic_id == session.topic_id
    assert sorted(p.partition_index for p in topic.partitions) == [0, 1]
    assert all(p.leader_id == broker.node_id and list(p.replica_nodes) == [broker.node_id]
               for p in topic.partitions)


@exercises(OFFSET_FOR_LEADER_EPOCH)
def offset_for_leader_epoch(session: Session, version: int) -> None:
    """Epoch 0 (the only one) ends at the log end; a newer one is unknown; a newer current epoch is refused."""
    partitions = [{"partition": 0, "current_leader_epoch": 0, "leader_epoch": 0},
                  {"partition": 0, "current_leader_epoch": -1, "leader_epoch": 1},
                  {"partition": 7, "current_leader_epoch": -1, "leader_epoch": 0}]
    if version >= 2:
        partitions.append({"partition": 0, "current_leader_epoch": 1, "leader_epoch": 0})
    body = {"replica_id": -1, "topics": [{"topic": session.topic, "partitions": partitions}]}
    (topic,) = session.call(OFFSET_FOR_LEADER_EPOCH, version, body).topics
    got = [(p.partition, p.error_code, p.end_offset) for p in topic.partitions]
    expected = [(0, ErrorCode.NONE, SEEDED), (0, ErrorCode.NONE, -1), (7, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1)]
    if version >= 2:
        expected.append((0, ErrorCode.UNKNOWN_LEADER_EPOCH, -1))
    assert (topic.topic, got) == (session.topic, expected)
    if version >= 1:
        assert [p.leader_epoch for p in topic.partitions][:2] == [0, -1]


@exercises(OFFSET_COMMIT)
def offset_commit(session: Session, version: int) -> None:
    """v0 and the standalone form (generation -1, no member) commit for a group with no members."""
    group = session.name("commit", version)
    answer = session.call(OFFSET_COMMIT, version, commit_body(group, session.topic, 2))
    assert [(t.name, [(p.partition_index, p.error_code) for p in t.partitions]) for t in answer.topics] == [
        (session.topic, [(0, ErrorCode.NONE)])]
    assert committed(session, group) == (2, "m")
    if version >= 1:  # a member's commit names its generation, which v0 cannot
        group = session.name("commit-member", version)
        member_id, generation_id = session.join_and_sync(group)
        answer = session.call(OFFSET_COMMIT, version, commit_body(group, session.topic, 1, member_id, generation_id))
        assert answer.topics[0].partitions[0].error_code == ErrorCode.NONE
        assert committed(session, group) == (1, "m")


def committed(session: Session, group: str, version: int | None = None) -> tuple[int, str | None]:
    """Partition 0's committed offset and metadata in `group`, read with OffsetFetch `version`."""
    version = newest(OFFSET_FETCH) if version is None else version
    topics = [{"name": session.topic, "partition_indexes": [0]}]
    if version >= 8:
        answer = session.call(OFFSET_FETCH, version, {"groups": [{"group_id": group, "topics": topics}]})
        (group_answer,) = answer.groups
        assert (group_answer.group_id, group_answer.error_code) == (group, ErrorCode.NONE)
        (topic,) = group_answer.topics
    else:
        answer = session.call(OFFSET_FETCH, version, {"group_id": group, "topics": topics})
        if version >= 2:
            assert answer.error_code == ErrorCode.NONE
        (topic,) = answer.topics
    (partition,) = topic.partitions
    assert (topic.name, partition.partition_index, partition.error_code) == (session.topic, 0, ErrorCode.NONE)
    return partition.committed_offset, partition.metadata


@exercises(OFFSET_FETCH)
def offset_fetch(session: Session, version: int) -> None:
    group = session.name("fetch-offsets", version)
    assert committed(session, group, version)[0] == -1  # nothing committed yet
    session.commit(group, 3)
    assert committed(session, group, version) == (3, "m")


@exercises(FIND_COORDINATOR)
def find_coordinator(session: Session, version: int) -> None:
    group = session.name("coordinator", version)
    if version >= 4:
        answer = session.call(FIND_COORDINATOR, version, {"key_type": 0, "coordinator_keys": [group]})
        (found,) = answer.coordinators
        assert (found.key, found.error_code) == (group, ErrorCode.NONE)
    else:
        found = session.call(FIND_COORDINATOR, version, {"key": group, "key_type": 0})
        assert found.error_code == ErrorCode.NONE
    assert (found.host, found.port) == ("127.0.0.1", session.broker.port)


@exercises(JOIN_GROUP)
def join_group(session: Session, version: int) -> None:
    """v4+ first answer MEMBER_ID_REQUIRED with an id to rejoin with; `join` checks both legs."""
    session.join(session.name("join", version), version)


@exercises(SYNC_GROUP)
def sync_group(session: Session, version: int) -> None:
    group = session.name("sync", version)
    member_id, generation_id = session.join(group)
    answer = session.call(SYNC_GROUP, version, sync_body(group, member_id, generation_id, session.topic))
    assert answer.error_code == ErrorCode.NONE
    assert bytes(answer.assignment) == assignment(session.topic)
    if version >= 5:
        assert (answer.protocol_type, answer.protocol_name) == ("consumer", "range")


@exercises(HEARTBEAT)
def heartbeat(session: Session, version: int) -> None:
    group = session.name("heartbeat", version)
    member_id, generation_id = session.join_and_sync(group)
    body = {"group_id": group, "generation_id": generation_id, "member_id": member_id}
    assert session.call(HEARTBEAT, version, body).error_code == ErrorCode.NONE
    stale = session.call(HEARTBEAT, version, {**body, "generation_id": generation_id + 1})
    assert stale.error_code == ErrorCode.ILLEGAL_GENERATION


@exercises(LEAVE_GROUP)
def leave_group(session: Session, version: int) -> None:
    group = session.name("leave", version)
    member_id, _ = session.join_and_sync(group)
    body = {"group_id": group, "member_id": member_id, "members": [{"member_id": member_id}]}
    answer = session.call(LEAVE_GROUP, version, body)
    assert answer.error_code == ErrorCode.NONE
    if version >= 3:
        assert [(m.member_id, m.error_code) for m in answer.members] == [(member_id, ErrorCode.NONE)]
    assert describe_group(session, group).group_state == "Empty"


def describe_group(session: Session, group: str, version: int | None = None) -> Any:
    version = newest(DESCRIBE_GROUPS) if version is None else version
    (described,) = session.call(DESCRIBE_GROUPS, version, {"groups": [group]}).groups
    assert (described.group_id, described.error_code) == (group, ErrorCode.NONE)
    return described


@exercises(DESCRIBE_GROUPS)
def describe_groups(session: Session, version: int) -> None:
    group = session.name("describe", version)
    member_id, _ = session.join_and_sync(group)
    described = describe_group(session, group, version)
    assert (described.group_state, described.protocol_type, described.protocol_data) == (
        "Stable", "consumer", "range")
    (member,) = described.members
    assert (member.member_id, member.client_id) == (member_id, "version-coverage")
    assert bytes(member.member_assignment) == assignment(session.topic)


@exercises(LIST_GROUPS)
def list_groups(session: Session, version: int) -> None:
    group = session.name("list", version)
    session.join_and_sync(group)
    answer = session.call(LIST_GROUPS, version, {"states_filter": [], "types_filter": []})
    assert answer.error_code == ErrorCode.NONE
    listed = {g.group_id: g for g in answer.groups}
    assert listed[group].protocol_type == "consumer"
    if version >= 4:
        assert listed[group].group_state == "Stable"
        filtered = session.call(LIST_GROUPS, version, {"states_filter": ["Empty"], "types_filter": []})
        assert group not in {g.group_id for g in filtered.groups}
    if version >= 5:
        assert listed[group].group_type.lower() == "classic"  # Kafka spells it "classic"


@exercises(API_VERSIONS)
def api_versions(session: Session, version: int) -> None:
    answer = session.call(API_VERSIONS, version, {"client_software_name": "coverage",
                                                  "client_software_version": "1.0"})
    assert answer.error_code == ErrorCode.NONE
    assert {k.api_key: (k.min_version, k.max_version) for k in answer.api_keys} == {
        key: (h.min_version, h.max_version) for key, h in REGISTRY.items()}


@exercises(CREATE_TOPICS)
def create_topics(session: Session, version: int) -> None:
    name = session.name("create", version)
    body = {"topics": [{"name": name, "num_partitions": 3, "replication_factor": 1,
                        "configs": [{"name": "retention.ms", "value": "3600000"}]}],
            "timeout_ms": 10_000, "validate_only": False}
    (created,) = session.call(CREATE_TOPICS, version, body).topics
    assert (created.name, created.error_code) == (name, ErrorCode.NONE)
    if version >= 5:
        assert (created.num_partitions, created.replication_factor) == (3, 1)
    (again,) = session.call(CREATE_TOPICS, version, body).topics
    assert again.error_code == ErrorCode.TOPIC_ALREADY_EXISTS
    assert len(session.describe_topic(name).partitions) == 3


@exercises(DELETE_TOPICS)
def delete_topics(session: Session, version: int) -> None:
    name = session.name("delete", version)
    session.create_topic(name)
    body = {"topic_names": [name], "topics": [{"name": name}], "timeout_ms": 10_000}
    (deleted,) = session.call(DELETE_TOPICS, version, body).responses
    assert (deleted.name, deleted.error_code) == (name, ErrorCode.NONE)
    answer = session.call(METADATA, newest(METADATA), {"topics": [{"name": name}],
                                                       "allow_auto_topic_creation": False})
    assert answer.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


@exercises(DELETE_RECORDS)
def delete_records(session: Session, version: int) -> None:
    topic = session.name("delete-records", version)
    session.create_topic(topic)
    batch = build_batch([RecordSpec(b"a"), RecordSpec(b"b"), RecordSpec(b"c")], base_timestamp=FIRST_TIMESTAMP)
    session.call(PRODUCE, newest(PRODUCE), produce_body(topic, 0, batch))

    def delete_before(offset: int) -> tuple[int, int]:
        body = {"topics": [{"name": topic, "partitions": [{"partition_index": 0, "offset": offset}]}],
                "timeout_ms": 10_000}
        (answer,) = session.call(DELETE_RECORDS, version, body).topics
        (partition,) = answer.partitions
        assert (answer.name, partition.partition_index) == (topic, 0)
        return partition.error_code, partition.low_watermark

    assert delete_before(2) == (ErrorCode.NONE, 2)
    assert delete_before(-1) == (ErrorCode.NONE, 3)  # -1: up to the high watermark
    assert delete_before(9)[0] == ErrorCode.OFFSET_OUT_OF_RANGE


@exercises(INIT_PRODUCER_ID)
def init_producer_id(session: Session, version: int) -> None:
    body = {"transactional_id": None, "transaction_timeout_ms": 60_000}
    first = session.call(INIT_PRODUCER_ID, version, body)
    second = session.call(INIT_PRODUCER_ID, version, body)
    assert (first.error_code, second.error_code) == (ErrorCode.NONE, ErrorCode.NONE)
    assert first.producer_id >= 0 and second.producer_id >= 0
    assert first.producer_id != second.producer_id, "each idempotent producer needs its own id"
    tid = session.name("init-txn", version)
    first = session.call(INIT_PRODUCER_ID, version, {"transactional_id": tid, "transaction_timeout_ms": 60_000})
    second = session.call(INIT_PRODUCER_ID, version, {"transactional_id": tid, "transaction_timeout_ms": 60_000})
    assert (first.error_code, second.error_code) == (ErrorCode.NONE, ErrorCode.NONE)
    assert (second.producer_id, second.producer_epoch) == (first.producer_id, first.producer_epoch + 1)
    too_long = session.call(INIT_PRODUCER_ID, version, {"transactional_id": tid, "transaction_timeout_ms": 900_001})
    assert too_long.error_code == ErrorCode.INVALID_TRANSACTION_TIMEOUT


def described_configs(session: Session, topic: str, version: int | None = None) -> dict[str, Any]:
    """The topic's config entries by name, read with DescribeConfigs `version`."""
    version = newest(DESCRIBE_CONFIGS) if version is None else version
    body = {"resources": [{"resource_type": TOPIC_RESOURCE, "resource_name": topic, "configuration_keys": None}],
            "include_synonyms": False, "include_documentation": False}
    (result,) = session.call(DESCRIBE_CONFIGS, version, body).results
    assert (result.error_code, result.resource_name) == (ErrorCode.NONE, topic)
    return {config.name: config for config in result.configs}


def topic_configs(session: Session, topic: str) -> dict[str, str | None]:
    return {name: config.value for name, config in described_configs(session, topic).items()}


@exercises(DESCRIBE_CONFIGS)
def describe_configs(session: Session, version: int) -> None:
    topic = session.name("describe-configs", version)
    answer = session.call(CREATE_TOPICS, newest(CREATE_TOPICS), {"topics": [
        {"name": topic, "num_partitions": 1, "replication_factor": 1,
         "configs": [{"name": "retention.ms", "value": "3600000"}]}], "timeout_ms": 10_000})
    assert answer.topics[0].error_code == ErrorCode.NONE
    configs = described_configs(session, topic, version)
    assert configs["cleanup.policy"].value == "delete"
    assert configs["message.timestamp.type"].value == "CreateTime"
    assert configs["retention.ms"].value == "3600000"
    if version == 0:  # v0 flags defaults instead of naming each value's source
        assert (configs["cleanup.policy"].is_default, configs["retention.ms"].is_default) == (True, False)
    else:
        assert (configs["cleanup.policy"].config_source, configs["retention.ms"].config_source) == (5, 1)


@exercises(INCREMENTAL_ALTER_CONFIGS)
def incremental_alter_configs(session: Session, version: int) -> None:
    topic = session.name("alter", version)
    session.create_topic(topic)
    body = {"resources": [{"resource_type": TOPIC_RESOURCE, "resource_name": topic, "configs": [
        {"name": "retention.ms", "config_operation": 0, "value": "123456"}]}], "validate_only": False}
    (answer,) = session.call(INCREMENTAL_ALTER_CONFIGS, version, body).responses
    assert (answer.error_code, answer.resource_name) == (ErrorCode.NONE, topic)
    assert topic_configs(session, topic)["retention.ms"] == "123456"


@exercises(CREATE_PARTITIONS)
def create_partitions(session: Session, version: int) -> None:
    topic = session.name("partitions", version)
    session.create_topic(topic)
    body = {"topics": [{"name": topic, "count": 3, "assignments": None}], "timeout_ms": 10_000,
            "validate_only": False}
    (result,) = session.call(CREATE_PARTITIONS, version, body).results
    assert (result.name, result.error_code) == (topic, ErrorCode.NONE)
    assert len(session.describe_topic(topic).partitions) == 3


@exercises(DELETE_GROUPS)
def delete_groups(session: Session, version: int) -> None:
    group = session.name("delete-group", version)
    session.commit(group, 1)
    (result,) = session.call(DELETE_GROUPS, version, {"groups_names": [group]}).results
    assert (result.group_id, result.error_code) == (group, ErrorCode.NONE)
    (again,) = session.call(DELETE_GROUPS, version, {"groups_names": [group]}).results
    assert again.error_code == ErrorCode.GROUP_ID_NOT_FOUND


@exercises(OFFSET_DELETE)
def offset_delete(session: Session, version: int) -> None:
    group = session.name("offset-delete", version)
    session.commit(group, 1)
    body = {"group_id": group, "topics": [{"name": session.topic, "partitions": [{"partition_index": 0}]}]}
    answer = session.call(OFFSET_DELETE, version, body)
    assert answer.error_code == ErrorCode.NONE
    assert answer.topics[0].partitions[0].error_code == ErrorCode.NONE
    assert committed(session, group)[0] == -1


@exercises(DESCRIBE_CLUSTER)
def describe_cluster(session: Session, version: int) -> None:
    answer = session.call(DESCRIBE_CLUSTER, version, {"include_cluster_authorized_operations": False,
                                                      "endpoint_type": 1})
    assert answer.error_code == ErrorCode.NONE
    (broker,) = answer.brokers
    assert (broker.host, broker.port) == ("127.0.0.1", session.broker.port)
    assert answer.controller_id == broker.broker_id and answer.cluster_id
    if version >= 1:
        assert answer.endpoint_type == 1


@exercises(ALTER_CONFIGS)
def alter_configs(session: Session, version: int) -> None:
    """The configs named become the whole set of overrides: retention.ms set before is gone after."""
    topic = session.name("alter-all", version)
    session.create_topic(topic)

    def replace(configs: dict[str, str]) -> None:
        body = {"resources": [{"resource_type": TOPIC_RESOURCE, "resource_name": topic, "configs": [
            {"name": name, "value": value} for name, value in configs.items()]}], "validate_only": False}
        (answer,) = session.call(ALTER_CONFIGS, version, body).responses
        assert (answer.error_code, answer.resource_name) == (ErrorCode.NONE, topic)

    replace({"retention.ms": "123456"})
    replace({"segment.ms": "654321"})
    configs = topic_configs(session, topic)
    assert (configs["segment.ms"], configs["retention.ms"]) == ("654321", "604800000")


@exercises(DESCRIBE_LOG_DIRS)
def describe_log_dirs(session: Session, version: int) -> None:
    body = {"topics": [{"topic": session.topic, "partitions": [0, 1, 9]}]}
    answer = session.call(DESCRIBE_LOG_DIRS, version, body)
    (result,) = answer.results
    assert result.error_code == ErrorCode.NONE and result.log_dir == str(session.broker.data_dir.absolute())
    (topic,) = result.topics
    sizes = {p.partition_index: p.partition_size for p in topic.partitions}
    assert topic.name == session.topic and sorted(sizes) == [0, 1]
    assert sizes[0] == len(seed_batch()) and sizes[1] == 0
    if version >= 4:
        assert result.total_bytes >= result.usable_bytes > 0


@exercises(ALTER_REPLICA_LOG_DIRS)
def alter_replica_log_dirs(session: Session, version: int) -> None:
    here = str(session.broker.data_dir.absolute())
    body = {"dirs": [{"path": here, "topics": [{"name": session.topic, "partitions": [0, 9]}]},
                     {"path": "/nowhere", "topics": [{"name": session.topic, "partitions": [1]}]}]}
    (result,) = session.call(ALTER_REPLICA_LOG_DIRS, version, body).results
    assert result.topic_name == session.topic
    assert [(p.partition_index, p.error_code) for p in result.partitions] == [
        (0, ErrorCode.NONE), (9, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION), (1, ErrorCode.LOG_DIR_NOT_FOUND)]


@exercises(DESCRIBE_TOPIC_PARTITIONS)
def describe_topic_partitions(session: Session, version: int) -> None:
    """A one-partition page stops at partition 1 of the shared topic; the cursor fetches it."""
    topics = [{"name": session.topic}, {"name": "cov-no-such-topic"}]
    first = session.call(DESCRIBE_TOPIC_PARTITIONS, version,
                         {"topics": topics, "response_partition_limit": 1, "cursor": None})
    assert [(t.name, t.error_code, [p.partition_index for p in t.partitions]) for t in first.topics] == [
        ("cov-no-such-topic", ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, []), (session.topic, ErrorCode.NONE, [0])]
    assert first.topics[1].topic_id == session.topic_id
    assert (first.next_cursor.topic_name, first.next_cursor.partition_index) == (session.topic, 1)
    rest = session.call(DESCRIBE_TOPIC_PARTITIONS, version,
                        {"topics": topics, "response_partition_limit": 1,
                         "cursor": {"topic_name": session.topic, "partition_index": 1}})
    assert [(t.name, [p.partition_index for p in t.partitions]) for t in rest.topics] == [(session.topic, [1])]
    (partition,) = rest.topics[0].partitions
    assert (partition.leader_id, partition.leader_epoch, list(partition.isr_nodes)) == (1, 0, [1])
    assert rest.next_cursor is None


@exercises(DESCRIBE_QUORUM)
def describe_quorum(session: Session, version: int) -> None:
    body = {"topics": [{"topic_name": "__cluster_metadata", "partitions": [{"partition_index": 0}]}]}
    answer = session.call(DESCRIBE_QUORUM, version, body)
    (topic,) = answer.topics
    (partition,) = topic.partitions
    assert (answer.error_code, topic.topic_name, partition.error_code) == (
        ErrorCode.NONE, "__cluster_metadata", ErrorCode.NONE)
    (voter,) = partition.current_voters
    assert partition.leader_id == voter.replica_id == 1 and list(partition.observers) == []
    if version >= 2:
        (node,) = answer.nodes
        assert node.node_id == 1 and [listener.port for listener in node.listeners] == [session.broker.port]
    wrong = session.call(DESCRIBE_QUORUM, version, {"topics": [
        {"topic_name": session.topic, "partitions": [{"partition_index": 0}]}]})
    assert wrong.topics[0].partitions[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION


def finalized_metadata_version(session: Session) -> tuple[int, int]:
    answer = session.call(API_VERSIONS, newest(API_VERSIONS), {"client_software_name": "coverage",
                                                               "client_software_version": "1.0"})
    (feature,) = [f for f in answer.finalized_features if f.name == "metadata.version"]
    return answer.finalized_features_epoch, feature.max_version_level


@exercises(UPDATE_FEATURES)
def update_features(session: Session, version: int) -> None:
    """A safe downgrade of metadata.version within levels that kept the format, then back up."""
    epoch, level = finalized_metadata_version(session)

    def update(to: int, upgrade_type: int) -> Any:
        return session.call(UPDATE_FEATURES, version, {"timeout_ms": 10_000, "validate_only": False,
            "feature_updates": [{"feature": "metadata.version", "max_version_level": to,
                                 "allow_downgrade": upgrade_type == 2, "upgrade_type": upgrade_type}]})

    down = update(level - 1, 2)
    assert down.error_code == ErrorCode.NONE, down
    if version <= 1:
        assert [(r.feature, r.error_code) for r in down.results] == [("metadata.version", ErrorCode.NONE)]
    assert finalized_metadata_version(session) == (epoch + 1, level - 1)
    refused = update(level, 2)  # a "downgrade" to a higher level
    assert refused.error_code == ErrorCode.INVALID_UPDATE_VERSION and list(refused.results) == []
    assert update(level, 1).error_code == ErrorCode.NONE
    assert finalized_metadata_version(session) == (epoch + 2, level)


@exercises(CREATE_TOKEN)
def create_delegation_token(session: Session, version: int) -> None:
    body = {"owner_principal_type": None, "owner_principal_name": None, "renewers": [], "max_lifetime_ms": -1}
    answer = session.call(CREATE_TOKEN, version, body)
    assert answer.error_code == ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED  # a PLAINTEXT listener
    assert (answer.principal_type, answer.principal_name, answer.token_id) == ("User", "ANONYMOUS", "")


@exercises(RENEW_TOKEN)
def renew_delegation_token(session: Session, version: int) -> None:
    answer = session.call(RENEW_TOKEN, version, {"hmac": b"hmac", "renew_period_ms": 1000})
    assert (answer.error_code, answer.expiry_timestamp_ms) == (ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, -1)


@exercises(EXPIRE_TOKEN)
def expire_delegation_token(session: Session, version: int) -> None:
    answer = session.call(EXPIRE_TOKEN, version, {"hmac": b"hmac", "expiry_time_period_ms": -1})
    assert (answer.error_code, answer.expiry_timestamp_ms) == (ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, -1)


@exercises(DESCRIBE_TOKENS)
def describe_delegation_tokens(session: Session, version: int) -> None:
    answer = session.call(DESCRIBE_TOKENS, version, {"owners": None})
    assert (answer.error_code, list(answer.tokens)) == (ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED, [])


@exercises(DESCRIBE_ACLS)
def describe_acls(session: Session, version: int) -> None:
    body = {"resource_type_filter": 1, "resource_name_filter": None, "pattern_type_filter": 1,
            "principal_filter": None, "host_filter": None, "operation": 1, "permission_type": 1}
    answer = session.call(DESCRIBE_ACLS, version, body)
    assert (answer.error_code, list(answer.resources)) == (ErrorCode.SECURITY_DISABLED, [])


@exercises(CREATE_ACLS)
def create_acls(session: Session, version: int) -> None:
    creation = {"resource_type": 2, "resource_name": "t", "resource_pattern_type": 3, "principal": "User:a",
                "host": "*", "operation": 3, "permission_type": 3}
    answer = session.call(CREATE_ACLS, version, {"creations": [creation, creation]})
    assert [r.error_code for r in answer.results] == [ErrorCode.SECURITY_DISABLED] * 2  # no authorizer


@exercises(DELETE_ACLS)
def delete_acls(session: Session, version: int) -> None:
    acl_filter = {"resource_type_filter": 1, "resource_name_filter": None, "pattern_type_filter": 1,
                  "principal_filter": None, "host_filter": None, "operation": 1, "permission_type": 1}
    answer = session.call(DELETE_ACLS, version, {"filters": [acl_filter]})
    assert [(r.error_code, list(r.matching_acls)) for r in answer.filter_results] == [
        (ErrorCode.SECURITY_DISABLED, [])]


@exercises(DESCRIBE_CLIENT_QUOTAS)
def describe_client_quotas(session: Session, version: int) -> None:
    answer = session.call(DESCRIBE_CLIENT_QUOTAS, version, {"components": [], "strict": False})
    assert (answer.error_code, list(answer.entries)) == (ErrorCode.NONE, [])
    bad = session.call(DESCRIBE_CLIENT_QUOTAS, version, {"strict": False, "components": [
        {"entity_type": "user", "match_type": 0, "match": None}]})
    assert (bad.error_code, bad.entries) == (ErrorCode.INVALID_REQUEST, None)


@exercises(ALTER_CLIENT_QUOTAS)
def alter_client_quotas(session: Session, version: int) -> None:
    """A quota is set, described and removed again, so the shared broker's other cases stay unthrottled."""
    client = session.name("quota", version)
    entity = [{"entity_type": "client-id", "entity_name": client}]

    def alter(value: float, remove: bool, validate_only: bool = False) -> Any:
        ops = [{"key": "producer_byte_rate", "value": value, "remove": remove}]
        return session.call(ALTER_CLIENT_QUOTAS, version, {"entries": [{"entity": entity, "ops": ops}],
                                                           "validate_only": validate_only})

    def described() -> list[tuple[str, float]]:
        flt = {"components": [{"entity_type": "client-id", "match_type": 0, "match": client}], "strict": True}
        answer = session.call(DESCRIBE_CLIENT_QUOTAS, newest(DESCRIBE_CLIENT_QUOTAS), flt)
        return [(v.key, v.value) for e in answer.entries for v in e["values"]]

    (bad,) = alter(1.5, False).entries
    assert (bad.error_code, bad.error_message) == (ErrorCode.INVALID_REQUEST,
                                                   "Configuration producer_byte_rate must be a Long value")
    assert [e.error_code for e in alter(1000, False, validate_only=True).entries] == [ErrorCode.NONE]
    assert described() == []
    (done,) = alter(1000, False).entries
    assert (done.error_code, [(e.entity_type, e.entity_name) for e in done.entity]) == (
        ErrorCode.NONE, [("client-id", client)])
    assert described() == [("producer_byte_rate", 1000.0)]
    assert [e.error_code for e in alter(0, True).entries] == [ErrorCode.NONE]
    assert described() == []


@exercises(DESCRIBE_SCRAM_CREDENTIALS)
def describe_user_scram_credentials(session: Session, version: int) -> None:
    assert list(session.call(DESCRIBE_SCRAM_CREDENTIALS, version, {"users": None}).results) == []
    answer = session.call(DESCRIBE_SCRAM_CREDENTIALS, version, {"users": [{"name": "alice"}]})
    assert [(r.user, r.error_code) for r in answer.results] == [("alice", ErrorCode.RESOURCE_NOT_FOUND)]


@exercises(SASL_HANDSHAKE)
def sasl_handshake(session: Session, version: int) -> None:
    """A PLAINTEXT listener has no SASL exchange: Kafka's request handler answers ILLEGAL_SASL_STATE."""
    answer = session.call(SASL_HANDSHAKE, version, {"mechanism": "PLAIN"})
    assert (answer.error_code, list(answer.mechanisms)) == (ErrorCode.ILLEGAL_SASL_STATE, [])


@exercises(SASL_AUTHENTICATE)
def sasl_authenticate(session: Session, version: int) -> None:
    answer = session.call(SASL_AUTHENTICATE, version, {"auth_bytes": b"\0alice\0secret"})
    assert (answer.error_code, answer.error_message) == (
        ErrorCode.ILLEGAL_SASL_STATE, "SaslAuthenticate request received after successful authentication")
    if version >= 1:
        assert answer.session_lifetime_ms == 0


@exercises(ALTER_SCRAM_CREDENTIALS)
def alter_user_scram_credentials(session: Session, version: int) -> None:
    user = f"coverage-{version}"
    upsert = {"name": user, "mechanism": 2, "iterations": 4096, "salt": b"salt", "salted_password": b"x" * 64}
    answer = session.call(ALTER_SCRAM_CREDENTIALS, version, {"deletions": [], "upsertions": [
        upsert, {**upsert, "name": "too-few", "iterations": 10}]})
    assert sorted((r.user, r.error_code) for r in answer.results) == [
        (user, ErrorCode.NONE), ("too-few", ErrorCode.UNACCEPTABLE_CREDENTIAL)]
    described = session.call(DESCRIBE_SCRAM_CREDENTIALS, 0, {"users": [{"name": user}]})
    assert [(i.mechanism, i.iterations) for i in described.results[0].credential_infos] == [(2, 4096)]
    gone = session.call(ALTER_SCRAM_CREDENTIALS, version, {"upsertions": [], "deletions": [
        {"name": user, "mechanism": 2}, {"name": "nobody", "mechanism": 1}]})
    assert sorted((r.user, r.error_code) for r in gone.results) == [
        (user, ErrorCode.NONE), ("nobody", ErrorCode.RESOURCE_NOT_FOUND)]


@exercises(ELECT_LEADERS)
def elect_leaders(session: Session, version: int) -> None:
    body = {"election_type": 0, "timeout_ms": 10_000,
            "topic_partitions": [{"topic": session.topic, "partitions": [0, 5]}]}
    answer = session.call(ELECT_LEADERS, version, body)
    if version >= 1:
        assert answer.error_code == ErrorCode.NONE
    (result,) = answer.replica_election_results
    assert [(p.partition_id, p.error_code) for p in result.partition_result] == [
        (0, ErrorCode.ELECTION_NOT_NEEDED), (5, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)]


@exercises(ALTER_REASSIGNMENTS)
def alter_partition_reassignments(session: Session, version: int) -> None:
    """A broker alone can only be asked to keep a partition on itself; nothing is pending to cancel."""
    body = {"timeout_ms": 10_000, "topics": [{"name": session.topic, "partitions": [
        {"partition_index": 0, "replicas": [1]}, {"partition_index": 0, "replicas": [2]},
        {"partition_index": 0, "replicas": None}, {"partition_index": 5, "replicas": [1]}]}]}
    answer = session.call(ALTER_REASSIGNMENTS, version, body)
    (result,) = answer.responses
    assert [p.error_code for p in result.partitions] == [
        ErrorCode.NONE, ErrorCode.INVALID_REPLICA_ASSIGNMENT, ErrorCode.NO_REASSIGNMENT_IN_PROGRESS,
        ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]


@exercises(LIST_REASSIGNMENTS)
def list_partition_reassignments(session: Session, version: int) -> None:
    answer = session.call(LIST_REASSIGNMENTS, version, {"timeout_ms": 10_000, "topics": None})
    assert (answer.error_code, list(answer.topics)) == (ErrorCode.NONE, [])


@exercises(DESCRIBE_PRODUCERS)
def describe_producers(session: Session, version: int) -> None:
    """An idempotent producer's batch shows up as its state: epoch, last sequence, batch timestamp."""
    topic = session.name("producers", version)
    session.create_topic(topic)
    init = session.call(INIT_PRODUCER_ID, newest(INIT_PRODUCER_ID),
                        {"transactional_id": None, "transaction_timeout_ms": 60_000})
    batch = build_batch([RecordSpec(b"a"), RecordSpec(b"b")], base_timestamp=FIRST_TIMESTAMP,
                        producer_id=init.producer_id, producer_epoch=init.producer_epoch, base_sequence=0)
    session.call(PRODUCE, newest(PRODUCE), produce_body(topic, 0, batch))
    body = {"topics": [{"name": topic, "partition_indexes": [0, 4]}]}
    (answer,) = session.call(DESCRIBE_PRODUCERS, version, body).topics
    known, unknown = answer.partitions
    assert (unknown.partition_index, unknown.error_code) == (4, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
    (producer,) = known.active_producers
    assert (known.error_code, producer.producer_id, producer.producer_epoch, producer.last_sequence) == (
        ErrorCode.NONE, init.producer_id, init.producer_epoch, 1)
    assert (producer.last_timestamp, producer.coordinator_epoch, producer.current_txn_start_offset) == (
        FIRST_TIMESTAMP, -1, -1)


def transactional_producer(session: Session, tid: str) -> tuple[int, int]:
    init = session.call(INIT_PRODUCER_ID, newest(INIT_PRODUCER_ID),
                        {"transactional_id": tid, "transaction_timeout_ms": 60_000})
    assert init.error_code == ErrorCode.NONE, init
    return init.producer_id, init.producer_epoch


def add_partitions(session: Session, tid: str, producer: tuple[int, int], topic: str,
                   partitions: list[int], version: int | None = None, verify_only: bool = False) -> dict[int, int]:
    """AddPartitionsToTxn in the version's shape; the error code per partition."""
    version = newest(ADD_PARTITIONS_TO_TXN) if version is None else version
    topics = [{"name": topic, "partitions": partitions}]
    if version < 4:
        body = {"v3_and_below_transactional_id": tid, "v3_and_below_producer_id": producer[0],
                "v3_and_below_producer_epoch": producer[1], "v3_and_below_topics": topics}
        (result,) = session.call(ADD_PARTITIONS_TO_TXN, version, body).results_by_topic_v3_and_below
    else:
        body = {"transactions": [{"transactional_id": tid, "producer_id": producer[0], "producer_epoch": producer[1],
                                  "verify_only": verify_only, "topics": topics}]}
        answer = session.call(ADD_PARTITIONS_TO_TXN, version, body)
        assert answer.error_code == ErrorCode.NONE
        (txn,) = answer.results_by_transaction
        assert txn.transactional_id == tid
        (result,) = txn.topic_results
    assert result.name == topic
    return {p.partition_index: p.partition_error_code for p in result.results_by_partition}


@exercises(ADD_PARTITIONS_TO_TXN)
def add_partitions_to_txn(session: Session, version: int) -> None:
    tid = session.name("add-partitions", version)
    producer = transactional_producer(session, tid)
    if version >= 4:
        assert add_partitions(session, tid, producer, session.topic, [0], version, verify_only=True) == {
            0: ErrorCode.INVALID_TXN_STATE}
    assert add_partitions(session, tid, producer, session.topic, [0, 9], version) == {
        0: ErrorCode.OPERATION_NOT_ATTEMPTED, 9: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION}
    assert add_partitions(session, tid, producer, session.topic, [0, 1], version) == {
        0: ErrorCode.NONE, 1: ErrorCode.NONE}
    if version >= 4:
        assert add_partitions(session, tid, producer, session.topic, [1], version, verify_only=True) == {
            1: ErrorCode.NONE}
    assert add_partitions(session, tid, (producer[0], producer[1] - 1), session.topic, [0], version) == {
        0: ErrorCode.PRODUCER_FENCED}


@exercises(ADD_OFFSETS_TO_TXN)
def add_offsets_to_txn(session: Session, version: int) -> None:
    tid = session.name("add-offsets", version)
    pid, epoch = transactional_producer(session, tid)
    body = {"transactional_id": tid, "producer_id": pid, "producer_epoch": epoch, "group_id": "g"}
    assert session.call(ADD_OFFSETS_TO_TXN, version, body).error_code == ErrorCode.NONE
    stale = {**body, "producer_epoch": epoch - 1}
    assert session.call(ADD_OFFSETS_TO_TXN, version, stale).error_code == ErrorCode.PRODUCER_FENCED
    unknown = {**body, "transactional_id": tid + "-unknown"}
    assert session.call(ADD_OFFSETS_TO_TXN, version, unknown).error_code == ErrorCode.INVALID_PRODUCER_ID_MAPPING


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@exercises(END_TXN)
def end_txn(session: Session, version: int) -> None:
    """A committed transactional batch becomes visible to read_committed fetches once its marker is written."""
    topic = session.name("end-txn", version)
    session.create_topic(topic)
    tid = session.name("end-txn", version)
    pid, epoch = transactional_producer(session, tid)
    body = {"transactional_id": tid, "producer_id": pid, "producer_epoch": epoch, "committed": True}
    assert session.call(END_TXN, version, body).error_code == ErrorCode.INVALID_TXN_STATE  # nothing open
    assert add_partitions(session, tid, (pid, epoch), topic, [0]) == {0: ErrorCode.NONE}
    batch = build_batch([RecordSpec(b"v")], base_timestamp=FIRST_TIMESTAMP, producer_id=pid, producer_epoch=epoch,
                        base_sequence=0, transactional=True)
    produced = session.call(PRODUCE, newest(PRODUCE), {**produce_body(topic, 0, batch), "transactional_id": tid})
    assert produced.responses[0].partition_responses[0].error_code == ErrorCode.NONE
    answer = session.call(END_TXN, version, body)
    assert answer.error_code == ErrorCode.NONE
    if version >= 5:
        assert (answer.producer_id, answer.producer_epoch) == (pid, epoch + 1)

    def committed_end() -> int:
        body = {"isolation_level": 1, "topics": [{"name": topic, "partitions": [
            {"partition_index": 0, "current_leader_epoch": -1, "timestamp": -1}]}]}
        return session.call(LIST_OFFSETS, newest(LIST_OFFSETS), body).topics[0].partitions[0].offset

    wait_for(lambda: committed_end() == 2, "the commit marker")  # the record and its marker


@exercises(TXN_OFFSET_COMMIT)
def txn_offset_commit(session: Session, version: int) -> None:
    tid = session.name("txn-offsets", version)
    group = session.name("txn-offsets", version)
    pid, epoch = transactional_producer(session, tid)
    body = {"transactional_id": tid, "group_id": group, "producer_id": pid, "producer_epoch": epoch,
            "generation_id": -1, "member_id": "", "group_instance_id": None, "topics": [
                {"name": session.topic, "partitions": [{"partition_index": 0, "committed_offset": 2,
                                                        "committed_leader_epoch": -1, "committed_metadata": "m"}]}]}
    if version < 5:  # v5 (transactions v2) adds the group to the transaction itself
        (topic,) = session.call(TXN_OFFSET_COMMIT, version, body).topics
        assert topic.partitions[0].error_code == ErrorCode.INVALID_TXN_STATE  # the group is not in the transaction
        session.call(ADD_OFFSETS_TO_TXN, newest(ADD_OFFSETS_TO_TXN),
                     {"transactional_id": tid, "producer_id": pid, "producer_epoch": epoch, "group_id": group})
    else:
        pid, epoch = transactional_producer(session, tid)  # a second init: the first epoch is stale now
        body = {**body, "producer_epoch": epoch}
        (topic,) = session.call(TXN_OFFSET_COMMIT, version, {**body, "producer_epoch": epoch - 1}).topics
        assert topic.partitions[0].error_code == ErrorCode.INVALID_PRODUCER_EPOCH
    (topic,) = session.call(TXN_OFFSET_COMMIT, version, body).topics
    assert (topic.name, topic.partitions[0].partition_index, topic.partitions[0].error_code) == (
        session.topic, 0, ErrorCode.NONE)
    assert committed(session, group)[0] == -1  # staged, not committed
    stable = session.call(OFFSET_FETCH, newest(OFFSET_FETCH), {"require_stable": True, "groups": [
        {"group_id": group, "topics": [{"name": session.topic, "partition_indexes": [0]}]}]})
    assert stable.groups[0].topics[0].partitions[0].error_code == ErrorCode.UNSTABLE_OFFSET_COMMIT  # KIP-447
    session.call(END_TXN, newest(END_TXN),
                 {"transactional_id": tid, "producer_id": pid, "producer_epoch": epoch, "committed": True})
    wait_for(lambda: committed(session, group) == (2, "m"), "the committed transaction's offsets")


@exercises(DESCRIBE_TRANSACTIONS)
def describe_transactions(session: Session, version: int) -> None:
    tid = session.name("describe-txn", version)
    pid, epoch = transactional_producer(session, tid)
    add_partitions(session, tid, (pid, epoch), session.topic, [1, 0])
    known, unknown = session.call(DESCRIBE_TRANSACTIONS, version, {"transactional_ids": [tid, tid + "-no"]}
                                  ).transaction_states
    assert (unknown.transactional_id, unknown.error_code) == (tid + "-no", ErrorCode.TRANSACTIONAL_ID_NOT_FOUND)
    assert (known.error_code, known.transaction_state, known.producer_id, known.producer_epoch) == (
        ErrorCode.NONE, "Ongoing", pid, epoch)
    assert known.transaction_timeout_ms == 60_000 and known.transaction_start_time_ms > 0
    assert [(t.topic, list(t.partitions)) for t in known.topics] == [(session.topic, [0, 1])]


@exercises(LIST_TRANSACTIONS)
def list_transactions(session: Session, version: int) -> None:
    tid = session.name("list-txn", version)
    pid, epoch = transactional_producer(session, tid)
    add_partitions(session, tid, (pid, epoch), session.topic, [0])
    body = {"state_filters": ["Ongoing", "Bogus"], "producer_id_filters": [pid], "duration_filter": 0}
    answer = session.call(LIST_TRANSACTIONS, version, body)
    assert (answer.error_code, list(answer.unknown_state_filters)) == (ErrorCode.NONE, ["Bogus"])
    assert [(t.transactional_id, t.producer_id, t.transaction_state) for t in answer.transaction_states] == [
        (tid, pid, "Ongoing")]
    empty = session.call(LIST_TRANSACTIONS, version, {**body, "state_filters": ["Empty"]})
    assert list(empty.transaction_states) == []


@exercises(GET_TELEMETRY_SUBSCRIPTIONS)
def get_telemetry_subscriptions(session: Session, version: int) -> None:
    first = session.call(GET_TELEMETRY_SUBSCRIPTIONS, version, {"client_instance_id": uuid.UUID(int=0)})
    assert first.error_code == ErrorCode.NONE and first.client_instance_id.int != 0
    assert first.requested_metrics == [] and first.push_interval_ms == 300_000  # no subscription matches
    assert first.accepted_compression_types == [4, 3, 1, 2] and first.telemetry_max_bytes == 1_048_576
    again = session.call(GET_TELEMETRY_SUBSCRIPTIONS, version, {"client_instance_id": first.client_instance_id})
    assert again.client_instance_id.int == 0 and again.subscription_id == first.subscription_id


@exercises(PUSH_TELEMETRY)
def push_telemetry(session: Session, version: int) -> None:
    given = session.call(GET_TELEMETRY_SUBSCRIPTIONS, 0, {"client_instance_id": uuid.UUID(int=0)})
    push = {"client_instance_id": given.client_instance_id, "subscription_id": given.subscription_id,
            "terminating": False, "compression_type": 0, "metrics": b""}
    assert session.call(PUSH_TELEMETRY, version, push).error_code == ErrorCode.NONE
    assert session.call(PUSH_TELEMETRY, version, push).error_code == ErrorCode.THROTTLING_QUOTA_EXCEEDED
    stale = {**push, "subscription_id": given.subscription_id + 1}
    assert session.call(PUSH_TELEMETRY, version, stale).error_code == ErrorCode.UNKNOWN_SUBSCRIPTION_ID
    assert session.call(PUSH_TELEMETRY, version, {**push, "terminating": True}).error_code == ErrorCode.NONE


@exercises(LIST_CLIENT_METRICS_RESOURCES)
def list_client_metrics_resources(session: Session, version: int) -> None:
    answer = session.call(LIST_CLIENT_METRICS_RESOURCES, version, {})
    assert answer.error_code == ErrorCode.NONE and answer.client_metrics_resources == []


def share_join(session: Session, group: str, *, earliest: bool = True) -> str:
    """Join a fresh share group as its only member (reading from the start); its member id."""
    if earliest:
        answer = session.call(INCREMENTAL_ALTER_CONFIGS, newest(INCREMENTAL_ALTER_CONFIGS), {"resources": [
            {"resource_type": GROUP_RESOURCE, "resource_name": group, "configs": [
                {"name": "share.auto.offset.reset", "config_operation": 0, "value": "earliest"}]}],
            "validate_only": False})
        assert answer.responses[0].error_code == ErrorCode.NONE, answer
    member_id = uuid.uuid4().hex
    answer = session.call(SHARE_GROUP_HEARTBEAT, newest(SHARE_GROUP_HEARTBEAT), {
        "group_id": group, "member_id": member_id, "member_epoch": 0, "subscribed_topic_names": [session.topic]})
    assert (answer.error_code, answer.member_id, answer.member_epoch) == (ErrorCode.NONE, member_id, 1), answer
    share_assigned(session, newest(SHARE_GROUP_HEARTBEAT), group, member_id, 1)
    return member_id


def share_assigned(session: Session, version: int, group: str, member_id: str, epoch: int) -> tuple[int, Any]:
    """Heartbeat until the member is assigned; its epoch and assignment then. As in Kafka, a newly subscribed
    topic's share state is initialized just after the joining heartbeat and assigned after that."""
    deadline = time.monotonic() + 10
    while True:
        answer = session.call(SHARE_GROUP_HEARTBEAT, version, {
            "group_id": group, "member_id": member_id, "member_epoch": epoch, "subscribed_topic_names": None})
        assert answer.error_code == ErrorCode.NONE, answer
        epoch = answer.member_epoch
        if answer.assignment is not None and answer.assignment.topic_partitions:
            return epoch, answer.assignment
        assert time.monotonic() < deadline, "the share assignment did not come"
        time.sleep(0.05)


def share_acquire(session: Session, group: str) -> str:
    """A member of a fresh share group that has acquired the SEEDED records; its member id."""
    member_id = share_join(session, group)
    answer = session.call(SHARE_FETCH, newest(SHARE_FETCH), share_fetch_body(session, group, member_id, 0))
    assert answer.responses[0].partitions[0].acquired_records[0].last_offset == SEEDED - 1, answer
    return member_id


def share_fetch_body(session: Session, group: str, member_id: str, epoch: int,
                     acks: list[tuple[int, int, list[int]]] = ()) -> dict[str, Any]:
    return {"group_id": group, "member_id": member_id, "share_session_epoch": epoch, "max_wait_ms": 0,
            "min_bytes": 1, "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500,
            "topics": [{"topic_id": session.topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": [
                {"first_offset": first, "last_offset": last, "acknowledge_types": types}
                for first, last, types in acks]}]}], "forgotten_topics_data": []}


def share_start_offset(session: Session, group: str) -> int | None:
    answer = session.call(DESCRIBE_SHARE_GROUP_OFFSETS, newest(DESCRIBE_SHARE_GROUP_OFFSETS),
                          {"groups": [{"group_id": group, "topics": None}]})
    (described,) = answer.groups
    assert described.error_code == ErrorCode.NONE, described
    starts = [p.start_offset for t in described.topics for p in t.partitions if t.topic_name == session.topic]
    return starts[0] if starts else None


@exercises(SHARE_GROUP_HEARTBEAT)
def share_group_heartbeat(session: Session, version: int) -> None:
    group = session.name("share-heartbeat", version)
    member_id = uuid.uuid4().hex
    join = {"group_id": group, "member_id": member_id, "member_epoch": 0, "subscribed_topic_names": [session.topic]}
    answer = session.call(SHARE_GROUP_HEARTBEAT, version, join)
    assert (answer.error_code, answer.member_epoch, answer.heartbeat_interval_ms) == (ErrorCode.NONE, 1, 5000)
    assert list(answer.assignment.topic_partitions) == []  # the topic's share state is not initialized yet
    epoch, assignment = share_assigned(session, version, group, member_id, 1)
    assert epoch == 2 and [(t.topic_id, list(t.partitions)) for t in assignment.topic_partitions] == [
        (session.topic_id, [0, 1])]
    again = session.call(SHARE_GROUP_HEARTBEAT, version, {**join, "member_epoch": 2, "subscribed_topic_names": None})
    assert (again.error_code, again.member_epoch, again.assignment) == (ErrorCode.NONE, 2, None)
    stale = session.call(SHARE_GROUP_HEARTBEAT, version, {**join, "member_epoch": 7})
    assert stale.error_code == ErrorCode.FENCED_MEMBER_EPOCH
    stranger = session.call(SHARE_GROUP_HEARTBEAT, version, {**join, "member_id": "nobody", "member_epoch": 1})
    assert stranger.error_code == ErrorCode.UNKNOWN_MEMBER_ID
    left = session.call(SHARE_GROUP_HEARTBEAT, version, {**join, "member_epoch": -1})
    assert (left.error_code, left.member_epoch) == (ErrorCode.NONE, -1)
    classic = session.name("share-heartbeat-classic", version)
    session.commit(classic, 1)
    refused = session.call(SHARE_GROUP_HEARTBEAT, version, {**join, "group_id": classic})
    assert refused.error_code == ErrorCode.GROUP_ID_NOT_FOUND


@exercises(SHARE_GROUP_DESCRIBE)
def share_group_describe(session: Session, version: int) -> None:
    group = session.name("share-describe", version)
    member_id = share_join(session, group, earliest=False)
    answer = session.call(SHARE_GROUP_DESCRIBE, version, {"group_ids": [group, "no-such-share-group"],
                                                          "include_authorized_operations": True})
    described, unknown = answer.groups
    assert (described.error_code, described.group_state, described.group_epoch, described.assignor_name) == (
        ErrorCode.NONE, "Stable", 2, "simple")  # joined, then its topic's share state initialized
    (member,) = described.members
    assert (member.member_id, member.member_epoch, list(member.subscribed_topic_names)) == (member_id, 2, [session.topic])
    assert [(t.topic_name, list(t.partitions)) for t in member.assignment.topic_partitions] == [(session.topic, [0, 1])]
    assert unknown.error_code == ErrorCode.GROUP_ID_NOT_FOUND


@exercises(SHARE_FETCH)
def share_fetch(session: Session, version: int) -> None:
    group = session.name("share-fetch", version)
    member_id = share_join(session, group)
    answer = session.call(SHARE_FETCH, version, share_fetch_body(session, group, member_id, 0))
    assert answer.error_code == ErrorCode.NONE and answer.acquisition_lock_timeout_ms == 30000
    (partition,) = answer.responses[0].partitions
    assert [(a.first_offset, a.last_offset, a.delivery_count) for a in partition.acquired_records] == [(0, SEEDED - 1, 1)]
    assert len(bytes(partition.records)) > 0
    acked = session.call(SHARE_FETCH, version, share_fetch_body(session, group, member_id, 1, [(0, SEEDED - 1, [1])]))
    assert [p.acknowledge_error_code for p in acked.responses[0].partitions] == [ErrorCode.NONE]
    wrong = session.call(SHARE_FETCH, version, share_fetch_body(session, group, member_id, 9))
    assert wrong.error_code == ErrorCode.INVALID_SHARE_SESSION_EPOCH
    early = session.call(SHARE_FETCH, version, share_fetch_body(session, group, member_id, 0, [(0, 0, [1])]))
    assert early.error_code == ErrorCode.INVALID_REQUEST
    assert share_start_offset(session, group) == SEEDED


@exercises(SHARE_ACKNOWLEDGE)
def share_acknowledge(session: Session, version: int) -> None:
    group = session.name("share-acknowledge", version)
    member_id = share_acquire(session, group)

    def acknowledge(epoch: int, acks: list[tuple[int, int, list[int]]]) -> Any:
        body = share_fetch_body(session, group, member_id, epoch, acks)
        return session.call(SHARE_ACKNOWLEDGE, version, {key: body[key] for key in (
            "group_id", "member_id", "share_session_epoch", "topics")})

    assert acknowledge(0, [(0, 0, [1])]).error_code == ErrorCode.INVALID_SHARE_SESSION_EPOCH
    answer = acknowledge(1, [(0, 0, [1]), (1, SEEDED - 1, [3])])
    assert answer.error_code == ErrorCode.NONE and [p.error_code for p in answer.responses[0].partitions] == [0]
    twice = acknowledge(2, [(0, 0, [1])])
    assert [p.error_code for p in twice.responses[0].partitions] == [ErrorCode.INVALID_RECORD_STATE]
    assert acknowledge(-1, []).error_code == ErrorCode.NONE
    assert acknowledge(3, []).error_code == ErrorCode.SHARE_SESSION_NOT_FOUND
    assert share_start_offset(session, group) == SEEDED


@exercises(DESCRIBE_SHARE_GROUP_OFFSETS)
def describe_share_group_offsets(session: Session, version: int) -> None:
    group = session.name("share-describe-offsets", version)
    share_acquire(session, group)
    answer = session.call(DESCRIBE_SHARE_GROUP_OFFSETS, version, {"groups": [
        {"group_id": group, "topics": [{"topic_name": session.topic, "partitions": [0, 1]}]},
        {"group_id": "no-such-share-group", "topics": None},
        {"group_id": "no-such-share-group", "topics": [{"topic_name": session.topic, "partitions": [0]}]}]})
    known, unknown, unknown_named = answer.groups
    assert [(p.partition_index, p.start_offset, p.error_code) for p in known.topics[0].partitions] == [
        (0, 0, ErrorCode.NONE), (1, -1, ErrorCode.NONE)]
    assert (unknown.error_code, unknown.topics) == (ErrorCode.NONE, [])
    assert [(p.start_offset, p.error_code) for p in unknown_named.topics[0].partitions] == [(-1, ErrorCode.NONE)]


@exercises(ALTER_SHARE_GROUP_OFFSETS)
def alter_share_group_offsets(session: Session, version: int) -> None:
    group = session.name("share-alter-offsets", version)
    body = {"group_id": group, "topics": [{"topic_name": session.topic, "partitions": [
        {"partition_index": 0, "start_offset": 2}]}, {"topic_name": "no-such-topic", "partitions": [
            {"partition_index": 0, "start_offset": 0}]}]}
    answer = session.call(ALTER_SHARE_GROUP_OFFSETS, version, body)
    assert answer.error_code == ErrorCode.NONE
    assert [p.error_code for t in answer.responses for p in t.partitions] == [
        ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]
    assert share_start_offset(session, group) == 2
    share_join(session, group, earliest=False)
    busy = session.call(ALTER_SHARE_GROUP_OFFSETS, version, body)
    assert busy.error_code == ErrorCode.NON_EMPTY_GROUP


@exercises(DELETE_SHARE_GROUP_OFFSETS)
def delete_share_group_offsets(session: Session, version: int) -> None:
    group = session.name("share-delete-offsets", version)
    session.call(ALTER_SHARE_GROUP_OFFSETS, newest(ALTER_SHARE_GROUP_OFFSETS), {"group_id": group, "topics": [
        {"topic_name": session.topic, "partitions": [{"partition_index": 0, "start_offset": 1}]}]})
    answer = session.call(DELETE_SHARE_GROUP_OFFSETS, version, {"group_id": group, "topics": [
        {"topic_name": session.topic}, {"topic_name": "no-such-topic"}]})
    assert answer.error_code == ErrorCode.NONE
    assert [r.error_code for r in answer.responses] == [ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION]
    assert share_start_offset(session, group) is None
    missing = session.call(DELETE_SHARE_GROUP_OFFSETS, version, {"group_id": "no-such-share-group", "topics": []})
    assert missing.error_code == ErrorCode.GROUP_ID_NOT_FOUND
    nameless = session.call(ALTER_SHARE_GROUP_OFFSETS, newest(ALTER_SHARE_GROUP_OFFSETS), {"group_id": "", "topics": []})
    assert nameless.error_code == ErrorCode.INVALID_GROUP_ID


def consumer_heartbeat_body(group: str, member_id: str, epoch: int, **fields: Any) -> dict[str, Any]:
    """A ConsumerGroupHeartbeat that changes nothing but ``fields`` (nulls mean "unchanged")."""
    return {"group_id": group, "member_id": member_id, "member_epoch": epoch, "instance_id": None,
            "rack_id": None, "rebalance_timeout_ms": -1, "subscribed_topic_names": None,
            "subscribed_topic_regex": None, "server_assignor": None, "topic_partitions": None, **fields}


def consumer_join(session: Session, group: str, version: int, member_id: str) -> Any:
    """Join a fresh KIP-848 group as its only member: epoch 1, both partitions of the shared topic."""
    joined = session.call(CONSUMER_GROUP_HEARTBEAT, version, consumer_heartbeat_body(
        group, member_id, 0, rebalance_timeout_ms=30_000, subscribed_topic_names=[session.topic],
        topic_partitions=[]))
    assert (joined.error_code, joined.member_epoch, joined.heartbeat_interval_ms) == (ErrorCode.NONE, 1, 5000), joined
    assert [(t.topic_id, list(t.partitions)) for t in joined.assignment.topic_partitions] == [
        (session.topic_id, [0, 1])]
    return joined


@exercises(CONSUMER_GROUP_HEARTBEAT)
def consumer_group_heartbeat(session: Session, version: int) -> None:
    """v0 lets the broker pick the member id; v1 (KIP-1082) wants the client's and adds the regex."""
    group = session.name("cg-heartbeat", version)
    joined = consumer_join(session, group, version, "" if version == 0 else "member-cov-1")
    member_id = joined.member_id
    assert member_id and (version == 0 or member_id == "member-cov-1")
    ahead = session.call(CONSUMER_GROUP_HEARTBEAT, version, consumer_heartbeat_body(group, member_id, 2))
    assert ahead.error_code == ErrorCode.FENCED_MEMBER_EPOCH
    steady = session.call(CONSUMER_GROUP_HEARTBEAT, version, consumer_heartbeat_body(group, member_id, 1))
    assert (steady.error_code, steady.member_epoch, steady.assignment) == (ErrorCode.NONE, 1, None)
    if version >= 1:
        bad = session.call(CONSUMER_GROUP_HEARTBEAT, version, consumer_heartbeat_body(
            group, member_id, 1, subscribed_topic_regex="(?=lookahead)"))
        assert bad.error_code == ErrorCode.INVALID_REGULAR_EXPRESSION
        nameless = session.call(CONSUMER_GROUP_HEARTBEAT, version, consumer_heartbeat_body(
            group, "", 0, rebalance_timeout_ms=1000, subscribed_topic_names=[], topic_partitions=[]))
        assert nameless.error_code == ErrorCode.INVALID_REQUEST
    left = session.call(CONSUMER_GROUP_HEARTBEAT, version, consumer_heartbeat_body(group, member_id, -1))
    assert (left.error_code, left.member_id, left.member_epoch) == (ErrorCode.NONE, member_id, -1)
    gone = session.call(CONSUMER_GROUP_HEARTBEAT, version, consumer_heartbeat_body(group, member_id, 1))
    assert gone.error_code == ErrorCode.UNKNOWN_MEMBER_ID


@exercises(CONSUMER_GROUP_DESCRIBE)
def consumer_group_describe(session: Session, version: int) -> None:
    group = session.name("cg-describe", version)
    joined = consumer_join(session, group, newest(CONSUMER_GROUP_HEARTBEAT), "member-cov-describe")
    classic = session.name("cg-describe-classic", version)
    session.join_and_sync(classic)
    answer = session.call(CONSUMER_GROUP_DESCRIBE, version, {
        "group_ids": [group, classic, "cov-no-such-group"], "include_authorized_operations": True})
    described, not_consumer, unknown = answer.groups
    assert (described.error_code, described.group_state, described.group_epoch, described.assignment_epoch,
            described.assignor_name) == (ErrorCode.NONE, "Stable", 1, 1, "uniform")
    (member,) = described.members
    assert (member.member_id, member.member_epoch, list(member.subscribed_topic_names)) == (
        joined.member_id, 1, [session.topic])
    if version >= 1:
        assert member.member_type == 1  # KIP-1099: a member of the consumer protocol
    for assigned in (member.assignment, member.target_assignment):
        assert [(t.topic_id, t.topic_name, list(t.partitions)) for t in assigned.topic_partitions] == [
            (session.topic_id, session.topic, [0, 1])]
    assert not_consumer.error_code == unknown.error_code == ErrorCode.GROUP_ID_NOT_FOUND


# --- the tests ------------------------------------------------------------------

@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    broker = BrokerProcess(tmp_path_factory.mktemp("coverage"), {"group.initial.rebalance.delay.ms": "0"})
    broker.start()
    try:
        live = Session(broker)
        yield live
        live.client.close()
        broker.stop()
    finally:
        broker.kill()


KAFKA_SPECS = Path(__file__).resolve().parents[1] / ".." / "shared" / "kafka-message-specs"


def test_each_range_is_its_spec_range_and_kafka_39s() -> None:
    """The one rule: a handler serves its spec's versions, every version Kafka 3.9 accepted."""
    specs = load_specs()
    for key, handler in REGISTRY.items():
        spec = specs[key]
        assert (handler.min_version, handler.max_version) == (spec.min_version, spec.max_version), spec.name
    if not KAFKA_SPECS.is_dir():
        pytest.skip(f"Kafka's message specs not found at {KAFKA_SPECS}")
    kafka_ranges = {}
    for path in KAFKA_SPECS.glob("*Request.json"):
        text = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                         if not line.lstrip().startswith("//"))
        raw = json.loads(text)
        kafka_ranges[raw["apiKey"]] = VersionRange.parse(raw["validVersions"])
    for key, handler in REGISTRY.items():
        if specs[key].name in LATER_THAN_REFERENCE:
            assert key not in kafka_ranges or kafka_ranges[key].high < handler.min_version, specs[key].name
            continue
        expected = kafka_ranges[key]
        expected = VersionRange(expected.low, SAME_BODY_LATER_VERSIONS.get(specs[key].name, expected.high))
        high = handler.max_version
        if specs[key].name in NEWER_THAN_REFERENCE:
            assert expected.high == NEWER_THAN_REFERENCE[specs[key].name] < high, specs[key].name
            high = expected.high
        assert VersionRange(handler.min_version, high) == expected, specs[key].name


def test_exercises_match_the_advertised_apis() -> None:
    missing = sorted(set(REGISTRY) - set(EXERCISES))
    assert not missing, f"advertised API keys no test exercises: {missing}"
    stale = sorted(set(EXERCISES) - set(REGISTRY))
    assert not stale, f"exercises for API keys the broker does not advertise: {stale}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("api_key", "version"), advertised_cases(),
                         ids=[f"api{key}-v{version}" for key, version in advertised_cases()])
def test_advertised_version_answers(session: Session, api_key: int, version: int) -> None:
    exercise = EXERCISES.get(api_key)
    if exercise is None:
        pytest.fail(f"API key {api_key} is advertised but has no exercise")
    exercise(session, version)
