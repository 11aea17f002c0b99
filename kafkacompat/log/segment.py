"""One segment of a partition's log: `<base>.log` with its `.index` and `.timeindex`."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from pathlib import Path

from kafkacompat.log.file_slice import FileSlice
from kafkacompat.log.open_files import OPEN_FILES
from kafkacompat.log.index import OffsetIndex, TimeIndex
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.records import (
    BATCH_OVERHEAD,
    LOG_OVERHEAD,
    NO_TIMESTAMP,
    BatchHeader,
    decode_records,
    read_header,
    scan_valid_batches,
)

# base_offset, batch_length, (11 bytes skipped), last_offset_delta: enough to place an offset.
_BATCH_PREFIX = struct.Struct(">qi11xi")
_BATCH_LENGTH = struct.Struct(">i")
_MIN_BATCH_LENGTH = BATCH_OVERHEAD - LOG_OVERHEAD
_RECOVERY_CHUNK = 8 << 20
SEGMENT_FILE_SUFFIXES = (".log", ".index", ".timeindex", ".txnindex")


def segment_name(base_offset: int) -> str:
    """Kafka's file stem: the base offset as 20 zero-padded digits."""
    return f"{base_offset:020d}"


class LogSegment:
    """A contiguous run of record batches, starting at `base_offset`, and its two sparse indexes.

    On disk: `<20-digit base>.log` holds whole v2 record batches back to back,
    exactly as the producer sent them except for the patched base offset (and
    max timestamp for LogAppendTime), or as the log cleaner rewrote them.
    `.index` and `.timeindex` are described in index.py.  Data is written with
    pwrite on an unbuffered descriptor before the index entries that point at
    it, so after a killed process the indexes never point past the data;
    `recover()` repairs the other direction.

    After a clean shutdown a segment is rebuilt from `state()` without
    opening anything; its files are opened on first use, and closed again
    when the broker-wide budget of open descriptors needs room (open_files.py).

    Only the last segment of a partition is appended to.  Not safe for
    concurrent use: the owning PartitionLog serialises every call.  fsyncs go
    through duplicated descriptors (`take_unsynced_fd`, `seal`), so a worker
    thread may sync them while this segment is rolled, closed or deleted.
    """

    def __init__(self, directory: Path, base_offset: int, *, next_offset: int | None = None) -> None:
        stem = segment_name(base_offset)
        self.base_offset = base_offset
        self.log_path = directory / f"{stem}.log"
        self._descriptor: int | None = os.open(self.log_path, os.O_RDWR | os.O_CREAT, 0o644)
        OPEN_FILES.opened(self)
        self.size = os.fstat(self._descriptor).st_size
        self._offset_index: OffsetIndex | None = OffsetIndex(directory / f"{stem}.index")
        self._time_index: TimeIndex | None = TimeIndex(directory / f"{stem}.timeindex")
        # Offset after this segment's last batch; known for sealed segments from the
        # next segment's base, and computed by recover() for the active one.
        self.next_offset = base_offset if next_offset is None else next_offset
        self._max_timestamp_from_time_index()
        self.first_batch_timestamp: int | None = None  # Kafka's segment.ms roll anchor
        self._bytes_since_index_entry = 0
        self._dirty = False
        self._appended = False

    @classmethod
    def from_state(cls, directory: Path, state: list[int | None]) -> LogSegment:
        """A segment as `state()` described it at a clean shutdown; its files are opened on first use."""
        segment = cls.__new__(cls)
        base, segment.size, segment.next_offset, segment.max_timestamp, segment.max_timestamp_offset, first = state
        segment.base_offset = base
        segment.log_path = directory / f"{segment_name(base)}.log"
        segment._descriptor = segment._offset_index = segment._time_index = None
        segment.first_batch_timestamp = first
        segment._bytes_since_index_entry = 0
        segment._dirty = segment._appended = False
        return segment

    def state(self) -> list[int | None]:
        """What `from_state` needs to stand for this segment without reading it."""
        return [self.base_offset, self.size, self.next_offset, self.max_timestamp, self.max_timestamp_offset,
                self.first_batch_timestamp]

    @property
    def _fd(self) -> int:
        descriptor = self._descriptor
        if descriptor is None:
            descriptor = self._descriptor = os.open(self.log_path, os.O_RDWR)
            OPEN_FILES.opened(self)
        else:
            OPEN_FILES.touched(self)
        return descriptor

    def release_descriptor(self) -> None:
        """Close the data file's descriptor to stay within the open-files budget; the next use reopens it."""
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is not None:
            os.close(descriptor)

    @property
    def offset_index(self) -> OffsetIndex:
        if self._offset_index is None:
            self._offset_index = OffsetIndex(self.log_path.with_suffix(".index"))
        return self._offset_index

    @property
    def time_index(self) -> TimeIndex:
        if self._time_index is None:
            self._time_index = TimeIndex(self.log_path.with_suffix(".timeindex"))
        return self._time_index

    # -- writing ---------------------------------------------------------------

    def append(self, data: bytes | bytearray | memoryview, headers: list[BatchHeader], index_interval_bytes: int) -> None:
        """Append validated, offset-assigned batches; `headers[i].position` is relative to `data`."""
        position = self.size
        view = memoryview(data)
        try:
            written = 0
            while written < len(view):
                written += os.pwrite(self._fd, view[written:], position + written)
        except OSError as exc:
            os.ftruncate(self._fd, position)
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"write to {self.log_path} failed: {exc}") from exc
        self.size += len(view)
        self._dirty = self._appended = True
        for header in headers:
            self._track(position + header.position, header, index_interval_bytes)

    def _track(self, position: int, header: BatchHeader, index_interval_bytes: int) -> None:
        """Per-batch bookkeeping shared by append and recovery: max timestamp, index entries."""
        if self.first_batch_timestamp is None:
            self.first_batch_timestamp = header.max_timestamp
        if header.max_timestamp > self.max_timestamp:
            self.max_timestamp = header.max_timestamp
            self.max_timestamp_offset = header.base_offset
        if self._bytes_since_index_entry > index_interval_bytes:
            self.time_index.maybe_append(self.max_timestamp, self.max_timestamp_offset - self.base_offset)
            self.offset_index.append(header.base_offset - self.base_offset, position)
            self._bytes_since_index_entry = 0
        self._bytes_since_index_entry += header.size
        self.next_offset = header.last_offset + 1

    @property
    def has_unsynced_appends(self) -> bool:
        return self._dirty

    def take_unsynced_fd(self, *, duplicate: bool = True) -> int | None:
        """A duplicate of the data file's descriptor if appends since the last call still need an fsync.

        The caller owns the duplicate: it fsyncs and closes it, in any thread.
        With `duplicate=False` the caller syncs the whole filesystem instead:
        the appends count as covered and no descriptor is handed over.
        """
        if not self._dirty:
            return None
        self._dirty = False
        return os.dup(self._fd) if duplicate else None

    def seal(self) -> list[int]:
        """On roll and close: record the final max timestamp; hand over the descriptors still needing an fsync.

        Those are the data file's (if dirty) and both indexes'; the caller
        fsyncs and closes them, so a roll never waits for the disk.
        """
        if self.size and (self._time_index is not None or self._appended):
            self.time_index.maybe_append(self.max_timestamp, self.max_timestamp_offset - self.base_offset)
        indexes = [index.detach() for index in (self._offset_index, self._time_index) if index is not None]
        return [fd for fd in [self.take_unsynced_fd(), *indexes] if fd is not None]

    def recover(self, index_interval_bytes: int, *, full: bool = False) -> int:
        """Make the segment consistent with its data; returns the number of bytes cut off.

        Scans from the last trustworthy offset-index entry (from byte 0 and with
        both indexes rebuilt when `full`) to the end of the file, checking each
        batch (length, magic, CRC, ascending offsets), cuts the file after the
        last good batch, drops index entries past the cut and re-adds the ones a
        crash lost.  The partial scan is bounded by index.interval.bytes plus the
        batches after the last entry, so it is cheap after a clean stop; the
        full one is for segments an unclean stop may have left unsynced.
        """
        size_before = self.size
        self.offset_index.truncate_to_position(0 if full else self.size)
        if full:
            self.time_index.truncate_to_offset(0)
            self._dirty = True  # after an unclean stop the data may live only in the page cache
        start, next_offset = self._last_trusted_index_entry()
        self._bytes_since_index_entry = 0  # the batch at `start` is the indexed one
        good: list[BatchHeader] = []
        position = start
        needed = 0
        while position < self.size:
            chunk = os.pread(self._fd, min(max(_RECOVERY_CHUNK, needed), self.size - position), position)
            consumed = 0
            for header in scan_valid_batches(chunk):
                if header.base_offset < next_offset or header.last_offset < header.base_offset:
                    break
                good.append(header._replace(position=position + header.position))
                next_offset = header.last_offset + 1
                consumed = header.end
            needed = self._size_cut_by_chunk(chunk, consumed, position)
            if not consumed and not needed:
                break
            position += consumed
        if position < self.size:
            os.ftruncate(self._fd, position)
            self.size = position
            self.offset_index.truncate_to_position(position)
        self.time_index.truncate_to_offset(next_offset - self.base_offset)
        self._max_timestamp_from_time_index()
        self.next_offset = next_offset
        self.first_batch_timestamp = self._read_header(0).max_timestamp if self.size else None
        for header in good:
            self._track(header.position, header, index_interval_bytes)
        return size_before - self.size

    def truncate_to(self, offset: int) -> None:
        """Cut the batches from the one holding `offset` (a batch boundary) on: a follower's divergent tail."""
        position = self.find_position(offset)
        if position is None:
            return
        os.ftruncate(self._fd, position)
        self.size = position
        self.offset_index.truncate_to_position(position)
        self.time_index.truncate_to_offset(offset - self.base_offset)
        self._max_timestamp_from_time_index()
        self.next_offset = offset
        self.first_batch_timestamp = self.first_batch_timestamp if self.size else None
        self._dirty = True

    def indexes_look_sane(self) -> bool:
        """Cheap checks of a sealed segment's indexes: both files present, last entries inside the data.

        One small read: the last offset-index entry must name the batch at its position.
        """
        if not (self.offset_index.existed and self.time_index.existed):
            return False
        last_time = self.time_index.last_entry
        if (last_time is None) != (self.size == 0):
            return False
        if last_time is not None and not 0 <= last_time[1] < self.next_offset - self.base_offset:
            return False
        entry = self.offset_index.last_entry
        if entry is None:
            return True
        relative_offset, position = entry
        prefix = os.pread(self._fd, BATCH_OVERHEAD, position) if 0 <= position < self.size else b""
        return len(prefix) == BATCH_OVERHEAD and read_header(prefix).base_offset == self.base_offset + relative_offset

    def _max_timestamp_from_time_index(self) -> None:
        """The last time-index entry holds the max timestamp of a sealed segment (a lower bound otherwise)."""
        last = self.time_index.last_entry
        self.max_timestamp = last[0] if last else NO_TIMESTAMP
        self.max_timestamp_offset = self.base_offset + last[1] if last else self.base_offset

    def _last_trusted_index_entry(self) -> tuple[int, int]:
        """(position, offset) of the last index entry that points at a real batch header."""
        while (entry := self.offset_index.last_entry) is not None:
            relative_offset, position = entry
            prefix = os.pread(self._fd, BATCH_OVERHEAD, position)
            if len(prefix) == BATCH_OVERHEAD and read_header(prefix).base_offset == self.base_offset + relative_offset:
                return position, self.base_offset + relative_offset
            self.offset_index.truncate_to_position(position)
        return 0, self.base_offset

    def _size_cut_by_chunk(self, chunk: bytes, consumed: int, position: int) -> int:
        """Size of the batch at `consumed` if only the read chunk cut it short, else 0."""
        if consumed + LOG_OVERHEAD > len(chunk):
            return LOG_OVERHEAD if position + consumed + LOG_OVERHEAD <= self.size and consumed < len(chunk) else 0
        (length,) = _BATCH_LENGTH.unpack_from(chunk, consumed + 8)
        size = LOG_OVERHEAD + length
        fits_file = position + consumed + size <= self.size
        return size if consumed + size > len(chunk) and fits_file else 0

    # -- reading ---------------------------------------------------------------

    def find_position(self, offset: int, end: int | None = None) -> int | None:
        """File position of the batch containing `offset`, or None if the segment (or `end`) comes before it."""
        if offset >= self.next_offset:
            return None
        limit = self.size if end is None else min(end, self.size)
        position = self.offset_index.lookup(max(offset - self.base_offset, 0))
        while position < limit:
            prefix = os.pread(self._fd, _BATCH_PREFIX.size, position)
            if len(prefix) < _BATCH_PREFIX.size:
                raise self._damaged(position)
            base_offset, length, last_offset_delta = _BATCH_PREFIX.unpack(prefix)
            if length < _MIN_BATCH_LENGTH:
                raise self._damaged(position)
            if base_offset + last_offset_delta >= offset:
                return position
            position += LOG_OVERHEAD + length
        return None

    def locate(self, offset: int, max_bytes: int, end: int | None = None) -> tuple[int, int] | None:
        """(position, size) of whole batches from the one containing `offset`: up to `max_bytes`, at least one.

        Nothing at or after byte `end` (a batch boundary: the high
        watermark's position) is included. Only batch lengths are read: the
        last one that fits is found from the offset index's entry nearest
        below the byte limit, so a fetch of a megabyte reads a few headers.
        """
        position = self.find_position(offset, end)
        if position is None:
            return None
        limit = min(self.size, self.size if end is None else end, position + max(max_bytes, 0))
        cut = max(position, self.offset_index.floor_position(limit))
        while cut < limit:
            batch_end = cut + LOG_OVERHEAD + self._batch_length(cut)
            if batch_end > limit:
                break
            cut = batch_end
        if cut == position:  # the first batch alone is larger than max_bytes: it goes whole
            cut += LOG_OVERHEAD + self._batch_length(position)
        return position, cut - position

    def _batch_length(self, position: int) -> int:
        data = os.pread(self._fd, _BATCH_LENGTH.size, position + 8)
        if len(data) < _BATCH_LENGTH.size:
            raise self._damaged(position)
        (length,) = _BATCH_LENGTH.unpack(data)
        if length < _MIN_BATCH_LENGTH:
            raise self._damaged(position)
        return length

    def pread(self, position: int, size: int) -> bytes:
        return os.pread(self._fd, size, position)

    def slice(self, position: int, size: int) -> FileSlice:
        """The range as a :class:`FileSlice`, to be sent without reading it."""
        return FileSlice(self._fd, position, size)

    def _read_header(self, position: int) -> BatchHeader:
        data = os.pread(self._fd, BATCH_OVERHEAD, position)
        header = read_header(data)._replace(position=position) if len(data) == BATCH_OVERHEAD else None
        if header is None or header.batch_length < _MIN_BATCH_LENGTH:
            raise self._damaged(position)
        return header

    def _damaged(self, position: int) -> KafkaError:
        """A sealed segment changed under us (disk damage, outside edits): fail the call, not the broker."""
        return KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, f"{self.log_path} is damaged at byte {position}")

    def batches_from(self, position: int) -> Iterator[BatchHeader]:
        """Headers of the batches from `position` to the end, one small pread each."""
        while position < self.size:
            header = self._read_header(position)
            yield header
            position = header.end

    def read_batch(self, header: BatchHeader) -> bytes:
        return os.pread(self._fd, header.size, header.position)

    def offset_for_timestamp(self, timestamp: int, min_offset: int) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record >= `timestamp` at or after `min_offset`."""
        if self.max_timestamp < timestamp:
            return None
        relative = self.time_index.lookup_before(timestamp)
        start = max(self.base_offset + (relative or 0), min_offset)
        position = self.find_position(start)
        if position is None:
            return None
        for header in self.batches_from(position):
            if header.max_timestamp < timestamp or header.last_offset < min_offset:
                continue
            for record in decode_records(self.read_batch(header)):
                if record.offset >= min_offset and record.timestamp >= timestamp:
                    return record.offset, record.timestamp
        return None

    def max_timestamp_record(self) -> tuple[int, int] | None:
        """(offset, timestamp) of the first record carrying the segment's max timestamp."""
        position = self.find_position(self.max_timestamp_offset) if self.size else None
        if position is None or self.max_timestamp == NO_TIMESTAMP:
            return None
        header = self._read_header(position)
        for record in decode_records(self.read_batch(header)):
            if record.timestamp == self.max_timestamp:
                return record.offset, record.timestamp
        return header.base_offset, self.max_timestamp

    # -- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        if self._descriptor is not None:
            OPEN_FILES.closed(self)
            os.close(self._descriptor)
            self._descriptor = None
        for index in (self._offset_index, self._time_index):
            if index is not None:
                index.close()

    def delete(self) -> None:
        self.close()
        for suffix in SEGMENT_FILE_SUFFIXES:
            self.log_path.with_suffix(suffix).unlink(missing_ok=True)
