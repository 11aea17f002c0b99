"""Retention, DeleteRecords and compaction swaps: how a partition's log loses its oldest data.

A mixin of PartitionLog (it uses the log's segments, offsets and epoch
history directly): split from partition_log.py by concept, not an object of
its own.  Segments are taken only below the last stable offset, so an open
transaction's first batch and the aborted-transaction index entries of the
kept segments stay.
"""

from __future__ import annotations

from kafkacompat.log.durable import write_json_atomically
from kafkacompat.log.recovery import SWAP_JOURNAL, finish_segment_swap
from kafkacompat.log.segment import LogSegment
from kafkacompat.protocol.errors import ErrorCode, KafkaError

LOG_START_OFFSET_FILE = "log-start-offset"


class SegmentRetention:
    """Deletion and replacement of leading segments; mixed into PartitionLog, which defines the state used."""

    # -- deletion ----------------------------------------------------------------

    def delete_records(self, offset: int) -> int:
        """DeleteRecords: move log_start_offset up to `offset` (-1: the high watermark); returns it.

        Whole segments below the new start are removed; the rest of the data
        below it stays on disk but is no longer served.
        """
        self._check_open()
        if "delete" not in self.config.cleanup_policy:
            raise KafkaError(
                ErrorCode.POLICY_VIOLATION,
                f"records of {self.topic}-{self.index} cannot be deleted: cleanup.policy has no delete",
            )
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
            self._epoch_history().truncate_from_start(self.log_start_offset)
        return self.log_start_offset

    def apply_retention(self, now_ms: int | None = None) -> int:
        """Delete the oldest segments that break retention.ms or retention.bytes; returns how many.

        Only for topics whose cleanup.policy includes delete.  As in Kafka, a
        segment's age is that of its newest timestamp, and the active segment
        goes too (after a roll) when it has expired.  Records past the high
        watermark (not yet durable, so not acknowledged) are never deleted.
        """
        self._check_open()
        now = self._clock() if now_ms is None else now_ms
        config = self.config
        if "delete" not in config.cleanup_policy:
            return 0
        count = self._count_below_log_start()
        deletable = self._deletable_segments()
        if config.retention_ms >= 0:
            expired = 0
            for segment in deletable:
                if now - segment.max_timestamp <= config.retention_ms:
                    break
                expired += 1
            count = max(count, expired)
        if config.retention_bytes >= 0:
            excess = self.size_in_bytes - config.retention_bytes
            oversized = 0
            for segment in deletable:
                if excess < segment.size:
                    break
                excess -= segment.size
                oversized += 1
            count = max(count, oversized)
        self._delete_leading_segments(count)
        return count

    def _deletable_segments(self) -> list[LogSegment]:
        """Segments retention may take: all below the last stable offset, except an empty active one."""
        limit = self.last_stable_offset
        active = self._segments[-1]
        return [
            segment
            for segment in self._segments
            if segment.next_offset <= limit and (segment is not active or segment.size)
        ]

    def _count_below_log_start(self) -> int:
        """Leading segments holding no offset at or after log_start_offset."""
        count = 0
        for segment in self._deletable_segments():
            if segment.next_offset > self.log_start_offset:
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
        self.segments_version += 1
        self.log_start_offset = max(self.log_start_offset, self._bases[0])
        self._aborted.drop_below(self._bases[0])
        self._epoch_history().truncate_from_start(self.log_start_offset)

    # -- compaction (driven by cleaner.py) --------------------------------------

    def cleanable_segments(self, now_ms: int) -> list[LogSegment]:
        """Leading sealed segments the cleaner may rewrite: below the LSO, past min.compaction.lag.ms."""
        self._check_open()
        lag = self.config.min_compaction_lag_ms
        cleanable = []
        for segment in self._segments[:-1]:
            too_new = lag > 0 and segment.size and now_ms - segment.max_timestamp < lag
            if segment.next_offset > self.last_stable_offset or too_new:
                break
            cleanable.append(segment)
        return cleanable

    def swap_cleaned(self, sources: list[LogSegment]) -> None:
        """Replace consecutive `sources` by the cleaned segment the cleaner staged and synced.

        Writes the swap journal (the commit point), then completes the swap
        exactly as recovery would (see recovery.finish_segment_swap).
        """
        self._check_open()
        first = self._segments.index(sources[0])
        if self._segments[first : first + len(sources)] != sources or sources[-1] is self._segments[-1]:
            raise ValueError("cleaned segments must replace consecutive sealed segments")
        write_json_atomically(
            self.directory / SWAP_JOURNAL, {"replaced": [segment.base_offset for segment in sources[1:]]}
        )
        for segment in sources:
            segment.close()
        try:
            finish_segment_swap(self.directory)
        except OSError as exc:
            self._storage_error = f"swapping in cleaned segments of {self.topic}-{self.index} failed: {exc}"
            raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, self._storage_error) from exc
        cleaned = LogSegment(self.directory, sources[0].base_offset, next_offset=sources[-1].next_offset)
        self._segments[first : first + len(sources)] = [cleaned]
        self._bases = [segment.base_offset for segment in self._segments]
        self.segments_version += 1
