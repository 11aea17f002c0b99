"""kcat (Debian's package, built on its own librdkafka 2.0) against the broker process.

kcat is driven the way people use it from a shell: `-L` metadata, `-P`
produce from stdin, `-C` consume with `-J` JSON or `-f` formats, `-Q` offsets
for a timestamp, `-G` group consumption. kcat cannot create topics, so
confluent-kafka's admin client does that. kcat sets no per-record timestamps:
they are the time of sending, checked against a window.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from compat_helpers import unique_topic, wait_until
from confluent_clients import create_topic
from recording_proxy import stored_batches

KCAT = shutil.which("kcat")
pytestmark = pytest.mark.skipif(KCAT is None, reason="kcat is not installed (Debian: apt-get install kcat)")

CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
HEADERS = [("tag", "a"), ("tag", "b"), ("origin", "kcat")]


def kcat(broker, *args: str, stdin: str | None = None, timeout_s: float = 60) -> str:
    completed = subprocess.run([KCAT, "-b", broker.bootstrap, *args], input=stdin, capture_output=True,
                               text=True, timeout=timeout_s)
    assert completed.returncode == 0, f"kcat {' '.join(args)} exited {completed.returncode}:\n{completed.stderr}"
    return completed.stdout


def text_records(count: int) -> list[tuple[str, str]]:
    """Keyed lines, compressible enough that librdkafka keeps the compressed form."""
    return [(f"key-{n % 13:02d}", f"value-{n:05d}-" + "abcdefgh" * (n % 20)) for n in range(count)]


def produce(broker, topic: str, records: list[tuple[str, str]], *extra: str) -> tuple[int, int]:
    """`kcat -P` with `-K` keys and `-H` headers; the window (ms) in which it ran."""
    header_args = [arg for name, value in HEADERS for arg in ("-H", f"{name}={value}")]
    lines = "".join(f"{key}\t{value}\n" for key, value in records)
    started = int(time.time() * 1000)
    kcat(broker, "-P", "-t", topic, "-K", "\t", *header_args, "-X", "enable.idempotence=true", *extra, stdin=lines)
    return started, int(time.time() * 1000) + 1


def consume_json(broker, topic: str, *extra: str) -> list[dict]:
    return json_lines(kcat(broker, "-C", "-t", topic, "-J", "-e", "-q", *extra))


def group_consume_json(broker, group: str, topic: str) -> list[dict]:
    """`kcat -G`: a balanced consumer in `group`, until every assigned partition is at its end."""
    return json_lines(kcat(broker, "-G", group, "-J", "-e", "-q", "-X", "auto.offset.reset=earliest", topic))


def json_lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.mark.timeout(60)
def test_metadata_listing(broker):
    topic = unique_topic("kcat-meta")
    create_topic(broker.bootstrap, topic, partitions=3)

    listing = kcat(broker, "-L", "-t", topic)
    assert re.search(rf"broker (\d+) at 127\.0\.0\.1:{broker.port} \(controller\)", listing), listing
    assert f'topic "{topic}" with 3 partitions:' in listing

    described = json.loads(kcat(broker, "-L", "-J", "-t", topic))
    (node,) = described["brokers"]
    assert node["name"] == f"127.0.0.1:{broker.port}"
    assert described["controllerid"] == node["id"]
    (listed,) = described["topics"]
    assert listed["topic"] == topic and "error" not in listed
    assert [p["partition"] for p in listed["partitions"]] == [0, 1, 2]
    for partition in listed["partitions"]:
        assert partition["leader"] == node["id"]
        assert partition["replicas"] == [{"id": node["id"]}] and partition["isrs"] == [{"id": node["id"]}]

    everything = json.loads(kcat(broker, "-L", "-J"))
    assert topic in {t["topic"] for t in everything["topics"]}


@pytest.mark.timeout(90)
@pytest.mark.parametrize("codec", sorted(CODECS))
def test_idempotent_produce_and_consume(broker, codec):
    topic = unique_topic(f"kcat-{codec}")
    create_topic(broker.bootstrap, topic, partitions=3)
    records = text_records(2000)
    started, finished = produce(broker, topic, records, "-z", codec)

    read = consume_json(broker, topic, "-o", "beginning")
    assert len(read) == len(records)
    by_partition: dict[int, list[dict]] = {}
    for message in read:
        by_partition.setdefault(message["partition"], []).append(message)
        assert message["headers"] == [item for pair in HEADERS for item in pair]
        assert message["tstype"] == "create" and started <= message["ts"] <= finished
    assert sorted(by_partition) == [0, 1, 2], "13 keys should reach all 3 partitions"
    for partition, messages in by_partition.items():
        assert [m["offset"] for m in messages] == list(range(len(messages))), partition
    assert len({m["partition"] for m in read if m["key"] == "key-00"}) == 1
    # Each key's records keep their send order, whatever partition the key went to.
    sent_by_key: dict[str, list[str]] = {}
    for key, value in records:
        sent_by_key.setdefault(key, []).append(value)
    read_by_key: dict[str, list[str]] = {}
    for message in sorted(read, key=lambda m: (m["partition"], m["offset"])):
        read_by_key.setdefault(message["key"], []).append(message["payload"])
    assert read_by_key == sent_by_key

    # What reached the log: the requested codec and an idempotent producer id with sequences.
    for partition, messages in by_partition.items():
        batches = stored_batches(broker.bootstrap, topic, partition)
        assert sum(b.records_count for b in batches) == len(messages)
        assert {b.compression for b in batches} == {CODECS[codec]}
        assert all(b.producer_id >= 0 and b.base_sequence >= 0 for b in batches)
        assert len({b.producer_id for b in batches}) == 1


@pytest.mark.timeout(60)
def test_offsets_formats_and_timestamp_queries(broker):
    topic = unique_topic("kcat-offsets")
    create_topic(broker.bootstrap, topic, partitions=1)
    first, second = text_records(30), [(f"late-{n}", f"second-{n}") for n in range(10)]
    produce(broker, topic, first)
    time.sleep(0.05)
    boundary_ms = int(time.time() * 1000)
    time.sleep(0.05)
    produce(broker, topic, second)

    # -o N -c M: a slice, printed through a -f format string.
    out = kcat(broker, "-C", "-t", topic, "-p", "0", "-o", "5", "-c", "3", "-f", "%p:%o:%k=%s;%h\\n")
    assert out.splitlines() == [f"0:{n}:{first[n][0]}={first[n][1]};tag=a,tag=b,origin=kcat" for n in (5, 6, 7)]

    # -o -N: the last N records.
    tail = consume_json(broker, topic, "-p", "0", "-o", "-4")
    assert [(m["offset"], m["key"]) for m in tail] == [(36 + n, f"late-{6 + n}") for n in range(4)]

    # -Q: the first offset at or after a timestamp (ListOffsets by time), and -o s@ that uses it.
    queried = kcat(broker, "-Q", "-t", f"{topic}:0:{boundary_ms}")
    assert re.search(rf"{re.escape(topic)} \[0\] offset 30\b", queried), queried
    since = consume_json(broker, topic, "-o", f"s@{boundary_ms}")
    assert [m["payload"] for m in since] == [value for _, value in second]

    # -o end: nothing is left to read.
    assert consume_json(broker, topic, "-o", "end") == []


@pytest.mark.timeout(90)
def test_group_consume_commits_offsets(broker):
    topic, group = unique_topic("kcat-group"), unique_topic("kcat-group")
    create_topic(broker.bootstrap, topic, partitions=2)
    records = text_records(300)
    produce(broker, topic, records)

    read = group_consume_json(broker, group, topic)
    assert sorted((m["key"], m["payload"]) for m in read) == sorted(records)
    counts = {p: sum(1 for m in read if m["partition"] == p) for p in (0, 1)}

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})

    def committed():
        (future,) = admin.list_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0), TopicPartition(topic, 1)])]).values()
        offsets = {tp.partition: tp.offset for tp in future.result(timeout=20).topic_partitions}
        return offsets if offsets == counts else None

    wait_until(committed, 15, f"group {group} to have committed {counts}")

    # The same group started again resumes after its commits: only new records arrive.
    produce(broker, topic, [("after", "the-commit")])
    again = group_consume_json(broker, group, topic)
    assert [(m["key"], m["payload"]) for m in again] == [("after", "the-commit")]
