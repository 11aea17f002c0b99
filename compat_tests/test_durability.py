"""Crash recovery seen through stock clients: SIGKILLs under load, and a segment tail damaged on disk."""

from __future__ import annotations

import struct
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from compat_helpers import Delivery, sample_records, unique_topic, wait_until
from confluent_clients import ClientErrors, consume_records, create_topic, produce_records

KILLS = 10
PARTITIONS = [0, 1]
# librdkafka reports its lost connection while the broker is down; nothing else is acceptable.
BROKER_DOWN_ERRORS = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN}


class ContinuousProducer:
    """An idempotent acks=all librdkafka producer sending numbered values, round robin over
    PARTITIONS, from a background thread until stopped. Only that thread touches the
    producer until `stop()` has joined it."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.errors = ClientErrors()
        self.producer = Producer({
            "bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all",
            "linger.ms": 2, "reconnect.backoff.ms": 50, "reconnect.backoff.max.ms": 300,
            "message.timeout.ms": 120_000, "error_cb": self.errors})
        self.sent = 0
        self.outcomes: dict[int, Delivery | KafkaError] = {}
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="continuous-producer", daemon=True)

    def _on_delivery(self, error, message) -> None:
        number = int(message.value())
        self.outcomes[number] = error if error is not None else Delivery(message.partition(), message.offset())

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self.sent - len(self.outcomes) < 2000:  # a bounded backlog while the broker is down
                self.producer.produce(self.topic, value=b"%d" % self.sent,
                                      partition=PARTITIONS[self.sent % len(PARTITIONS)],
                                      on_delivery=self._on_delivery)
                self.sent += 1
            else:
                time.sleep(0.005)
            self.producer.poll(0)

    def start(self) -> None:
        self._thread.start()

    def acknowledged(self) -> int:
        return sum(isinstance(outcome, Delivery) for outcome in list(self.outcomes.values()))

    def wait_for_acks(self, count: int, timeout_s: float = 20) -> None:
        target = self.acknowledged() + count
        wait_until(lambda: self.acknowledged() >= target, timeout_s, f"{count} more acknowledgements")

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "producer thread did not stop"
        assert self.producer.flush(60) == 0, "producer could not deliver its backlog"


def commit_and_check(bootstrap: str, group: str, topic: str, offset: int | None = None) -> int:
    """Commit `offset` for partition 0 (when given) and return what the group has committed."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        if offset is not None:
            consumer.commit(offsets=[TopicPartition(topic, 0, offset)], asynchronous=False)
        (committed,) = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return committed.offset
    finally:
        consumer.close()


