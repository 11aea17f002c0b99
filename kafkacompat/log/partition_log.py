"""The log of one topic partition: ordered segments, offsets, append and read."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from kafkacompat.log.durable import TMP_SUFFIX, read_json, write_json_atomically
from kafkacompat.log.producer_state import ProducerStateManager
from kafkacompat.log.segment import LogSegment
from kafkacompat.log.topic_config import LogConfig
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.records import (
    INT32_MAX,
    NO_TIMESTAMP,
    BatchHeader,
    parse_batches,
    set_base_offset,
    set_log_append_time,
)

LOG_START_OFFSET_FILE = "log-start-offset"
DEFAULT_PRODUCER_ID_EXPIRATION_MS = 86_400_000
_INDEX_ENTRY_BYTES = 8
_SEGMENT_FILE_SUFFIXES = (".log", ".index", ".timeindex")


class AppendResult(NamedTuple):
    base_offset: int
    last_offset: int
    log_append_time: int  # -1 unless the topic uses LogAppendTime
    log_start_offset: int
    duplicate: bool  # an idempotent retry: nothing written, the original offsets returned


class PartitionLog:
    """All the data of one partition: segments in offset order, the last one active.

    On disk, in `<data_dir>/<topic>-<partition>/`: the segment files (see
    LogSegment), producer-state snapshots (see ProducerStateManager) and, once
    DeleteRecords has moved it inside a segment, `log-start-offset` (JSON).
    Opening recovers the active segment's tail, so a partition left by a killed
    process opens like a cleanly closed one minus any torn last batch.

    Offsets: log_start_offset <= high_watermark == log_end_offset (one replica,
    so every appended batch is committed at once).

    Not safe for concurrent use: callers serialise every call on one partition
    (the broker calls it from its one event-loop thread).  Appends are
    all-or-nothing per call.
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
    ) -> None:
        self.topic = topic
        self.index = index
        self.directory = directory
        self.config = config
        self._clock = clock
        directory.mkdir(parents=True, exist_ok=True)
        self._segments = self._open_segments()
        self._bases = [segment.base_offset for segment in self._segments]
        stored = read_json(directory / LOG_START_OFFSET_FILE)
        stored_offset = stored.get("log_start_offset", 0) if isinstance(stored, dict) else 0
        self.log_start_offset = min(max(self._bases[0], int(stored_offset)), self.log_end_offset)
        self._producers = ProducerStateManager(directory, producer_id_expiration_ms)
        self._rebuild_producer_state()
        self._unflushed_records = 0
        self._last_flush_ms = clock()
        self._closed = False

    def _check_open(self) -> None:
        """A handler may still hold a partition that was deleted (e.g. across a fetch wait)."""
        if self._closed:
            raise KafkaError(
                ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"partition {self.topic}-{self.index} is closed or deleted"
            )

    def _open_segments(self) -> list[LogSegment]:
        names = {path.name for path in self.directory.iterdir()}
        for name in names:
            stem, _, suffix = name.partition(".")
            if name.endswith(TMP_SUFFIX) or (f".{suffix}" in _SEGMENT_FILE_SUFFIXES and f"{stem}.log" not in names):
                (self.directory / name).unlink()  # a half-written file or a half-deleted segment
        bases = sorted(int(name[:-4]) for name in names if name.endswith(".log") and name[:-4].isdigit())
        if not bases:
            return [LogSegment(self.directory, 0)]
        segments = [
            LogSegment(self.directory, base, next_offset=following)
            for base, following in zip(bases, bases[1:])
        ]
        active = LogSegment(self.directory, bases[-1])
        active.recover(self.config.index_interval_bytes)
        return [*segments, active]

    def _rebuild_producer_state(self) -> None:
        snapshot_offset = self._producers.load(self.log_end_offset)
        start = max(snapshot_offset or 0, self._bases[0])
        now = self._clock()
        for header in self._headers_from(start):
            self._producers.replay(header, now)

    def _headers_from(self, offset: int) -> Iterator[BatchHeader]:
        """Batch headers from the one containing `offset` to the log end (header reads only)."""
        first = max(bisect.bisect_right(self._bases, offset) - 1, 0)
        for segment in self._segments[first:]:
            position = segment.find_position(offset)
            if position is not None:
                yield from segment.batches_from(position)

    # -- offsets -------------------------------------------------------------

    @property
    def log_end_offset(self) -> int:
        return self._segments[-1].next_offset

    @property
    def high_watermark(self) -> int:
        return self._segments[-1].next_offset

    @property
    def size_in_bytes(self) -> int:
        return sum(segment.size for segment in self._segments)

    @property
    def segment_base_offsets(self) -> list[int]:
        return list(self._bases)

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
        total_size = headers[-1].end
        _check_policy(headers, total_size, config, now)

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

        patched = []
        for header, base_offset in zip(headers, base_offsets):
            set_base_offset(buffer, header.position, base_offset)
            header = header._replace(base_offset=base_offset)
            if config.log_append_time:
                header = set_log_append_time(buffer, header, now)
            patched.append(header)
        newest = max(header.max_timestamp for header in patched)
        segment = self._maybe_roll(total_size, newest, next_offset - 1, now)
        segment.append(buffer, patched, config.index_interval_bytes)
        self._producers.commit(pending)
        self._unflushed_records += next_offset - base_offsets[0]
        if self._unflushed_records >= config.flush_messages or now - self._last_flush_ms >= config.flush_ms:
            self.flush()
        return AppendResult(
            base_offsets[0],
            next_offset - 1,
            now if config.log_append_time else NO_TIMESTAMP,
            self.log_start_offset,
            False,
        )

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
        active.seal()
        segment = LogSegment(self.directory, self.log_end_offset)
        self._segments.append(segment)
        self._bases.append(segment.base_offset)
        self._producers.remove_expired(now)
        self._producers.take_snapshot(segment.base_offset)
        return segment

    # -- read ------------------------------------------------------------------

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Whole batches from the one containing `offset`: up to `max_bytes`, but at least one batch.

        b"" at the log end; KafkaError(OFFSET_OUT_OF_RANGE) outside
        [log_start_offset, log_end_offset].  The batch containing `offset` may
        begin before it; clients skip the records they did not ask for.
        """
        self._check_open()
        if offset < self.log_start_offset or offset > self.log_end_offset:
            raise KafkaError(
                ErrorCode.OFFSET_OUT_OF_RANGE,
                f"offset {offset} outside [{self.log_start_offset}, {self.log_end_offset}] "
                f"of {self.topic}-{self.index}",
            )
        for slot in range(bisect.bisect_right(self._bases, offset) - 1, len(self._segments)):
            data = self._segments[slot].read(offset, max_bytes)
            if data:
                return data
        return b""

    def offset_for_timestamp(self, timestamp: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the earliest record at or after log_start_offset with timestamp >= `timestamp`."""
        self._check_open()
        for segment in self._segments:
            if segment.next_offset <= self.log_start_offset or segment.max_timestamp < timestamp:
                continue
            found = segment.offset_for_timestamp(timestamp, self.log_start_offset)
            if found is not None:
                return found
        return None

    def max_timestamp_offset(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record with the largest timestamp (ListOffsets -3)."""
        self._check_open()
        best = None
        for segment in self._segments:
            if segment.size and (best is None or segment.max_timestamp > best.max_timestamp):
                best = segment
        return best.max_timestamp_record() if best is not None else None

    # -- deletion ----------------------------------------------------------------

    def delete_records(self, offset: int) -> int:
        """DeleteRecords: move log_start_offset up to `offset` (-1: the high watermark); returns it.

        Whole segments below the new start are removed; the rest of the data
        below it stays on disk but is no longer served.
        """
        self._check_open()
        if offset == -1:
            offset = self.high_watermark
        if offset < 0 or offset > self.high_watermark:
            raise KafkaError(
                ErrorCode.OFFSET_OUT_OF_RANGE,
                f"cannot delete records before {offset}: high watermark is {self.high_watermark}",
            )
        if offset > self.log_start_offset:
            self.log_start_offset = offset
            write_json_atomically(self.directory / LOG_START_OFFSET_FILE, {"log_start_offset": offset})
            self._delete_leading_segments(self._count_below_log_start())
        return self.log_start_offset

    def apply_retention(self, now_ms: int | None = None) -> int:
        """Delete the oldest segments that break retention.ms or retention.bytes; returns how many.

        Only for topics whose cleanup.policy includes delete.  As in Kafka, a
        segment's age is that of its newest timestamp, and the active segment
        goes too (after a roll) when it has expired.
        """
        self._check_open()
        now = self._clock() if now_ms is None else now_ms
        config = self.config
        if "delete" not in config.cleanup_policy:
            return 0
        count = self._count_below_log_start()
        if config.retention_ms >= 0:
            expired = 0
            for segment in self._segments:
                if not segment.size or now - segment.max_timestamp <= config.retention_ms:
                    break
                expired += 1
            count = max(count, expired)
        if config.retention_bytes >= 0:
            excess = self.size_in_bytes - config.retention_bytes
            oversized = 0
            for segment in self._segments:
                if not segment.size or excess < segment.size:
                    break
                excess -= segment.size
                oversized += 1
            count = max(count, oversized)
        self._delete_leading_segments(count)
        return count

    def _count_below_log_start(self) -> int:
        """Leading segments holding no offset at or after log_start_offset."""
        count = 0
        for segment in self._segments:
            if segment.next_offset > self.log_start_offset or not segment.size:
                break
            count += 1
        return count

    def _delete_leading_segments(self, count: int) -> None:
        if not count:
            return
        if count == len(self._segments):
            self.roll()  # a partition always keeps one segment, so the log end offset survives
        doomed, self._segments = self._segments[:count], self._segments[count:]
        del self._bases[:count]
        for segment in doomed:
            segment.delete()
        self.log_start_offset = max(self.log_start_offset, self._bases[0])

    # -- lifecycle -------------------------------------------------------------

    def flush(self) -> None:
        """fsync every segment with unflushed appends."""
        for segment in self._segments:
            segment.flush()
        self._unflushed_records = 0
        self._last_flush_ms = self._clock()

    def close(self) -> None:
        """Seal the active segment's time index, snapshot producer state, fsync, close files."""
        if self._closed:
            return
        self._closed = True
        self._segments[-1].seal()
        self._producers.remove_expired(self._clock())
        self._producers.take_snapshot(self.log_end_offset)
        self.flush()
        for segment in self._segments:
            segment.close()


def _is_writable(records: bytes | bytearray | memoryview) -> bool:
    return isinstance(records, bytearray) or (isinstance(records, memoryview) and not records.readonly)


def _check_policy(headers: list[BatchHeader], total_size: int, config: LogConfig, now: int) -> None:
    """Kafka's per-batch append checks that need no record decoding."""
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
        if not config.log_append_time and header.max_timestamp - now > config.message_timestamp_after_max_ms:
            raise KafkaError(
                ErrorCode.INVALID_TIMESTAMP,
                f"timestamp {header.max_timestamp} is more than message.timestamp.after.max.ms "
                f"{config.message_timestamp_after_max_ms} ahead of the broker clock {now}",
            )
