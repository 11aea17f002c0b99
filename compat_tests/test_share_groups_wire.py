"""Share groups over raw requests, for what the ShareConsumer does not expose, and beside classic groups.

Requests are built by kafkacompat's own client (kafkacompat/client.py); the
golden frames of test_share_golden.py show the same codec speaks
librdkafka's wire form of these APIs.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from typing import Any

import pytest

from compat_helpers import REPO_ROOT, wait_until
from kafkacompat.client import KafkaClient
from kafkacompat.protocol.errors import ErrorCode
from tests.log.batch_builder import RecordSpec, build_batch

PRODUCE, OFFSET_COMMIT, DESCRIBE_GROUPS, LIST_GROUPS, CREATE_TOPICS, DELETE_GROUPS = 0, 8, 15, 16, 19, 42
INCREMENTAL_ALTER_CONFIGS, METADATA, UPDATE_FEATURES = 44, 3, 57
HEARTBEAT, SHARE_DESCRIBE, SHARE_FETCH, SHARE_ACKNOWLEDGE, DESCRIBE_OFFSETS = 76, 77, 78, 79, 90
ACCEPT, RELEASE = 1, 2


def produce(client: KafkaClient, topic: str, values: list[bytes]) -> None:
    """One batch of ``values`` into partition 0."""
    batch = build_batch([RecordSpec(value) for value in values])
    answer = client.request(PRODUCE, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 10_000,
                                         "topic_data": [{"name": topic, "partition_data": [
                                             {"index": 0, "records": batch}]}]})
    assert answer.responses[0].partition_responses[0].error_code == ErrorCode.NONE


class Share:
    """One connection, a topic of one partition, and helpers for share-group requests."""

    def __init__(self, client: KafkaClient, batches: int = 0) -> None:
        self.client = client
        self.topic = f"share-wire-{uuid.uuid4().hex[:8]}"
        answer = client.request(CREATE_TOPICS, 7, {"topics": [
            {"name": self.topic, "num_partitions": 1, "replication_factor": 1}], "timeout_ms": 10_000})
        assert answer.topics[0].error_code == ErrorCode.NONE
        self.topic_id = client.request(METADATA, 12, {"topics": [{"name": self.topic}]}).topics[0].topic_id
        for n in range(batches):
            self.produce([b"r%d" % n])

    @classmethod
    def existing(cls, client: KafkaClient, other: "Share") -> "Share":
        """Helpers on another connection (or after a restart) for ``other``'s topic."""
        share = cls.__new__(cls)
        share.client, share.topic, share.topic_id = client, other.topic, other.topic_id
        return share

    def produce(self, values: list[bytes]) -> None:
        produce(self.client, self.topic, values)

    def earliest(self, group: str) -> None:
        answer = self.client.request(INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [
            {"resource_type": 32, "resource_name": group, "configs": [
                {"name": "share.auto.offset.reset", "config_operation": 0, "value": "earliest"}]}],
            "validate_only": False})
        assert answer.responses[0].error_code == ErrorCode.NONE

    def heartbeat(self, group: str, member_id: str, epoch: int, topics: list[str] | None = None) -> Any:
        return self.client.request(HEARTBEAT, 1, {"group_id": group, "member_id": member_id, "member_epoch": epoch,
                                                  "subscribed_topic_names": topics})

    def join(self, group: str) -> str:
        member_id = uuid.uuid4().hex
        assert self.heartbeat(group, member_id, 0, [self.topic]).error_code == ErrorCode.NONE
        return member_id

    def wait_assigned(self, group: str, member_id: str, epoch: int = 1) -> int:
        """Heartbeat from the member epoch its join gave until it is assigned; its epoch then. As Kafka does,
        the broker initializes a newly subscribed topic's share state just after the joining heartbeat, and
        assigns its partitions after that."""

        def assigned() -> bool:
            nonlocal epoch
            answer = self.heartbeat(group, member_id, epoch)
            assert answer.error_code == ErrorCode.NONE
            epoch = answer.member_epoch
            return bool(answer.assignment and answer.assignment.topic_partitions)

        wait_until(assigned, 10, "the member's share assignment")
        return epoch

    def fetch(self, group: str, member_id: str, epoch: int, *, acks=(), max_records: int = 500,
              max_wait_ms: int = 0) -> Any:
        return self.client.request(SHARE_FETCH, 1, {
            "group_id": group, "member_id": member_id, "share_session_epoch": epoch, "max_wait_ms": max_wait_ms,
            "min_bytes": 1, "max_bytes": 1 << 20, "max_records": max_records, "batch_size": max_records,
            "topics": [{"topic_id": self.topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": [
                {"first_offset": f, "last_offset": last, "acknowledge_types": t} for f, last, t in acks]}]}],
            "forgotten_topics_data": []})


