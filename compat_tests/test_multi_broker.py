"""Three brokers in one process (``serve --brokers 3``), replicating, failing over, with stock clients.

Each test starts its own cluster process and drives its brokers (stop, kill,
start, pause, isolate) through the HTTP admin API, as ``kafkacompat cluster``
does; what the clients see is checked with the clients themselves.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter, defaultdict

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from cluster_process import ClusterProcess, create
from compat_helpers import REPO_ROOT, unique_topic, wait_until
from raw_wire import RawConnection, produce_v9_body, read_produce_v9, record_batch
from recording_proxy import KAFKAJS_DIR

pytestmark = pytest.mark.timeout(180)

UNKNOWN_TOPIC_OR_PARTITION = 3
NOT_LEADER_OR_FOLLOWER = 6
PRODUCE = 0


def read_all(bootstrap: str, topic: str, expected: int, timeout_s: float = 60) -> dict[int, list[bytes]]:
    """Every record's value per partition, in offset order, read with a group-less consumer from the start."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("reader"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    found: dict[int, list[tuple[int, bytes]]] = defaultdict(list)
    deadline = time.monotonic() + timeout_s
    try:
        while sum(map(len, found.values())) < expected and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                found[message.partition()].append((message.offset(), message.value()))
        time.sleep(1)  # anything beyond the expected count (a duplicate) shows up too
        while (message := consumer.poll(0.5)) is not None:
            if message.error() is None:
                found[message.partition()].append((message.offset(), message.value()))
    finally:
        consumer.close()
    return {partition: [value for _, value in sorted(records)] for partition, records in found.items()}


def test_metadata_reports_three_brokers_replicas_and_isr(cluster) -> None:
    process = cluster()
    topic = unique_topic("meta")
    create(process.bootstrap, topic)
    metadata = AdminClient({"bootstrap.servers": process.bootstrap}).list_topics(topic, timeout=10)
    assert sorted(metadata.brokers) == [1, 2, 3]
    assert metadata.controller_id == 1
    partitions = metadata.topics[topic].partitions
    assert sorted(p.leader for p in partitions.values()) == [1, 2, 3]  # leadership spread round-robin
    for partition in partitions.values():
        assert sorted(partition.replicas) == [1, 2, 3] and sorted(partition.isrs) == [1, 2, 3]
        assert partition.replicas[0] == partition.leader


@pytest.mark.parametrize("recreated", [False, True])
def test_records_sent_to_a_new_topic_at_once_keep_every_follower_in_the_isr(cluster, recreated) -> None:
    """A new partition's followers have not fetched yet when the first records arrive; they are in sync
    from the topic's creation, not behind since the epoch (nor since a deleted namesake's time)."""
    process = cluster()
    topic = unique_topic("fresh")
    admin = AdminClient({"bootstrap.servers": process.bootstrap})
    for round_ in range(2 if recreated else 1):
        if round_:
            admin.delete_topics([topic])[topic].result(timeout=30)
            wait_until(lambda: topic not in admin.list_topics(timeout=10).topics, 30, "the topic deleted")
        create(process.bootstrap, topic, partitions=1)
        producer = Producer({"bootstrap.servers": process.bootstrap, "acks": "1", "linger.ms": 0})
        for i in range(500):
            producer.produce(topic, str(i).encode())
            producer.poll(0)
        assert producer.flush(30) == 0
    time.sleep(0.5)  # a few of the leader's lag checks
    assert f"{topic}-0: broker" not in process.log_text()  # no "fell behind, out of the ISR"
    assert sorted(process.partition(topic, 0)["isr"]) == [1, 2, 3]


