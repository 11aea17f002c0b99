"""Transactions with kafkajs (Node), unmodified: a transactional producer commits and aborts;
read_committed (librdkafka) then sees exactly the committed records."""

from __future__ import annotations

import base64
import shutil

import pytest

from compat_helpers import unique_topic
from confluent_clients import create_topic, read_to_end
from recording_proxy import KAFKAJS_DIR, run_kafkajs

pytestmark = [
    pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
    pytest.mark.skipif(not (KAFKAJS_DIR / "node_modules" / "kafkajs").is_dir(),
                       reason="kafkajs is not installed: run `npm ci --prefix compat_tests/kafkajs`"),
    pytest.mark.timeout(120),
]


def _records(values: list[bytes]) -> list[dict]:
    return [{"key": None, "value": base64.b64encode(value).decode(), "headers": [], "timestamp": 1_700_000_000_000,
             "partition": number % 2} for number, value in enumerate(values)]


def test_kafkajs_transactional_producer_commits_and_aborts(broker):
    topic = unique_topic("txn-kafkajs")
    create_topic(broker.bootstrap, topic, partitions=2)
    committed = [b"c%d" % n for n in range(30)]
    aborted = [b"a%d" % n for n in range(10)]
    result = run_kafkajs("transactions", {"brokers": [broker.bootstrap], "topic": topic,
                                          "transactionalId": f"tid-{topic}", "transactions": [
                                              {"records": _records(committed[:15]), "commit": True},
                                              {"records": _records(aborted), "commit": False},
                                              {"records": _records(committed[15:]), "commit": True}]})
    assert all(sent["errorCode"] == 0 for step in result["results"] for sent in step)
    read = read_to_end(broker.bootstrap, topic, [0, 1], "read_committed")
    assert sorted(value for _, _, value in read) == sorted(committed)
    everything = read_to_end(broker.bootstrap, topic, [0, 1], "read_uncommitted")
    assert sorted(value for _, _, value in everything) == sorted(committed + aborted)
