"""A fuzz campaign against a live broker: generated, mutated and random frames over TCP.

Theory of operation. Each worker thread owns one connection and a seeded
random source. Per frame it draws one of three kinds:

- generated: an odd but valid request (see :mod:`.generator`) for an (API key,
  version) the broker advertises. It must be answered, on the same open
  connection, with the request's correlation id and a body our codec decodes
  in that version (Produce with acks=0 must get no answer at all).
- mutated: a generated frame with bytes flipped, inserted or deleted. If it
  still decodes it is held to the rules of a generated frame; otherwise the
  broker may answer or close, and it goes over a connection of its own.
- random: random bytes, sometimes behind a lying size prefix, on a
  connection of its own. Closing is the expected answer.

Every failure of those rules is a finding, kept with the frame that caused it
(hex) so it can be replayed. A request left unanswered past the timeout is
counted as slow, not as a finding (a few APIs may wait), and the worker
reconnects. The broker must still answer ApiVersions at the end.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kafkacompat.client import KafkaClient
from kafkacompat.fuzz.generator import OddRequests, mutate, random_frame
from kafkacompat.protocol import (
    DecodeError,
    decode_request,
    decode_response,
    load_specs,
    parse_request,
    parse_response_frame,
)
from kafkacompat.protocol.errors import KafkaError

API_VERSIONS = 18
PRODUCE = 0
SIZE_PREFIX = 4
GENERATED_SHARE = 0.55
MUTATED_SHARE = 0.35


@dataclass
class Finding:
    rule: str  # the rule broken: "closed", "correlation", "undecodable", "broker down"
    api_key: int
    version: int
    detail: str
    frame_hex: str


@dataclass
class Report:
    frames: int = 0
    seconds: float = 0.0
    by_kind: Counter = field(default_factory=Counter)
    slow: Counter = field(default_factory=Counter)  # unanswered within the timeout, by API key
    findings: list[Finding] = field(default_factory=list)
    targets: list[tuple[int, int]] = field(default_factory=list)
    advertised_without_spec: list[int] = field(default_factory=list)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0

    def distinct_findings(self) -> dict[tuple[str, int, int, str], Finding]:
        """One example per (rule, API key, version, first line of detail)."""
        seen: dict[tuple[str, int, int, str], Finding] = {}
        for finding in self.findings:
            seen.setdefault((finding.rule, finding.api_key, finding.version, finding.detail.splitlines()[0]), finding)
        return seen


def expects_answer(api_key: int, body: Any) -> bool:
    """Kafka answers every request except Produce with acks=0."""
    return not (api_key == PRODUCE and body.get("acks") == 0)


def connect(address: tuple[str, int], timeout_s: float) -> KafkaClient:
    """A connection that sends and receives whole frames; a closed one raises ConnectionError."""
    return KafkaClient(f"{address[0]}:{address[1]}", client_id="fuzz", timeout_s=timeout_s)


def check_answer(connection: KafkaClient, api_key: int, version: int, correlation_id: int) -> str | None:
    """Read one response and say what is wrong with it (None: a decodable answer to this request)."""
    frame = connection.receive_frame()
    try:
        answered_id, body = parse_response_frame(api_key, version, frame)
        if answered_id != correlation_id:
            return f"correlation id {answered_id}, expected {correlation_id}"
        decode_response(api_key, version, body)
    except DecodeError as exc:
        return f"undecodable response: {exc}"
    return None


def advertised_versions(address: tuple[str, int], timeout_s: float) -> dict[int, tuple[int, int]]:
    """The broker's ApiVersions ranges by API key."""
    with connect(address, timeout_s) as connection:
        answer = connection.request(API_VERSIONS, 0, {})
    return {entry.api_key: (entry.min_version, entry.max_version) for entry in answer.api_keys}


def _decodes(frame: bytes, targets: frozenset[tuple[int, int]]) -> tuple[int, int, int, Any] | None:
    """(api key, version, correlation id, body) when the broker would decode ``frame``, else None."""
    try:
        header, body_view = parse_request(memoryview(frame)[SIZE_PREFIX:])
        if (header.api_key, header.api_version) not in targets:
            return None
        body = decode_request(header.api_key, header.api_version, body_view)
    except (DecodeError, KafkaError):
        return None
    return header.api_key, header.api_version, header.correlation_id, body


