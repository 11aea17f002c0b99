"""The client-driven workloads: produce, consume and end-to-end latency, with librdkafka.

Each workload takes its settings and returns a plain dict of results (the
shape ``--json`` prints). Python runs once per record here only where
librdkafka hands records to Python anyway (delivery reports, consumed
messages); everything else is librdkafka's own threads.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from kafkacompat.perf.report import Progress
from kafkacompat.perf.stats import LatencyHistogram, Throughput

# How long a workload may see no progress before it gives up.
STALL_TIMEOUT_S = 30.0
# A broker that never answers should fail a benchmark in seconds, not librdkafka's 5 minutes.
MESSAGE_TIMEOUT_MS = 30_000
CONSUME_BATCH = 10_000
POLL_EVERY = 64
FETCH_QUEUE_BACKOFF_MS = 10
E2E_RATE = 1000.0


class WorkloadError(RuntimeError):
    """The workload could not run to completion (broker down, topic missing, stalled)."""


@dataclass(frozen=True)
class ProduceSettings:
    bootstrap: str
    topic: str
    num_records: int
    record_size: int = 100
    partitions: int = 1
    acks: str = "all"
    compression: str = "none"
    linger_ms: float = 5.0
    # Records per second; <= 0 means as fast as the client can go.
    throughput: float = -1.0
    extra: Mapping[str, str] = field(default_factory=dict)
    # > 0: a transactional producer commits a transaction every this many records.
    records_per_transaction: int = 0

    def client_config(self) -> dict[str, Any]:
        transactional = {"transactional.id": f"kafkacompat-perf-{os.getpid()}-{self.topic}"} \
            if self.records_per_transaction > 0 else {}
        return {
            "bootstrap.servers": self.bootstrap,
            "client.id": "kafkacompat-perf",
            "acks": self.acks,
            "compression.type": self.compression,
            "linger.ms": self.linger_ms,
            "message.timeout.ms": MESSAGE_TIMEOUT_MS,
            **transactional,
            **self.extra,
        }


@dataclass(frozen=True)
class ConsumeSettings:
    bootstrap: str
    topic: str
    num_records: int
    extra: Mapping[str, str] = field(default_factory=dict)

    def client_config(self) -> dict[str, Any]:
        return {
            "bootstrap.servers": self.bootstrap,
            "client.id": "kafkacompat-perf",
            # assign() needs no group, but librdkafka wants an id; nothing is committed.
            "group.id": f"kafkacompat-perf-{os.getpid()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            # librdkafka stops fetching for this long whenever its local queue
            # holds queued.min.messages (100,000); at the default, 1 s, a
            # consumer that drains that in 0.1 s spends most of a run waiting,
            # and measures the pause instead of the broker.
            "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
            **self.extra,
        }


def _connection_settings(extra: Mapping[str, str]) -> dict[str, str]:
    """The client settings that say how to connect (TLS, SASL), which the admin client needs as well."""
    return {name: value for name, value in extra.items() if name.startswith(("security.", "ssl.", "sasl.", "enable.sasl"))}


def ensure_topic(bootstrap: str, topic: str, partitions: int, timeout_s: float = 60.0,
                 extra: Mapping[str, str] | None = None) -> int:
    """Create ``topic`` unless it exists; wait until Metadata lists it. Returns its partition count.

    Replicated as a production topic would be: three replicas, or one per broker in a smaller cluster.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap, **_connection_settings(extra or {})})
    replication_factor = min(3, len(admin.list_topics(timeout=timeout_s).brokers))
    future = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=replication_factor)],
        operation_timeout=timeout_s,
    )[topic]
    try:
        future.result(timeout=timeout_s)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise WorkloadError(f"cannot create topic {topic}: {exc.args[0].str()}") from exc
    deadline = time.monotonic() + timeout_s
    while True:
        described = admin.list_topics(topic, timeout=timeout_s).topics.get(topic)
        if described is not None and described.error is None and described.partitions:
            return len(described.partitions)
        if time.monotonic() > deadline:
            raise WorkloadError(f"topic {topic} did not appear in Metadata within {timeout_s:.0f} s")
        time.sleep(0.05)


