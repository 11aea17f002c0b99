"""Transactions on three brokers (``serve --brokers 3``), RF 3, with confluent-kafka (librdkafka) unmodified.

The transaction coordinator of an id is the leader of its ``__transaction_state``
partition: other brokers answer NOT_COORDINATOR, and the coordinator moves when
that broker stops. Markers go to each partition's current leader and are
replicated, so read_committed readers on a new leader see the right LSO.
"""

from __future__ import annotations

import itertools
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from cluster_process import ClusterProcess, create
from compat_helpers import unique_topic, wait_until
from confluent_clients import ClientErrors, read_to_end
from kafkacompat.client import ApiKey, ClientError, Cluster, KafkaClient
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.tools.transactions import list_transactions

pytestmark = pytest.mark.timeout(180)
PARTITIONS = 3
TXN_OFFSET_COMMIT = 28


def transactional_producer(bootstrap: str, transactional_id: str) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                         "linger.ms": 5, "acks": "all"})
    producer.init_transactions(30)
    return producer


def run_transaction(producer: Producer, topic: str, values: list[bytes], *, commit: bool = True) -> None:
    producer.begin_transaction()
    for number, value in enumerate(values):
        producer.produce(topic, value=value, partition=number % PARTITIONS)
    producer.flush(30)
    if commit:
        producer.commit_transaction(60)
    else:
        producer.abort_transaction(60)


def values(read: list[tuple[int, int, bytes]]) -> list[bytes]:
    return sorted(value for _, _, value in read)


def broker_address(process: ClusterProcess, node_id: int) -> str:
    return process.bootstrap.split(",")[node_id - 1]


def transaction_coordinator(process: ClusterProcess, key: str, asking: int | None = None, key_type: int = 1) -> int:
    """FindCoordinator (a transactional id, or a group with key type 0) asked of broker `asking`
    (else any running one): the node id, or -1."""
    for node in [asking] if asking is not None else range(1, process.brokers + 1):
        try:
            with KafkaClient(broker_address(process, node), timeout_s=5) as client:
                answer = client.send(ApiKey.FIND_COORDINATOR, {"key": key, "key_type": key_type,
                                                              "coordinator_keys": [key]})
        except ClientError:  # a stopped broker
            continue
        found = answer.coordinators[0] if "coordinators" in answer else answer
        return found.node_id if found.error_code == ErrorCode.NONE else -1
    raise AssertionError("no broker answers FindCoordinator")


def transactional_id_on(process: ClusterProcess, node_id: int, prefix: str, key_type: int = 1) -> str:
    """A transactional id (or group id) that broker `node_id` coordinates: ids hash to partitions of
    __transaction_state (__consumer_offsets)."""
    return next(key for key in (f"{prefix}-{n}" for n in range(500))
                if transaction_coordinator(process, key, key_type=key_type) == node_id)


def describe_transaction(process: ClusterProcess, node_id: int, transactional_id: str) -> tuple[int, str]:
    """DescribeTransactions asked of broker `node_id`: the error code and the state."""
    with KafkaClient(broker_address(process, node_id), timeout_s=5) as client:
        (state,) = client.send(ApiKey.DESCRIBE_TRANSACTIONS, {"transactional_ids": [transactional_id]}).transaction_states
    return state.error_code, state.transaction_state


def held_partitions(process: ClusterProcess, topic: str) -> set[int]:
    """The partitions whose last stable offset (ListOffsets read_committed, at the leader) is below the
    high watermark: a transaction is open there (or its marker not written yet)."""
    with Cluster(process.bootstrap, timeout_s=5) as brokers:
        leaders = {p.partition_index: p.leader_id for p in brokers.topic(topic).partitions}
        ends = {}
        for (partition, leader), isolation in itertools.product(leaders.items(), (0, 1)):
            answer = brokers.node(leader).send(ApiKey.LIST_OFFSETS, {
                "replica_id": -1, "isolation_level": isolation,
                "topics": [{"name": topic, "partitions": [{"partition_index": partition, "timestamp": -1}]}]},
                lowest=2)
            ends[isolation, partition] = answer.topics[0].partitions[0].offset
    return {p for p in leaders if ends[1, p] < ends[0, p]}