def acquired(answer: Any) -> list[tuple[int, int, int]]:
    assert answer.error_code == ErrorCode.NONE, answer
    return [(a.first_offset, a.last_offset, a.delivery_count)
            for t in answer.responses for p in t.partitions for a in p.acquired_records]


@pytest.fixture
def share(broker):
    with KafkaClient(broker.bootstrap) as client:
        yield Share(client, batches=10)


def test_two_members_acquire_disjoint_batches_and_only_the_holder_may_acknowledge(share) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    share.earliest(group)
    a, b = share.join(group), share.join(group)
    first = acquired(share.fetch(group, a, 0, max_records=4))
    second = acquired(share.fetch(group, b, 0, max_records=100))
    assert (first, second) == ([(0, 3, 1)], [(4, 9, 1)])
    refused = share.fetch(group, b, 1, acks=[(0, 3, [ACCEPT])])
    assert [p.acknowledge_error_code for p in refused.responses[0].partitions] == [ErrorCode.INVALID_RECORD_STATE]
    # a leaves and closes its share session: what it holds is released, with its delivery count kept.
    assert share.heartbeat(group, a, -1).member_epoch == -1
    closing = share.client.request(SHARE_ACKNOWLEDGE, 1, {
        "group_id": group, "member_id": a, "share_session_epoch": -1, "topics": []})
    assert closing.error_code == ErrorCode.NONE
    assert acquired(share.fetch(group, b, 2)) == [(0, 3, 2)]


def test_a_share_fetch_waits_for_records_and_wakes_when_some_are_produced(broker, share) -> None:
    group = f"g-{uuid.uuid4().hex[:8]}"
    member = share.join(group)  # latest: only records produced from now on
    assert acquired(share.fetch(group, member, 0)) == []
    with KafkaClient(broker.bootstrap) as other:
        late = threading.Timer(0.5, produce, args=(other, share.topic, [b"late"]))
        late.start()
        started = time.monotonic()
        answer = share.fetch(group, member, 1, max_wait_ms=8000)
        waited = time.monotonic() - started
        late.join()
    assert acquired(answer) == [(10, 10, 1)]
    assert 0.4 <= waited < 5, waited


