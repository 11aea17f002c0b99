"""Share groups (KIP-932) in a 3-broker cluster: confluent-kafka's ShareConsumer and raw requests.

The share group's coordinator is placed like a consumer group's (the leader
of its ``__consumer_offsets`` partition); ShareFetch and ShareAcknowledge go
to each partition's leader. Members keep consuming when a partition's
leader stops (records acknowledged before are not delivered again) and when
the group's coordinator stops (they find the new one).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

from cluster_process import ClusterProcess, create
from compat_helpers import wait_until
from kafkacompat.client import Cluster
from kafkacompat.protocol.errors import ErrorCode

ck = pytest.importorskip("confluent_kafka")
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource  # noqa: E402

pytestmark = pytest.mark.timeout(240)

PRODUCE, METADATA, LIST_GROUPS, INCREMENTAL_ALTER_CONFIGS = 0, 3, 16, 44
SHARE_HEARTBEAT, SHARE_DESCRIBE, SHARE_FETCH, SHARE_ACKNOWLEDGE, DESCRIBE_SHARE_OFFSETS = 76, 77, 78, 79, 90
ACCEPT = 1
PARTITIONS = 3
SHARE_CONFIG = {
    "group.share.heartbeat.interval.ms": "500",
    "group.share.record.lock.duration.ms": "15000",
    "group.share.min.record.lock.duration.ms": "1000",
}

Delivery = tuple[int, int, int]  # partition, offset, delivery count


def _name(what: str) -> str:
    return f"share-{what}-{uuid.uuid4().hex[:8]}"


def _start(cluster: Any, records: int) -> tuple[ClusterProcess, str, str]:
    """A cluster, a group and its topic (see _prepare) holding records 0..records-1 (see _produce)."""
    process = cluster(**SHARE_CONFIG)
    group = _name("group")
    topic = _prepare(process.bootstrap, group)
    _produce(process.bootstrap, topic, range(records))
    return process, group, topic


def _prepare(bootstrap: str, group: str) -> str:
    """A new RF 3 topic of three partitions, led by brokers 1, 2 and 3, read by ``group`` from the start."""
    topic = _name("topic")
    create(bootstrap, topic, PARTITIONS, 3)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ConfigResource.Type.GROUP, group, incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(10)
    return topic


def _produce(bootstrap: str, topic: str, values: range) -> None:
    """Record ``n`` goes to partition ``n % 3`` with value ``v<n>``, a few records per batch."""
    producer = ck.Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all"})
    for n in values:
        producer.produce(topic, value=f"v{n}".encode(), partition=n % PARTITIONS)
        if n % 4 == 3:
            producer.flush(30)
    assert producer.flush(30) == 0


class Member(threading.Thread):
    """A ShareConsumer polling in its own thread, accepting every record explicitly after each poll.

    ``deliveries`` holds every (partition, offset, delivery count) it got;
    ``accepted`` the delivery count of each (partition, offset) whose
    acceptance the broker confirmed (commit_sync answered the partition
    without an error).
    """

    def __init__(self, bootstrap: str, group: str, topic: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.group, self.topic, self.stop = bootstrap, group, topic, stop
        self.deliveries: list[Delivery] = []
        self.values: dict[tuple[int, int], bytes] = {}
        self.accepted: dict[tuple[int, int], int] = {}
        self.failure: BaseException | None = None

    def run(self) -> None:
        consumer = ck.ShareConsumer({"bootstrap.servers": self.bootstrap, "group.id": self.group,
                                     "share.acknowledgement.mode": "explicit", "max.poll.records": 5})
        consumer.subscribe([self.topic])
        try:
            while not self.stop.is_set():
                polled = [m for m in consumer.poll(0.3) if m.error() is None]
                for m in polled:
                    self.deliveries.append((m.partition(), m.offset(), m.delivery_count()))
                    self.values[m.partition(), m.offset()] = m.value()
                    consumer.acknowledge(m, ck.AcknowledgeType.ACCEPT)
                if polled:
                    try:
                        results = consumer.commit_sync(10)
                    except ck.KafkaException:
                        continue  # nothing confirmed: the records may come back
                    confirmed = {tp.partition for tp, error in results.items() if error is None}
                    self.accepted.update({(m.partition(), m.offset()): m.delivery_count()
                                          for m in polled if m.partition() in confirmed})
                time.sleep(0.05)  # leave the other member its turn
        except BaseException as exc:  # reported by the test
            self.failure = exc
        finally:
            consumer.close()


def _run_members(bootstrap: str, group: str, topic: str, count: int, during: Any = None,
                 timeout_s: float = 90) -> list[Member]:
    """Two members read until every one of records 0..count-1 was delivered; ``during(members)`` runs
    once they are under way (a broker stop, more records)."""
    stop = threading.Event()
    members = [Member(bootstrap, group, topic, stop) for _ in range(2)]
    for member in members:
        member.start()

    def delivered() -> set[tuple[int, int]]:
        return {(p, o) for m in members for p, o, _ in list(m.deliveries)}

    try:
        if during is not None:
            wait_until(lambda: len(delivered()) >= 6, 60, "the first deliveries")
            during(members)
        wait_until(lambda: len(delivered()) >= count, timeout_s, f"all {count} records delivered")
        time.sleep(1)  # a redelivery due now would show
    finally:
        stop.set()
        for member in members:
            member.join(30)
    assert [m.failure for m in members] == [None, None]
    return members


def _check_each_attempt_went_to_one_member(members: list[Member], count: int) -> None:
    deliveries = sorted(d for m in members for d in m.deliveries)
    assert len(deliveries) == len(set(deliveries)), f"one delivery attempt went twice: {deliveries}"
    # record n is partition n % 3, offset n // 3 (one producer, partitions written in order)
    assert sorted({(p, o) for p, o, _ in deliveries}) == sorted((n % PARTITIONS, n // PARTITIONS)
                                                                 for n in range(count))
    for member in members:
        assert all(value == f"v{o * PARTITIONS + p}".encode() for (p, o), value in member.values.items())


def test_two_share_consumers_on_partitions_led_by_different_brokers_share_every_record(cluster) -> None:
    count = 60
    process, group, topic = _start(cluster, count)
    assert sorted(process.leader(topic, p) for p in range(PARTITIONS)) == [1, 2, 3]
    members = _run_members(process.bootstrap, group, topic, count)
    _check_each_attempt_went_to_one_member(members, count)
    assert all(m.deliveries for m in members), "both members got records"


def test_consumption_continues_on_the_new_leader_and_accepted_records_are_not_redelivered(cluster) -> None:
    count = 90
    process, group, topic = _start(cluster, count // 2)
    leader = process.leader(topic, 0)
    accepted_before: dict[tuple[int, int], int] = {}

    def stop_the_leader(members: list[Member]) -> None:
        wait_until(lambda: any(p == 0 for m in members for p, _ in list(m.accepted)), 30,
                   "records of partition 0 accepted")
        for member in members:
            accepted_before.update(dict(member.accepted))
        process.act(leader, "stop")
        wait_until(lambda: process.leader(topic, 0) not in (leader, -1), 20, "a new leader of partition 0")
        _produce(process.live_bootstrap(), topic, range(count // 2, count))

    members = _run_members(process.live_bootstrap(), group, topic, count, during=stop_the_leader)
    _check_each_attempt_went_to_one_member(members, count)
    assert any(p == 0 for p, _ in accepted_before)
    accepted = {key: n for m in members for key, n in m.accepted.items()}
    assert accepted.keys() >= accepted_before.keys()
    # A record whose acceptance the broker confirmed is never delivered again, before or after the move.
    redelivered = [(p, o, n) for m in members for p, o, n in m.deliveries if n > accepted.get((p, o), n)]
    assert redelivered == []


def _coordinator_id(bootstrap: str, group: str) -> int:
    """The node FindCoordinator (key type 0, as for a consumer group) names for ``group``."""
    with Cluster(bootstrap) as cluster:
        client = cluster.bootstrap
        version = client.version(10)
        answer = client.request(10, version, {"key": group, "key_type": 0, "coordinator_keys": [group]})
        found = answer.coordinators[0] if version >= 4 else answer
        assert found.error_code == ErrorCode.NONE, found
        return found.node_id


def _describe(cluster: Cluster, node: int, group: str) -> Any:
    return cluster.node(node).request(SHARE_DESCRIBE, 1, {"group_ids": [group],
                                                          "include_authorized_operations": False}).groups[0]


def test_members_continue_after_the_share_group_coordinator_stops(cluster) -> None:
    count = 60
    process, group, topic = _start(cluster, count // 2)
    moved: list[tuple[int, int]] = []

    def stop_the_coordinator(members: list[Member]) -> None:
        old = _coordinator_id(process.bootstrap, group)
        process.act(old, "stop")
        new = wait_until(lambda: (n := _coordinator_id(process.live_bootstrap(), group)) != old and n, 20,
                         "a new coordinator")
        moved.append((old, new))
        _produce(process.live_bootstrap(), topic, range(count // 2, count))

    members = _run_members(process.live_bootstrap(), group, topic, count, during=stop_the_coordinator)
    _check_each_attempt_went_to_one_member(members, count)
    (old, new), = moved
    with Cluster(process.live_bootstrap()) as cluster_client:
        described = _describe(cluster_client, new, group)
    # The members' leaving heartbeats (sent as they closed) reached the new coordinator: the group,
    # its epochs kept, is empty there.
    assert (described.error_code, described.group_state, described.members) == (ErrorCode.NONE, "Empty", [])
    assert described.group_epoch >= 3  # two joins, then two leaves


def test_share_requests_are_answered_by_the_coordinator_and_the_partition_leader_only(cluster) -> None:
    """Raw requests for what the ShareConsumer hides: NOT_COORDINATOR, NOT_LEADER_OR_FOLLOWER with the
    leader's endpoint, and a leader move that gives unaccepted acquired records back counted."""
    process, group, topic = _start(cluster, 12)  # four records in each partition
    coordinator = _coordinator_id(process.bootstrap, group)
    partition = next(p for p in range(PARTITIONS) if process.leader(topic, p) != coordinator)
    leader = process.leader(topic, partition)
    elsewhere = next(n for n in (1, 2, 3) if n not in (leader, coordinator))
    member_id = uuid.uuid4().hex
    with Cluster(process.bootstrap) as cluster_client:
        topic_id = cluster_client.metadata([topic]).topics[0].topic_id
        brokers = dict(cluster_client.brokers)

        def heartbeat(node: int) -> Any:
            return cluster_client.node(node).request(SHARE_HEARTBEAT, 1, {
                "group_id": group, "member_id": member_id, "member_epoch": 0, "subscribed_topic_names": [topic]})

        def fetch(node: int, epoch: int, acks: list[tuple[int, int]] = ()) -> Any:
            return cluster_client.node(node).request(SHARE_FETCH, 1, {
                "group_id": group, "member_id": member_id, "share_session_epoch": epoch, "max_wait_ms": 0,
                "min_bytes": 1, "max_bytes": 1 << 20, "max_records": 100, "batch_size": 100,
                "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": partition,
                                                                  "acknowledgement_batches": [
                    {"first_offset": f, "last_offset": last, "acknowledge_types": [ACCEPT]} for f, last in acks]}]}],
                "forgotten_topics_data": []})

        def only_partition(answer: Any) -> Any:
            assert answer.error_code == ErrorCode.NONE, answer
            (found,), = [t.partitions for t in answer.responses]
            return found

        for node in (leader, elsewhere):
            assert heartbeat(node).error_code == ErrorCode.NOT_COORDINATOR
            assert _describe(cluster_client, node, group).error_code == ErrorCode.NOT_COORDINATOR
        joined = heartbeat(coordinator)
        assert joined.error_code == ErrorCode.NONE and joined.member_epoch == 1

        refused = fetch(elsewhere, 0)
        answer = only_partition(refused)
        assert (answer.error_code, answer.current_leader.leader_id, answer.acquired_records) == (
            ErrorCode.NOT_LEADER_OR_FOLLOWER, leader, [])
        assert [(e.node_id, f"{e.host}:{e.port}") for e in refused.node_endpoints] == [(leader, brokers[leader])]

        answer = only_partition(fetch(leader, 0))
        assert (answer.error_code, [(a.first_offset, a.last_offset, a.delivery_count)
                                    for a in answer.acquired_records]) == (ErrorCode.NONE, [(0, 3, 1)])
        # Accepting at a broker that does not lead the partition applies nothing.
        answer = only_partition(fetch(elsewhere, 1, [(0, 0)]))
        assert (answer.error_code, answer.acknowledge_error_code) == (ErrorCode.NOT_LEADER_OR_FOLLOWER,) * 2
        acknowledged = cluster_client.node(elsewhere).request(SHARE_ACKNOWLEDGE, 1, {
            "group_id": group, "member_id": member_id, "share_session_epoch": 2, "topics": [
                {"topic_id": topic_id, "partitions": [{"partition_index": partition, "acknowledgement_batches": [
                    {"first_offset": 0, "last_offset": 0, "acknowledge_types": [ACCEPT]}]}]}]})
        assert only_partition(acknowledged).error_code == ErrorCode.NOT_LEADER_OR_FOLLOWER
        assert [e.node_id for e in acknowledged.node_endpoints] == [leader]
        answer = only_partition(fetch(leader, 1, [(0, 1)]))  # the leader accepts records 0 and 1
        assert (answer.acknowledge_error_code, answer.acquired_records) == (ErrorCode.NONE, [])

        listed = {node: [g.group_id for g in cluster_client.node(node).request(LIST_GROUPS, 5, {
            "states_filter": [], "types_filter": ["share"]}).groups] for node in (1, 2, 3)}
        assert {node: group in groups for node, groups in listed.items()} == {
            n: n == coordinator for n in (1, 2, 3)}

    # The leader stops with records 2 and 3 still acquired: the new leader gives them out again, counted.
    process.act(leader, "stop")
    new_leader = wait_until(lambda: (n := process.leader(topic, partition)) not in (leader, -1) and n, 20,
                            "a new leader")
    with Cluster(process.live_bootstrap()) as cluster_client:
        answer = cluster_client.node(new_leader).request(SHARE_FETCH, 1, {
            "group_id": group, "member_id": member_id, "share_session_epoch": 0, "max_wait_ms": 2000,
            "min_bytes": 1, "max_bytes": 1 << 20, "max_records": 100, "batch_size": 100,
            "topics": [{"topic_id": topic_id, "partitions": [{"partition_index": partition,
                                                              "acknowledgement_batches": []}]}],
            "forgotten_topics_data": []})
        assert [(a.first_offset, a.last_offset, a.delivery_count)
                for t in answer.responses for p in t.partitions for a in p.acquired_records] == [(2, 3, 2)]
        offsets = cluster_client.node(coordinator).request(DESCRIBE_SHARE_OFFSETS, 0, {"groups": [
            {"group_id": group, "topics": [{"topic_name": topic, "partitions": [partition]}]}]})
        assert offsets.groups[0].topics[0].partitions[0].start_offset == 2
