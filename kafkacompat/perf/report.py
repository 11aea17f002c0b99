"""Progress lines while a workload runs, and the result lines after it.

Progress goes to stderr so stdout stays clean for ``--json``. On a terminal
the line is redrawn in place twice a second; otherwise (a log file, CI) a
full line is written every few seconds, as kafka-producer-perf-test does.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, TextIO

from kafkacompat.perf.stats import MIB

TTY_INTERVAL_S = 0.5
LOG_INTERVAL_S = 5.0


class Progress:
    """Rate-limited "N records, X rec/s" line for one workload; ``enabled=False`` silences it."""

    def __init__(self, label: str, total: int, *, stream: TextIO | None = None, enabled: bool = True) -> None:
        self.label = label
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self.interval_s = TTY_INTERVAL_S if self.tty else LOG_INTERVAL_S
        self._start = time.perf_counter()
        self._next = self._start + self.interval_s
        self._last_records = 0
        self._last_time = self._start

    def update(self, records: int, payload_bytes: int) -> None:
        """Cheap unless a line is due; call as often as convenient."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if now < self._next:
            return
        self._next = now + self.interval_s
        window_rate = (records - self._last_records) / (now - self._last_time)
        self._last_records, self._last_time = records, now
        elapsed = now - self._start
        line = (
            f"{self.label}: {records}/{self.total} records, {window_rate:,.0f} rec/s now, "
            f"{payload_bytes / MIB / elapsed:.2f} MB/s avg"
        )
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def format_result(result: dict[str, Any]) -> str:
    """One human line per workload result (the dicts the workloads return)."""
    parts = [f"{result['workload']}:"]
    if "records_per_s" in result:
        parts.append(
            f"{result['records']} records in {result['seconds']:.2f} s, "
            f"{result['records_per_s']:,.0f} rec/s, {result['mb_per_s']:.2f} MB/s"
        )
    latency = result.get("latency")
    if latency:
        parts.append(
            f"latency avg {latency['avg_ms']:.2f} ms, p50 {latency['p50_ms']:.2f} ms, "
            f"p99 {latency['p99_ms']:.2f} ms, p99.9 {latency['p99_9_ms']:.2f} ms, max {latency['max_ms']:.2f} ms"
        )
    timings = [f"{key[:-3].replace('_', ' ')} {value:,.0f} ms" for key, value in result.items()
               if key.endswith("_ms") and isinstance(value, (int, float))]
    if timings:
        parts.append(", ".join(timings))
    if result.get("errors"):
        parts.append(f"{result['errors']} errors")
    return " ".join(parts[:1]) + " " + "; ".join(parts[1:])


def emit(results: list[dict[str, Any]], as_json: bool, out: TextIO | None = None) -> None:
    out = out if out is not None else sys.stdout
    if as_json:
        json.dump(results if len(results) != 1 else results[0], out, indent=2)
        out.write("\n")
    else:
        for result in results:
            out.write(format_result(result) + "\n")