def run_produce(settings: ProduceSettings, *, progress: bool = True) -> dict[str, Any]:
    """Send ``num_records`` records of ``record_size`` random bytes; time until the last is acknowledged.

    With ``records_per_transaction`` the records go in transactions of that
    many, each committed before the next begins; the time includes the commits.
    """
    ensure_topic(settings.bootstrap, settings.topic, settings.partitions, extra=settings.extra)
    latency = LatencyHistogram()
    record_latency = latency.record_seconds
    first_errors: list[str] = []
    error_count = 0

    def on_delivery(err: KafkaError | None, msg: Any) -> None:
        nonlocal error_count
        if err is None:
            record_latency(msg.latency())
            return
        error_count += 1
        if len(first_errors) < 5:
            first_errors.append(err.str())

    producer = Producer({**settings.client_config(), "on_delivery": on_delivery})
    payload = os.urandom(settings.record_size)
    line = Progress(f"produce {settings.topic}", settings.num_records, enabled=progress)
    interval = 1.0 / settings.throughput if settings.throughput > 0 else 0.0
    produce, poll, topic = producer.produce, producer.poll, settings.topic
    per_transaction = settings.records_per_transaction
    if per_transaction:
        producer.init_transactions(MESSAGE_TIMEOUT_MS / 1000)
    start = time.perf_counter()
    for sent in range(settings.num_records):
        if per_transaction and not sent % per_transaction:
            if sent:
                producer.commit_transaction(MESSAGE_TIMEOUT_MS / 1000)
            producer.begin_transaction()
        if interval:
            _sleep_until(start + sent * interval)
        while True:
            try:
                produce(topic, payload)
                break
            except BufferError:
                poll(0.005)  # the local queue is full: let deliveries drain it
        # Delivery latency is measured when the report is served, so serve them promptly:
        # unpaced, 64 records are well under 0.1 ms apart, and polling that often costs 12% less.
        if interval or not sent % POLL_EVERY:
            poll(0)
            line.update(sent, sent * settings.record_size)
    if per_transaction:
        producer.commit_transaction(MESSAGE_TIMEOUT_MS / 1000)  # flushes first
    remaining = producer.flush(MESSAGE_TIMEOUT_MS / 1000 + 5)
    elapsed = time.perf_counter() - start
    line.finish()
    if remaining:
        raise WorkloadError(f"{remaining} records were neither delivered nor failed")
    delivered = latency.count
    return {
        "workload": f"produce {settings.topic} ({settings.partitions} partition(s), acks={settings.acks}"
                    + (f", {per_transaction} records per transaction)" if per_transaction else ")"),
        **Throughput(delivered, delivered * settings.record_size, elapsed).as_dict(),
        "latency": latency.summary_ms(),
        "errors": error_count,
        "first_errors": first_errors,
    }


def _sleep_until(moment: float) -> None:
    delay = moment - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def _partitions(consumer: Consumer, topic: str) -> list[int]:
    described = consumer.list_topics(topic, timeout=30).topics.get(topic)
    if described is None or described.error is not None or not described.partitions:
        raise WorkloadError(f"topic {topic} is not available for consuming")
    return sorted(described.partitions)


def _assign_from_beginning(settings: ConsumeSettings) -> Consumer:
    consumer = Consumer(settings.client_config())
    partitions = _partitions(consumer, settings.topic)
    consumer.assign([TopicPartition(settings.topic, p, OFFSET_BEGINNING) for p in partitions])
    return consumer


def run_consume(settings: ConsumeSettings, *, progress: bool = True) -> dict[str, Any]:
    """assign() every partition from the beginning and read until ``num_records`` arrive."""
    consumer = _assign_from_beginning(settings)
    line = Progress(f"consume {settings.topic}", settings.num_records, enabled=progress)
    records = payload_bytes = errors = 0
    first_record_s: float | None = None
    # Each batch is 10,000 new objects; the cyclic collector's passes over
    # them cost this client about a tenth of its rate.
    gc.disable()
    start = last_progress = time.perf_counter()
    try:
        while records < settings.num_records:
            batch = consumer.consume(min(CONSUME_BATCH, settings.num_records - records), 0.5)
            now = time.perf_counter()
            if not batch:
                if now - last_progress > STALL_TIMEOUT_S:
                    raise WorkloadError(f"consumed {records}/{settings.num_records}, then nothing for "
                                        f"{STALL_TIMEOUT_S:.0f} s")
                continue
            good = [m for m in batch if m.error() is None]
            errors += len(batch) - len(good)
            records += len(good)
            payload_bytes += sum(map(len, good))
            if first_record_s is None:
                first_record_s = now - start
            last_progress = now
            line.update(records, payload_bytes)
        elapsed = time.perf_counter() - start
    finally:
        gc.enable()
        line.finish()
        consumer.close()
    return {
        "workload": f"consume {settings.topic}",
        **Throughput(records, payload_bytes, elapsed).as_dict(),
        "first_record_ms": round((first_record_s or 0.0) * 1000, 1),
        "errors": errors,
    }


