"""Retention seen through stock clients: expired segments go one at a time, the log start offset
moves, and consumers positioned before it reset as their auto.offset.reset says."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from compat_helpers import sample_records, unique_topic, wait_until
from confluent_clients import ClientErrors, create_topic, produce_records

FAST_CHECKS = {"log.retention.check.interval.ms": "200"}
SMALL_BATCHES = {"linger.ms": 5, "batch.size": 3000}


def watermarks(bootstrap: str, topic: str) -> tuple[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"marks-{uuid.uuid4().hex[:8]}"})
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        consumer.close()


def segment_bases(broker, topic: str) -> list[int]:
    return sorted(int(path.stem) for path in (broker.data_dir / f"{topic}-0").glob("*.log"))


def first_messages(bootstrap: str, topic: str, reset: str, count: int, produce_once_at=None) -> list:
    """Assign partition 0 at offset 0 with the given auto.offset.reset and collect `count` messages (or errors).

    `produce_once_at` = (offset, produce): call `produce` once the consumer fetches from `offset`
    (librdkafka's statistics tell where its fetcher stands after a reset).
    """
    errors = ClientErrors()
    fetching_from = []

    def on_stats(stats: str) -> None:
        partition = json.loads(stats).get("topics", {}).get(topic, {}).get("partitions", {}).get("0", {})
        if partition.get("fetch_state") == "active":
            fetching_from.append(partition.get("next_offset"))

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reset-{uuid.uuid4().hex[:8]}",
                         "enable.auto.commit": False, "auto.offset.reset": reset, "error_cb": errors,
                         "stats_cb": on_stats, "statistics.interval.ms": 100})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    try:
        deadline = time.monotonic() + 20
        while len(got) < count and time.monotonic() < deadline:
            if produce_once_at is not None and produce_once_at[0] in fetching_from:
                produce_once_at[1]()
                produce_once_at = None
            for message in consumer.consume(num_messages=count, timeout=0.2):
                got.append(message.error() if message.error() else (message.offset(), message.value()))
    finally:
        consumer.close()
    errors.assert_none("consumer")
    return got


@pytest.mark.timeout(90)
def test_expired_segments_disappear_one_by_one_and_consumers_reset(broker_factory):
    broker = broker_factory(FAST_CHECKS)
    topic = unique_topic("retention")
    retention_ms = 6000
    create_topic(broker.bootstrap, topic, partitions=1,
                 config={"segment.bytes": "4096", "retention.ms": str(retention_ms)})
    # Newest timestamps first expire one second from now, the last ones about six seconds later.
    old = sample_records(240, first_timestamp_ms=int(time.time() * 1000) - retention_ms + 1000,
                         timestamp_step_ms=20)
    produce_records(broker.bootstrap, topic, old, partition=0, **SMALL_BATCHES)
    bases = segment_bases(broker, topic)
    assert len(bases) >= 5

    seen_starts = []

    def everything_expired() -> bool:
        start, end = watermarks(broker.bootstrap, topic)
        if not seen_starts or seen_starts[-1] != start:
            seen_starts.append(start)
        return start == end == len(old)

    wait_until(everything_expired, 30, "every old segment to expire", interval_s=0.1)
    assert seen_starts == sorted(seen_starts)
    assert set(seen_starts) <= set(bases) | {len(old)}, f"starts {seen_starts} are not segment bases {bases}"
    assert len(seen_starts) >= 4, f"segments went in too few steps: {seen_starts}"
    assert segment_bases(broker, topic) == [len(old)]  # the expired active segment was rolled and deleted too

    fresh = sample_records(20, first_timestamp_ms=int(time.time() * 1000))
    produce_records(broker.bootstrap, topic, fresh, partition=0)
    earliest = first_messages(broker.bootstrap, topic, "earliest", len(fresh))
    assert earliest == [(len(old) + n, record.value) for n, record in enumerate(fresh)]

    later = sample_records(3, first_timestamp_ms=int(time.time() * 1000))
    first_later = len(old) + len(fresh)
    latest = first_messages(broker.bootstrap, topic, "latest", len(later), produce_once_at=(
        first_later, lambda: produce_records(broker.bootstrap, topic, later, partition=0)))
    assert latest == [(first_later + n, record.value) for n, record in enumerate(later)]

    refused = first_messages(broker.bootstrap, topic, "error", 1)
    assert [error.code() for error in refused] == [KafkaError._AUTO_OFFSET_RESET]


@pytest.mark.timeout(60)
def test_the_broker_retention_bytes_default_bounds_a_partition(broker_factory):
    broker = broker_factory({**FAST_CHECKS, "log.retention.bytes": "8192", "log.segment.bytes": "4096"})
    topic = unique_topic("retention-bytes")
    create_topic(broker.bootstrap, topic, partitions=1)
    produce_records(broker.bootstrap, topic, sample_records(300), partition=0, **SMALL_BATCHES)

    def bounded() -> bool:
        sizes = [path.stat().st_size for path in (broker.data_dir / f"{topic}-0").glob("*.log")]
        return sum(sizes) - max(sizes) <= 8192
    wait_until(bounded, 15, "retention.bytes to trim the partition")
    start, end = watermarks(broker.bootstrap, topic)
    assert (start, end) == (segment_bases(broker, topic)[0], 300) and start > 0