@pytest.mark.timeout(150)
def test_every_acknowledged_record_survives_repeated_sigkills_exactly_once(broker_factory):
    broker = broker_factory({"log.segment.bytes": "65536"})
    topic = unique_topic("sigkill")
    create_topic(broker.bootstrap, topic, partitions=len(PARTITIONS))
    group = f"sigkill-{uuid.uuid4().hex[:8]}"
    producer = ContinuousProducer(broker.bootstrap, topic)
    producer.start()
    committed = None
    for kill in range(KILLS):
        producer.wait_for_acks(200)
        if kill == KILLS // 2:
            committed = commit_and_check(broker.bootstrap, group, topic, producer.acknowledged() // 2)
        broker.kill()
        broker.start()
    producer.wait_for_acks(200)
    producer.stop()

    failed = {number: str(o) for number, o in producer.outcomes.items() if not isinstance(o, Delivery)}
    assert not failed, f"{len(failed)} deliveries failed, e.g. {list(failed.items())[:3]}"
    unexpected = [str(e) for e in producer.errors.errors if e.code() not in BROKER_DOWN_ERRORS or e.fatal()]
    assert not unexpected, f"producer reported errors: {unexpected}"
    assert len(producer.outcomes) == producer.sent

    read = consume_records(broker.bootstrap, topic, PARTITIONS, producer.sent)
    where_read = {}
    for position, record in read.items():
        assert record.value not in where_read, f"value {record.value!r} at {where_read[record.value]} and {position}"
        where_read[record.value] = position
    misplaced = [(number, delivery, where_read.get(b"%d" % number))
                 for number, delivery in producer.outcomes.items()
                 if where_read.get(b"%d" % number) != (delivery.partition, delivery.offset)]
    assert not misplaced, f"{len(misplaced)} acknowledged records not read at their offsets: {misplaced[:3]}"
    assert len(read) == producer.sent  # nothing unacknowledged slipped in either

    assert commit_and_check(broker.bootstrap, group, topic) == committed  # survived the later kills
    starts = broker.log_text().count("log recovery after an unclean shutdown")
    assert starts == KILLS, f"expected one recovery line per restart after a kill, saw {starts}"


def _batches(path) -> list[tuple[int, int, int]]:
    """(position, base offset, size) of each record batch in a segment file, walked by its length fields."""
    data = path.read_bytes()
    batches, position = [], 0
    while position + 12 <= len(data):
        base_offset, length = struct.unpack_from(">qi", data, position)
        batches.append((position, base_offset, 12 + length))
        position += 12 + length
    return batches


@pytest.mark.timeout(120)
def test_a_damaged_segment_tail_is_cut_at_start_and_everything_before_it_is_served(broker_factory):
    broker = broker_factory({"log.segment.bytes": "16384"})
    topic = unique_topic("torn")
    create_topic(broker.bootstrap, topic, partitions=1)
    records = sample_records(600)
    deliveries = produce_records(broker.bootstrap, topic, records, partition=0, **{"linger.ms": 5, "batch.size": 4000})
    broker.stop()

    directory = broker.data_dir / f"{topic}-0"
    segments = sorted(directory.glob("*.log"))
    assert len(segments) >= 3, "the test wants sealed segments besides the active one"
    active = segments[-1]
    position, cut_offset, size = _batches(active)[-1]
    with open(active, "r+b") as f:  # flip a byte inside the last batch's records: its CRC no longer holds
        f.seek(position + size - 5)
        byte = f.read(1)
        f.seek(position + size - 5)
        f.write(bytes([byte[0] ^ 0xFF]))
    sealed = segments[0]
    sealed.with_suffix(".timeindex").unlink()  # and lose one sealed segment's indexes
    sealed.with_suffix(".index").write_bytes(b"\x7f" * 24)
    # A clean start trusts the files as the broker left them (as Kafka does) and reads none:
    # without the marker the start is an unclean one, which checks them.
    (broker.data_dir / ".clean-shutdown").unlink()

    broker.start()
    assert (f"log recovery after an unclean shutdown: 1 partitions, 1 segments scanned, 1 index sets rebuilt, "
            f"{size} bytes truncated") in broker.log_text().split("=== starting")[-1]
    kept = [(record, delivery) for record, delivery in zip(records, deliveries) if delivery.offset < cut_offset]
    assert 0 < len(kept) < len(records)
    read = consume_records(broker.bootstrap, topic, [0], len(kept))
    assert sorted(offset for _, offset in read) == list(range(cut_offset))
    for record, delivery in kept:
        got = read[(0, delivery.offset)]
        assert (got.key, got.value, got.headers, got.timestamp_ms) == (
            record.key, record.value, record.headers, record.timestamp_ms)

    more = sample_records(10, first_timestamp_ms=records[-1].timestamp_ms + 1)
    again = produce_records(broker.bootstrap, topic, more, partition=0)
    assert [d.offset for d in again] == list(range(cut_offset, cut_offset + 10))
    wait_until(lambda: len(consume_records(broker.bootstrap, topic, [0], cut_offset + 10)) == cut_offset + 10,
               20, "the records written after the repair")


def test_an_unclean_start_after_a_recovery_checkpoint_reads_no_partition_and_loses_nothing(broker_factory):
    broker = broker_factory({"log.flush.offset.checkpoint.interval.ms": "100"})
    topic = unique_topic("checkpointed")
    create_topic(broker.bootstrap, topic, partitions=4)
    records = sample_records(200)
    deliveries = produce_records(broker.bootstrap, topic, records)  # idempotent: producer state matters too
    checkpoint = broker.data_dir / "recovery-point-offset-checkpoint"

    def written_at() -> int | None:  # None until the first checkpoint, which a loaded machine may not have taken yet
        return checkpoint.stat().st_mtime_ns if checkpoint.exists() else None

    before = written_at()
    wait_until(lambda: written_at() not in (None, before), 10, "a recovery checkpoint after the produce")
    time.sleep(0.3)  # and one more round, in case the first was taken before the last flush
    broker.kill()

    broker.start()
    assert "log recovery after an unclean shutdown: 4 partitions, 0 segments scanned" \
        in broker.log_text().split("=== starting")[-1]
    read = consume_records(broker.bootstrap, topic, [0, 1, 2, 3], len(records))
    assert sorted((d.partition, d.offset) for d in deliveries) == sorted(read)
    more = produce_records(broker.bootstrap, topic, sample_records(8), partition=0)
    assert [d.offset for d in more] == list(range(sum(d.partition == 0 for d in deliveries),
                                                   sum(d.partition == 0 for d in deliveries) + 8))