class Campaign:
    """Runs ``frames`` frames over ``workers`` threads against the broker at ``address``."""

    def __init__(self, address: tuple[str, int], *, frames: int, seed: int = 0, workers: int = 4,
                 timeout_s: float = 5.0, targets: list[tuple[int, int]] | None = None,
                 progress: Any = None) -> None:
        self.address = address
        self.frames = frames
        self.seed = seed
        self.workers = workers
        self.timeout_s = timeout_s
        self.report = Report()
        self.specs = load_specs()
        if targets is None:
            targets = []
            for api_key, (low, high) in sorted(advertised_versions(address, timeout_s).items()):
                if api_key not in self.specs:
                    self.report.advertised_without_spec.append(api_key)
                    continue
                targets.extend((api_key, version) for version in range(low, high + 1))
        self.report.targets = targets
        self.progress = progress
        self._lock = threading.Lock()
        self._next = 0

    def _claim(self) -> bool:
        with self._lock:
            if self._next >= self.frames:
                return False
            self._next += 1
            self.report.frames += 1
            if self.progress is not None and self._next % 10_000 == 0:
                self.progress(self._next, self.report)
            return True

    def _record(self, finding: Finding) -> None:
        with self._lock:
            self.report.findings.append(finding)

    def run(self) -> Report:
        started = time.monotonic()
        threads = [threading.Thread(target=self._worker, args=(n,), daemon=True) for n in range(self.workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self.report.seconds = time.monotonic() - started
        try:
            advertised_versions(self.address, self.timeout_s)
        except (OSError, DecodeError) as exc:
            self._record(Finding("broker down", API_VERSIONS, 0, f"no ApiVersions answer after the run: {exc}", ""))
        return self.report

    def _worker(self, number: int) -> None:
        rng = random.Random(self.seed * 1_000_003 + number)
        odd = OddRequests(self.specs, rng, now_ms=int(time.time() * 1000))
        connection: KafkaClient | None = None
        correlation_id = 0
        target_set = frozenset(self.report.targets)
        while self._claim():
            correlation_id = (correlation_id + 1) % 2**31
            api_key, version = rng.choice(self.report.targets)
            frame, body = odd.frame(api_key, version, correlation_id)
            roll = rng.random()
            kind = "generated" if roll < GENERATED_SHARE else "mutated" if roll < GENERATED_SHARE + MUTATED_SHARE \
                else "random"
            if kind == "mutated":
                frame = mutate(frame, rng)
                decoded = _decodes(frame, target_set)
                if decoded is not None:
                    api_key, version, correlation_id, body = decoded
                    kind = "mutated, decodable"
            elif kind == "random":
                frame = random_frame(rng)
            with self._lock:
                self.report.by_kind[kind] += 1
            if kind in ("mutated", "random"):
                self._throw_away(frame, api_key, version)
                continue
            try:
                if connection is None:
                    connection = connect(self.address, self.timeout_s)
                connection.send_frame(frame)
                if not expects_answer(api_key, body):
                    continue
                problem = check_answer(connection, api_key, version, correlation_id)
            except (socket.timeout, TimeoutError):
                with self._lock:
                    self.report.slow[api_key] += 1
                problem = None
                connection.close()
                connection = None
            except OSError as exc:
                problem = f"connection closed instead of an answer ({exc})"
                if connection is not None:
                    connection.close()
                connection = None
            if problem is not None:
                rule = "closed" if problem.startswith("connection closed") else \
                    "correlation" if problem.startswith("correlation") else "undecodable"
                self._record(Finding(rule, api_key, version, problem, frame.hex()))
                if connection is not None:
                    connection.close()
                    connection = None
        if connection is not None:
            connection.close()

    def _throw_away(self, frame: bytes, api_key: int, version: int) -> None:
        """Send a frame the broker may answer or refuse on a connection of its own, and drain it."""
        try:
            with socket.create_connection(self.address, timeout=self.timeout_s) as sock:
                sock.sendall(frame)
                sock.shutdown(socket.SHUT_WR)
                while sock.recv(65536):
                    pass
        except (socket.timeout, TimeoutError):
            with self._lock:
                self.report.slow[api_key] += 1
        except ConnectionRefusedError as exc:
            self._record(Finding("broker down", api_key, version, f"connection refused: {exc}", frame.hex()))
        except OSError:
            pass  # a reset is an acceptable way to refuse a frame
