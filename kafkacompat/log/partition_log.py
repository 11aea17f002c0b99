"""The log of one topic partition: ordered segments, offsets, append and read."""

from __future__ import annotations

import bisect
import errno
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from kafkacompat.log.clean_shutdown import PartitionState
from kafkacompat.log.durable import read_json
from kafkacompat.log.file_slice import FileSlice
from kafkacompat.log.flush import FlushTicket, LogPosition
from kafkacompat.log.leader_epochs import EpochEntry, LeaderEpochCache
from kafkacompat.log.producer_state import ProducerEntry, ProducerStateManager
from kafkacompat.log.record_validation import check_records, needs_record_walk
from kafkacompat.log.recovery import open_segments, state_matches_disk
from kafkacompat.log.replica import ReplicaLog
from kafkacompat.log.retention import LOG_START_OFFSET_FILE, SegmentRetention
from kafkacompat.log.segment import LogSegment
from kafkacompat.log.topic_config import LONG_MAX, LogConfig
from kafkacompat.log.transactions import (
    CONTROL_COMMIT,
    CONTROL_PEEK_BYTES,
    AbortedIndex,
    AbortedTxn,
    control_batch,
    control_type,
)
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.records import (
    INT32_MAX,
    NO_TIMESTAMP,
    BatchHeader,
    parse_batches,
    repair_max_timestamp,
    set_base_offset,
    set_log_append_time,
    set_partition_leader_epoch,
)

log = logging.getLogger("kafkacompat.log")

DEFAULT_PRODUCER_ID_EXPIRATION_MS = 86_400_000
# The only broker leads every partition in this epoch until leadership changes exist.
INITIAL_LEADER_EPOCH = 0
_INDEX_ENTRY_BYTES = 8


class AppendResult(NamedTuple):
    base_offset: int
    last_offset: int
    log_append_time: int  # -1 unless the topic uses LogAppendTime
    log_start_offset: int
    duplicate: bool  # an idempotent retry: nothing written, the original offsets returned