def test_a_fetch_waiting_on_a_topic_that_is_deleted_answers_unknown_topic(cluster) -> None:
    """A long-polling Fetch holds the partition while the topic goes: it answers UNKNOWN_TOPIC_OR_PARTITION,
    as Kafka does, not UNKNOWN_SERVER_ERROR."""
    from kafkacompat.client import KafkaClient

    process = cluster()
    topic = unique_topic("going")
    create(process.bootstrap, topic, partitions=1)
    leader = process.leader(topic, 0)
    admin = AdminClient({"bootstrap.servers": process.bootstrap})
    deleter = threading.Timer(1.0, lambda: admin.delete_topics([topic])[topic].result(timeout=30))
    deleter.start()
    with KafkaClient(process.bootstrap.split(",")[leader - 1], timeout_s=30) as client:
        answer = client.request(1, 12, {
            "replica_id": -1, "max_wait_ms": 5000, "min_bytes": 1, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "rack_id": "", "forgotten_topics_data": [],
            "topics": [{"topic": topic, "partitions": [{"partition": 0, "current_leader_epoch": -1,
                                                       "fetch_offset": 0, "last_fetched_epoch": -1,
                                                       "log_start_offset": -1, "partition_max_bytes": 1 << 20}]}]})
    deleter.join()
    ((partition,),) = [t.partitions for t in answer.responses]
    assert partition.error_code == UNKNOWN_TOPIC_OR_PARTITION
    assert "unexpected error" not in process.log_text()


def test_produce_to_a_follower_gets_not_leader_and_the_client_follows_the_leader(cluster) -> None:
    """A raw Produce to a follower gets NOT_LEADER_OR_FOLLOWER; librdkafka bootstrapped there still delivers."""
    from kafkacompat.client import KafkaClient
    from kafkacompat.protocol.records import encode_batch

    process = cluster()
    topic = unique_topic("notleader")
    create(process.bootstrap, topic, partitions=1)
    leader = process.leader(topic, 0)
    follower = next(node for node in (1, 2, 3) if node != leader)
    address = process.bootstrap.split(",")[follower - 1]
    client = KafkaClient(address)
    try:
        answer = client.request(0, 9, {"transactional_id": None, "acks": -1, "timeout_ms": 5000, "topic_data": [
            {"name": topic, "partition_data": [{"index": 0, "records": encode_batch([(None, b"v", [])], 0)}]}]})
    finally:
        client.close()
    assert answer.responses[0].partition_responses[0].error_code == NOT_LEADER_OR_FOLLOWER

    producer = Producer({"bootstrap.servers": address, "acks": "all"})
    producer.produce(topic, b"v")
    assert producer.flush(15) == 0
    assert read_all(process.bootstrap, topic, 1) == {0: [b"v"]}


@pytest.mark.parametrize("action", ["stop", "kill"])
def test_idempotent_producer_loses_nothing_through_leader_failovers(cluster, action: str) -> None:
    """RF 3, min.insync.replicas 2: every acknowledged record is read exactly once, in order per partition."""
    process = cluster(**{"replica.lag.time.max.ms": "5000"})
    topic = unique_topic(f"failover-{action}")
    create(process.bootstrap, topic, **{"min.insync.replicas": "2"})
    producer = Producer({"bootstrap.servers": process.bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5, "message.timeout.ms": 60000})
    acknowledged: dict[int, list[bytes]] = defaultdict(list)
    failures: list[KafkaError] = []

    def delivered(error, message) -> None:
        if error is None:
            acknowledged[message.partition()].append(message.value())
        else:
            failures.append(error)

    stop = threading.Event()

    def write() -> None:
        sequence = 0
        while not stop.is_set():
            producer.produce(topic, value=b"%08d" % sequence, partition=sequence % 3, on_delivery=delivered)
            sequence += 1
            producer.poll(0)
            time.sleep(0.001)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for _ in range(3):
            time.sleep(1.0)
            leader = process.leader(topic, 0)
            process.act(leader, action)
            time.sleep(1.0)
            process.act(leader, "start")
            wait_until(lambda: len(process.partition(topic, 0)["isr"]) == 3, 30, "the ISR to grow back")
        time.sleep(0.5)
    finally:
        stop.set()
        writer.join()
    assert producer.flush(60) == 0
    assert failures == []
    total = sum(map(len, acknowledged.values()))
    assert total > 100
    read = read_all(process.bootstrap, topic, total)
    for partition in range(3):
        # Exactly once and in order: what the partition holds is what was acknowledged, in that order.
        assert read.get(partition, []) == acknowledged[partition]


