"""``kafkacompat perf embedded``: how long an EmbeddedBroker takes to answer its first Metadata.

Each run is a fresh interpreter, so the first start pays for importing
kafkacompat, as a test session's first fixture does; the second start in the
same interpreter shows the cost once the modules are loaded (every later
broker of a session, or a restart).
"""

from __future__ import annotations

import json
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

from kafkacompat.perf.wire import METADATA, METADATA_VERSION, _decode, _metadata_frame, _round_trip, _split


def _first_metadata(bootstrap: str) -> None:
    with socket.create_connection(_split(bootstrap), timeout=30) as sock:
        _decode(METADATA, METADATA_VERSION, _round_trip(sock, _metadata_frame(1)), 1)


def _timed_start(isolation: str) -> float:
    """Milliseconds from importing EmbeddedBroker and calling start() to an answered Metadata."""
    began = time.perf_counter()
    from kafkacompat.embedded import EmbeddedBroker

    broker = EmbeddedBroker(isolation=isolation)
    broker.start()
    try:
        _first_metadata(broker.bootstrap_servers)
        return (time.perf_counter() - began) * 1000
    finally:
        broker.stop()


def child_main(isolation: str) -> None:
    """One run, in a fresh interpreter: the first (importing) start, then a second one."""
    print(json.dumps({"first_ms": _timed_start(isolation), "again_ms": _timed_start(isolation)}))


def measure(isolation: str, runs: int) -> dict[str, Any]:
    timings = []
    for _ in range(runs):
        code = f"from kafkacompat.perf.embedded_start import child_main; child_main({isolation!r})"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"embedded start run failed:\n{result.stderr[-2000:]}")
        timings.append(json.loads(result.stdout.splitlines()[-1]))
    first = [t["first_ms"] for t in timings]
    again = [t["again_ms"] for t in timings]
    return {
        "workload": f"embedded start ({isolation})",
        "runs": runs,
        "first_start_to_metadata_ms": {"median": statistics.median(first), "min": min(first), "max": max(first)},
        "later_start_to_metadata_ms": {"median": statistics.median(again), "min": min(again), "max": max(again)},
    }
