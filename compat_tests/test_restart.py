"""Durability across broker restarts, seen through confluent-kafka: clean SIGTERM stops and SIGKILL."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import ConfigSource

from compat_helpers import Delivery, assert_keys_stick_to_partitions, assert_round_trip, sample_records, unique_topic
from confluent_clients import (ClientErrors, admin_client, consume_records, create_topic, describe_topic,
                               describe_topic_configs, idempotent_producer, produce_records, send_records)

PARTITIONS = [0, 1, 2]
TOPIC_CONFIG = {"retention.ms": "86400000", "max.message.bytes": "2000000"}


def topic_state(bootstrap: str, topic: str):
    """What must survive a restart besides the records: topic id, partitions, config overrides."""
    configs = describe_topic_configs(admin_client(bootstrap), topic)
    overrides = {name: entry.value for name, entry in configs.items()
                 if ConfigSource(entry.source) == ConfigSource.DYNAMIC_TOPIC_CONFIG}
    return describe_topic(bootstrap, topic), overrides


def assert_survives(broker, topic, bounce) -> None:
    """Produce (idempotent, flushed), `bounce` the broker, read everything back identically,
    then a new idempotent producer continues at the right offsets."""
    create_topic(broker.bootstrap, topic, partitions=len(PARTITIONS), config=TOPIC_CONFIG)
    records = sample_records(3000)
    deliveries = produce_records(broker.bootstrap, topic, records)
    state = topic_state(broker.bootstrap, topic)
    assert state[1] == TOPIC_CONFIG

    bounce()

    assert topic_state(broker.bootstrap, topic) == state
    assert_round_trip(records, deliveries, consume_records(broker.bootstrap, topic, PARTITIONS, len(records)))

    more = sample_records(300, first_timestamp_ms=records[-1].timestamp_ms + 1)
    more_deliveries = produce_records(broker.bootstrap, topic, more)
    assert_keys_stick_to_partitions(records + more, deliveries + more_deliveries)
    everything = consume_records(broker.bootstrap, topic, PARTITIONS, len(records) + len(more))
    assert_round_trip(records + more, deliveries + more_deliveries, everything)


@pytest.mark.timeout(120)
def test_clean_restart_keeps_records_topic_id_and_configs(broker_factory):
    broker = broker_factory()
    assert_survives(broker, unique_topic("restart-clean"), broker.restart)


@pytest.mark.timeout(120)
def test_sigkill_after_flush_loses_nothing_acknowledged(broker_factory):
    broker = broker_factory()

    def crash_and_start():
        broker.kill()
        broker.start()

    assert_survives(broker, unique_topic("restart-kill"), crash_and_start)


# librdkafka reports its lost connection while the broker is down; nothing else is acceptable.
BROKER_DOWN_ERRORS = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}


@pytest.mark.timeout(120)
def test_idempotent_producer_carries_on_across_restart(broker_factory):
    """One long-lived producer keeps producing after a restart: no failed deliveries, no
    duplicates, no gaps, whether the broker restored its sequence state or the client recovered."""
    broker = broker_factory()
    topic = unique_topic("restart-pid")
    create_topic(broker.bootstrap, topic, partitions=len(PARTITIONS))
    errors = ClientErrors()
    producer = idempotent_producer(broker.bootstrap, errors)
    before = sample_records(1000)
    after = sample_records(1000, first_timestamp_ms=before[-1].timestamp_ms + 1)

    first = send_records(producer, topic, before)
    broker.restart()
    second = send_records(producer, topic, after)

    outcomes = first + second
    failed = [(index, str(o)) for index, o in enumerate(outcomes) if not isinstance(o, Delivery)]
    assert not failed, f"{len(failed)} deliveries failed, first ones: {failed[:3]}"
    unexpected = [str(e) for e in errors.errors if e.code() not in BROKER_DOWN_ERRORS or e.fatal()]
    assert not unexpected, f"producer reported errors: {unexpected}"
    read = consume_records(broker.bootstrap, topic, PARTITIONS, len(outcomes))
    assert_round_trip(before + after, outcomes, read)