def test_commit_and_abort_on_three_brokers_with_three_replicas(cluster) -> None:
    process = cluster()
    topic = unique_topic("ctxn")
    create(process.bootstrap, topic, partitions=PARTITIONS, replication_factor=3)
    transactional_id = f"tid-{topic}"
    producer = transactional_producer(process.bootstrap, transactional_id)
    committed = [b"c%03d" % n for n in range(60)]
    aborted = [b"a%03d" % n for n in range(30)]
    run_transaction(producer, topic, committed[:30])
    run_transaction(producer, topic, aborted, commit=False)
    run_transaction(producer, topic, committed[30:])

    assert values(read_to_end(process.live_bootstrap(), topic, [0, 1, 2], "read_committed")) == committed
    assert values(read_to_end(process.live_bootstrap(), topic, [0, 1, 2], "read_uncommitted")) == sorted(committed + aborted)
    coordinator = transaction_coordinator(process, transactional_id)
    for node in range(1, 4):  # every broker names the same coordinator; the others refuse the id
        assert transaction_coordinator(process, transactional_id, asking=node) == coordinator
        if node != coordinator:
            assert describe_transaction(process, node, transactional_id)[0] == ErrorCode.NOT_COORDINATOR
    assert describe_transaction(process, coordinator, transactional_id) == (ErrorCode.NONE, "CompleteCommit")
    with Cluster(process.bootstrap) as brokers:  # kafkacompat transactions list: ListTransactions on every broker
        listed = [t for t in list_transactions(brokers, [], [], -1) if t["transactional_id"] == transactional_id]
    assert [(t["coordinator"], t["state"]) for t in listed] == [(coordinator, "CompleteCommit")]
    # The markers reached every replica: each follower alone would show the same committed records.
    for leader in {process.leader(topic, p) for p in range(PARTITIONS)}:
        if leader != coordinator:
            process.act(leader, "stop")
            break
    assert values(read_to_end(process.live_bootstrap(), topic, [0, 1, 2], "read_committed")) == committed


def test_the_producer_follows_its_coordinator_to_another_broker(cluster) -> None:
    process = cluster()
    topic = unique_topic("ctxn-coord")
    create(process.bootstrap, topic, partitions=PARTITIONS, replication_factor=3)
    transactional_id = transactional_id_on(process, 2, f"tid-{topic}")
    producer = transactional_producer(process.bootstrap, transactional_id)
    first, second = [b"f%03d" % n for n in range(30)], [b"s%03d" % n for n in range(30)]
    run_transaction(producer, topic, first)

    process.act(2, "stop")
    moved = transaction_coordinator(process, transactional_id)
    assert moved not in (-1, 2)
    other = next(node for node in (1, 3) if node != moved)
    assert describe_transaction(process, other, transactional_id)[0] == ErrorCode.NOT_COORDINATOR
    assert describe_transaction(process, moved, transactional_id) == (ErrorCode.NONE, "CompleteCommit")
    run_transaction(producer, topic, second)  # librdkafka re-finds the coordinator on NOT_COORDINATOR
    assert values(read_to_end(process.live_bootstrap(), topic, [0, 1, 2], "read_committed")) == sorted(first + second)
    assert held_partitions(process, topic) == set()


def test_a_partition_leader_stopped_mid_transaction_gets_its_marker_on_the_new_leader(cluster) -> None:
    process = cluster()
    topic = unique_topic("ctxn-leader")
    create(process.bootstrap, topic, partitions=PARTITIONS, replication_factor=3)
    transactional_id = transactional_id_on(process, 1, f"tid-{topic}")
    victim = next(process.leader(topic, p) for p in range(PARTITIONS) if process.leader(topic, p) != 1)
    producer = transactional_producer(process.bootstrap, transactional_id)
    before, after = [b"b%03d" % n for n in range(30)], [b"a%03d" % n for n in range(30)]
    producer.begin_transaction()
    for number, value in enumerate(before):
        producer.produce(topic, value=value, partition=number % PARTITIONS)
    producer.flush(30)
    led = [p for p in range(PARTITIONS) if process.leader(topic, p) == victim]
    process.act(victim, "stop")
    assert all(process.leader(topic, p) not in (-1, victim) for p in led)
    # The same transaction goes on at the new leaders: the producer's sequences and its open
    # transaction were replicated with the data (no OUT_OF_ORDER_SEQUENCE, no INVALID_TXN_STATE).
    for number, value in enumerate(after):
        producer.produce(topic, value=value, partition=number % PARTITIONS)
    producer.flush(30)
    assert held_partitions(process, topic) == {0, 1, 2}  # the new leaders too hold readers at the LSO
    producer.commit_transaction(60)

    assert values(read_to_end(process.live_bootstrap(), topic, [0, 1, 2], "read_committed")) == sorted(before + after)
    assert held_partitions(process, topic) == set()
    process.act(victim, "start")  # it rejoins, replicates the marker, and reads the same
    wait_until(lambda: all(len(process.partition(topic, p)["isr"]) == 3 for p in range(PARTITIONS)), 30,
               "the stopped leader back in every ISR")
    run_transaction(producer, topic, [b"z"])
    assert values(read_to_end(process.live_bootstrap(), topic, [0, 1, 2], "read_committed")) == sorted(before + after + [b"z"])


