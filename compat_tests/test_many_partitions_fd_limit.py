"""10,000 partitions under a 1,024-descriptor limit: create, produce to all, fetch from all, restart both ways.

Kafka keeps every segment file open and needs a large ``ulimit -n``; this
broker keeps a budget of open log files (kafkacompat/log/open_files.py), so
the number of partitions is never bounded by the descriptor limit.
"""

from __future__ import annotations

import resource

import pytest
from confluent_kafka import Producer

from compat_tests.compat_helpers import BrokerProcess
from kafkacompat.client import KafkaClient
from kafkacompat.protocol.errors import ErrorCode

PARTITIONS = 10_000
DESCRIPTOR_LIMIT = 1024
TOPIC = "many"
CREATE_TOPICS, FETCH, LIST_OFFSETS = 19, 1, 2


def _lower_descriptor_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (DESCRIPTOR_LIMIT, DESCRIPTOR_LIMIT))


def _produce_one_each(bootstrap: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         "queue.buffering.max.messages": PARTITIONS + 1})
    failures = []
    for partition in range(PARTITIONS):
        producer.produce(TOPIC, value=b"v%d" % partition, partition=partition,
                         on_delivery=lambda error, _m: error is not None and failures.append(str(error)))
    assert producer.flush(120) == 0 and failures == []


def _fetch_all(client: KafkaClient) -> dict[int, tuple[int, int]]:
    """Each partition's (error code, bytes of records) from one Fetch naming all of them."""
    answer = client.request(FETCH, 11, {"replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 30,
                                        "isolation_level": 0, "session_id": 0, "session_epoch": -1,
                                        "topics": [{"topic": TOPIC, "partitions": [
                                            {"partition": p, "fetch_offset": 0, "partition_max_bytes": 1 << 20}
                                            for p in range(PARTITIONS)]}],
                                        "forgotten_topics_data": [], "rack_id": ""})
    assert answer.error_code == ErrorCode.NONE
    return {p.partition_index: (p.error_code, len(p.records or b"")) for t in answer.responses for p in t.partitions}


def _check_every_partition_holds_its_record(bootstrap: str) -> None:
    with KafkaClient(bootstrap, timeout_s=120) as client:
        fetched = _fetch_all(client)
        ends = client.request(LIST_OFFSETS, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
            {"name": TOPIC, "partitions": [{"partition_index": p, "timestamp": -1} for p in range(PARTITIONS)]}]})
    assert len(fetched) == PARTITIONS
    assert [p for p, (code, size) in fetched.items() if code != ErrorCode.NONE or size == 0] == []
    assert [p.partition_index for t in ends.topics for p in t.partitions if (p.error_code, p.offset) != (0, 1)] == []


@pytest.mark.timeout(600)
def test_ten_thousand_partitions_under_a_low_descriptor_limit(tmp_path) -> None:
    broker = BrokerProcess(tmp_path)
    broker.preexec_fn = _lower_descriptor_limit
    broker.start()
    try:
        with KafkaClient(broker.bootstrap, timeout_s=120) as client:
            created = client.request(CREATE_TOPICS, 7, {"topics": [
                {"name": TOPIC, "num_partitions": PARTITIONS, "replication_factor": 1}], "timeout_ms": 120_000})
        assert created.topics[0].error_code == ErrorCode.NONE, created.topics[0].error_message
        _produce_one_each(broker.bootstrap)
        _check_every_partition_holds_its_record(broker.bootstrap)

        broker.kill()
        broker.start()
        _check_every_partition_holds_its_record(broker.bootstrap)

        broker.stop()
        broker.start()
        _check_every_partition_holds_its_record(broker.bootstrap)
        assert "Too many open files" not in broker.log_text()
    finally:
        broker.kill()