def test_kafka_python_default_producer_loses_nothing_through_a_killed_leader(cluster) -> None:
    from kafka import KafkaProducer

    process = cluster(**{"replica.lag.time.max.ms": "5000"})
    topic = unique_topic("kp-failover")
    create(process.bootstrap, topic, **{"min.insync.replicas": "2"})
    producer = KafkaProducer(bootstrap_servers=process.bootstrap.split(","), retries=2**31 - 1,
                             request_timeout_ms=10000, delivery_timeout_ms=120000)
    futures = []
    for sequence in range(3000):
        futures.append((sequence % 3, producer.send(topic, value=b"%08d" % sequence, partition=sequence % 3)))
        if sequence == 1000:
            process.act(process.leader(topic, 1), "kill")
        if sequence == 2000:
            process.act(next(b["node_id"] for b in process.state()["brokers"] if not b["alive"]), "start")
    producer.flush(60)
    acknowledged: dict[int, list[bytes]] = defaultdict(list)
    for partition, future in futures:
        future.get(timeout=60)
    for sequence, (partition, _) in enumerate(futures):
        acknowledged[partition].append(b"%08d" % sequence)
    producer.close()
    read = read_all(process.bootstrap, topic, 3000)
    for partition in range(3):
        assert read.get(partition, []) == acknowledged[partition]


def test_acks_all_needs_min_insync_replicas_while_acks_1_goes_on(cluster) -> None:
    process = cluster(**{"replica.lag.time.max.ms": "5000"})
    topic = unique_topic("min-isr")
    create(process.bootstrap, topic, partitions=1, **{"min.insync.replicas": "2"})
    leader = process.leader(topic, 0)
    others = [node for node in (1, 2, 3) if node != leader]
    for node in others:
        process.act(node, "stop")
    assert process.partition(topic, 0)["isr"] == [leader]

    errors: list[KafkaError] = []
    strict = Producer({"bootstrap.servers": process.bootstrap, "acks": "all", "enable.idempotence": False,
                       "retries": 0, "message.timeout.ms": 5000})
    strict.produce(topic, b"needs two replicas", on_delivery=lambda error, message: errors.append(error))
    strict.flush(15)
    assert [error.code() for error in errors] == [KafkaError.NOT_ENOUGH_REPLICAS]

    relaxed = Producer({"bootstrap.servers": process.bootstrap, "acks": 1})
    outcome: list = []
    relaxed.produce(topic, b"one replica is enough", on_delivery=lambda error, message: outcome.append(error))
    relaxed.flush(15)
    assert outcome == [None]

    for node in others:
        process.act(node, "start")
    wait_until(lambda: sorted(process.partition(topic, 0)["isr"]) == [1, 2, 3], 30, "the ISR to grow back")
    errors.clear()
    strict.produce(topic, b"now it is", on_delivery=lambda error, message: errors.append(error))
    strict.flush(15)
    assert errors == [None]
    assert read_all(process.bootstrap, topic, 2)[0] == [b"one replica is enough", b"now it is"]