def test_a_decided_transaction_is_completed_by_the_next_coordinator_once_its_partition_has_a_leader(cluster) -> None:
    """EndTxn while a partition is offline: the markers are retried; the coordinator then moves and
    the new one writes them once the partition's only replica is back (PrepareCommit survives)."""
    process = cluster()
    topic = unique_topic("ctxn-offline")
    replicated = unique_topic("ctxn-replicated")
    create(process.bootstrap, replicated, partitions=1, replication_factor=3)
    admin = AdminClient({"bootstrap.servers": process.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replica_assignment=[[2]])])[topic].result(timeout=30)
    transactional_id = transactional_id_on(process, 1, f"tid-{topic}")
    producer = transactional_producer(process.bootstrap, transactional_id)
    producer.begin_transaction()
    producer.produce(topic, value=b"held", partition=0)
    producer.produce(replicated, value=b"held-too", partition=0)
    producer.flush(30)
    process.act(2, "stop")  # the topic's only replica: offline, its marker cannot be written
    assert process.leader(topic, 0) == -1
    producer.commit_transaction(60)  # decided (PrepareCommit); the markers wait for a leader
    assert held_partitions(process, replicated) == {0}  # all or none: held here too

    process.act(1, "stop")  # the coordinator goes too; the transaction moves, still PrepareCommit
    assert transaction_coordinator(process, transactional_id) == 3
    process.act(2, "start")
    wait_until(lambda: process.leader(topic, 0) == 2, 30, "the topic's replica back as its leader")
    wait_until(lambda: held_partitions(process, replicated) == set(), 30, "the markers written")
    assert values(read_to_end(process.live_bootstrap(), replicated, [0], "read_committed")) == [b"held-too"]
    assert values(read_to_end(process.live_bootstrap(), topic, [0], "read_committed")) == [b"held"]


def test_consume_transform_produce_commits_offsets_at_the_group_coordinator(cluster) -> None:
    """AddOffsetsToTxn goes to the transaction's coordinator, TxnOffsetCommit to the group's, another broker."""
    process = cluster()
    source, sink = unique_topic("ctxn-in"), unique_topic("ctxn-out")
    create(process.bootstrap, source, partitions=1)
    create(process.bootstrap, sink, partitions=1)
    feeder = Producer({"bootstrap.servers": process.bootstrap, "acks": "all"})
    for n in range(10):
        feeder.produce(source, value=b"%d" % n)
    feeder.flush(10)
    group = transactional_id_on(process, 2, f"group-{source}", key_type=0)
    transactional_id = transactional_id_on(process, 3, f"tid-{source}")
    errors = ClientErrors()
    consumer = Consumer({"bootstrap.servers": process.bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed", "error_cb": errors})
    consumer.subscribe([source])
    producer = transactional_producer(process.bootstrap, transactional_id)
    try:
        producer.begin_transaction()
        taken = []
        deadline = time.monotonic() + 30
        while len(taken) < 10:
            assert time.monotonic() < deadline, f"consumed {len(taken)} of 10"
            taken.extend(m for m in consumer.consume(num_messages=10 - len(taken), timeout=0.5) if m.error() is None)
        for message in taken:
            producer.produce(sink, value=b"out-" + message.value())
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        assert consumer.committed([TopicPartition(source, 0)], timeout=10)[0].offset == 10
    finally:
        consumer.close()
    errors.assert_none("consumer")
    assert values(read_to_end(process.bootstrap, sink, [0], "read_committed")) == sorted(
        b"out-%d" % n for n in range(10))
    with KafkaClient(broker_address(process, 3), timeout_s=5) as client:  # the transaction's, not the group's
        answer = client.send(TXN_OFFSET_COMMIT, {
            "transactional_id": transactional_id, "group_id": group, "producer_id": 0, "producer_epoch": 0,
            "generation_id": -1, "member_id": "", "group_instance_id": None,
            "topics": [{"name": source, "partitions": [{"partition_index": 0, "committed_offset": 10,
                                                        "committed_leader_epoch": -1, "committed_metadata": ""}]}]})
    assert answer.topics[0].partitions[0].error_code == ErrorCode.NOT_COORDINATOR