def run_end_to_end(
    produce: ProduceSettings, consume: ConsumeSettings, *, progress: bool = True
) -> dict[str, Any]:
    """A paced producer (``produce.throughput`` rec/s) and a consumer measuring receive time - CreateTime.

    The producer runs in a process of its own: sharing the consumer's
    interpreter lock would add its pauses to the latencies measured. A
    warm-up record goes round first, so connection set-up and the first fetch
    are not counted. Record timestamps have millisecond resolution, which
    bounds the precision of each sample.
    """
    ensure_topic(produce.bootstrap, produce.topic, produce.partitions, extra=produce.extra)
    consumer = _assign_from_beginning(consume)
    try:
        warm_up = Producer(produce.client_config())
        warm_up.produce(produce.topic, os.urandom(produce.record_size))
        warm_up.flush(MESSAGE_TIMEOUT_MS / 1000)
        _await_records(consumer, 1)
        spawn = multiprocessing.get_context("spawn")
        failures = spawn.Queue()
        sender = spawn.Process(target=_paced_send, args=(produce, failures), name="e2e-producer", daemon=True)
        latency = LatencyHistogram()
        line = Progress(f"end-to-end {produce.topic}", produce.num_records, enabled=progress)
        sender.start()
        received = errors = 0
        last_progress = time.perf_counter()
        while received < produce.num_records:
            # poll(), not consume(n): consume waits for n records or the timeout, which would be measured.
            msg = consumer.poll(0.5)
            if msg is not None:
                last_progress = time.perf_counter()
                if msg.error() is not None:
                    errors += 1
                    continue
                latency.record_us(time.time_ns() // 1000 - msg.timestamp()[1] * 1000)
                received += 1
                line.update(received, received * produce.record_size)
            elif not failures.empty() or time.perf_counter() - last_progress > STALL_TIMEOUT_S:
                reason = failures.get() if not failures.empty() else "no records"
                raise WorkloadError(f"end-to-end stalled at {received}/{produce.num_records}: {reason}")
        line.finish()
        sender.join(MESSAGE_TIMEOUT_MS / 1000)
    finally:
        consumer.close()
    return {
        "workload": f"end-to-end {produce.topic} at {produce.throughput:.0f} rec/s (acks={produce.acks})",
        "records": received,
        "latency": latency.summary_ms(),
        "errors": errors,
    }


def _paced_send(settings: ProduceSettings, failures: Any) -> None:
    """The end-to-end producer process: ``num_records`` records at ``throughput`` rec/s."""
    producer = Producer(settings.client_config())
    payload = os.urandom(settings.record_size)
    interval = 1.0 / settings.throughput
    try:
        start = time.perf_counter()
        for sent in range(settings.num_records):
            _sleep_until(start + sent * interval)
            producer.produce(settings.topic, payload)
            producer.poll(0)
        if producer.flush(MESSAGE_TIMEOUT_MS / 1000):
            raise WorkloadError("end-to-end producer could not deliver every record")
    except Exception as exc:  # reported by the consuming process
        failures.put(f"{type(exc).__name__}: {exc}")


def _await_records(consumer: Consumer, count: int) -> None:
    deadline = time.perf_counter() + STALL_TIMEOUT_S
    seen = 0
    while seen < count:
        seen += sum(1 for m in consumer.consume(count - seen, 0.5) if m.error() is None)
        if time.perf_counter() > deadline:
            raise WorkloadError("the warm-up record never came back to the consumer")
