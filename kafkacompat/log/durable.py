"""Small durable files: whole-file replacement that survives a crash at any point.

Used for the topic registry, the producer id allocator, producer-state
snapshots, the log-start-offset and the leader-epoch checkpoints.  A reader sees either the old
file or the new one, never a mix.

Many files at once (a flush round over thousands of partitions, the
partitions closed at shutdown, the repairs of a recovery) are made durable with one `syncfs` of the
data directory's filesystem where Linux offers it, instead of one fsync each.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
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


def _load_syncfs():
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    return function


_SYNCFS = _load_syncfs()
CAN_SYNC_FILESYSTEM = _SYNCFS is not None


def sync_filesystem(path: Path) -> None:
    """Write back every dirty file and directory of the filesystem holding `path` (Linux `syncfs`).

    Since Linux 5.8 it reports writeback errors as fsync does. Callers check
    CAN_SYNC_FILESYSTEM first and fsync file by file where it is False.
    """
    assert _SYNCFS is not None
    fd = os.open(path, os.O_RDONLY)
    try:
        if _SYNCFS(fd) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"syncfs of {path}: {os.strerror(code)}")
    finally:
        os.close(fd)
