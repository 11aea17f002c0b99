"""Injected faults as a user sees them through stock clients, against a broker process over TCP.

Rules go in through the HTTP admin API (FaultsClient, what ``kafkacompat
faults`` and a process-isolated EmbeddedBroker use). Every test clears the
rules it added; rules are narrowed to the test's topic or client id where
other requests (the clients' own metadata) must stay untouched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from compat_helpers import REPO_ROOT, unique_topic, wait_until
from kafkacompat.embedded import ExternalBroker
from kafkacompat.tools.faults import FaultsClient

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def faults(http_broker):
    client = FaultsClient(http_broker.http)
    client.clear()
    yield client
    client.clear()


def _topic(broker, partitions: int = 1) -> str:
    name = unique_topic("faults")
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    admin.create_topics([NewTopic(name, partitions, 1)])[name].result(30)
    return name


def _produce(broker, topic: str, values: list[bytes], partition: int = 0, **config) -> list[tuple]:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, **config})
    outcomes: list[tuple] = []
    for value in values:
        producer.produce(topic, value, partition=partition,
                         on_delivery=lambda err, msg: outcomes.append((err, msg.value(), msg.offset())))
    assert producer.flush(60) == 0
    return outcomes


def _records(broker, topic: str):
    return ExternalBroker(broker.bootstrap).records(topic)


def _rule(faults: FaultsClient, rule_id: int) -> dict:
    return next(rule for rule in faults.list() if rule["id"] == rule_id)


def test_a_retriable_error_is_retried_by_the_producer(http_broker, faults):
    topic = _topic(http_broker)
    rule = faults.add(api="Produce", topics=[topic], error="NOT_LEADER_OR_FOLLOWER", first=3)
    [(error, value, offset)] = _produce(http_broker, topic, [b"through"])
    assert (error, value, offset) == (None, b"through", 0)
    assert _rule(faults, rule["id"])["injected"] == 3
    assert "fault rule %d: error NOT_LEADER_OR_FOLLOWER" % rule["id"] in http_broker.log_text()


def test_a_fatal_error_reaches_the_application(http_broker, faults):
    topic = _topic(http_broker)
    faults.add(api="Produce", topics=[topic], error="TOPIC_AUTHORIZATION_FAILED")
    [(error, _, _)] = _produce(http_broker, topic, [b"refused"])
    assert error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    faults.clear()
    assert _records(http_broker, topic) == []


def test_an_error_on_one_partition_leaves_the_others_served(http_broker, faults):
    topic = _topic(http_broker, partitions=2)
    faults.add(api="Produce", topics=[topic], partitions=[1], scope="resources", error="TOPIC_AUTHORIZATION_FAILED")
    producer = Producer({"bootstrap.servers": http_broker.bootstrap, "linger.ms": 50})
    outcomes = {}
    for partition in (0, 1):
        producer.produce(topic, b"p%d" % partition, partition=partition,
                         on_delivery=lambda err, msg: outcomes.__setitem__(msg.partition(), err))
    assert producer.flush(30) == 0
    assert outcomes[0] is None
    assert outcomes[1].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
    faults.clear()
    assert [r.value for r in _records(http_broker, topic)] == [b"p0"]


def test_request_timed_out_after_the_append_is_retried_without_duplicates(http_broker, faults):
    topic = _topic(http_broker)
    rule = faults.add(api="Produce", topics=[topic], error="REQUEST_TIMED_OUT", every=3)
    values = [b"v%03d" % n for n in range(30)]
    producer = Producer({"bootstrap.servers": http_broker.bootstrap, "enable.idempotence": True, "linger.ms": 0,
                         "max.in.flight.requests.per.connection": 1})
    outcomes = []
    for value in values:
        producer.produce(topic, value, partition=0, on_delivery=lambda err, msg: outcomes.append(err))
        producer.flush(30)
    assert outcomes == [None] * len(values)
    assert _rule(faults, rule["id"])["injected"] >= 5  # every third answer lied about an append that happened
    faults.clear()
    assert [r.value for r in _records(http_broker, topic)] == values


def test_a_delay_holds_the_answer(http_broker, faults):
    topic = _topic(http_broker)
    _produce(http_broker, topic, [b"warm"])
    faults.add(api="Produce", topics=[topic], action="delay", delay_ms=1500)
    started = time.monotonic()
    [(error, _, offset)] = _produce(http_broker, topic, [b"late"])
    assert (error, offset) == (None, 1)
    assert time.monotonic() - started >= 1.5


def test_no_response_times_the_client_out(http_broker, faults):
    faults.add(api="Metadata", client_id="silent-admin", action="no_response")
    admin = AdminClient({"bootstrap.servers": http_broker.bootstrap, "client.id": "silent-admin"})
    with pytest.raises(KafkaException) as raised:
        admin.list_topics(timeout=2)
    assert raised.value.args[0].code() in (KafkaError._TIMED_OUT, KafkaError._TRANSPORT)


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_closed_connection_is_reconnected_and_the_record_written_once(http_broker, faults, when):
    topic = _topic(http_broker)
    rule = faults.add(api="Produce", topics=[topic], action="close", when=when, first=1)
    [(error, _, offset)] = _produce(http_broker, topic, [b"once"], **{"enable.idempotence": True})
    assert (error, offset) == (None, 0)
    assert _rule(faults, rule["id"])["injected"] == 1
    assert "closes the connection" in http_broker.log_text()
    faults.clear()
    assert [r.value for r in _records(http_broker, topic)] == [b"once"]


def test_throttle_time_shows_in_librdkafka_stats(http_broker, faults):
    topic = _topic(http_broker)
    faults.add(api="Produce", topics=[topic], action="throttle", throttle_ms=700)
    stats: list[dict] = []
    producer = Producer({"bootstrap.servers": http_broker.bootstrap, "linger.ms": 0, "statistics.interval.ms": 100,
                         "stats_cb": lambda text: stats.append(json.loads(text))})
    for n in range(3):
        producer.produce(topic, b"slow%d" % n, partition=0)
        producer.flush(30)
    wait_until(lambda: (producer.poll(0.1), any(
        b["throttle"]["max"] >= 700 for s in stats for b in s["brokers"].values()))[1], 10, "a throttle in the stats")
    assert max(b["throttle"]["max"] for s in stats for b in s["brokers"].values()) == 700


def test_faults_from_the_config_file_and_the_command_line(tmp_path, http_broker, faults):
    config = tmp_path / "broker.yaml"
    config.write_text("num.partitions: 1\nfaults:\n  - {api: ListGroups, error: COORDINATOR_NOT_AVAILABLE}\n")
    from kafkacompat.config import BrokerConfig
    assert BrokerConfig.load(config).faults == [{"api": "ListGroups", "error": "COORDINATOR_NOT_AVAILABLE"}]

    def cli(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "kafkacompat", "faults", *args, "--http", http_broker.http],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert cli("add", "api=FindCoordinator", "error=COORDINATOR_NOT_AVAILABLE", "first=2").startswith("added")
    [rule] = json.loads(cli("list", "--json"))
    assert (rule["api"], rule["first"], rule["injected"]) == ("FindCoordinator", 2, 0)
    assert "cleared 1" in cli("clear")
    assert faults.list() == []


def test_a_scenario_adds_and_clears_rules_at_their_times(tmp_path, http_broker, faults):
    scenario = tmp_path / "chaos.yaml"
    scenario.write_text(f"http: {http_broker.http}\nsteps:\n"
                        "  - {at: 0, add: {api: Fetch, action: delay, delay_ms: 10}}\n"
                        "  - {between: [0.2, 0.6], add: {api: Produce, error: NOT_LEADER_OR_FOLLOWER}}\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "kafkacompat", "scenario", "run", str(scenario)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started >= 0.6
    assert [rule["api"] for rule in faults.list()] == ["Fetch"]  # the window's rule is gone again
    assert "removed the fault rule of step 2" in done.stdout
    refused = tmp_path / "cluster.yaml"
    refused.write_text("steps:\n  - {at: 1, stop: 2}\n")
    done = subprocess.run([sys.executable, "-m", "kafkacompat", "scenario", "run", str(refused), "--http",
                           http_broker.http], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 1 and "multi-broker cluster" in done.stderr