def test_a_killed_leaders_unreplicated_tail_is_truncated_and_a_consumer_detects_it(cluster) -> None:
    """The leader, cut off from its followers, acknowledges acks=1 records alone; it is killed, an
    unclean election makes a follower lead, and the old leader returns as a follower and drops them."""
    process = cluster(**{"replica.lag.time.max.ms": "500", "unclean.leader.election.enable": "true"})
    topic = unique_topic("truncate")
    create(process.bootstrap, topic, partitions=1, replication_factor=3)
    producer = Producer({"bootstrap.servers": process.bootstrap, "acks": 1})
    for value in (b"replicated-1", b"replicated-2"):
        producer.produce(topic, value)
    producer.flush(15)
    wait_until(lambda: len(process.partition(topic, 0)["isr"]) == 3, 10, "all replicas in sync")
    old_leader = process.leader(topic, 0)
    process.act(old_leader, "isolate")
    for value in (b"lost-1", b"lost-2", b"lost-3"):
        producer.produce(topic, value)
    producer.flush(15)
    # Behind the leader's log end for replica.lag.time.max.ms, the followers leave the ISR,
    # and the high watermark moves on without them.
    wait_until(lambda: process.partition(topic, 0)["isr"] == [old_leader], 10, "the ISR to shrink to the leader")

    # No reset policy: a detected truncation is reported to the application instead of acted on.
    consumer = Consumer({"bootstrap.servers": process.bootstrap, "group.id": unique_topic("g"),
                         "auto.offset.reset": "error", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    seen = []
    deadline = time.monotonic() + 30
    while len(seen) < 5 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            seen.append(message.value())
    assert seen == [b"replicated-1", b"replicated-2", b"lost-1", b"lost-2", b"lost-3"]

    process.act(old_leader, "kill")
    wait_until(lambda: process.leader(topic, 0) not in (-1, old_leader), 10, "an unclean election")
    for value in (b"new-1", b"new-2", b"new-3", b"new-4"):
        producer.produce(topic, value)
    producer.flush(30)
    process.act(old_leader, "heal")
    process.act(old_leader, "start")
    wait_until(lambda: len(process.partition(topic, 0)["isr"]) == 3, 30, "the old leader back in the ISR")
    assert "truncated %s-0 to offset 2" % topic in process.log_text()

    truncation = []
    deadline = time.monotonic() + 30
    while not truncation and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is not None:
            truncation.append(message.error())
        elif message is not None:
            seen.append(message.value())
    consumer.close()
    # librdkafka validates its position with OffsetForLeaderEpoch (KIP-320) on the new leader.
    assert truncation and truncation[0].code() == KafkaError._AUTO_OFFSET_RESET
    assert "Partition log truncation detected at offset 5 (leader epoch 0): broker end offset is 2" \
        in truncation[0].str()
    assert read_all(process.bootstrap, topic, 6)[0] == [b"replicated-1", b"replicated-2",
                                                         b"new-1", b"new-2", b"new-3", b"new-4"]


class _ConfluentMember:
    redelivers_uncommitted = False
    def __init__(self, process: ClusterProcess, topic: str, group: str) -> None:
        self._consumer = Consumer({"bootstrap.servers": process.bootstrap, "group.id": group,
                                   "auto.offset.reset": "earliest", "enable.auto.commit": False,
                                   "session.timeout.ms": 6000})
        self._consumer.subscribe([topic])

    def poll(self) -> list[bytes]:
        message = self._consumer.poll(0.5)
        if message is None or message.error() is not None:
            return []
        self._consumer.commit(message, asynchronous=False)
        return [message.value()]

    def close(self) -> None:
        self._consumer.close()


class _KafkaPythonMember:
    redelivers_uncommitted = False
    def __init__(self, process: ClusterProcess, topic: str, group: str) -> None:
        from kafka import KafkaConsumer

        self._consumer = KafkaConsumer(topic, bootstrap_servers=process.bootstrap.split(","), group_id=group,
                                       auto_offset_reset="earliest", enable_auto_commit=False,
                                       request_timeout_ms=15000)

    def poll(self) -> list[bytes]:
        values = [record.value for records in self._consumer.poll(timeout_ms=500).values() for record in records]
        if values:
            self._consumer.commit()
        return values

    def close(self) -> None:
        self._consumer.close()


class _KafkaJsMember:
    """kafkajs's consumer in a node process (driver.js ``member``), its records read from its stdout.

    kafkajs keeps handing records to the app while its commits fail (the
    coordinator's broker is gone), then restarts its consumer once its retries
    run out and resumes from the committed offsets: the records it could not
    commit come again (the client's at-least-once delivery).
    """

    redelivers_uncommitted = True

    def __init__(self, process: ClusterProcess, topic: str, group: str) -> None:
        if shutil.which("node") is None or not (KAFKAJS_DIR / "node_modules" / "kafkajs").is_dir():
            pytest.skip("kafkajs is not installed: run `npm ci --prefix compat_tests/kafkajs`")
        self._node = subprocess.Popen(
            ["node", str(KAFKAJS_DIR / "driver.js"), "member"], cwd=KAFKAJS_DIR, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"})
        self._node.stdin.write(json.dumps({"brokers": process.bootstrap.split(","), "topic": topic, "groupId": group}))
        self._node.stdin.close()
        self._lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self._lines.put(line) for line in self._node.stdout], daemon=True).start()

    def poll(self) -> list[bytes]:
        values = []
        with contextlib.suppress(queue.Empty):
            values.append(self._lines.get(timeout=0.5))
            while True:
                values.append(self._lines.get_nowait())
        return [base64.b64decode(json.loads(line)["value"]) for line in values if '"value"' in line]

    def close(self) -> None:
        self._node.send_signal(signal.SIGTERM)
        assert self._node.wait(timeout=30) == 0


@pytest.mark.parametrize("member", [_ConfluentMember, _KafkaPythonMember, _KafkaJsMember],
                         ids=["confluent-kafka", "kafka-python", "kafkajs"])
def test_a_group_consumes_through_a_stop_of_its_coordinator(cluster, member) -> None:
    """The coordinator moves with its __consumer_offsets partition's leader; the group resumes at its commits."""
    process = cluster(**{"replica.lag.time.max.ms": "5000"})
    topic = unique_topic("coord")
    create(process.bootstrap, topic)
    group = unique_topic("group")
    producer = Producer({"bootstrap.servers": process.bootstrap, "acks": "all"})
    for sequence in range(300):
        producer.produce(topic, b"%05d" % sequence, partition=sequence % 3)
    producer.flush(15)
    consumer = member(process, topic, group)
    seen: list[bytes] = []

    def consume(until: int) -> None:
        deadline = time.monotonic() + 60
        while len(set(seen)) < until and time.monotonic() < deadline:
            seen.extend(consumer.poll())

    consume(100)
    coordinator = _coordinator(process, group)
    committed_before = _committed(process, group, topic)
    process.act(coordinator, "stop")
    assert _coordinator(process, group) != coordinator
    for sequence in range(300, 600):
        producer.produce(topic, b"%05d" % sequence, partition=sequence % 3)
    producer.flush(30)
    consume(600)
    consumer.close()
    assert sorted(set(seen)) == [b"%05d" % n for n in range(600)]  # nothing skipped
    if not member.redelivers_uncommitted:
        assert len(seen) == 600  # nothing twice
    again = {int(value) for value, count in Counter(seen).items() if count > 1}
    # What comes again was never committed before the stop: value n sits at offset n // 3 of partition n % 3.
    assert all(n // 3 >= committed_before[n % 3] for n in again), (sorted(again), committed_before)
    assert _committed(process, group, topic) == {0: 200, 1: 200, 2: 200}  # committed at the new coordinator


def _committed(process: ClusterProcess, group: str, topic: str) -> dict[int, int]:
    """The group's committed offsets (OffsetFetch, without joining the group)."""
    reader = Consumer({"bootstrap.servers": process.live_bootstrap(), "group.id": group})
    try:
        found = reader.committed([TopicPartition(topic, p) for p in range(3)], timeout=30)
    finally:
        reader.close()
    return {tp.partition: tp.offset for tp in found}


def _coordinator(process: ClusterProcess, group: str) -> int:
    admin = AdminClient({"bootstrap.servers": process.bootstrap})
    description = admin.describe_consumer_groups([group])[group].result(timeout=30)
    return description.coordinator.id


def test_a_consumer_with_client_rack_fetches_from_its_racks_follower(cluster) -> None:
    process = cluster(**{"broker.rack": "rack-a,rack-b,rack-c",
                         "replica.selector.class": "org.apache.kafka.common.replica.RackAwareReplicaSelector"})
    topic = unique_topic("rack")
    create(process.bootstrap, topic, partitions=1)
    leader = process.leader(topic, 0)
    near = next(node for node in (1, 2, 3) if node != leader)
    producer = Producer({"bootstrap.servers": process.bootstrap, "acks": "all"})
    for sequence in range(200):
        producer.produce(topic, b"%05d" % sequence + b"x" * 500)
    producer.flush(15)
    consumer = Consumer({"bootstrap.servers": process.bootstrap, "group.id": unique_topic("g"),
                         "auto.offset.reset": "earliest", "client.rack": f"rack-{'abc'[near - 1]}"})
    consumer.subscribe([topic])
    values = []
    deadline = time.monotonic() + 30
    while len(values) < 200 and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            values.append(message.value()[:5])
    consumer.close()
    assert values == [b"%05d" % n for n in range(200)]
    bytes_out = {node: _topic_bytes_out(url, topic) for node, url in process.http_urls().items()}
    assert bytes_out[near] >= 200 * 500  # the records came from the follower in the client's rack
    assert bytes_out[leader] == 0


def _topic_bytes_out(http_url: str, topic: str) -> float:
    text = urllib.request.urlopen(http_url + "/metrics", timeout=10).read().decode()
    return sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
               if line.startswith("kafka_server_brokertopicmetrics_bytesout_total") and f'topic="{topic}"' in line)


@pytest.mark.parametrize(("cut_off", "restore"), [("isolate", "heal"), ("pause", "resume")])
def test_a_cut_off_leader_is_fenced_and_a_producer_goes_on_with_the_new_leader(cluster, cut_off, restore) -> None:
    """A broker isolated from the others, or stalled (pause), stops heartbeating: after
    broker.session.timeout.ms the controller moves its leaderships away, an idempotent producer delivers
    everything through the new leader, and once healed or resumed the broker rejoins the ISR."""
    process = cluster(**{"broker.session.timeout.ms": "1000"})
    topic = unique_topic("fenced")
    create(process.bootstrap, topic, partitions=1, **{"min.insync.replicas": "2"})
    fenced = process.leader(topic, 0)
    process.act(fenced, cut_off)
    wait_until(lambda: process.leader(topic, 0) not in (-1, fenced), 10, f"leadership moved off the {cut_off}d broker")
    assert fenced not in process.partition(topic, 0)["isr"]
    if cut_off == "isolate":
        port = int(process.bootstrap.split(",")[fenced - 1].rpartition(":")[2])
        with RawConnection(port) as connection:  # clients still reach it: it refuses to lead
            answer = connection.request(PRODUCE, 9, produce_v9_body(topic, 0, record_batch([(None, b"late")], 0)),
                                        flexible=True)
            assert read_produce_v9(answer)[topic, 0][0] == NOT_LEADER_OR_FOLLOWER
    producer = Producer({"bootstrap.servers": process.bootstrap, "acks": "all", "enable.idempotence": True,
                         "socket.timeout.ms": 3000})
    values = [b"v%d" % n for n in range(20)]
    for value in values:
        producer.produce(topic, value, partition=0)
    assert producer.flush(30) == 0
    process.act(fenced, restore)
    wait_until(lambda: len(process.partition(topic, 0)["isr"]) == 3, 30, f"the {restore}d broker back in the ISR")
    assert read_all(process.bootstrap, topic, len(values))[0] == values
    assert f"broker {fenced} fenced: unheard for" in process.log_text()


def test_a_paused_broker_accepts_connections_and_answers_nothing(cluster) -> None:
    process = cluster()
    process.act(2, "pause")
    port = int(process.bootstrap.split(",")[1].rpartition(":")[2])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(bytes.fromhex("0000000f" "0012" "0000" "00000001" "0005") + b"probe")
        connection.settimeout(1.0)
        with pytest.raises(socket.timeout):
            connection.recv(4)
    process.act(2, "resume")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(bytes.fromhex("0000000f" "0012" "0000" "00000001" "0005") + b"probe")
        connection.settimeout(5.0)
        assert len(connection.recv(4)) == 4


def test_the_cli_stops_and_starts_a_broker_of_a_running_cluster(cluster) -> None:
    process = cluster()
    url = process.http_urls()[1]

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "kafkacompat", "cluster", *args, "--http", url],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert cli("stop", "3") == "broker 3: stopped"
    metadata = AdminClient({"bootstrap.servers": process.bootstrap}).list_topics(timeout=10)
    assert sorted(metadata.brokers) == [1, 2]
    assert cli("start", "3") == "broker 3: running"
    wait_until(lambda: sorted(AdminClient({"bootstrap.servers": process.bootstrap}).list_topics(timeout=10).brokers)
               == [1, 2, 3], 10, "broker 3 in Metadata again")


