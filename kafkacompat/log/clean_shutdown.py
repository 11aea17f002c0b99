"""The clean-shutdown marker, which also carries every partition's state so a clean start reads no data.

`LogManager.close()` writes `<data_dir>/.clean-shutdown` last, once every
partition is closed and synced; `LogManager` removes it (durably) at open,
before anything new is written.  Its presence therefore means that nothing
changed since the state in it was taken: per partition (keyed by topic id and
index) the segments' `LogSegment.state()`, the log start offset and the
producer state (as a snapshot file holds it).  A start that finds it builds
its partitions from it and opens segment files on first use.  A marker
without a readable state (an older version's empty file, or a partition
missing from it) still means a clean stop: those partitions open as after
one (recovery.py).  Its absence means an unclean stop.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from kafkacompat.log.durable import read_json, write_json_atomically

CLEAN_SHUTDOWN_FILE = ".clean-shutdown"
_VERSION = 1

PartitionState = dict[str, Any]


def state_key(topic_id: uuid.UUID, index: int) -> str:
    return f"{topic_id}/{index}"


def write_marker(data_dir: Path, states: dict[str, PartitionState]) -> None:
    write_json_atomically(data_dir / CLEAN_SHUTDOWN_FILE, {"version": _VERSION, "partitions": states})


def read_marker(data_dir: Path) -> dict[str, PartitionState] | None:
    """None after an unclean stop; else the partition states the marker holds (maybe none)."""
    path = data_dir / CLEAN_SHUTDOWN_FILE
    if not path.exists():
        return None
    document = read_json(path)
    if not isinstance(document, dict) or document.get("version") != _VERSION:
        return {}
    states = document.get("partitions")
    return states if isinstance(states, dict) else {}
