"""Transaction bookkeeping of one partition: the aborted-transaction index and control batches.

Theory of operation.  A transactional producer's batches (attributes bit 4)
open a transaction in each partition they reach; the transaction coordinator
closes it with a control batch (attributes bits 4 and 5) holding one control
record whose key says commit (type 1) or abort (type 0).  The producer state
(producer_state.py) remembers where each open transaction's first batch lies;
the earliest of those is the last stable offset (LSO), below which every
transaction is decided.  An abort adds (producer id, first offset, marker
offset) to the aborted index, so a read_committed Fetch lists the aborted
transactions overlapping its range without reading a record.

On disk: `<20-digit base>.txnindex` beside each segment, holding the aborted
transactions whose marker lies in that segment, as fixed 24-byte big-endian
entries (producer id, first offset, last offset).  Appended and fsynced when an
abort marker is written; a torn last entry is ignored.  Entries at or past
the offset from which recovery replays the log are rebuilt by the replay.
Not safe for concurrent use: the owning PartitionLog serialises calls.
"""

from __future__ import annotations

import bisect
import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from kafkacompat.log.segment import segment_name
from kafkacompat.protocol.records import (
    BATCH_OVERHEAD,
    CONTROL_BIT,
    CURRENT_MAGIC,
    TRANSACTIONAL_BIT,
    BatchHeader,
    seal_batch,
)

TXN_INDEX_SUFFIX = ".txnindex"
_ENTRY = struct.Struct(">qqq")
# A control record as Kafka writes it: length, attributes, timestamp delta, offset delta,
# a 4-byte key (version 0, type), a 6-byte value (version 0, coordinator epoch), no headers.
_CONTROL_RECORD = struct.Struct(">bbbbbhhbhib")
CONTROL_ABORT, CONTROL_COMMIT = 0, 1
_CONTROL_TYPE_AT = BATCH_OVERHEAD + 7  # the key's type field, after length, attributes, deltas, key length, version


class AbortedTxn(NamedTuple):
    producer_id: int
    first_offset: int
    last_offset: int  # the abort marker's offset


def control_batch(producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int,
                  timestamp: int) -> bytearray:
    """A one-record control batch ending a transaction (base offset 0: the log assigns it)."""
    record = _CONTROL_RECORD.pack(
        _CONTROL_RECORD.size - 1 << 1, 0, 0, 0, 4 << 1, 0, CONTROL_COMMIT if commit else CONTROL_ABORT,
        6 << 1, 0, coordinator_epoch, 0)
    header = BatchHeader(0, 0, 0, -1, CURRENT_MAGIC, 0, TRANSACTIONAL_BIT | CONTROL_BIT, 0, timestamp, timestamp,
                         producer_id, producer_epoch, -1, 1)
    return bytearray(seal_batch(header, record))


def control_type(batch_start: bytes) -> int:
    """Commit or abort, from the first bytes of a control batch (at least BATCH_OVERHEAD + 9)."""
    return struct.unpack_from(">h", batch_start, _CONTROL_TYPE_AT)[0]


CONTROL_PEEK_BYTES = _CONTROL_TYPE_AT + 2


class AbortedIndex:
    """The aborted transactions of one partition, by marker offset, and their `.txnindex` files."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.entries: list[AbortedTxn] = []
        self._last_offsets: list[int] = []

    def load(self, segment_bases: Iterable[int], below: int) -> None:
        """Read every segment's file, keeping the entries whose marker lies below `below` (the rest is replayed)."""
        entries = []
        for base in segment_bases:
            try:
                data = self._path(base).read_bytes()
            except FileNotFoundError:
                continue
            whole = len(data) - len(data) % _ENTRY.size
            stored = [AbortedTxn(*entry) for entry in _ENTRY.iter_unpack(data[:whole])]
            kept = [entry for entry in stored if entry.last_offset < below]
            if whole != len(data) or len(kept) != len(stored):
                self._path(base).write_bytes(b"".join(_ENTRY.pack(*entry) for entry in kept))
            entries += kept
        self._set(sorted(entries, key=lambda entry: entry.last_offset))

    def document(self) -> list[list[int]]:
        return [list(entry) for entry in self.entries]

    def restore(self, document: object) -> bool:
        try:
            entries = [AbortedTxn(*map(int, entry)) for entry in document]  # type: ignore[union-attr]
        except (TypeError, ValueError):
            return False
        self._set(entries)
        return True

    def add(self, entry: AbortedTxn, segment_base: int, *, sync: bool = True) -> None:
        """Record an abort whose marker is in the segment at `segment_base` (markers come in offset order)."""
        self.entries.append(entry)
        self._last_offsets.append(entry.last_offset)
        fd = os.open(self._path(segment_base), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, _ENTRY.pack(*entry))
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def overlapping(self, fetch_offset: int, upper: int) -> list[AbortedTxn]:
        """Aborted transactions with data in [fetch_offset, upper): marker at or after fetch_offset."""
        start = bisect.bisect_left(self._last_offsets, fetch_offset)
        return [entry for entry in self.entries[start:] if entry.first_offset < upper]

    def contains(self, producer_id: int, offset: int) -> bool:
        """Whether the batch of `producer_id` at `offset` belongs to an aborted transaction."""
        start = bisect.bisect_left(self._last_offsets, offset)
        return any(entry.producer_id == producer_id and entry.first_offset <= offset
                   for entry in self.entries[start:])

    def in_segments(self, first_base: int, end: int) -> list[AbortedTxn]:
        """Entries whose marker lies in [first_base, end): for a cleaned segment replacing several."""
        low, high = bisect.bisect_left(self._last_offsets, first_base), bisect.bisect_left(self._last_offsets, end)
        return self.entries[low:high]

    def drop_below(self, offset: int) -> None:
        """Forget the aborts whose marker went with deleted segments."""
        start = bisect.bisect_left(self._last_offsets, offset)
        if start:
            self._set(self.entries[start:])

    def write_file(self, directory: Path, base: int, entries: list[AbortedTxn]) -> None:
        """Write `entries` as the index file of a segment at `base` in `directory` (the cleaner's staging)."""
        if entries:
            (directory / f"{segment_name(base)}{TXN_INDEX_SUFFIX}").write_bytes(
                b"".join(_ENTRY.pack(*entry) for entry in entries))

    def _set(self, entries: list[AbortedTxn]) -> None:
        self.entries = entries
        self._last_offsets = [entry.last_offset for entry in entries]

    def _path(self, base: int) -> Path:
        return self.directory / f"{segment_name(base)}{TXN_INDEX_SUFFIX}"
