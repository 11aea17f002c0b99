"""Flush tickets: what one fsync round must make durable, split so the fsync can run in a worker thread.

A flush is three steps.  `PartitionLog.begin_flush` runs on the caller's
thread (the broker's event loop) and takes a ticket: duplicated descriptors of
every file with unsynced writes, whether the directory needs a sync, and the
position the log will be durable up to.  `FlushTicket.sync` does the slow
part anywhere, touching nothing but the ticket.  `PartitionLog.complete_flush`,
back on the caller's thread, advances the partition's durable point.  Because
the ticket owns its descriptors, the log may roll, close or delete segments
while a worker thread is still syncing them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from kafkacompat.log.durable import CAN_SYNC_FILESYSTEM, fsync_directory, sync_filesystem

# From this many tickets on, one syncfs costs less than an fsync per file.
SYNC_FILESYSTEM_MIN_TICKETS = 4


class LogPosition(NamedTuple):
    """An offset and where it lies on disk: the base of its segment and the byte position in it."""

    offset: int
    segment_base: int
    position: int


class FlushTicket:
    """One partition's share of a flush round.  Owned by whoever runs `sync`; single use."""

    def __init__(self, fds: list[int], directory: Path | None, durable_to: LogPosition | None,
                 *, needs_filesystem_sync: bool = False) -> None:
        self.fds = fds
        self.needs_filesystem_sync = needs_filesystem_sync  # its writes are covered by a syncfs only
        self.directory = directory  # set when a file was created in it since the last flush
        self.durable_to = durable_to  # where the partition's log is durable once synced (None: not a log flush)
        self.error: OSError | None = None

    def sync(self) -> None:
        """fsync every descriptor (then the directory) and close them all; an error is kept, not raised."""
        fds, self.fds = self.fds, []
        try:
            sync_and_close(fds)
            if self.directory is not None:
                fsync_directory(self.directory)
        except OSError as exc:
            self.error = exc

    def close_synced(self, error: OSError | None) -> None:
        """Close the descriptors after a filesystem-wide sync covered them (with its outcome)."""
        self.discard()
        self.error = error

    def discard(self) -> None:
        """Close the descriptors of a ticket that will never be synced."""
        fds, self.fds = self.fds, []
        for fd in fds:
            os.close(fd)


def sync_and_close(fds: list[int]) -> None:
    """fsync, then close, each descriptor; all are closed even when an fsync fails."""
    try:
        for fd in fds:
            os.fsync(fd)
    finally:
        for fd in fds:
            os.close(fd)


def syncs_filesystem(tickets: int) -> bool:
    """Whether a round of this many tickets is made durable by one syncfs rather than fsyncs.

    Tickets for such a round need not carry the data files' descriptors
    (`PartitionLog.begin_flush(whole_filesystem=True)`), which keeps a round
    over 10,000 partitions from duplicating 10,000 descriptors.
    """
    return CAN_SYNC_FILESYSTEM and tickets >= SYNC_FILESYSTEM_MIN_TICKETS


def sync_tickets(tickets: list[FlushTicket], data_dir: Path) -> None:
    """Run a round's tickets: one syncfs of `data_dir`'s filesystem for many, else each ticket's fsyncs."""
    if not (syncs_filesystem(len(tickets)) or any(ticket.needs_filesystem_sync for ticket in tickets)):
        for ticket in tickets:
            ticket.sync()
        return
    error = None
    try:
        sync_filesystem(data_dir)
    except OSError as exc:
        error = exc
    for ticket in tickets:
        ticket.close_synced(error)
