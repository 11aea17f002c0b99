"""``kafkacompat perf scale``: one broker with many partitions, through its whole life.

Creates a topic of N partitions (10,000 by default), produces one record to
each with acks=all (durable, the broker's default), kills the broker with
SIGKILL and times the unclean start, stops it with SIGTERM and times the
shutdown, and times the clean start after that, then checks that every
partition still holds its record. Starts are timed from the
spawn to the first answered Metadata request, as ``perf compare`` does.
The data dir is a fresh temporary one, deleted at the end.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from confluent_kafka import Producer

import kafkacompat
from kafkacompat.client import KafkaClient
from kafkacompat.perf.brokers import free_port, kafkacompat_command, process_cpu_seconds
from kafkacompat.perf.wire import ProbeError, time_to_first_metadata
from kafkacompat.perf.workloads import MESSAGE_TIMEOUT_MS, WorkloadError, ensure_topic

TOPIC = "perf-scale"
LIST_OFFSETS = 2
LATEST = -1
STOP_TIMEOUT_S = 60.0


class _ScaleBroker:
    """The broker process, restarted on one data dir and port; used from one thread."""

    def __init__(self, overrides: Sequence[str]) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix="kafkacompat-perf-scale-"))
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.command = kafkacompat_command(self.port, self.scratch / "data", overrides)
        source_root = str(Path(kafkacompat.__file__).resolve().parents[1])
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (source_root, os.environ.get("PYTHONPATH")) if p)}
        self.process: subprocess.Popen | None = None

    def start(self) -> float:
        """Milliseconds to the first answered Metadata."""
        with open(self.scratch / "broker.log", "ab") as log_file:
            spawned_at = time.perf_counter()
            self.process = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=log_file,
                                            stderr=subprocess.STDOUT, env=self.env)
        try:
            return time_to_first_metadata(self.bootstrap, spawned_at, self.process, STOP_TIMEOUT_S)
        except ProbeError as exc:
            raise WorkloadError(f"broker did not start: {exc}") from None

    def stop(self, signum: int) -> float:
        """Milliseconds from sending `signum` to the process's exit."""
        assert self.process is not None
        sent_at = time.perf_counter()
        self.process.send_signal(signum)
        code = self.process.wait(STOP_TIMEOUT_S)
        elapsed_ms = (time.perf_counter() - sent_at) * 1000
        if signum == signal.SIGTERM and code != 0:
            raise WorkloadError(f"broker exited with status {code} after SIGTERM")
        return elapsed_ms

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _produce_one_per_partition(bootstrap: str, partitions: int) -> float:
    """Milliseconds until one acks=all record in each partition is acknowledged."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5,
                         "message.timeout.ms": MESSAGE_TIMEOUT_MS, "queue.buffering.max.messages": partitions + 1})
    failures: list[str] = []

    def on_delivery(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    started = time.perf_counter()
    for partition in range(partitions):
        producer.produce(TOPIC, value=b"%d" % partition, partition=partition, on_delivery=on_delivery)
    remaining = producer.flush(MESSAGE_TIMEOUT_MS / 1000)
    elapsed_ms = (time.perf_counter() - started) * 1000
    if remaining or failures:
        raise WorkloadError(f"{remaining} records unacknowledged, {len(failures)} failed: {failures[:3]}")
    return elapsed_ms


def _check_one_record_each(bootstrap: str, partitions: int) -> None:
    """Every partition's log end is 1: the restarts kept each acknowledged record."""
    with KafkaClient(bootstrap) as client:
        response = client.request(LIST_OFFSETS, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
            {"name": TOPIC, "partitions": [{"partition_index": p, "timestamp": LATEST} for p in range(partitions)]}]})
    ends = {p.partition_index: (p.error_code, p.offset) for topic in response.topics for p in topic.partitions}
    wrong = {p: end for p, end in ends.items() if end != (0, 1)}
    if len(ends) != partitions or wrong:
        raise WorkloadError(f"after the restarts {len(wrong)} partitions do not end at offset 1: {list(wrong.items())[:3]}")


def run_scale(partitions: int, overrides: Sequence[str] = ()) -> dict[str, Any]:
    broker = _ScaleBroker(overrides)
    try:
        result: dict[str, Any] = {"workload": "scale", "partitions": partitions, "first_start_ms": broker.start()}
        ensure_topic(broker.bootstrap, TOPIC, partitions, timeout_s=STOP_TIMEOUT_S)
        cpu_before = process_cpu_seconds(broker.process.pid)
        result["produce_one_each_ms"] = _produce_one_per_partition(broker.bootstrap, partitions)
        cpu_after = process_cpu_seconds(broker.process.pid)
        if cpu_before is not None and cpu_after is not None:
            result["produce_broker_cpu_ms"] = (cpu_after - cpu_before) * 1000
        broker.stop(signal.SIGKILL)
        result["unclean_start_ms"] = broker.start()
        result["shutdown_ms"] = broker.stop(signal.SIGTERM)
        result["clean_start_ms"] = broker.start()
        _check_one_record_each(broker.bootstrap, partitions)
        result["second_shutdown_ms"] = broker.stop(signal.SIGTERM)
        return {key: round(value, 1) if isinstance(value, float) else value for key, value in result.items()}
    finally:
        broker.close()
