"""An append-only file of checksummed records, the coordinator's only durable state."""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import Iterable

from kafkacompat.protocol import checksum

_HEADER = struct.Struct(">II")  # payload length, CRC32C of the payload


def frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload), checksum.crc32c(payload)) + payload


class Journal:
    """Durable, ordered record payloads in one file.

    On-disk format: a sequence of ``[u32 length][u32 crc32c(payload)][payload]``
    frames, big-endian. A frame that is short or fails its checksum ends the
    readable journal: it can only be the tail of a write cut off by a crash,
    because every append is fsynced before it is acknowledged and a failed
    append is truncated away. ``rewrite`` replaces the whole file atomically
    (temp file, fsync, rename, fsync of the directory).
    Not safe for concurrent use; the owning store serialises access.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = self._open()

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @staticmethod
    def read(path: Path) -> list[bytes]:
        """Every intact payload in order, stopping at the first torn or corrupt frame."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        payloads = []
        pos = 0
        while pos + _HEADER.size <= len(data):
            length, expected_crc = _HEADER.unpack_from(data, pos)
            start = pos + _HEADER.size
            payload = data[start : start + length]
            if len(payload) < length or checksum.crc32c(payload) != expected_crc:
                break
            payloads.append(payload)
            pos = start + length
        return payloads

    def append(self, payloads: Iterable[bytes], *, sync: bool = True) -> None:
        """Write and fsync (unless `sync` is False: the next synced append or rewrite covers it);
        on failure the file is cut back so no partial frame stays behind."""
        data = memoryview(b"".join(frame(p) for p in payloads))
        position = os.fstat(self._fd).st_size
        try:
            while data:
                data = data[os.write(self._fd, data) :]
            if sync:
                os.fsync(self._fd)
        except OSError:
            os.ftruncate(self._fd, position)
            raise

    def rewrite(self, payloads: Iterable[bytes]) -> None:
        """Atomically replace the journal with exactly these payloads."""
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            out.write(b"".join(frame(p) for p in payloads))
            out.flush()
            os.fsync(out.fileno())
        os.close(self._fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._fd = self._open()

    def close(self) -> None:
        os.close(self._fd)