def test_preferred_leaders_return_by_election_and_by_auto_rebalance(cluster) -> None:
    from confluent_kafka import ElectionType
    from confluent_kafka import TopicPartition as Partition

    process = cluster(**{"auto.leader.rebalance.enable": "false"})
    topic = unique_topic("elect")
    create(process.bootstrap, topic, partitions=1)
    process.act(1, "stop")
    process.act(1, "start")
    wait_until(lambda: sorted(process.partition(topic, 0)["isr"]) == [1, 2, 3], 30, "broker 1 in sync again")
    assert process.leader(topic, 0) == 2
    admin = AdminClient({"bootstrap.servers": process.bootstrap})
    elected = admin.elect_leaders(ElectionType.PREFERRED, [Partition(topic, 0)]).result(timeout=20)
    assert [error for error in elected.values()] == [None]
    assert process.leader(topic, 0) == 1
    again = admin.elect_leaders(ElectionType.PREFERRED, [Partition(topic, 0)]).result(timeout=20)
    assert [error.code() for error in again.values()] == [KafkaError.ELECTION_NOT_NEEDED]

    rebalancing = cluster(**{"leader.imbalance.check.interval.seconds": "1"})
    create(rebalancing.bootstrap, topic, partitions=1)
    rebalancing.act(1, "stop")
    rebalancing.act(1, "start")
    wait_until(lambda: rebalancing.leader(topic, 0) == 1, 30, "the preferred leader back by itself")