class PartitionLog(SegmentRetention, ReplicaLog):
    """All the data of one partition: segments in offset order, the last one active.

    On disk, in `<data_dir>/<topic>-<partition>/`: the segment files (see
    LogSegment), producer-state snapshots (see ProducerStateManager), once
    DeleteRecords has moved it inside a segment `log-start-offset` (JSON), the
    leader-epoch checkpoint (see leader_epochs.py), the aborted-transaction
    index (see transactions.py) and the log cleaner's files (see cleaner.py).  Opening repairs what a stop left
    behind (see recovery.py), so a partition left by a killed process opens
    like a cleanly closed one minus any torn last batch.

    Offsets: log_start_offset <= last_stable_offset <= high_watermark <= log_end_offset.  With
    `flushes_on_ack` the high watermark is the durable end: records become
    visible to readers (and may be acknowledged) only once fsynced.  Otherwise
    (Kafka's periodic flushing) it is the log end offset.

    Not safe for concurrent use: callers serialise every call on one partition
    (the broker calls it from its one event-loop thread).  Appends are
    all-or-nothing per call.  The one part meant for another thread is
    `FlushTicket.sync` (see flush.py).
    """

    def __init__(
        self,
        topic: str,
        index: int,
        directory: Path,
        config: LogConfig,
        clock: Callable[[], int],
        *,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
        flush_on_ack: bool = False,
        recovery_point: int | None = None,
        state: PartitionState | None = None,
        checkpointed: PartitionState | None = None,
        sync_recovery: bool = True,
    ) -> None:
        """`flush_on_ack`: the broker's log.flush.on.ack.  `recovery_point`: None after a clean
        shutdown, else the offset below which everything was fsynced (see recovery.py).
        `state`: what `clean_state()` returned at a clean shutdown; nothing is read then.
        `checkpointed`: after an unclean stop, what `checkpoint_state()` last saved; the
        partition opens as after a clean stop if its files still match it.
        `sync_recovery=False` leaves fsyncing what recovery repaired to the caller."""
        self.topic = topic
        self.index = index
        self.directory = directory
        self.config = config
        self._clock = clock
        self._flush_on_ack = flush_on_ack
        fresh = state is None and not directory.exists()
        self._directory_unsynced = fresh
        if state is None:
            directory.mkdir(parents=True, exist_ok=True)
        self.leader_epoch = INITIAL_LEADER_EPOCH
        self._leader_epochs = LeaderEpochCache(directory, fresh=fresh)
        # Becoming leader records the epoch at the log end; for a partition on
        # disk that waits until the history is first needed (see leader_epochs.py).
        self._leader_epoch_recorded = fresh
        if fresh:
            self._leader_epochs.assign(self.leader_epoch, 0, sync=False)
        trusted = state
        if state is None and checkpointed is not None and state_matches_disk(directory, checkpointed["segments"]):
            trusted, recovery_point = checkpointed, None
        self._segments, self.recovery_stats = open_segments(
            directory, config.index_interval_bytes, recovery_point,
            state=trusted["segments"] if trusted else None, sync=sync_recovery,
        )
        self._bases = [segment.base_offset for segment in self._segments]
        stored = state or read_json(directory / LOG_START_OFFSET_FILE)
        stored_offset = stored.get("log_start_offset", 0) if isinstance(stored, dict) else 0
        self.log_start_offset = min(max(self._bases[0], int(stored_offset)), self.log_end_offset)
        self._producers = ProducerStateManager(directory, producer_id_expiration_ms)
        self._aborted = AbortedIndex(directory)
        if not (trusted and self._producers.restore(trusted["producers"])
                and self._aborted.restore(trusted.get("aborted", []))):
            self._rebuild_producer_state()
        self._unflushed_records = 0
        self._last_flush_ms = clock()
        self._pending_fds: list[int] = []  # handed over by sealed segments, synced by the next flush
        self._high_watermark = self._end_position()
        # What the replicas have (see replication_limit); None when nothing else holds this partition.
        self._replicated: LogPosition | None = None
        # Everything below this offset is fsynced: recovery synced what it repaired,
        # and a clean stop synced the rest.
        self.recovery_point = self.log_end_offset
        self.segments_version = 0  # bumped when segments are deleted or replaced (see cleaner.py)
        self._closed = False
        self._storage_error: str | None = None

    def _check_open(self) -> None:
        """A handler may still hold a partition that was deleted (e.g. across a fetch wait)."""
        if self._closed:
            raise KafkaError(
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"partition {self.topic}-{self.index} is closed or deleted"
            )
        if self._storage_error is not None:
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, self._storage_error)

    @property
    def closed(self) -> bool:
        return self._closed

    def _end_position(self) -> LogPosition:
        active = self._segments[-1]
        return LogPosition(active.next_offset, active.base_offset, active.size)

    def _rebuild_producer_state(self) -> None:
        snapshot_offset = self._producers.load(self.log_end_offset)
        start = max(snapshot_offset or 0, self._bases[0])
        self._aborted.load(self._bases, start)
        now = self._clock()
        for segment, header in self._headers_from(start):
            if header.is_control:  # a marker: its type is the one record read here
                commit = control_type(segment.pread(header.position, CONTROL_PEEK_BYTES)) == CONTROL_COMMIT
                self._end_transaction(header, commit, segment.base_offset, now, sync=False)
            else:
                self._producers.replay(header, now, segment.base_offset)

    def _headers_from(self, offset: int) -> Iterator[tuple[LogSegment, BatchHeader]]:
        """Batch headers, with their segment, from the one containing `offset` to the log end (header reads only)."""
        first = max(bisect.bisect_right(self._bases, offset) - 1, 0)
        for segment in self._segments[first:]:
            position = segment.find_position(offset)
            if position is not None:
                for header in segment.batches_from(position):
                    yield segment, header

    def _end_transaction(self, marker: BatchHeader, commit: bool, segment_base: int, now: int, *,
                         sync: bool = True) -> None:
        started = self._producers.end_transaction(marker.producer_id, marker.producer_epoch, now)
        if not commit and started is not None:
            self._aborted.add(AbortedTxn(marker.producer_id, started.offset, marker.base_offset), segment_base,
                              sync=sync)

    # -- offsets -------------------------------------------------------------

    @property
    def log_end_offset(self) -> int:
        return self._segments[-1].next_offset

    @property
    def high_watermark(self) -> int:
        return self._visible.offset

    @property
    def _visible(self) -> LogPosition:
        """The end readers see: durable (or written) here, and held by the in-sync replicas when replicated."""
        local, replicated = self._high_watermark, self._replicated
        return local if replicated is None or replicated.offset >= local.offset else replicated

    @property
    def last_stable_offset(self) -> int:
        """The LSO: the first offset of the earliest open transaction, or the high watermark (KIP-98)."""
        first = self._producers.first_unstable()
        high_watermark = self._visible.offset
        return high_watermark if first is None or first.offset >= high_watermark else first.offset

    @property
    def open_transactions(self) -> dict[int, int]:
        """Producer id -> first offset of its open transaction here (DescribeProducers)."""
        return {producer_id: position.offset for producer_id, position in self._producers.ongoing.items()}

    def aborted_transactions(self, fetch_offset: int) -> list[AbortedTxn]:
        """The aborted transactions a read_committed Fetch from `fetch_offset` must be told of."""
        return self._aborted.overlapping(fetch_offset, self.last_stable_offset) if self._aborted.entries else []

    def is_aborted(self, producer_id: int, offset: int) -> bool:
        """Whether the producer's batch at `offset` belongs to an aborted transaction (the cleaner drops it)."""
        return self._aborted.contains(producer_id, offset)

    def write_aborted_index(self, directory: Path, base: int, end: int) -> None:
        """The aborted-index file of a cleaned segment replacing [base, end), staged in `directory`."""
        self._aborted.write_file(directory, base, self._aborted.in_segments(base, end))

    @property
    def flushes_on_ack(self) -> bool:
        """log.flush.on.ack holds unless the topic asks for Kafka's periodic flushing.

        Any finite flush.messages or flush.ms (Kafka's defaults are Long.MAX_VALUE:
        never) selects periodic flushing for the topic.
        """
        config = self.config
        return self._flush_on_ack and config.flush_messages == LONG_MAX and config.flush_ms == LONG_MAX

    @property
    def size_in_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    @property
    def segment_base_offsets(self) -> list[int]:
        return list(self._bases)

    @property
    def active_producers(self) -> list[ProducerEntry]:
        """The idempotent producers this partition remembers (DescribeProducers)."""
        return list(self._producers.producers.values())

    # -- leader epochs -----------------------------------------------------------

    def _epoch_history(self) -> LeaderEpochCache:
        """The epoch history with the current leader epoch in it, read from disk on first use."""
        cache = self._leader_epochs
        if not self._leader_epoch_recorded:
            cache.truncate_from_end(self.log_end_offset)
            cache.truncate_from_start(self.log_start_offset)
            cache.assign(self.leader_epoch, self.log_end_offset)
            self._leader_epoch_recorded = True
        return cache

    def end_offset_for_epoch(self, leader_epoch: int) -> EpochEntry:
        """OffsetForLeaderEpoch: where `leader_epoch` ends in this log (-1, -1 when unknown)."""
        self._check_open()
        return self._epoch_history().end_offset_for(leader_epoch, self.log_end_offset)

    # -- append ----------------------------------------------------------------

    def append(self, records: bytes | bytearray | memoryview, *, now_ms: int | None = None) -> AppendResult:
        """Validate, assign offsets to and write a producer's record batches.

        A bytearray (or writable memoryview) is patched in place; read-only
        input is copied once.  Every check -- format, size, timestamp, producer
        sequence -- runs before anything is written; a failure raises KafkaError
        and leaves the log untouched.
        """
        self._check_open()
        now = self._clock() if now_ms is None else now_ms
        config = self.config
        buffer = records if _is_writable(records) else bytearray(records)
        headers = parse_batches(buffer)
        if not config.log_append_time:
            headers = [repair_max_timestamp(buffer, header) for header in headers]
        total_size = headers[-1].end
        _check_policy(buffer, headers, total_size, config, now, f"{self.topic}-{self.index}")

        base_offsets = []
        next_offset = self.log_end_offset
        for header in headers:
            base_offsets.append(next_offset)
            next_offset += header.last_offset_delta + 1
        stored_timestamps = [now if config.log_append_time else header.max_timestamp for header in headers]
        pending = self._producers.prepare(headers, base_offsets, stored_timestamps, now)
        if pending.duplicate is not None:
            original = pending.duplicate
            append_time = original.timestamp if config.log_append_time else NO_TIMESTAMP
            return AppendResult(original.base_offset, original.last_offset, append_time, self.log_start_offset, True)

        self._record_leader_epoch()
        patched = []
        leader_epoch = self.leader_epoch
        for header, base_offset in zip(headers, base_offsets):
            set_base_offset(buffer, header.position, base_offset)
            set_partition_leader_epoch(buffer, header.position, leader_epoch)
            header = header._replace(base_offset=base_offset)
            if config.log_append_time:
                header = set_log_append_time(buffer, header, now)
            patched.append(header)
        newest = max(header.max_timestamp for header in patched)
        segment = self._maybe_roll(total_size, newest, next_offset - 1, now)
        position = segment.size
        segment.append(buffer, patched, config.index_interval_bytes)
        self._producers.commit(pending)
        for header in patched:
            if header.is_transactional and header.has_producer_id:
                self._producers.begin_transaction(header, segment.base_offset, position + header.position)
        self._appended(next_offset - base_offsets[0])
        return AppendResult(
            base_offsets[0],
            next_offset - 1,
            now if config.log_append_time else NO_TIMESTAMP,
            self.log_start_offset,
            False,
        )

    def append_marker(self, producer_id: int, producer_epoch: int, commit: bool, coordinator_epoch: int, *,
                      now_ms: int | None = None) -> int:
        """Write the control batch that commits or aborts the producer's transaction here; its offset.

        Written by the transaction coordinator, never by a client: no sequence
        checks.  An abort records the transaction in the aborted index.
        """
        self._check_open()
        now = self._clock() if now_ms is None else now_ms
        buffer = control_batch(producer_id, producer_epoch, commit, coordinator_epoch, now)
        offset = self.log_end_offset
        self._record_leader_epoch()
        set_base_offset(buffer, 0, offset)
        set_partition_leader_epoch(buffer, 0, self.leader_epoch)
        (header,) = parse_batches(buffer)
        segment = self._maybe_roll(len(buffer), now, offset, now)
        segment.append(buffer, [header], self.config.index_interval_bytes)
        self._end_transaction(header, commit, segment.base_offset, now)
        self._appended(1)
        return offset

    def _record_leader_epoch(self) -> None:
        if not self._leader_epoch_recorded:
            self._epoch_history()

    def _appended(self, records: int) -> None:
        self._unflushed_records += records
        if not self.flushes_on_ack:
            self._high_watermark = self._end_position()

    def _maybe_roll(self, incoming_size: int, incoming_max_timestamp: int, last_offset: int, now: int) -> LogSegment:
        """Kafka's roll rules: size, segment.ms (by record time), a full index, relative offset overflow."""
        active = self._segments[-1]
        config = self.config
        if active.size and (
            active.size + incoming_size > config.segment_bytes
            or (
                active.first_batch_timestamp is not None
                and incoming_max_timestamp - active.first_batch_timestamp > config.segment_ms
            )
            or len(active.offset_index) >= config.segment_index_bytes // _INDEX_ENTRY_BYTES
            or last_offset - active.base_offset > INT32_MAX
        ):
            return self.roll(now)
        return active

    def roll(self, now_ms: int | None = None) -> LogSegment:
        """Start a new active segment at the log end offset and snapshot producer state there."""
        self._check_open()
        now = self._clock() if now_ms is None else now_ms
        active = self._segments[-1]
        if not active.size:
            return active
        self._pending_fds += active.seal()
        segment = LogSegment(self.directory, self.log_end_offset)
        self._directory_unsynced = True
        self._segments.append(segment)
        self._bases.append(segment.base_offset)
        if self._high_watermark.offset == segment.base_offset:
            self._high_watermark = self._end_position()
        self._producers.remove_expired(now)
        self._producers.take_snapshot(segment.base_offset)
        return segment

    # -- read ------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int, *, slice_from: int | None = None,
             committed: bool = False, to_log_end: bool = False) -> bytes | FileSlice:
        """Whole batches from the one containing `offset`: up to `max_bytes`, but at least one batch.

        b"" at or past the high watermark (`committed`: the last stable offset); KafkaError(OFFSET_OUT_OF_RANGE)
        outside [log_start_offset, log_end_offset].  The batch containing
        `offset` may begin before it; clients skip the records they did not ask for.
        A range of `slice_from` bytes or more comes back as a FileSlice, unread.
        `to_log_end`: a follower's read, up to the log end offset instead.
        """
        self._check_open()
        if offset < self.log_start_offset or offset > self.log_end_offset:
            raise KafkaError(
                ErrorCode.OFFSET_OUT_OF_RANGE,
                f"offset {offset} outside [{self.log_start_offset}, {self.log_end_offset}] "
                f"of {self.topic}-{self.index}",
            )
        visible = self._end_position() if to_log_end else self._visible
        if committed:
            first = self._producers.first_unstable()
            if first is not None and first.offset < visible.offset:
                visible = first
        if offset >= visible.offset:
            return b""
        for slot in range(bisect.bisect_right(self._bases, offset) - 1, len(self._segments)):
            segment = self._segments[slot]
            if segment.base_offset > visible.segment_base:
                break
            end = visible.position if segment.base_offset == visible.segment_base else None
            found = segment.locate(offset, max_bytes, end)
            if found is not None:
                position, size = found
                if slice_from is not None and size >= slice_from:
                    try:
                        return segment.slice(position, size)
                    except OSError as exc:  # out of descriptors: read the range instead
                        if exc.errno not in (errno.EMFILE, errno.ENFILE):
                            raise
                return segment.pread(position, size)
        return b""

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the earliest record at or after log_start_offset with timestamp >= `timestamp`."""
        self._check_open()
        for segment in self._segments:
            if segment.next_offset <= self.log_start_offset or segment.max_timestamp < timestamp:
                continue
            found = segment.offset_for_timestamp(timestamp, self.log_start_offset)
            if found is not None:
                return found if found[0] < self.high_watermark else None
        return None

    def max_timestamp_offset(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with the largest timestamp (ListOffsets -3)."""
        self._check_open()
        best = None
        for segment in self._segments:
            if segment.size and (best is None or segment.max_timestamp > best.max_timestamp):
                best = segment
        found = best.max_timestamp_record() if best is not None else None
        return found if found is not None and found[0] < self.high_watermark else None

    # -- flushing (see flush.py) -------------------------------------------------

    def needs_flush(self, now_ms: int, acking_below: int | None = None) -> bool:
        """Whether an fsync is owed: to acknowledge appends, by the periodic policy, or after a roll.

        ``acking_below`` is the end offset of the appends a Produce waits to
        acknowledge; with flushes_on_ack those alone decide, so a request
        whose records an earlier flush round already covered waits for none.
        """
        if self._closed or self._storage_error is not None:
            return False
        if self.flushes_on_ack and acking_below is not None:
            return self._high_watermark.offset < acking_below
        if self._pending_fds or self._directory_unsynced:
            return True
        if self.flushes_on_ack:
            return self._high_watermark.offset < self.log_end_offset
        config = self.config
        return self._unflushed_records > 0 and (
            self._unflushed_records >= config.flush_messages or now_ms - self._last_flush_ms >= config.flush_ms
        )

    def begin_flush(self, *, whole_filesystem: bool = False) -> FlushTicket | None:
        """Take what an fsync must cover now; None for a closed partition.

        `whole_filesystem`: a syncfs covers the round, so the active segment's
        data file needs no descriptor in the ticket.
        """
        if self._closed:
            return None
        fds, self._pending_fds = self._pending_fds, []
        active = self._segments[-1]
        uncovered = whole_filesystem and active.has_unsynced_appends
        data_fd = active.take_unsynced_fd(duplicate=not whole_filesystem)
        if data_fd is not None:
            fds.append(data_fd)
        directory = self.directory if self._directory_unsynced else None
        self._directory_unsynced = False
        self._unflushed_records = 0
        self._last_flush_ms = self._clock()
        return FlushTicket(fds, directory, self._end_position(), needs_filesystem_sync=uncovered)

    def complete_flush(self, ticket: FlushTicket) -> bool:
        """Advance the durable point (and, with flushes_on_ack, the high watermark); False if the fsync failed.

        A failed fsync leaves the page cache in an unknown state, so, like
        Kafka taking a log directory offline, the partition then refuses every
        call with KAFKA_STORAGE_ERROR until the broker restarts.
        """
        if self._closed:
            return True
        if ticket.error is not None:
            self._storage_error = f"fsync of {self.topic}-{self.index} failed: {ticket.error}"
            log.error("%s; the partition is offline until restart", self._storage_error)
            return False
        durable = ticket.durable_to
        self.recovery_point = max(self.recovery_point, durable.offset)
        if durable.offset > self._high_watermark.offset:
            self._high_watermark = durable
        return True

    def flush(self, *, sync: bool = True) -> None:
        """fsync everything written so far, on the calling thread.

        `sync=False`: the caller syncs the whole filesystem next (see durable.sync_filesystem).
        """
        ticket = self.begin_flush()
        if ticket is not None:
            if sync:
                ticket.sync()
            else:
                ticket.discard()
            if not self.complete_flush(ticket):
                raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, self._storage_error)

    # -- lifecycle -------------------------------------------------------------

    def close(self, *, sync: bool = True, snapshot: bool = True) -> None:
        """Seal the active segment, snapshot producer state, fsync, close files.

        `sync=False` leaves the fsyncs to the caller's sync_filesystem, which
        must follow before anything relies on the files; `snapshot=False`
        skips the producer snapshot, for a caller that keeps `clean_state()`.
        """
        if self._closed:
            return
        self._pending_fds += self._segments[-1].seal()
        try:
            if self._storage_error is None:
                self._producers.remove_expired(self._clock())
                if snapshot:
                    self._producers.take_snapshot(self.log_end_offset)
                self.flush(sync=sync)
        finally:
            self._release_files()  # pending descriptors are left over only when the flush failed

    def abandon(self) -> None:
        """A simulated crash (a killed cluster member): appends never fsynced are cut, nothing is synced."""
        if self._closed:
            return
        if self._storage_error is None and self.recovery_point < self.log_end_offset:
            self.truncate_to(self.recovery_point)
        self._release_files()

    def _release_files(self) -> None:
        for fd in self._pending_fds:
            os.close(fd)
        self._pending_fds = []
        self._closed = True
        self.segments_version += 1
        for segment in self._segments:
            segment.close()

    def checkpoint_state(self) -> PartitionState | None:
        """While open: the state as `clean_state()` gives it, if everything appended is fsynced, else None.

        Saved with the recovery point, it lets an unclean start open this
        partition without scanning it, as long as the files on disk still
        match it (recovery.state_matches_disk).
        """
        if self._closed or self._storage_error is not None or self.recovery_point != self.log_end_offset:
            return None
        return self._state()

    def clean_state(self) -> PartitionState | None:
        """After `close()`: what lets the next start open this partition without reading it (clean_shutdown.py)."""
        if self._storage_error is not None:
            return None
        return self._state()

    def _state(self) -> PartitionState:
        return {"segments": [segment.state() for segment in self._segments],
                "log_start_offset": self.log_start_offset, "producers": self._producers.document(),
                "aborted": self._aborted.document()}


