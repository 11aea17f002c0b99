"""Leader epochs of one partition and the offsets they start at: Kafka's leader-epoch checkpoint.

Theory of operation.  Each time a broker becomes leader of a partition it
starts a new leader epoch at the log end offset; every batch it appends is
stamped with that epoch.  The history (epoch -> start offset, both rising)
answers OffsetForLeaderEpoch: "where does epoch E end here?" is the start of
the first later epoch, or the log end offset when E is the current one, so a
consumer (or a follower) whose position carries an older epoch can tell
whether the log it read was since truncated.

A single broker leads every partition in epoch 0 until leadership changes
exist; the history is still kept as Kafka keeps it, so that later epochs
only add entries.

On disk, `<partition dir>/leader-epoch-checkpoint`, Kafka's text layout:
a version line (0), an entry-count line, then one "epoch start_offset" line
per entry, oldest first.  The file is read on first use, not when the
partition opens, so opening many partitions reads none of them.  A missing
or unreadable file counts as an empty history (the current epoch is then
recorded again at the log end, as Kafka does when it becomes leader).

Not safe for concurrent use: PartitionLog serialises access.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from kafkacompat.log.durable import write_atomically
from kafkacompat.protocol.errors import ErrorCode, KafkaError

CHECKPOINT_FILE = "leader-epoch-checkpoint"
CHECKPOINT_VERSION = 0
UNDEFINED_EPOCH = -1
UNDEFINED_OFFSET = -1


class EpochEntry(NamedTuple):
    epoch: int
    start_offset: int


class LeaderEpochCache:
    """The epoch history of one partition, loaded lazily from its checkpoint file."""

    def __init__(self, directory: Path, *, fresh: bool = False) -> None:
        """`fresh`: the partition directory is new, so there is no file to read."""
        self._path = directory / CHECKPOINT_FILE
        self._entries: list[EpochEntry] | None = [] if fresh else None

    @property
    def entries(self) -> list[EpochEntry]:
        if self._entries is None:
            self._entries = _read_checkpoint(self._path)
        return self._entries

    @property
    def latest_epoch(self) -> int:
        entries = self.entries
        return entries[-1].epoch if entries else UNDEFINED_EPOCH

    def assign(self, epoch: int, start_offset: int, *, sync: bool = True) -> None:
        """Record that `epoch` starts at `start_offset`, unless it (or a later one) is known already.

        Entries that the new one contradicts (a start offset at or past it) are
        dropped, as Kafka drops them.  `sync=False` writes the file in place,
        unsynced: for a new partition's first entry, with no older file to
        protect and a lost or torn one recreated on first use.
        """
        entries = self.entries
        if epoch < 0 or (entries and entries[-1].epoch >= epoch):
            return
        kept = [entry for entry in entries if entry.start_offset < start_offset]
        self._entries = [*kept, EpochEntry(epoch, start_offset)]
        self._write(sync)

    def end_offset_for(self, requested_epoch: int, log_end_offset: int) -> EpochEntry:
        """(epoch, end offset) for OffsetForLeaderEpoch, by Kafka's rules.

        The current epoch ends at the log end; an older one at the start of the
        next epoch above it, reported with the newest known epoch not above the
        requested one (the requested one itself when it predates the history);
        an unknown or newer epoch gets (-1, -1).
        """
        entries = self.entries
        if requested_epoch == UNDEFINED_EPOCH or not entries or requested_epoch > entries[-1].epoch:
            return EpochEntry(UNDEFINED_EPOCH, UNDEFINED_OFFSET)
        if requested_epoch == entries[-1].epoch:
            return EpochEntry(requested_epoch, log_end_offset)
        floor = None
        for entry in entries:
            if entry.epoch > requested_epoch:
                return EpochEntry(requested_epoch if floor is None else floor.epoch, entry.start_offset)
            floor = entry
        raise AssertionError("unreachable: the last entry is above the requested epoch")

    def truncate_from_start(self, log_start_offset: int) -> None:
        """The log now starts at `log_start_offset`: the epoch covering it starts there."""
        entries = self.entries
        if not entries or entries[0].start_offset >= log_start_offset:
            return
        later = [entry for entry in entries if entry.start_offset > log_start_offset]
        covering = [entry for entry in entries if entry.start_offset <= log_start_offset][-1]
        self._entries = [EpochEntry(covering.epoch, log_start_offset), *later]
        self._write(True)

    def truncate_from_end(self, log_end_offset: int) -> None:
        """The log now ends at `log_end_offset` (recovery cut a torn tail): epochs starting past it never happened."""
        entries = self.entries
        kept = [entry for entry in entries if entry.start_offset <= log_end_offset]
        if len(kept) != len(entries):
            self._entries = kept
            self._write(True)

    def _write(self, sync: bool) -> None:
        entries = self.entries
        lines = [str(CHECKPOINT_VERSION), str(len(entries)), *(f"{e.epoch} {e.start_offset}" for e in entries)]
        data = ("\n".join(lines) + "\n").encode()
        if sync:
            write_atomically(self._path, data)
        else:
            self._path.write_bytes(data)


def check_current_leader_epoch(current_leader_epoch: int, log: Any) -> None:
    """A client's idea of the partition's current epoch (-1: none) against the log's, as Kafka checks it:
    FENCED_LEADER_EPOCH when older, UNKNOWN_LEADER_EPOCH when newer."""
    ours = log.leader_epoch
    if current_leader_epoch in (-1, ours):
        return
    code, relation = (
        (ErrorCode.FENCED_LEADER_EPOCH, "older") if current_leader_epoch < ours
        else (ErrorCode.UNKNOWN_LEADER_EPOCH, "newer")
    )
    raise KafkaError(code, f"leader epoch {current_leader_epoch} of {log.topic}-{log.index} is {relation} than {ours}")


def _read_checkpoint(path: Path) -> list[EpochEntry]:
    try:
        lines = path.read_text(encoding="ascii").split("\n")
    except (FileNotFoundError, UnicodeDecodeError):
        return []
    try:
        if int(lines[0]) != CHECKPOINT_VERSION:
            return []
        count = int(lines[1])
        entries = [EpochEntry(*map(int, line.split())) for line in lines[2 : 2 + count]]
    except (ValueError, IndexError, TypeError):
        return []
    if len(entries) != count:
        return []
    return entries
