"""confluent-kafka (librdkafka) producer and consumer drivers shared by the compat tests.

They fail loudly: any librdkafka error callback or delivery error becomes a
test failure unless the caller asked for the raw outcomes.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import uuid

from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME,
                             Consumer, KafkaError, Producer, TopicCollection, TopicPartition)
from confluent_kafka.admin import AdminClient, ConfigEntry, ConfigResource, NewTopic, ResourceType

from compat_helpers import Delivery, ReadRecord, SampleRecord

TIMESTAMP_TYPES = {TIMESTAMP_CREATE_TIME: "CreateTime", TIMESTAMP_LOG_APPEND_TIME: "LogAppendTime"}


class ClientErrors:
    """librdkafka `error_cb`: collects client-level errors so a test can insist there were none."""

    def __init__(self) -> None:
        self.errors: list[KafkaError] = []

    def __call__(self, error: KafkaError) -> None:
        self.errors.append(error)

    def assert_none(self, client: str) -> None:
        assert not self.errors, f"{client} reported errors: {[str(e) for e in self.errors]}"


def admin_client(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topic(bootstrap: str, topic: str, partitions: int, config: dict[str, str] | None = None) -> None:
    admin = admin_client(bootstrap)  # must outlive the futures: a destroyed client fails them
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=10, request_timeout=15)
    futures[topic].result(timeout=20)


def describe_topic(bootstrap: str, topic: str) -> tuple[tuple[int, int], list[int]]:
    """The topic id (as its two 64-bit halves, since librdkafka's Uuid has no equality) and partition ids."""
    admin = admin_client(bootstrap)
    (future,) = admin.describe_topics(TopicCollection([topic]), request_timeout=15).values()
    description = future.result(timeout=20)
    topic_id = description.topic_id
    return ((topic_id.get_most_significant_bits(), topic_id.get_least_significant_bits()),
            [p.id for p in description.partitions])


def describe_topic_configs(admin: AdminClient, topic: str) -> dict[str, ConfigEntry]:
    (future,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)], request_timeout=15).values()
    return future.result(timeout=20)


def idempotent_producer(bootstrap: str, errors: ClientErrors, **config) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                     "error_cb": errors, **config})


def send_records(producer: Producer, topic: str, records: list[SampleRecord],
                 partition: int | None = None, flush_timeout_s: float = 60) -> list[Delivery | KafkaError]:
    """Produce and flush; one outcome per record, in send order (a Delivery or the delivery error)."""
    outcomes: list[Delivery | KafkaError | None] = [None] * len(records)

    def on_delivery(index, error, message):
        outcomes[index] = error if error is not None else Delivery(message.partition(), message.offset())

    where = {} if partition is None else {"partition": partition}
    for index, record in enumerate(records):
        while True:
            try:
                producer.produce(topic, key=record.key, value=record.value, headers=record.headers,
                                 timestamp=record.timestamp_ms,
                                 on_delivery=functools.partial(on_delivery, index), **where)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(flush_timeout_s)
    assert remaining == 0, f"{remaining} records still unacknowledged after {flush_timeout_s}s"
    return outcomes


def produce_records(bootstrap: str, topic: str, records: list[SampleRecord],
                    partition: int | None = None, **config) -> list[Delivery]:
    """Idempotent produce that must succeed completely."""
    errors = ClientErrors()
    outcomes = send_records(idempotent_producer(bootstrap, errors, **config), topic, records, partition)
    failed = [(index, str(o)) for index, o in enumerate(outcomes) if not isinstance(o, Delivery)]
    assert not failed, f"{len(failed)} deliveries failed, first ones: {failed[:3]}"
    errors.assert_none("producer")
    return outcomes