def _is_writable(records: bytes | bytearray | memoryview) -> bool:
    return isinstance(records, bytearray) or (isinstance(records, memoryview) and not records.readonly)


def _check_policy(
    buffer: bytearray | memoryview, headers: list[BatchHeader], total_size: int, config: LogConfig, now: int,
    topic_partition: str,
) -> None:
    """Kafka's append checks: per batch, and per record only where a record can fail (see record_validation)."""
    if total_size > config.segment_bytes:
        raise KafkaError(
            ErrorCode.RECORD_LIST_TOO_LARGE,
            f"{total_size} bytes of records exceed segment.bytes {config.segment_bytes}",
        )
    for header in headers:
        if header.size > config.max_message_bytes:
            raise KafkaError(
                ErrorCode.MESSAGE_TOO_LARGE,
                f"record batch of {header.size} bytes exceeds max.message.bytes {config.max_message_bytes}",
            )
        if header.is_control:
            raise KafkaError(ErrorCode.INVALID_RECORD, "clients may not write control batches")
        if header.has_producer_id and header.base_sequence < 0:
            raise KafkaError(ErrorCode.INVALID_RECORD, f"invalid base sequence {header.base_sequence}")
        if needs_record_walk(header, config, now):
            check_records(memoryview(buffer)[header.position : header.end], config, now, topic_partition)
