"""Client quotas: set with AlterClientQuotas, seen in DescribeClientQuotas, enforced on a stock producer.

Neither confluent-kafka nor kafka-python has a client-quota admin call, so
quotas are set and described over the raw protocol (kafkacompat.client),
the way kafka-configs.sh sends them.
"""

from __future__ import annotations

import json
import socket
import time

import pytest
from confluent_kafka import Producer

from compat_helpers import unique_topic
from confluent_clients import consume_records, create_topic
from kafkacompat.client import KafkaClient

ALTER_CLIENT_QUOTAS, DESCRIBE_CLIENT_QUOTAS = 49, 48
QUOTA_BYTES_PER_S = 100 * 1024
RECORD_BYTES = 1000
RECORDS = 1200  # about 12 s at the quota
# Two one-second samples (Kafka's defaults are 11): the burst allowed before throttling starts
# is one window's worth, so the whole run's rate is close to the quota.
WINDOWS = {"quota.window.num": "2", "quota.window.size.seconds": "1"}


def alter_quota(bootstrap: str, entity: list[tuple[str, str | None]], key: str, value: float) -> None:
    body = {"validate_only": False, "entries": [{
        "entity": [{"entity_type": kind, "entity_name": name} for kind, name in entity],
        "ops": [{"key": key, "value": value, "remove": False}]}]}
    with KafkaClient(bootstrap) as client:
        (entry,) = client.request(ALTER_CLIENT_QUOTAS, 1, body).entries
    assert entry.error_code == 0, entry.error_message


def described_quotas(bootstrap: str) -> dict[tuple[tuple[str, str | None], ...], dict[str, float]]:
    with KafkaClient(bootstrap) as client:
        answer = client.request(DESCRIBE_CLIENT_QUOTAS, 1, {"components": [], "strict": False})
    assert answer.error_code == 0
    return {tuple((e.entity_type, e.entity_name) for e in entry.entity): {v.key: v.value for v in entry["values"]}
            for entry in answer.entries}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("entity", [[("client-id", "throttled-app")], [("user", None)]],
                         ids=["client-id", "default-user"])
def test_a_producer_over_its_byte_rate_is_throttled_to_the_quota_and_loses_nothing(broker_factory, entity):
    broker = broker_factory(WINDOWS)
    topic = unique_topic("quota")
    create_topic(broker.bootstrap, topic, partitions=1)
    alter_quota(broker.bootstrap, entity, "producer_byte_rate", QUOTA_BYTES_PER_S)
    assert described_quotas(broker.bootstrap) == {tuple(entity): {"producer_byte_rate": QUOTA_BYTES_PER_S}}

    throttles: list[int] = []
    delivered: list[float] = []
    failures = []

    def on_stats(text: str) -> None:
        for stats in json.loads(text)["brokers"].values():
            if stats["nodeid"] >= 0:
                throttles.append(stats["throttle"]["max"])

    def on_delivery(error, message) -> None:
        (failures.append(error) if error is not None else delivered.append(time.monotonic()))

    producer = Producer({"bootstrap.servers": broker.bootstrap, "client.id": "throttled-app",
                         "linger.ms": 5, "batch.size": 16384, "statistics.interval.ms": 500,
                         "stats_cb": on_stats, "message.timeout.ms": 120_000})
    started = time.monotonic()
    for index in range(RECORDS):
        while True:
            try:
                producer.produce(topic, b"%06d" % index + bytes(RECORD_BYTES - 6), partition=0,
                                 on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    assert producer.flush(150) == 0
    elapsed = delivered[-1] - started
    producer.poll(1.0)  # one more statistics round

    assert failures == [] and len(delivered) == RECORDS
    rate = RECORDS * RECORD_BYTES / elapsed
    assert 0.8 * QUOTA_BYTES_PER_S <= rate <= 1.2 * QUOTA_BYTES_PER_S, f"{rate:.0f} B/s over {elapsed:.1f} s"
    assert max(throttles) > 0, "the producer never saw a throttle time"
    read = consume_records(broker.bootstrap, topic, [0], RECORDS)
    assert sorted(r.value[:6] for r in read.values()) == [b"%06d" % i for i in range(RECORDS)]
    assert sorted(offset for _, offset in read) == list(range(RECORDS))


@pytest.mark.timeout(60)
def test_quotas_survive_a_restart_and_bad_ones_are_refused(broker_factory):
    broker = broker_factory()
    alter_quota(broker.bootstrap, [("user", "alice"), ("client-id", None)], "request_percentage", 25.5)
    alter_quota(broker.bootstrap, [("ip", None)], "connection_creation_rate", 100)
    with KafkaClient(broker.bootstrap) as client:
        (bad,) = client.request(ALTER_CLIENT_QUOTAS, 1, {"validate_only": False, "entries": [{
            "entity": [{"entity_type": "ip", "entity_name": None}],
            "ops": [{"key": "producer_byte_rate", "value": 5, "remove": False}]}]}).entries
    assert (bad.error_code, bad.error_message) == (42, "Invalid configuration key producer_byte_rate")
    broker.restart()
    assert described_quotas(broker.bootstrap) == {
        (("client-id", None), ("user", "alice")): {"request_percentage": 25.5},
        (("ip", None),): {"connection_creation_rate": 100},
    }


@pytest.mark.timeout(60)
def test_connections_over_the_ips_creation_rate_are_held_then_closed(broker_factory):
    broker = broker_factory(WINDOWS)
    alter_quota(broker.bootstrap, [("ip", "127.0.0.1")], "connection_creation_rate", 1)
    time.sleep(2.1)  # the connection that set the quota has left the two windows
    first = KafkaClient(broker.bootstrap)
    assert first.api_versions()  # within the rate: served
    second = socket.create_connection(("127.0.0.1", broker.port), timeout=10)
    try:
        started = time.monotonic()
        assert second.recv(1) == b""  # held for the throttle time, then closed without a word
        assert 0.5 <= time.monotonic() - started <= 5
    finally:
        second.close()
        first.close()
    time.sleep(2.1)
    with KafkaClient(broker.bootstrap) as later:  # the refused one did not count against the rate
        assert later.api_versions()
