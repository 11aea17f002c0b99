"""Shared plumbing for the compat tests: the broker process and sample data.

Everything here talks to the broker only the way a user would: by starting
`python -m kafkacompat serve` and connecting over TCP.
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0


def _ephemeral_ports() -> range:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999
    return range(low, high + 1)


_EPHEMERAL = _ephemeral_ports()
_HANDED_OUT: set[int] = set()  # never the same port twice in one test process


def free_port() -> int:
    """A TCP port nobody listens on right now, outside the kernel's ephemeral range.

    A port the OS hands out for bind(0) comes from the range it also gives
    outgoing connections, so a client connecting meanwhile could take it
    before the broker binds it; a port below the range cannot be taken so.
    """
    candidates = [port for port in range(20000, min(_EPHEMERAL.start, 32768)) if port not in _HANDED_OUT]
    for port in random.sample(candidates, min(len(candidates), 200)):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unique_topic(prefix: str) -> str:
    """Topic names are unique per test so one module-scoped broker can serve many tests."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class BrokerProcess:
    """One broker child process on a fixed port with its own data dir.

    Owns the data dir and `broker.log` (the child's stdout and stderr, appended
    across restarts so a failure shows the whole history). `restart()` reuses
    the port and data dir, which is what durability tests need. Not thread-safe:
    one test drives it.
    """

    def __init__(self, workdir: Path, overrides: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "broker.log"
        self.overrides = dict(overrides or {})
        self._process: subprocess.Popen | None = None
        self.preexec_fn = None  # run in the child before the broker starts (e.g. to lower its limits)

    def command(self) -> list[str]:
        argv = [sys.executable, "-m", "kafkacompat", "serve",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(self.data_dir)]
        for name, value in self.overrides.items():
            argv += ["-o", f"{name}={value}"]
        return argv

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        assert not self.running, "broker already running"
        with open(self.log_path, "ab") as log:
            log.write(f"=== starting: {' '.join(self.command())}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                self.command(), cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=self.preexec_fn)
        self._wait_until_accepting()

    def _wait_until_accepting(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                pytest.fail(f"broker exited with code {code} during startup:\n{self.log_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.kill()
        pytest.fail(f"broker did not accept connections within {START_TIMEOUT_S}s:\n{self.log_text()}")

    def stop(self) -> None:
        """SIGTERM, then insist on a clean exit: a broker that needs SIGKILL or exits non-zero fails."""
        assert self.running, "broker is not running"
        self._process.send_signal(signal.SIGTERM)
        try:
            code = self._process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"broker ignored SIGTERM for {STOP_TIMEOUT_S}s:\n{self.log_text()}")
        assert code == 0, f"broker exited with code {code} after SIGTERM:\n{self.log_text()}"

    def kill(self) -> None:
        """SIGKILL: the crash case, nothing gets a chance to flush."""
        if self.running:
            self._process.kill()
            self._process.wait(timeout=STOP_TIMEOUT_S)

    def restart(self) -> None:
        if self.running:
            self.stop()
        self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclasses.dataclass(frozen=True)
class SampleRecord:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    timestamp_ms: int


def sample_records(count: int, distinct_keys: int = 97, first_timestamp_ms: int | None = None,
                   timestamp_step_ms: int = 1) -> list[SampleRecord]:
    """Keyed records with varied value sizes, repeated header names and increasing timestamps.

    Timestamps start ten minutes in the past so neither retention nor the
    broker's future-timestamp checks can touch them during a test.
    """
    if first_timestamp_ms is None:
        first_timestamp_ms = int(time.time() * 1000) - 600_000
    records = []
    for index in range(count):
        key = b"key-%03d" % (index % distinct_keys)
        value = b"value-%06d|" % index + bytes((index * 7 + n) % 256 for n in range(index % 300))
        headers = [("seq", b"%d" % index), ("tag", b"a"), ("tag", b"b-%d" % (index % 5))]
        records.append(SampleRecord(key, value, headers, first_timestamp_ms + index * timestamp_step_ms))
    return records


HOLD_TXN_MARKERS_ENV = "KCOMPAT_TEST_HOLD_TXN_MARKERS"


def start_holding_markers(broker_factory, monkeypatch) -> BrokerProcess:
    """A broker that decides transactions but writes no marker until it is restarted (as after a SIGKILL
    between EndTxn and the markers); the restarted one writes them."""
    monkeypatch.setenv(HOLD_TXN_MARKERS_ENV, "1")
    broker = broker_factory()
    monkeypatch.delenv(HOLD_TXN_MARKERS_ENV)
    return broker


def wait_until(predicate, timeout_s: float, what: str, interval_s: float = 0.1):
    """Poll `predicate` until it returns a truthy value; fail with `what` when time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


@dataclasses.dataclass(frozen=True)
class Delivery:
    """Where the broker acknowledged one record, as the producing client reported it."""
    partition: int
    offset: int


@dataclasses.dataclass(frozen=True)
class ReadRecord:
    """One consumed record, normalised across client libraries."""
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]
    timestamp_type: str  # "CreateTime" or "LogAppendTime"
    timestamp_ms: int


def assert_round_trip(records: list[SampleRecord], deliveries: list[Delivery],
                      read: dict[tuple[int, int], ReadRecord]) -> None:
    """Every acknowledged record reads back exactly, at the offset it was acknowledged at,
    and each partition's offsets run 0, 1, 2, ... in send order with nothing else in the log."""
    assert len(deliveries) == len(records)
    mismatches = []
    offsets_by_partition: dict[int, list[int]] = {}
    for index, (record, delivery) in enumerate(zip(records, deliveries)):
        offsets_by_partition.setdefault(delivery.partition, []).append(delivery.offset)
        expected = ReadRecord(record.key, record.value, record.headers, "CreateTime", record.timestamp_ms)
        got = read.get((delivery.partition, delivery.offset))
        if got != expected:
            mismatches.append((index, delivery, expected, got))
    assert not mismatches, f"{len(mismatches)} records differ, first ones: {mismatches[:3]}"
    for partition, offsets in offsets_by_partition.items():
        assert offsets == list(range(len(offsets))), f"partition {partition} offsets not 0..n-1 in send order"
    expected_positions = {(d.partition, d.offset) for d in deliveries}
    extra = sorted(set(read) - expected_positions)
    assert not extra, f"consumer saw records nobody produced at {extra[:5]}"


def assert_keys_stick_to_partitions(records: list[SampleRecord], deliveries: list[Delivery]) -> None:
    partitions_by_key: dict[bytes, set[int]] = {}
    for record, delivery in zip(records, deliveries):
        partitions_by_key.setdefault(record.key, set()).add(delivery.partition)
    spread = {key: parts for key, parts in partitions_by_key.items() if len(parts) != 1}
    assert not spread, f"keys landed in several partitions: {spread}"