def assigned_consumer(bootstrap: str, errors: ClientErrors, topic: str, partitions: list[int]) -> Consumer:
    """A consumer on explicit partitions from the start; it never joins a group or commits."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"compat-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "error_cb": errors})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    return consumer


def to_read_record(message) -> ReadRecord:
    timestamp_type, timestamp_ms = message.timestamp()
    return ReadRecord(message.key(), message.value(), message.headers() or [],
                      TIMESTAMP_TYPES.get(timestamp_type, str(timestamp_type)), timestamp_ms)


def consume_records(bootstrap: str, topic: str, partitions: list[int], expected_count: int,
                    timeout_s: float = 60) -> dict[tuple[int, int], ReadRecord]:
    """Read `expected_count` records from the start of the partitions, then linger briefly
    to catch any extra ones; keyed by (partition, offset)."""
    errors = ClientErrors()
    consumer = assigned_consumer(bootstrap, errors, topic, partitions)
    read: dict[tuple[int, int], ReadRecord] = {}
    try:
        deadline = time.monotonic() + timeout_s
        linger_until = None
        while linger_until is None or time.monotonic() < linger_until:
            assert time.monotonic() < deadline, f"read {len(read)} of {expected_count} records in {timeout_s}s"
            for message in consumer.consume(num_messages=1000, timeout=0.2):
                assert message.error() is None, f"consumer error: {message.error()}"
                position = (message.partition(), message.offset())
                assert position not in read, f"record at {position} delivered twice"
                read[position] = to_read_record(message)
            if linger_until is None and len(read) >= expected_count:
                linger_until = time.monotonic() + 0.5
    finally:
        consumer.close()
    errors.assert_none("consumer")
    return read


class SteadyTraffic:
    """An ordinary idempotent producer and an assigned consumer exchanging numbered records
    on partition 0 of `topic`, in a background thread.

    Lets a test show the broker kept serving well-behaved clients while other
    connections fed it bad input. Only the background thread touches the
    clients until `stop()` has joined it.
    """

    MAX_RECORDS = 50_000  # a hard bound, whatever happens to the test

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.errors = ClientErrors()
        self.producer = idempotent_producer(bootstrap, self.errors, **{"linger.ms": 0})
        self.consumer = assigned_consumer(bootstrap, self.errors, topic, [0])
        self.sent = 0
        self.delivered: list[Delivery | KafkaError] = []
        self.consumed: list[tuple[int, bytes]] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="steady-traffic", daemon=True)

    def _on_delivery(self, error, message) -> None:
        self.delivered.append(error if error is not None else Delivery(message.partition(), message.offset()))

    def _take(self, messages) -> None:
        for message in messages:
            if message.error() is not None:
                self.errors(message.error())
            else:
                self.consumed.append((message.offset(), message.value()))

    def _run(self) -> None:
        while not self._stopping.is_set() and self.sent < self.MAX_RECORDS:
            self.producer.produce(self.topic, value=b"%d" % self.sent, partition=0, on_delivery=self._on_delivery)
            self.sent += 1
            self.producer.poll(0)
            self._take(self.consumer.consume(num_messages=100, timeout=0.01))

    def start(self) -> None:
        self._thread.start()

    def wait_for_progress(self, records: int = 20, timeout_s: float = 15) -> None:
        """Block until both the producer's acks and the consumer's reads advance by `records`."""
        delivered, consumed = len(self.delivered), len(self.consumed)
        deadline = time.monotonic() + timeout_s
        while len(self.delivered) < delivered + records or len(self.consumed) < consumed + records:
            assert self._thread.is_alive(), "traffic thread died"
            assert time.monotonic() < deadline, (
                f"ordinary clients stalled: {len(self.delivered) - delivered} acks and "
                f"{len(self.consumed) - consumed} reads in {timeout_s}s; errors {self.errors.errors}")
            time.sleep(0.02)

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "traffic thread did not stop"

    def verify(self) -> None:
        """Everything sent was acknowledged at offsets 0..n-1 and read back in order, error-free."""
        assert self.producer.flush(15) == 0, "producer could not flush"
        deadline = time.monotonic() + 15
        while len(self.consumed) < self.sent and time.monotonic() < deadline:
            self._take(self.consumer.consume(num_messages=1000, timeout=0.2))
        self.consumer.close()
        assert self.delivered == [Delivery(0, offset) for offset in range(self.sent)]
        assert self.consumed == [(offset, b"%d" % offset) for offset in range(self.sent)]
        self.errors.assert_none("background clients")


@contextlib.contextmanager
def steady_traffic(bootstrap: str):
    """Ordinary clients make progress before the body runs and after it, then everything is verified."""
    topic = f"steady-{uuid.uuid4().hex[:10]}"
    create_topic(bootstrap, topic, partitions=1)
    traffic = SteadyTraffic(bootstrap, topic)
    traffic.start()
    try:
        traffic.wait_for_progress()
        yield traffic
        traffic.wait_for_progress()
    finally:
        traffic.stop()
    traffic.verify()


def read_to_end(bootstrap: str, topic: str, partitions: list[int], isolation: str) -> list[tuple[int, int, bytes]]:
    """Every record from the start up to the end the isolation level shows (LSO or high watermark)."""
    errors = ClientErrors()
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"txn-{uuid.uuid4().hex[:8]}",
                        "enable.auto.commit": False, "isolation.level": isolation, "error_cb": errors})
    try:
        marks = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10, cached=False)
                 for p in partitions}
        ends = {p: high for p, (low, high) in marks.items() if high > low}  # nothing to read where high == low
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        read = []
        deadline = time.monotonic() + 30
        while True:
            for message in consumer.consume(num_messages=1000, timeout=0.2):
                assert message.error() is None, message.error()
                read.append((message.partition(), message.offset(), message.value()))
            positions = {tp.partition: tp.offset for tp in consumer.position(
                [TopicPartition(topic, p) for p in partitions])}
            if all(positions[p] >= end for p, end in ends.items()):
                break
            assert time.monotonic() < deadline, f"positions {positions} never reached {ends}"
    finally:
        consumer.close()
    errors.assert_none("consumer")
    return read