def test_a_scenario_stops_and_starts_a_broker_at_its_times(cluster, tmp_path) -> None:
    process = cluster()
    scenario = tmp_path / "chaos.yaml"
    scenario.write_text(f"http: {process.http_urls()[1]}\nsteps:\n  - {{at: 0, kill: 3}}\n  - {{at: 1, start: 3}}\n")
    done = subprocess.run([sys.executable, "-m", "kafkacompat", "scenario", "run", str(scenario)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "broker 3: kill done" in done.stdout and "broker 3: start done" in done.stdout
    assert "broker 3 killed" in process.log_text()
    assert all(broker["alive"] for broker in process.state()["brokers"])


def test_a_reassignment_moves_a_partition_to_other_brokers_after_they_catch_up(cluster) -> None:
    """AlterPartitionReassignments from broker 1 to brokers 2 and 3: they copy the log, then take over."""
    from kafkacompat.client import KafkaClient

    process = cluster()
    topic = unique_topic("move")
    create(process.bootstrap, topic, partitions=1, replication_factor=1)
    assert process.partition(topic, 0)["replicas"] == [1]
    producer = Producer({"bootstrap.servers": process.bootstrap, "acks": "all"})
    for sequence in range(500):
        producer.produce(topic, b"%05d" % sequence + b"x" * 200)
    producer.flush(15)
    client = KafkaClient(process.bootstrap.split(",")[0])
    try:
        answer = client.request(45, 0, {"timeout_ms": 10_000, "topics": [
            {"name": topic, "partitions": [{"partition_index": 0, "replicas": [2, 3]}]}]})
        assert [p.error_code for p in answer.responses[0].partitions] == [0]
        wait_until(lambda: process.partition(topic, 0)["replicas"] == [2, 3], 30, "the move to finish")
        listed = client.request(46, 0, {"timeout_ms": 10_000, "topics": None})
        assert list(listed.topics) == []
    finally:
        client.close()
    moved = process.partition(topic, 0)
    assert moved["leader"] in (2, 3) and sorted(moved["isr"]) == [2, 3]
    assert read_all(process.bootstrap, topic, 500)[0] == [b"%05d" % n + b"x" * 200 for n in range(500)]
