"""``kafkacompat perf`` against a live broker: the librdkafka workloads and the raw fetch probe count right."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from compat_helpers import REPO_ROOT, sample_records, unique_topic
from confluent_clients import create_topic, produce_records
from kafkacompat.perf.wire import fetch_capacity


def perf(*args: str) -> dict:
    finished = subprocess.run([sys.executable, "-m", "kafkacompat", "perf", *args, "--json", "--no-progress"],
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout)  # one workload: its result alone


@pytest.mark.timeout(180)
def test_perf_produce_then_consume_counts_every_record(broker):
    topic = unique_topic("perf-cli")
    produced = perf("produce", "--bootstrap-server", broker.bootstrap, "--topic", topic,
                    "--num-records", "30000", "--record-size", "200", "--partitions", "3")
    assert (produced["records"], produced["errors"]) == (30_000, 0)
    assert produced["latency"]["p50_ms"] <= produced["latency"]["p99_ms"]
    consumed = perf("consume", "--bootstrap-server", broker.bootstrap, "--topic", topic, "--num-records", "30000")
    assert (consumed["records"], consumed["errors"]) == (30_000, 0)
    assert consumed["mb_per_s"] > 0
    raw = perf("consume", "--bootstrap-server", broker.bootstrap, "--topic", topic, "--num-records", "30000",
               "--raw", "--passes", "2")
    assert raw["records"] == 60_000 and raw["requests"] >= 2


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("partitions", "least_requests"), [(1, 2), (3, 1)])
def test_the_raw_fetch_probe_reads_exactly_what_was_produced(broker, partitions, least_requests):
    topic = unique_topic("perf-raw-fetch")
    create_topic(broker.bootstrap, topic, partitions)
    records = sample_records(6000)
    produce_records(broker.bootstrap, topic, records, **{"batch.size": "20000"})
    result = fetch_capacity(broker.bootstrap, topic, len(records))
    assert result["records"] == len(records)
    # About 1.2 MB in batches of ~20 kB: one partition holds more than one request's 1 MiB.
    assert result["requests"] >= least_requests
    again = fetch_capacity(broker.bootstrap, topic, len(records), passes=3)
    assert (again["records"], again["requests"]) == (3 * len(records), 3 * result["requests"])
    assert result["mb_per_s"] > 0


@pytest.mark.parametrize("isolation", ["thread", "process"])
def test_perf_embedded_times_real_starts(isolation):
    finished = subprocess.run(
        [sys.executable, "-m", "kafkacompat", "perf", "embedded", "--runs", "2", "--isolation", isolation, "--json"],
        capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)
    assert result["workload"] == f"embedded start ({isolation})" and result["runs"] == 2
    for name in ("first_start_to_metadata_ms", "later_start_to_metadata_ms"):
        spread = result[name]
        assert 0 < spread["min"] <= spread["median"] <= spread["max"] < 60_000


@pytest.mark.timeout(180)
def test_perf_scale_runs_the_whole_life_of_a_many_partition_broker():
    finished = subprocess.run([sys.executable, "-m", "kafkacompat", "perf", "scale", "--partitions", "200", "--json"],
                              capture_output=True, text=True, timeout=170)
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)
    assert result["partitions"] == 200
    timings = ("first_start_ms", "produce_one_each_ms", "unclean_start_ms", "shutdown_ms", "clean_start_ms")
    assert all(result[name] > 0 for name in timings), result


def test_perf_console_times_every_page():
    finished = subprocess.run(
        [sys.executable, "-m", "kafkacompat", "perf", "console", "--topics", "4", "--partitions", "3", "--runs", "2",
         "--json"], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert finished.returncode == 0, finished.stderr
    result = json.loads(finished.stdout)
    assert result["workload"] == "console pages (4 topics, 12 partitions)"
    pages = {name for name in result if name.startswith("GET ")}
    assert pages == {"GET /_ms", "GET /topics_ms", "GET /topics/{topic}_ms", "GET /groups_ms", "GET /metrics_ms",
                     "GET /api/topics_ms"}
    assert all(0 < result[name]["median"] < 60_000 for name in pages)
