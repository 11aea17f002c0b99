"""Opening a partition's segments after any stop: tail checks, full scans, index rebuilds, cleaner swaps.

After a clean shutdown that saved the partition's state (see
clean_shutdown.py) nothing is read at all: the segments open their files on
first use.  After a clean shutdown without it, every sealed segment is trusted; its indexes get a
cheap sanity check and are rebuilt when missing or wrong, and only the active
segment's tail is re-checked.  After an unclean one, every segment that ends
past the partition's recovery point (the offset below which everything was
known to be fsynced) is scanned in full and its indexes rebuilt; a cut inside
a sealed segment makes the data after it unreachable, so, as in Kafka, the
later segments are deleted and the log ends at the last valid batch.  A
partition whose state was saved with its recovery point at a moment when
everything appended was fsynced, and whose files have not changed since
(`state_matches_disk`), opens after an unclean stop as after a clean one.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from kafkacompat.log.durable import TMP_SUFFIX, fsync_directory, read_json
from kafkacompat.log.flush import sync_and_close
from kafkacompat.log.segment import SEGMENT_FILE_SUFFIXES, LogSegment, segment_name

CLEANER_STAGING_DIR = "cleaning"
SWAP_JOURNAL = "cleaner-swap.json"


@dataclass
class RecoveryStats:
    """What opening one or more partitions had to repair; summed into the broker's start-up log line."""

    segments_scanned: int = 0
    indexes_rebuilt: int = 0
    bytes_truncated: int = 0

    def __iadd__(self, other: RecoveryStats) -> RecoveryStats:
        self.segments_scanned += other.segments_scanned
        self.indexes_rebuilt += other.indexes_rebuilt
        self.bytes_truncated += other.bytes_truncated
        return self


def open_segments(
    directory: Path,
    index_interval_bytes: int,
    recovery_point: int | None,
    *,
    state: list[list[int | None]] | None = None,
    sync: bool = True,
) -> tuple[list[LogSegment], RecoveryStats]:
    """The partition's segments in offset order, consistent with their data.

    `recovery_point` is None after a clean shutdown; otherwise segments ending
    after it are scanned in full.  `state`, the segments' `state()` saved at a
    clean shutdown, stands for the files unread.  Repaired data is fsynced
    before returning, or, with `sync=False`, left for the caller's
    sync_filesystem.
    """
    stats = RecoveryStats()
    if state:
        return [LogSegment.from_state(directory, entry) for entry in state], stats
    names = set(os.listdir(directory))
    if SWAP_JOURNAL in names or CLEANER_STAGING_DIR in names:
        finish_segment_swap(directory)
        names = set(os.listdir(directory))
    _remove_leftovers(directory, names)
    bases = sorted(int(name[:-4]) for name in names if name.endswith(".log") and name[:-4].isdigit())
    if not bases:
        return [LogSegment(directory, 0)], stats
    segments = [LogSegment(directory, base, next_offset=following) for base, following in zip(bases, bases[1:])]
    segments.append(LogSegment(directory, bases[-1]))
    for slot, segment in enumerate(segments):
        active = slot == len(segments) - 1
        if recovery_point is not None and (active or segment.next_offset > recovery_point):
            stats.segments_scanned += 1
            if _recover_in_full(segment, index_interval_bytes, stats, sync) and not active:
                for doomed in segments[slot + 1 :]:
                    stats.bytes_truncated += doomed.size
                    doomed.delete()
                del segments[slot + 1 :]
                fsync_directory(directory)
                break
        elif active:
            stats.segments_scanned += 1
            stats.bytes_truncated += segment.recover(index_interval_bytes)
        elif not segment.indexes_look_sane():
            _recover_in_full(segment, index_interval_bytes, stats, sync)
            stats.indexes_rebuilt += 1
    return segments, stats


def state_matches_disk(directory: Path, segments: list[list[int | None]]) -> bool:
    """Whether the segment states saved with a recovery checkpoint still describe `directory`'s files.

    They do when the same segment files are there, each of the saved size,
    and no cleaner swap or half-written file is about: nothing was appended,
    rolled, deleted or rewritten since the checkpoint, and since the saved
    state ended at the recovery point, all of it was fsynced. One directory
    listing and one stat per segment, no data read.
    """
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return False
    logs = set()
    for name in names:
        if name.endswith(".log"):
            logs.add(name)
        elif name in (SWAP_JOURNAL, CLEANER_STAGING_DIR) or name.endswith(TMP_SUFFIX):
            return False
    if len(logs) != len(segments) or not segments:
        return False
    for base, size, *_ in segments:
        name = f"{segment_name(base)}.log"
        if name not in logs:
            return False
        try:
            if os.stat(directory / name).st_size != size:
                return False
        except FileNotFoundError:
            return False
    return True


def _recover_in_full(segment: LogSegment, index_interval_bytes: int, stats: RecoveryStats, sync: bool) -> bool:
    """Scan a segment from byte 0 and rebuild its indexes; returns whether bytes were cut.

    A sealed segment keeps its offset range (up to the next segment's base) if
    nothing was cut; the caller decides what a cut means for later segments.
    """
    following = segment.next_offset
    cut = segment.recover(index_interval_bytes, full=True)
    stats.bytes_truncated += cut
    if not cut:
        segment.next_offset = max(following, segment.next_offset)
    fds = segment.seal()  # the final time-index entry, and every repaired file synced now (or by the caller)
    if sync:
        sync_and_close(fds)
    else:
        for fd in fds:
            os.close(fd)
    return cut > 0


def _remove_leftovers(directory: Path, names: set[str]) -> None:
    """Half-written files (`*.tmp`) and the index files of a half-deleted segment."""
    for name in names:
        stem, _, suffix = name.partition(".")
        orphan = f".{suffix}" in SEGMENT_FILE_SUFFIXES and f"{stem}.log" not in names
        if name.endswith(TMP_SUFFIX) or orphan:
            (directory / name).unlink()


def finish_segment_swap(directory: Path) -> bool:
    """Complete a committed cleaner swap, or discard an uncommitted one; True if one was completed.

    The cleaner stages cleaned segments in `cleaning/`, fsyncs them, then
    writes the journal -- the commit point -- naming the source segments
    whose files are to go.  Completing moves every staged file still in
    `cleaning/` over the partition's own, deletes the named sources' files,
    then the journal.  Every step can be redone, so a crash anywhere in
    between is finished at the next open; without a journal the staged files
    are simply dropped.
    """
    staging = directory / CLEANER_STAGING_DIR
    journal = read_json(directory / SWAP_JOURNAL)
    if isinstance(journal, dict):
        for path in sorted(staging.iterdir()) if staging.is_dir() else []:
            os.replace(path, directory / path.name)
        for base in journal["replaced"]:
            for suffix in SEGMENT_FILE_SUFFIXES:
                (directory / f"{segment_name(base)}{suffix}").unlink(missing_ok=True)
        fsync_directory(directory)
        (directory / SWAP_JOURNAL).unlink()
    shutil.rmtree(staging, ignore_errors=True)
    return isinstance(journal, dict)
