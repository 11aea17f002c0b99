"""The two sparse indexes of a log segment, in Kafka's on-disk formats.

Both are append-only files of fixed-size big-endian entries, sorted on their
key.  Appends go straight to the file descriptor (no user-space buffer), so a
killed process loses nothing it already appended; a torn trailing entry (an
OS crash mid-write) is cut off on load.  The full entry arrays are read into
memory lazily, on the first lookup, so opening a log with many old segments
costs one small read per index, and only an index being appended to holds a
file descriptor.
"""

from __future__ import annotations

import bisect
import os
import struct
from array import array
from pathlib import Path

from kafkacompat.log.open_files import OPEN_FILES


class _SparseIndex:
    """Shared mechanics: an fd, a lazily loaded (keys, values) pair of arrays, and the last entry.

    Not safe for concurrent use; the owning LogSegment serialises access.
    """

    ENTRY: struct.Struct
    KEY_TYPE: str
    VALUE_TYPE = "i"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None  # opened on the first append; sealed segments hold none
        self._dirty = False
        self.last_entry: tuple[int, int] | None = None
        self.existed = True  # a missing index is rebuilt by the owning segment
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            self.existed = False
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            whole = size - size % self.ENTRY.size
            if whole != size:
                os.ftruncate(fd, whole)
            self._count = whole // self.ENTRY.size
            if self._count:
                self.last_entry = self.ENTRY.unpack(os.pread(fd, self.ENTRY.size, whole - self.ENTRY.size))
        finally:
            os.close(fd)
        self._keys: array | None = None
        self._values: array | None = None

    def __len__(self) -> int:
        return self._count

    def _load(self) -> tuple[array, array]:
        if self._keys is None:
            with open(self.path, "rb") as file:
                data = file.read(self._count * self.ENTRY.size)
            keys, values = array(self.KEY_TYPE), array(self.VALUE_TYPE)
            for key, value in self.ENTRY.iter_unpack(data):
                keys.append(key)
                values.append(value)
            self._keys, self._values = keys, values
        return self._keys, self._values

    def _append(self, key: int, value: int) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR)
            OPEN_FILES.opened(self)
        else:
            OPEN_FILES.touched(self)
        os.pwrite(self._fd, self.ENTRY.pack(key, value), self._count * self.ENTRY.size)
        self._dirty = True
        self._count += 1
        self.last_entry = (key, value)
        if self._keys is not None:
            self._keys.append(key)
            self._values.append(value)

    def _floor(self, key: int, *, strict: bool) -> tuple[int, int] | None:
        """The entry with the largest key <= `key` (< `key` when strict), or None."""
        keys, values = self._load()
        slot = (bisect.bisect_left if strict else bisect.bisect_right)(keys, key) - 1
        return (keys[slot], values[slot]) if slot >= 0 else None

    def _truncate_entries(self, keep: int) -> None:
        if keep >= self._count:
            return  # nothing to drop: no write, which recovery of many partitions feels
        keys, values = self._load()
        del keys[keep:]
        del values[keep:]
        self._count = keep
        os.truncate(self.path, keep * self.ENTRY.size)
        self.last_entry = (keys[-1], values[-1]) if keep else None

    def flush(self) -> None:
        fd = self.detach()
        if fd is not None:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

    def detach(self) -> int | None:
        """A descriptor for the caller to fsync and close if entries await an fsync, else None; a later append reopens.

        An index whose descriptor the open-files budget took back gets a fresh
        one: the fsync through it covers the earlier writes too.
        """
        fd, dirty = self._fd, self._dirty
        if fd is not None:
            OPEN_FILES.closed(self)
        self._fd, self._dirty = None, False
        if not dirty:
            if fd is not None:
                os.close(fd)
            return None
        return fd if fd is not None else os.open(self.path, os.O_RDWR)

    def release_descriptor(self) -> None:
        """Close the descriptor to stay within the open-files budget; it stays dirty until detached."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def close(self) -> None:
        """Flush and release the descriptor; a later append reopens it."""
        self.flush()


class OffsetIndex(_SparseIndex):
    """`<base>.index`: 8-byte entries (int32 offset relative to the segment base, int32 file position).

    One entry for the first batch appended after every `index.interval.bytes`
    of data; the offset is that batch's base offset, so a lookup lands on a
    batch boundary at or before the wanted offset.
    """

    ENTRY = struct.Struct(">ii")
    KEY_TYPE = "i"

    def append(self, relative_offset: int, position: int) -> None:
        self._append(relative_offset, position)

    def lookup(self, relative_offset: int) -> int:
        """File position of the last indexed batch starting at or before `relative_offset` (0 if none)."""
        entry = self._floor(relative_offset, strict=False)
        return entry[1] if entry else 0

    def floor_position(self, position: int) -> int:
        """The last indexed batch start at or before byte `position` (0, the first batch, if none)."""
        _, positions = self._load()
        slot = bisect.bisect_right(positions, position) - 1
        return positions[slot] if slot >= 0 else 0

    def truncate_to_position(self, position: int) -> None:
        """Drop entries pointing at or beyond `position` (the log was cut there)."""
        _, positions = self._load()
        self._truncate_entries(bisect.bisect_left(positions, position))


class TimeIndex(_SparseIndex):
    """`<base>.timeindex`: 12-byte entries (int64 max timestamp so far, int32 relative offset).

    An entry (T, o) says: every record up to the batch at relative offset o
    (inclusive) has timestamp <= T, and that batch holds T.  Timestamps strictly
    increase along the file; the last entry is the segment's max timestamp once
    the segment has been closed or rolled.
    """

    ENTRY = struct.Struct(">qi")
    KEY_TYPE = "q"

    def maybe_append(self, timestamp: int, relative_offset: int) -> None:
        if self.last_entry is None or timestamp > self.last_entry[0]:
            self._append(timestamp, relative_offset)

    def lookup_before(self, timestamp: int) -> int | None:
        """Relative offset of the last entry whose timestamp is < `timestamp` (None if none).

        Every record at or before that batch is older than `timestamp`, so a
        search for the first record >= `timestamp` may start there.
        """
        entry = self._floor(timestamp, strict=True)
        return entry[1] if entry else None

    def truncate_to_offset(self, relative_offset: int) -> None:
        """Drop entries naming offsets at or beyond `relative_offset` (the log was cut there)."""
        _, offsets = self._load()
        self._truncate_entries(bisect.bisect_left(offsets, relative_offset))
