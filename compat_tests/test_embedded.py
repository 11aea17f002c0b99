"""EmbeddedBroker, in both isolations, driven by stock clients over its port."""

from __future__ import annotations

import json

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from kafkacompat import EmbeddedBroker
from kafkacompat.client import ClientError
from kafkacompat.protocol.errors import ErrorCode

ISOLATIONS = ["thread", "process"]


def _produce(bootstrap: str, topic: str, count: int) -> list[tuple[int, int]]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    sent = [
        producer.send(topic, key=b"k%d" % i, value=b"v%d" % i, headers=[("n", b"%d" % i)]).get(timeout=30)
        for i in range(count)
    ]
    producer.close()
    return [(meta.partition, meta.offset) for meta in sent]


def _consume(bootstrap: str, topic: str, partitions: int, count: int) -> list[tuple[int, int, bytes, bytes]]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
    seen = []
    for message in consumer:
        seen.append((message.partition, message.offset, message.key, message.value))
        if len(seen) == count:
            break
    consumer.close()
    return sorted(seen)


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_produce_restart_read_back(isolation: str) -> None:
    with EmbeddedBroker(partitions=3, isolation=isolation) as broker:
        bootstrap = broker.bootstrap_servers
        assert bootstrap.startswith("127.0.0.1:") and not bootstrap.endswith(":0")
        topic = broker.create_topic("orders", partitions=2)
        placed = _produce(bootstrap, topic, 6)
        _produce(bootstrap, "auto-created", 1)
        broker.restart()
        assert broker.bootstrap_servers == bootstrap, "a restart keeps the port clients know"
        expected = sorted((p, o, b"k%d" % i, b"v%d" % i) for i, (p, o) in enumerate(placed))
        assert _consume(bootstrap, topic, 2, 6) == expected
        records = broker.records(topic)
        assert sorted((r.partition, r.offset, r.key, r.value) for r in records) == expected
        assert all(r.headers == [("n", r.value[1:])] for r in records)
        # num.partitions=3 reached the broker: an auto-created topic has three partitions.
        assert len(KafkaConsumer(bootstrap_servers=bootstrap).partitions_for_topic("auto-created")) == 3
        assert [r.value for r in broker.records("auto-created")] == [b"v0"]
        data_dir = broker.data_dir
        assert data_dir.exists()
    assert not data_dir.exists(), "the temporary data dir is removed after stop"


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_keep_data_and_a_callers_data_dir_survive(isolation: str, tmp_path) -> None:
    mine = tmp_path / "mine"
    with EmbeddedBroker(isolation=isolation, data_dir=mine) as broker:
        _produce(broker.bootstrap_servers, "kept", 2)
    assert (mine / "kept-0").is_dir()
    with EmbeddedBroker(isolation=isolation, data_dir=mine) as again:
        assert [r.value for r in again.records("kept")] == [b"v0", b"v1"]
    with EmbeddedBroker(isolation=isolation, keep_data=True) as kept:
        _produce(kept.bootstrap_servers, "kept", 1)
    assert (kept.data_dir / "kept-0").is_dir()


def test_broker_configs_by_kafka_name_and_as_keywords() -> None:
    with EmbeddedBroker(auto_create_topics_enable=False, config={"num.partitions": 2}) as broker:
        with pytest.raises(ClientError, match="unknown topic 'never-created'") as unknown:
            broker.records("never-created")
        assert unknown.value.code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        topic = broker.create_topic("two")
        assert len(KafkaConsumer(bootstrap_servers=broker.bootstrap_servers).partitions_for_topic(topic)) == 2
        with pytest.raises(ClientError) as duplicate:
            broker.create_topic("two")
        assert duplicate.value.code == ErrorCode.TOPIC_ALREADY_EXISTS
        broker.delete_topic("two")
        broker.delete_topic("two")  # already gone: not an error


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_a_bad_config_fails_start_with_the_reason(isolation: str) -> None:
    broker = EmbeddedBroker(isolation=isolation, num_partitions="many")
    with pytest.raises(Exception, match="num.partitions"):
        broker.start()
    assert not broker.running


def test_isolation_is_checked() -> None:
    with pytest.raises(ValueError, match="isolation"):
        EmbeddedBroker(isolation="container")


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_http_url_when_the_console_is_on(isolation: str) -> None:
    import urllib.request

    with EmbeddedBroker(isolation=isolation, config={"http.listeners": "http://127.0.0.1:0"}) as broker:
        broker.create_topic("seen-by-http", partitions=2)
        with urllib.request.urlopen(broker.http_url + "/api/topics", timeout=10) as response:
            listed = {t["name"]: t["partitions"] for t in json.loads(response.read())}
        assert listed == {"seen-by-http": 2}
    with EmbeddedBroker(isolation=isolation) as plain:
        assert plain.http_url is None


@pytest.mark.parametrize("isolation", ISOLATIONS)
def test_faults_from_python_in_both_isolations(isolation: str) -> None:
    """kafka-python's producer sees the injected error and gets through once the rule's first N are spent."""
    with EmbeddedBroker(partitions=1, isolation=isolation, http_listeners="http://127.0.0.1:0") as broker:
        topic = broker.create_topic("faulty", 1)
        rule = broker.faults.add({"api": "Produce", "error": "NOT_LEADER_OR_FOLLOWER"}, first=2)
        assert (rule["first"], rule["injected"]) == (2, 0)
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, retry_backoff_ms=50)
        meta = producer.send(topic, b"through").get(timeout=30)
        producer.close()
        assert (meta.partition, meta.offset) == (0, 0)
        [listed] = broker.faults.list()
        assert (listed["id"], listed["injected"]) == (rule["id"], 2)
        assert broker.faults.clear() == 1 and broker.faults.list() == []


def test_process_isolation_faults_need_the_http_side() -> None:
    with EmbeddedBroker(isolation="process") as broker, pytest.raises(RuntimeError, match="http_listeners"):
        broker.faults.list()
