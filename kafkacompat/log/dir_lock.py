"""The exclusive lock a broker holds on its data directory, as Kafka locks each log directory."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = ".lock"


class DataDirLocked(RuntimeError):
    """Another broker (or one still shutting down) holds the directory."""


class DataDirLock:
    """An flock on `<data_dir>/.lock`, held from start until the log is closed.

    flock belongs to the open file, so the operating system drops it when the
    process dies however it dies, and a second broker in the same process is
    refused as one in another process is.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.release()
            raise DataDirLocked(
                f"failed to acquire lock on file {LOCK_FILE} in {data_dir.resolve()}: "
                "another process or thread is using this directory"
            ) from None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