def test_share_groups_list_beside_classic_groups_describe_as_dead_and_delete_when_empty(share) -> None:
    client = share.client
    shared, classic = f"sg-{uuid.uuid4().hex[:8]}", f"cg-{uuid.uuid4().hex[:8]}"
    member = share.join(shared)
    commit = client.request(OFFSET_COMMIT, 8, {"group_id": classic, "generation_id_or_member_epoch": -1,
                                               "member_id": "", "group_instance_id": None, "topics": [
                                                   {"name": share.topic, "partitions": [
                                                       {"partition_index": 0, "committed_offset": 1}]}]})
    assert commit.topics[0].partitions[0].error_code == ErrorCode.NONE

    def listed(version: int, **filters: list[str]) -> dict[str, tuple]:
        body = {"states_filter": filters.get("states", []), "types_filter": filters.get("types", [])}
        return {g.group_id: (g.protocol_type, g.get("group_state"), g.get("group_type"))
                for g in client.request(LIST_GROUPS, version, body).groups if g.group_id in (shared, classic)}

    assert listed(5) == {shared: ("share", "Stable", "share"), classic: ("", "Empty", "classic")}
    assert listed(5, types=["share"]) == {shared: ("share", "Stable", "share")}
    assert listed(5, types=["classic"], states=["Empty"]) == {classic: ("", "Empty", "classic")}
    assert listed(2) == {shared: ("share", "", ""), classic: ("", "", "")}  # v2 has no state or type
    (described,) = client.request(DESCRIBE_GROUPS, 5, {"groups": [shared], "include_authorized_operations": False}).groups
    assert (described.error_code, described.group_state, described.protocol_type) == (ErrorCode.NONE, "Dead", "")
    # The ids are one namespace: a share group takes no commits, a classic one no share members.
    refused = client.request(OFFSET_COMMIT, 8, {"group_id": shared, "generation_id_or_member_epoch": -1,
                                                "member_id": "", "group_instance_id": None, "topics": [
                                                    {"name": share.topic, "partitions": [
                                                        {"partition_index": 0, "committed_offset": 1}]}]})
    assert refused.topics[0].partitions[0].error_code == ErrorCode.GROUP_ID_NOT_FOUND
    assert share.heartbeat(classic, uuid.uuid4().hex, 0, [share.topic]).error_code == ErrorCode.GROUP_ID_NOT_FOUND

    def delete(group: str) -> int:
        return client.request(DELETE_GROUPS, 2, {"groups_names": [group]}).results[0].error_code

    assert delete(shared) == ErrorCode.NON_EMPTY_GROUP
    share.heartbeat(shared, member, -1)
    assert listed(5, types=["share"]) == {shared: ("share", "Empty", "share")}
    assert delete(shared) == ErrorCode.NONE
    assert delete(shared) == ErrorCode.GROUP_ID_NOT_FOUND
    assert listed(5, types=["share"]) == {}
    gone = client.request(SHARE_DESCRIBE, 1, {"group_ids": [shared, classic], "include_authorized_operations": False})
    assert [(g.error_code, g.error_message) for g in gone.groups] == [
        (ErrorCode.GROUP_ID_NOT_FOUND, f"Group {shared} not found."),
        (ErrorCode.GROUP_ID_NOT_FOUND, f"Group {classic} is not a share group.")]


def test_the_groups_cli_lists_and_describes_a_share_group(broker, share) -> None:
    group = f"sg-{uuid.uuid4().hex[:8]}"
    share.earliest(group)
    member = share.join(group)
    share.wait_assigned(group, member)
    share.fetch(group, member, 0, max_records=4)
    share.fetch(group, member, 1, acks=[(0, 3, [ACCEPT])], max_records=0)

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "kafkacompat", "groups", "--bootstrap-server", broker.bootstrap,
                               *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert any(line.split()[:3] == [group, "Stable", "share"] for line in cli("list").splitlines())
    described = cli("describe", group)
    assert f"GROUP {group}  STATE Stable  ASSIGNOR simple  TYPE share" in described
    assert any(member in line and f"{share.topic}-0" in line for line in described.splitlines())
    (row,) = [line.split() for line in described.splitlines() if line.startswith(share.topic)]
    assert row == [share.topic, "0", "4", "10", "6"]  # start offset 4, log end 10, 6 records to go


def test_share_version_0_turns_share_groups_off(broker_factory) -> None:
    process = broker_factory()
    with KafkaClient(process.bootstrap) as client:
        share = Share(client)
        answer = client.request(UPDATE_FEATURES, 1, {"timeout_ms": 10_000, "validate_only": False, "feature_updates": [
            {"feature": "share.version", "max_version_level": 0, "upgrade_type": 2}]})
        assert answer.error_code == ErrorCode.NONE
        refused = share.heartbeat("g", uuid.uuid4().hex, 0, [share.topic])
        assert refused.error_code == ErrorCode.UNSUPPORTED_VERSION
        assert share.fetch("g", "m", 0).error_code == ErrorCode.UNSUPPORTED_VERSION
