"""Progress while a workload runs, and the result lines after it.

Progress goes to stderr so stdout stays clean for ``--json``. On a terminal
it is a rich progress bar redrawn in place twice a second; otherwise (a log
file, CI) a full line is written every few seconds, as
kafka-producer-perf-test does. Drawing happens only when due and never from
a thread of its own, so it costs a workload nothing in between.
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
    """Rate-limited "N records, X rec/s" progress of one workload; ``enabled=False`` silences it."""

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
        self._bar = self._start_bar() if self.tty else None

    def _start_bar(self) -> Any:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress as Bar, TextColumn, TimeElapsedColumn

        console = Console(file=self.stream, force_terminal=True, highlight=False)
        bar = Bar(TextColumn(self.label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rates]}"),
                  TimeElapsedColumn(), console=console, auto_refresh=False, transient=True,
                  redirect_stdout=False, redirect_stderr=False)
        self._task = bar.add_task(self.label, total=self.total, rates="")
        bar.start()
        return bar

    def update(self, records: int, payload_bytes: int) -> None:
        """Cheap unless a redraw is due; call as often as convenient."""
        if not self.enabled:
            return
        now = time.perf_counter()
        if now < self._next:
            return
        self._next = now + self.interval_s
        window_rate = (records - self._last_records) / (now - self._last_time)
        self._last_records, self._last_time = records, now
        rates = f"{window_rate:,.0f} rec/s now, {payload_bytes / MIB / (now - self._start):.2f} MB/s avg"
        if self._bar is not None:
            self._bar.update(self._task, completed=records, rates=rates)
            self._bar.refresh()
        else:
            self.stream.write(f"{self.label}: {records}/{self.total} records, {rates}\n")
            self.stream.flush()

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


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
    for name, spread in result.items():
        if name.endswith("_ms") and isinstance(spread, dict) and "median" in spread:
            parts.append(
                f"{name.removesuffix('_ms').replace('_', ' ')} median {spread['median']:.1f} ms "
                f"(min {spread['min']:.1f}, max {spread['max']:.1f}, {result['runs']} runs)"
            )
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
