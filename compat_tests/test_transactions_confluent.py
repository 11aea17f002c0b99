"""Transactions with confluent-kafka (librdkafka), unmodified: commit, abort, read_committed,
consume-transform-produce, fencing, the coordinator's timeout abort, and SIGKILL in between."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition

from compat_helpers import start_holding_markers, unique_topic, wait_until
from confluent_clients import ClientErrors, create_topic, read_to_end

pytestmark = pytest.mark.timeout(120)


def transactional_producer(bootstrap: str, transactional_id: str, **config) -> Producer:
    producer = Producer({"bootstrap.servers": bootstrap, "transactional.id": transactional_id,
                         "linger.ms": 5, **config})
    producer.init_transactions(30)
    return producer


def produce_values(producer: Producer, topic: str, values: list[bytes], partitions: int) -> None:
    for number, value in enumerate(values):
        producer.produce(topic, value=value, key=b"k%d" % number, partition=number % partitions)
    producer.flush(30)


def values_of(read: list[tuple[int, int, bytes]]) -> set[bytes]:
    return {value for _, _, value in read}


def test_committed_records_are_read_and_aborted_ones_are_not(broker):
    topic = unique_topic("txn-commit-abort")
    create_topic(broker.bootstrap, topic, partitions=2)
    producer = transactional_producer(broker.bootstrap, f"tid-{topic}")
    committed = [b"c%d" % n for n in range(50)]
    aborted = [b"a%d" % n for n in range(30)]
    producer.begin_transaction()
    produce_values(producer, topic, committed[:25], 2)
    producer.commit_transaction(30)
    producer.begin_transaction()
    produce_values(producer, topic, aborted, 2)
    producer.abort_transaction(30)
    producer.begin_transaction()
    produce_values(producer, topic, committed[25:], 2)
    producer.commit_transaction(30)

    read_committed = read_to_end(broker.bootstrap, topic, [0, 1], "read_committed")
    assert sorted(v for _, _, v in read_committed) == sorted(committed)
    read_uncommitted = read_to_end(broker.bootstrap, topic, [0, 1], "read_uncommitted")
    assert sorted(v for _, _, v in read_uncommitted) == sorted(committed + aborted)
    for partition in (0, 1):
        offsets = sorted(o for p, o, _ in read_uncommitted if p == partition)
        # The first two transactions' markers sit between the data; no control record reaches the app.
        assert len(set(range(offsets[-1] + 1)) - set(offsets)) == 2


def test_an_open_transaction_holds_read_committed_readers_at_the_lso(broker):
    topic = unique_topic("txn-lso")
    create_topic(broker.bootstrap, topic, partitions=1)
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce(topic, value=b"before")
    plain.flush(10)
    producer = transactional_producer(broker.bootstrap, f"tid-{topic}")
    producer.begin_transaction()
    produce_values(producer, topic, [b"t1", b"t2"], 1)
    plain.produce(topic, value=b"during")
    plain.flush(10)
    assert values_of(read_to_end(broker.bootstrap, topic, [0], "read_committed")) == {b"before"}
    assert values_of(read_to_end(broker.bootstrap, topic, [0], "read_uncommitted")) == {b"before", b"t1", b"t2",
                                                                                      b"during"}
    producer.commit_transaction(30)
    assert values_of(read_to_end(broker.bootstrap, topic, [0], "read_committed")) == {b"before", b"t1", b"t2",
                                                                                   b"during"}


def test_consume_transform_produce_commits_offsets_with_the_output(broker):
    source, sink = unique_topic("txn-ctp-in"), unique_topic("txn-ctp-out")
    create_topic(broker.bootstrap, source, partitions=1)
    create_topic(broker.bootstrap, sink, partitions=1)
    feeder = Producer({"bootstrap.servers": broker.bootstrap})
    for n in range(20):
        feeder.produce(source, value=b"%d" % n)
    feeder.flush(10)
    group = f"ctp-{uuid.uuid4().hex[:8]}"
    errors = ClientErrors()
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "enable.auto.commit": False,
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed", "error_cb": errors})
    consumer.subscribe([source])
    producer = transactional_producer(broker.bootstrap, f"tid-{group}")
    try:
        for attempt_commits in (False, True):
            producer.begin_transaction()
            taken = []
            deadline = time.monotonic() + 30
            while len(taken) < 10:
                assert time.monotonic() < deadline, f"consumed {len(taken)} of 10"
                for message in consumer.consume(num_messages=10 - len(taken), timeout=0.5):
                    assert message.error() is None, message.error()
                    taken.append(message)
            for message in taken:
                producer.produce(sink, value=b"out-" + message.value())
            producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                                 consumer.consumer_group_metadata(), 30)
            if attempt_commits:
                producer.commit_transaction(30)
            else:
                producer.abort_transaction(30)
                # Back to the last committed offset (none yet: the start), as an app does after an abort.
                for tp in consumer.assignment():
                    consumer.seek(TopicPartition(source, tp.partition, OFFSET_BEGINNING))
        committed = consumer.committed([TopicPartition(source, 0)], timeout=10)
        assert committed[0].offset == 10
    finally:
        consumer.close()
    errors.assert_none("consumer")
    assert sorted(values_of(read_to_end(broker.bootstrap, sink, [0], "read_committed"))) == sorted(
        b"out-%d" % n for n in range(10))


def test_a_second_producer_with_the_same_transactional_id_fences_the_first(broker):
    topic = unique_topic("txn-fence")
    create_topic(broker.bootstrap, topic, partitions=1)
    transactional_id = f"tid-{topic}"
    zombie = transactional_producer(broker.bootstrap, transactional_id)
    zombie.begin_transaction()
    produce_values(zombie, topic, [b"zombie"], 1)
    successor = transactional_producer(broker.bootstrap, transactional_id)  # aborts the zombie's transaction
    successor.begin_transaction()
    produce_values(successor, topic, [b"successor"], 1)
    successor.commit_transaction(30)
    with pytest.raises(KafkaException) as info:
        zombie.commit_transaction(30)
    assert info.value.args[0].code() == KafkaError._FENCED
    assert values_of(read_to_end(broker.bootstrap, topic, [0], "read_committed")) == {b"successor"}


def test_an_abandoned_transaction_is_aborted_by_the_broker_after_its_timeout(broker):
    topic = unique_topic("txn-timeout")
    create_topic(broker.bootstrap, topic, partitions=1)
    producer = transactional_producer(broker.bootstrap, f"tid-{topic}", **{"transaction.timeout.ms": 2000})
    producer.begin_transaction()
    produce_values(producer, topic, [b"abandoned"], 1)
    plain = Producer({"bootstrap.servers": broker.bootstrap})
    plain.produce(topic, value=b"after")
    plain.flush(10)
    # The open transaction holds the LSO at 0 until the coordinator aborts it (timeout 2 s, checked every 1 s).
    wait_until(lambda: values_of(read_to_end(broker.bootstrap, topic, [0], "read_committed")) == {b"after"},
               15, "the timed-out transaction's abort")
    with pytest.raises(KafkaException):
        producer.commit_transaction(10)


def test_sigkill_between_produce_and_commit_leaves_nothing_half_visible(broker_factory):
    broker = broker_factory()
    topic = unique_topic("txn-crash-open")
    create_topic(broker.bootstrap, topic, partitions=2)
    transactional_id = f"tid-{topic}"
    producer = transactional_producer(broker.bootstrap, transactional_id)
    producer.begin_transaction()
    produce_values(producer, topic, [b"first-%d" % n for n in range(10)], 2)
    producer.commit_transaction(30)
    producer.begin_transaction()
    produce_values(producer, topic, [b"open-%d" % n for n in range(10)], 2)
    broker.kill()
    broker.start()
    assert values_of(read_to_end(broker.bootstrap, topic, [0, 1], "read_uncommitted")) >= {b"open-0", b"first-0"}
    successor = transactional_producer(broker.bootstrap, transactional_id)  # fences and aborts the open one
    successor.begin_transaction()
    produce_values(successor, topic, [b"next-%d" % n for n in range(10)], 2)
    successor.commit_transaction(30)
    assert sorted(values_of(read_to_end(broker.bootstrap, topic, [0, 1], "read_committed"))) == sorted(
        [b"first-%d" % n for n in range(10)] + [b"next-%d" % n for n in range(10)])


def test_sigkill_between_end_txn_and_the_markers_completes_the_commit_after_restart(broker_factory, monkeypatch):
    broker = start_holding_markers(broker_factory, monkeypatch)  # decides the commit, writes no marker
    topic = unique_topic("txn-crash-prepared")
    create_topic(broker.bootstrap, topic, partitions=2)
    transactional_id = f"tid-{topic}"
    producer = transactional_producer(broker.bootstrap, transactional_id)
    producer.begin_transaction()
    values = [b"prepared-%d" % n for n in range(10)]
    produce_values(producer, topic, values, 2)
    producer.commit_transaction(30)  # answered once PrepareCommit is durable
    assert read_to_end(broker.bootstrap, topic, [0, 1], "read_committed") == []
    broker.kill()
    broker.start()
    wait_until(lambda: sorted(values_of(read_to_end(broker.bootstrap, topic, [0, 1], "read_committed"))) == sorted(values),
               15, "the prepared commit's markers after the restart")
    successor = transactional_producer(broker.bootstrap, transactional_id)
    successor.begin_transaction()
    produce_values(successor, topic, [b"after"], 2)
    successor.commit_transaction(30)
    assert values_of(read_to_end(broker.bootstrap, topic, [0, 1], "read_committed")) == {*values, b"after"}


def test_the_cli_lists_and_describes_an_open_transaction_and_its_producer(broker):
    from test_cli_tools import cli

    topic = unique_topic("txn-cli")
    create_topic(broker.bootstrap, topic, partitions=2)
    transactional_id = f"tid-{topic}"
    producer = transactional_producer(broker.bootstrap, transactional_id, **{"transaction.timeout.ms": 60_000})
    producer.begin_transaction()
    produce_values(producer, topic, [b"x", b"y", b"z"], 1)  # partition 0 only
    listed = json.loads(cli(broker, "transactions", "list", "--state", "Ongoing", "--json").stdout)
    (mine,) = [t for t in listed if t["transactional_id"] == transactional_id]
    assert (mine["state"], mine["coordinator"]) == ("Ongoing", 1)
    described = json.loads(cli(broker, "transactions", "describe", "--transactional-id", transactional_id,
                               "--json").stdout)
    assert (described["state"], described["producer_id"], described["partitions"]) == (
        "Ongoing", mine["producer_id"], [f"{topic}-0"])
    assert described["timeout_ms"] == 60_000
    (topic_info,) = json.loads(cli(broker, "topics", "describe", topic, "--json").stdout)
    (shown,) = topic_info["producers"]
    assert (shown["partition"], shown["producer_id"], shown["current_txn_start_offset"], shown["last_sequence"]) == (
        0, mine["producer_id"], 0, 2)
    human = cli(broker, "transactions", "describe", "--transactional-id", transactional_id).stdout
    assert "Ongoing" in human and f"{topic}-0" in human
    producer.commit_transaction(30)
    wait_until(lambda: json.loads(cli(broker, "transactions", "describe", "--transactional-id", transactional_id,
                                      "--json").stdout)["state"] == "CompleteCommit", 10, "the completed commit")
    missing = cli(broker, "transactions", "describe", "--transactional-id", "no-such-id", ok=False)
    assert missing.returncode == 1 and "TRANSACTIONAL_ID_NOT_FOUND" in missing.stderr
