"""kafkajs (Node), unmodified, against the broker process.

Each step runs `compat_tests/kafkajs/driver.js` with `node`; it reads one JSON
request on stdin and prints one JSON result. Install the client first with
`npm ci --prefix compat_tests/kafkajs`. kafkajs compresses with gzip only
unless codecs are plugged in, so the matrix here is none and gzip.
"""

from __future__ import annotations

import base64
import shutil

import pytest

from compat_helpers import (Delivery, ReadRecord, SampleRecord, assert_keys_stick_to_partitions,
                            assert_round_trip, sample_records, unique_topic)
from recording_proxy import KAFKAJS_DIR, run_kafkajs, stored_batches

CODECS = {"none": 0, "gzip": 1}

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(not (KAFKAJS_DIR / "node_modules" / "kafkajs").is_dir(),
                       reason="kafkajs is not installed: run `npm ci --prefix compat_tests/kafkajs`"),
]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def wire_records(records: list[SampleRecord]) -> list[dict]:
    return [{"key": b64(r.key), "value": b64(r.value), "headers": [[k, b64(v)] for k, v in r.headers],
             "timestamp": r.timestamp_ms} for r in records]


def read_records(result: dict) -> dict[tuple[int, int], ReadRecord]:
    read = {}
    for r in result["records"]:
        assert (r["partition"], r["offset"]) not in read, f"record at {(r['partition'], r['offset'])} read twice"
        read[(r["partition"], r["offset"])] = ReadRecord(
            unb64(r["key"]), unb64(r["value"]), [(k, unb64(v)) for k, v in r["headers"]], "CreateTime",
            r["timestamp"])
    return read


def create_topic(broker, topic: str, partitions: int) -> dict:
    return run_kafkajs("admin", {"brokers": [broker.bootstrap], "topic": topic, "partitions": partitions})


def produce(broker, topic: str, records: list[SampleRecord], compression: str = "none") -> list[Delivery]:
    result = run_kafkajs("produce", {"brokers": [broker.bootstrap], "topic": topic, "records": wire_records(records),
                                     "compression": compression, "idempotent": True})
    return [Delivery(d["partition"], d["offset"]) for d in result["deliveries"]]


def consume(broker, topic: str, group: str, expected: int, seek: dict[int, int] | None = None) -> dict:
    return run_kafkajs("consume", {"brokers": [broker.bootstrap], "topic": topic, "groupId": group,
                                   "expected": expected, "seek": seek})


@pytest.mark.timeout(60)
def test_admin_metadata(broker):
    topic = unique_topic("kjs-admin")
    result = create_topic(broker, topic, 3)
    assert result["created"] is True
    assert result["createdAgain"] is False  # kafkajs's answer to TOPIC_ALREADY_EXISTS
    (node,) = result["cluster"]["brokers"]
    assert (node["host"], node["port"]) == ("127.0.0.1", broker.port)
    assert result["cluster"]["controller"] == node["nodeId"] and result["cluster"]["clusterId"]
    assert topic in result["topics"]
    (described,) = result["described"]
    assert described["name"] == topic
    partitions = sorted(described["partitions"], key=lambda p: p["partitionId"])
    assert [p["partitionId"] for p in partitions] == [0, 1, 2]
    assert all(p["leader"] == node["nodeId"] and p["replicas"] == [node["nodeId"]] and p["partitionErrorCode"] == 0
               for p in partitions)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("compression", sorted(CODECS))
def test_idempotent_produce_and_group_consume(broker, compression):
    """Idempotent producer, then a consumer group reads everything back and commits."""
    topic, group = unique_topic(f"kjs-{compression}"), unique_topic("kjs-group")
    create_topic(broker, topic, 3)
    records = sample_records(2000)
    deliveries = produce(broker, topic, records, compression)
    assert {d.partition for d in deliveries} == {0, 1, 2}
    assert_keys_stick_to_partitions(records, deliveries)

    result = consume(broker, topic, group, len(records))
    assert_round_trip(records, deliveries, read_records(result))
    assert result["assignment"] == {topic: [0, 1, 2]}
    counts = {p: sum(1 for d in deliveries if d.partition == p) for p in range(3)}
    ((committed,),) = [[t for t in result["committed"] if t["topic"] == topic]]
    assert {int(p["partition"]): int(p["offset"]) for p in committed["partitions"]} == counts

    batches = [b for p in range(3) for b in stored_batches(broker.bootstrap, topic, p)]
    assert {b.compression for b in batches} == {CODECS[compression]}
    assert len({b.producer_id for b in batches}) == 1 and all(b.base_sequence >= 0 for b in batches)


@pytest.mark.timeout(90)
def test_seek_and_offsets_by_timestamp(broker):
    topic = unique_topic("kjs-seek")
    create_topic(broker, topic, 1)
    records = sample_records(100, timestamp_step_ms=10)
    produce(broker, topic, records)

    offsets = run_kafkajs("offsets", {"brokers": [broker.bootstrap], "topic": topic,
                                      "timestamp": records[40].timestamp_ms - 5})
    (bounds,) = offsets["bounds"]
    assert (bounds["partition"], bounds["low"], bounds["high"]) == (0, "0", "100")
    assert offsets["byTimestamp"] == [{"partition": 0, "offset": "40"}]

    # A fresh group starting at the end, told to seek back to offset 90.
    result = consume(broker, topic, unique_topic("kjs-seek"), 10, seek={0: 90})
    read = read_records(result)
    assert sorted(read) == [(0, n) for n in range(90, 100)]
    assert [read[(0, n)].value for n in range(90, 100)] == [r.value for r in records[90:]]


@pytest.mark.timeout(90)
def test_admin_alter_configs_replaces_the_topic_overrides(broker):
    topic = unique_topic("kafkajs-alter")
    create_topic(broker, topic, 1)
    run_kafkajs("alterConfigs", {"brokers": [broker.bootstrap], "topic": topic, "configs": {"retention.ms": "3600000"}})
    result = run_kafkajs("alterConfigs", {"brokers": [broker.bootstrap], "topic": topic,
                                          "configs": {"segment.ms": "7200000"}})
    (altered,) = result["altered"]["resources"]
    assert (altered["errorCode"], altered["resourceName"]) == (0, topic)
    (described,) = result["described"]["resources"]
    entries = {e["configName"]: (e["configValue"], e["isDefault"]) for e in described["configEntries"]}
    assert entries["segment.ms"] == ("7200000", False)
    assert entries["retention.ms"] == ("604800000", True)  # left out, so back to the default
    assert result["reassignments"] == {"topics": []}
