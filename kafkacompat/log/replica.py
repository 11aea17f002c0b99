"""A replica's side of the log: leadership changes, follower appends, the replicated end, truncation.

A mixin of PartitionLog (it uses the log's segments, offsets, producer state
and epoch history directly): split from partition_log.py by concept, not an
object of its own. kafkacompat.cluster.replication drives it; a broker alone
never calls it.
"""

from __future__ import annotations

import bisect
import logging

from kafkacompat.log.flush import LogPosition
from kafkacompat.log.transactions import CONTROL_COMMIT, CONTROL_PEEK_BYTES, control_type
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.records import parse_batches

log = logging.getLogger("kafkacompat.log")


class ReplicaLog:
    """Replication's operations on one partition's log; mixed into PartitionLog, which defines the state used."""

    def become_leader(self, leader_epoch: int) -> None:
        """This replica leads from now on: `leader_epoch` starts at the log end and stamps every append."""
        self._check_open()
        history = self._epoch_history()
        self.leader_epoch = leader_epoch
        history.assign(leader_epoch, self.log_end_offset)

    def become_follower(self, leader_epoch: int) -> None:
        """Another replica leads in `leader_epoch`; epochs enter the history with the leader's batches."""
        if not self._leader_epoch_recorded:
            self._leader_epochs.truncate_from_end(self.log_end_offset)
            self._leader_epochs.truncate_from_start(self.log_start_offset)
            self._leader_epoch_recorded = True
        self.leader_epoch = leader_epoch

    @property
    def latest_epoch(self) -> int:
        """The newest epoch of this log's history (-1 when none)."""
        return self._leader_epochs.latest_epoch

    def append_replica(self, records: bytes | bytearray | memoryview) -> int:
        """A follower's append of batches read from the leader, offsets and epochs as the leader wrote them.

        Per batch only: the headers are parsed, the producer state replayed and
        new epochs recorded; the bytes go to the segment as they came.
        Returns the new log end offset.
        """
        self._check_open()
        headers = parse_batches(records)
        if headers[0].base_offset != self.log_end_offset:
            raise KafkaError(ErrorCode.OFFSET_OUT_OF_RANGE, f"replica of {self.topic}-{self.index} is at "
                             f"{self.log_end_offset}, the leader sent {headers[0].base_offset}")
        now = self._clock()
        history = self._leader_epochs
        for header in headers:
            if header.partition_leader_epoch > history.latest_epoch:
                history.assign(header.partition_leader_epoch, header.base_offset)
        segment = self._maybe_roll(headers[-1].end, max(h.max_timestamp for h in headers), headers[-1].last_offset, now)
        file_position = segment.size
        segment.append(records, headers, self.config.index_interval_bytes)
        for header in headers:  # producer state and transactions, as the leader's appends left them
            placed = header._replace(position=file_position + header.position)
            if header.is_control:
                peek = bytes(records[header.position:header.position + CONTROL_PEEK_BYTES])
                self._end_transaction(placed, control_type(peek) == CONTROL_COMMIT, segment.base_offset, now)
            else:
                self._producers.replay(placed, now, segment.base_offset)
        self._unflushed_records += headers[-1].last_offset + 1 - headers[0].base_offset
        if not self.flushes_on_ack:
            self._high_watermark = self._end_position()
        return self.log_end_offset

    def set_replicated_end(self, offset: int | None) -> None:
        """Cap the high watermark at `offset` (a batch boundary): the leader's minimum ISR log end,
        or a follower's leader's high watermark; None when no other replica counts."""
        if offset is None:
            self._replicated = None
            return
        offset = min(offset, self.log_end_offset)
        if self._replicated is not None and self._replicated.offset == offset:
            return
        self._replicated = self._position_at(offset)

    def _position_at(self, offset: int) -> LogPosition:
        if offset >= self.log_end_offset:
            return self._end_position()
        segment = self._segments[max(bisect.bisect_right(self._bases, offset) - 1, 0)]
        position = segment.find_position(offset)
        return LogPosition(offset, segment.base_offset, segment.size if position is None else position)

    def truncate_to(self, offset: int) -> None:
        """Drop everything from `offset` (a batch boundary) on: the divergent tail of a returning replica."""
        self._check_open()
        if offset >= self.log_end_offset:
            return
        offset = max(offset, self._bases[0])
        slot = bisect.bisect_right(self._bases, offset) - 1
        for segment in self._segments[slot + 1:]:
            segment.delete()
        del self._segments[slot + 1:]
        del self._bases[slot + 1:]
        self._segments[-1].truncate_to(offset)
        self.segments_version += 1
        self._leader_epochs.truncate_from_end(offset)
        self._rebuild_producer_state()
        self.log_start_offset = min(self.log_start_offset, offset)
        self.recovery_point = min(self.recovery_point, offset)
        if self._high_watermark.offset > offset:
            self._high_watermark = self._end_position()
        if self._replicated is not None and self._replicated.offset > offset:
            self._replicated = self._end_position()
        log.info("truncated %s-%d to offset %d", self.topic, self.index, offset)

