"""The log cleaner: compaction of topics whose cleanup.policy includes compact.

Theory of operation.  A partition's cleanable part is its leading sealed
segments below the high watermark (never the active segment) whose records
are older than min.compaction.lag.ms.  Its checkpoint splits that part into
a clean head, already compacted, and a dirty tail.  A partition is due when
the dirty bytes reach min.cleanable.dirty.ratio of the cleanable bytes, when
its oldest dirty segment passes max.compaction.lag.ms, or when a tombstone
kept by an earlier cleaning may now go.  One cleaning:

1. maps every key of the dirty segments to its latest offset (stopping at a
   segment boundary once the map holds log.cleaner.dedupe.buffer.size worth
   of entries, counted as Kafka counts them: 24 bytes an entry);
2. rewrites the segments up to the mapped end, in groups of consecutive
   segments no larger than segment.bytes together, keeping a record unless a
   later offset holds its key, it has no key, or it is a tombstone (null
   value) whose own timestamp is more than delete.retention.ms old.  Kept
   records keep their offsets: a batch that loses records is rebuilt around
   the survivors' original bytes with its base offset, last offset delta and
   producer fields unchanged, and compressed again with its own codec; a
   batch that keeps everything is copied byte for byte; an emptied one goes,
   and so does a batch of an aborted transaction (whose records never shadow
   a key either); commit and abort markers stay, with the aborted index;
3. stages each group's output in `cleaning/`, has it fsynced, and swaps it in
   (see PartitionLog.swap_cleaned and recovery.finish_segment_swap);
4. records the mapped end as the new first dirty offset, and when the next
   kept tombstone expires, in `cleaner-checkpoint` (JSON).

A cleaning is a generator (`CleaningJob.run`) that does a bounded amount of
work per step, so the broker can run it on its event loop between requests;
it yields a FlushTicket whenever files must be fsynced, which the driver
syncs in a worker thread.  Between steps the partition may change: a step
that finds its segments deleted, replaced or closed stops and drops what it
staged.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from kafkacompat.log.durable import read_json, write_json_atomically
from kafkacompat.log.flush import FlushTicket
from kafkacompat.log.recovery import CLEANER_STAGING_DIR
from kafkacompat.log.segment import LogSegment
from kafkacompat.protocol.errors import KafkaError
from kafkacompat.protocol.records import (
    INT32_MAX,
    BatchHeader,
    batch_body,
    iter_raw_records,
    read_header,
    rebuild_batch,
)

if TYPE_CHECKING:
    from pathlib import Path

    from kafkacompat.log.partition_log import PartitionLog

CHECKPOINT_FILE = "cleaner-checkpoint"
MAP_ENTRY_BYTES = 24
STEP_BYTES = 256 * 1024  # source bytes decoded per step: a few milliseconds of event-loop time


class CleanerCheckpoint(NamedTuple):
    first_dirty_offset: int
    tombstones_due_ms: int | None  # when the oldest kept tombstone may be removed


def read_checkpoint(directory: Path) -> CleanerCheckpoint:
    stored = read_json(directory / CHECKPOINT_FILE)
    if not isinstance(stored, dict):
        return CleanerCheckpoint(0, None)
    return CleanerCheckpoint(int(stored.get("first_dirty_offset", 0)), stored.get("tombstones_due_ms"))


class _Plan(NamedTuple):
    segments: list[LogSegment]  # the cleanable segments, oldest first
    dirty: list[LogSegment]  # their tail from the first dirty offset
    dirty_ratio: float


def _plan(partition: PartitionLog, now_ms: int) -> _Plan | None:
    """What a cleaning of `partition` would cover now, or None when it is not due."""
    config = partition.config
    if partition.closed or "compact" not in config.cleanup_policy:
        return None
    try:
        segments = partition.cleanable_segments(now_ms)
    except KafkaError:  # the partition went offline
        return None
    checkpoint = read_checkpoint(partition.directory)
    first_dirty = max(checkpoint.first_dirty_offset, partition.log_start_offset)
    dirty = [segment for segment in segments if segment.next_offset > first_dirty]
    dirty_bytes = sum(segment.size for segment in dirty)
    total_bytes = sum(segment.size for segment in segments)
    ratio = dirty_bytes / total_bytes if total_bytes else 0.0
    due = (
        (dirty_bytes > 0 and ratio >= config.min_cleanable_dirty_ratio)
        or (dirty_bytes > 0 and now_ms - dirty[0].max_timestamp > config.max_compaction_lag_ms)
        or (segments and checkpoint.tombstones_due_ms is not None and now_ms >= checkpoint.tombstones_due_ms)
    )
    return _Plan(segments, dirty, ratio) if due else None


def cleaning_jobs(partitions: Iterable[PartitionLog], now_ms: int, dedupe_buffer_bytes: int) -> Iterator[CleaningJob]:
    """A job for each partition due for cleaning, dirtiest first; each is re-planned when its turn comes."""
    candidates = [(plan.dirty_ratio, partition) for partition in partitions if (plan := _plan(partition, now_ms))]
    candidates.sort(key=lambda candidate: candidate[0], reverse=True)
    capacity = max(dedupe_buffer_bytes // MAP_ENTRY_BYTES, 1)
    for _, partition in candidates:
        plan = _plan(partition, now_ms)
        if plan is not None:
            yield CleaningJob(partition, plan, now_ms, capacity)


class CleaningJob:
    """One cleaning of one partition.  Owns the partition's `cleaning/` directory while it runs."""

    def __init__(self, partition: PartitionLog, plan: _Plan, now_ms: int, map_capacity: int) -> None:
        self.partition = partition
        self._plan = plan
        self._now = now_ms
        self._map_capacity = map_capacity
        self._version = partition.segments_version
        self._tombstones_due: int | None = None
        self.groups_swapped = 0

    def _interrupted(self) -> bool:
        return self.partition.closed or self.partition.segments_version != self._version

    def run(self) -> Iterator[FlushTicket | None]:
        """Clean, yielding after each step: None, or a ticket to `sync` (off the event loop) before resuming."""
        staging = self.partition.directory / CLEANER_STAGING_DIR
        try:
            offset_map: dict[bytes, int] = {}
            end = yield from self._map_keys(offset_map)
            if end is None:
                return
            sources = [segment for segment in self._plan.segments if segment.next_offset <= end]
            for group in _groups(sources, self.partition.config.segment_bytes):
                if not (yield from self._clean_group(group, offset_map, staging)):
                    return
            write_json_atomically(
                self.partition.directory / CHECKPOINT_FILE,
                {"first_dirty_offset": end, "tombstones_due_ms": self._tombstones_due},
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _map_keys(self, offset_map: dict[bytes, int]) -> Iterator[None]:
        """Fill `offset_map` from the dirty segments; returns the offset the cleaning reaches (None if interrupted).

        That is the end of the last segment mapped, or of the clean head when
        there is nothing dirty (a cleaning that only drops expired tombstones).
        """
        segments, dirty = self._plan.segments, self._plan.dirty
        clean_count = len(segments) - len(dirty)
        end = segments[clean_count - 1].next_offset if clean_count else 0
        for count, segment in enumerate(dirty):
            if count and len(offset_map) >= self._map_capacity:
                break
            for chunk in _chunks(segment):
                for batch in chunk:
                    header, body = batch_body(batch)
                    if header.is_control or self._aborted(header):
                        continue
                    for record in iter_raw_records(header, body):
                        if record.key is not None:
                            offset_map[record.key] = header.base_offset + record.offset_delta
                yield None
                if self._interrupted():
                    return None
            end = segment.next_offset
        return end

    def _clean_group(self, group: list[LogSegment], offset_map: dict[bytes, int], staging: Path) -> Iterator[FlushTicket | None]:
        """Rewrite one group into `staging` and swap it in if anything changed; False if interrupted."""
        staging.mkdir(exist_ok=True)
        output = LogSegment(staging, group[0].base_offset)
        changed = False
        interval = self.partition.config.index_interval_bytes
        try:
            for source in group:
                for chunk in _chunks(source):
                    kept = []
                    for batch in chunk:
                        cleaned = self._filter(batch, offset_map)
                        changed |= cleaned is not batch
                        if cleaned is not None:
                            kept.append(cleaned)
                    if kept:
                        _append_batches(output, kept, interval)
                    yield None
                    if self._interrupted():
                        return False
            fds = output.seal()
            self.partition.write_aborted_index(staging, group[0].base_offset, group[-1].next_offset)
        finally:
            output.close()
        ticket = FlushTicket(fds, staging, None)
        try:
            yield ticket
        finally:
            ticket.discard()  # nothing left to close once synced
        if self._interrupted():  # checked first: a deleted topic's staged files fail their fsync
            return False
        if ticket.error is not None:
            raise ticket.error
        if changed:
            self.partition.swap_cleaned(group)
            self._version = self.partition.segments_version
            self.groups_swapped += 1
        else:
            shutil.rmtree(staging)
        return True

    def _aborted(self, header: BatchHeader) -> bool:
        return header.is_transactional and self.partition.is_aborted(header.producer_id, header.base_offset)

    def _filter(self, batch: bytes, offset_map: dict[bytes, int]) -> bytes | None:
        """The batch itself if every record stays, a rebuilt batch if some do, None if none do."""
        header, body = batch_body(batch)
        if header.is_control:
            return batch
        if self._aborted(header):
            return None
        retention_ms = self.partition.config.delete_retention_ms
        records = list(iter_raw_records(header, body))
        kept = []
        for record in records:
            offset = header.base_offset + record.offset_delta
            if record.key is None or offset_map.get(record.key, -1) > offset:
                continue
            if record.value is None:
                timestamp = header.max_timestamp if header.is_log_append_time else header.base_timestamp + record.timestamp_delta
                if self._now - timestamp > retention_ms:
                    continue
                due = timestamp + retention_ms + 1
                self._tombstones_due = due if self._tombstones_due is None else min(self._tombstones_due, due)
            kept.append(record)
        if len(kept) == len(records):
            return batch
        if not kept:
            return None
        max_timestamp = (
            header.max_timestamp
            if header.is_log_append_time
            else max(header.base_timestamp + record.timestamp_delta for record in kept)
        )
        survivors = b"".join(body[record.start : record.end] for record in kept)
        return rebuild_batch(header, survivors, len(kept), max_timestamp)


def _chunks(segment: LogSegment) -> Iterator[list[bytes]]:
    """The segment's batches, in lists of about STEP_BYTES."""
    chunk: list[bytes] = []
    size = 0
    for header in segment.batches_from(0):
        batch = segment.read_batch(header)
        chunk.append(batch)
        size += len(batch)
        if size >= STEP_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _groups(segments: list[LogSegment], max_bytes: int) -> Iterator[list[LogSegment]]:
    """Consecutive segments whose sizes add up to at most `max_bytes` (one segment at least)."""
    group: list[LogSegment] = []
    size = 0
    for segment in segments:
        too_big = size + segment.size > max_bytes
        too_long = segment.next_offset - (group[0].base_offset if group else segment.base_offset) > INT32_MAX
        if group and (too_big or too_long):
            yield group
            group, size = [], 0
        group.append(segment)
        size += segment.size
    if group:
        yield group


def _append_batches(output: LogSegment, batches: list[bytes], index_interval_bytes: int) -> None:
    headers = []
    position = 0
    for batch in batches:
        headers.append(read_header(batch)._replace(position=position))
        position += len(batch)
    output.append(b"".join(batches), headers, index_interval_bytes)
