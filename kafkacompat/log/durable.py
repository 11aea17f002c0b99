"""Small durable files: whole-file replacement that survives a crash at any point.

Used for the topic registry, the producer id allocator, producer-state
snapshots, the log-start-offset and the leader-epoch checkpoints.  A reader sees either the old
file or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

TMP_SUFFIX = ".tmp"


def write_atomically(path: Path, data: bytes) -> None:
    """Write to `<path>.tmp`, fsync it, rename over `path`, fsync the directory."""
    tmp = path.with_name(path.name + TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_directory(path.parent)


def write_json_atomically(path: Path, value: object) -> None:
    write_atomically(path, json.dumps(value, sort_keys=True).encode())


def read_json(path: Path) -> object | None:
    """The decoded file, or None when it is missing or unreadable (a torn or foreign file)."""
    try:
        return json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None


def fsync_directory(directory: Path) -> None:
    """Make a create/rename/unlink inside `directory` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
