"""Share-partition state (KIP-932): which records of one partition a share group has handed out.

Theory of operation.  A share group reads a partition cooperatively: a record
is *acquired* by one member at a time, under a lock of
``group.share.record.lock.duration.ms``, and the member acknowledges it as
accepted, released (deliver again) or rejected (never deliver again).  The
share-partition start offset (SPSO) is the first offset not yet finished;
the share-partition end offset (SPEO) is one past the last offset ever
acquired.  Between them lie the *in-flight* records, kept as ranges of
consecutive offsets in one state with one delivery count, never as one
object per record: a fetch acquires whole batches as ranges, and a range is
split only where an acknowledgement or a lock ends inside it.  Records below
the SPSO are finished; records at or past the SPEO have never been acquired.

States of an in-flight range, and what moves it on:

    ============  ===================================  ===========================
    state         event                                next state
    ============  ===================================  ===========================
    AVAILABLE     acquire (delivery count + 1)         ACQUIRED
    AVAILABLE     in an aborted transaction, read      ARCHIVED
                  with share.isolation.level
                  read_committed
    ACQUIRED      acknowledge ACCEPT                   ACKNOWLEDGED
    ACQUIRED      acknowledge REJECT, or GAP           ARCHIVED
    ACQUIRED      acknowledge RENEW (KIP-1222)         ACQUIRED, its lock restarted
    ACQUIRED      acknowledge RELEASE, lock expires,   AVAILABLE, or ARCHIVED once
                  or the holder leaves                 the delivery count reached
                                                       group.share.delivery.count.limit
    ACKNOWLEDGED  (terminal)                           dropped when the SPSO passes
    ARCHIVED      (terminal)                           dropped when the SPSO passes
    ============  ===================================  ===========================

Offsets the log lacks (compacted away, control batches) and, for a
read_committed group, the batches of aborted transactions are ARCHIVED as
they are passed, never delivered.  An acknowledgement of an offset that is
not ACQUIRED by the acknowledging member fails with INVALID_RECORD_STATE and
changes nothing.  Whenever the lowest in-flight ranges are terminal the SPSO
moves past them.  A log start offset past the SPSO (retention,
DeleteRecords) finishes the records below it.

Durability: :meth:`snapshot` is what Kafka's share coordinator keeps (the
SPSO, and every in-flight range with its state and delivery count, acquired
ranges written as AVAILABLE since locks do not survive a restart, but with
the delivery count their acquisition gave them); :meth:`restore` reads it
back. Time comes only from ``now_ms`` arguments.
Not safe for concurrent use: the share coordinator serialises access.
"""

from __future__ import annotations

import bisect
import enum
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Sequence

from kafkacompat.protocol.errors import ErrorCode


class RecordState(enum.IntEnum):
    """Kafka's numbering of in-flight states (the persisted form uses it too)."""

    AVAILABLE = 0
    ACQUIRED = 1
    ACKNOWLEDGED = 2
    ARCHIVED = 4


class AcknowledgeType(enum.IntEnum):
    GAP = 0
    ACCEPT = 1
    RELEASE = 2
    REJECT = 3
    RENEW = 4  # KIP-1222 (ShareFetch/ShareAcknowledge v2): keep the records, restart their lock


_TERMINAL = (RecordState.ACKNOWLEDGED, RecordState.ARCHIVED)


@dataclass(slots=True)
class InFlight:
    """Consecutive offsets ``first``..``last`` (inclusive) sharing one state."""

    first: int
    last: int
    state: RecordState
    delivery_count: int
    member_id: str | None = None
    lock_deadline_ms: int | None = None

    def piece(self, first: int, last: int) -> InFlight:
        return InFlight(first, last, self.state, self.delivery_count, self.member_id, self.lock_deadline_ms)


@dataclass(frozen=True, slots=True)
class FetchedBatch:
    """One batch a fetch read: its offsets, and whether its records may be delivered at all."""

    base_offset: int
    last_offset: int
    deliverable: bool = True  # False: an aborted transaction's batch, read with read_committed


@dataclass(frozen=True, slots=True)
class Acquired:
    """A range handed to a member by one fetch, as ShareFetch reports it."""

    first_offset: int
    last_offset: int
    delivery_count: int


class SharePartition:
    """One (share group, topic partition)'s in-flight records; see the module docstring."""

    def __init__(self, start_offset: int, *, lock_duration_ms: int, delivery_count_limit: int,
                 max_record_locks: int) -> None:
        self.start_offset = start_offset
        self.end_offset = start_offset
        self.lock_duration_ms = lock_duration_ms
        self.delivery_count_limit = delivery_count_limit
        self.max_record_locks = max_record_locks
        self.state_epoch = 0
        self._ranges: list[InFlight] = []  # sorted, disjoint, all within [start_offset, end_offset)

    # -- reading the state ---------------------------------------------------

    @property
    def in_flight(self) -> Sequence[InFlight]:
        return tuple(self._ranges)

    def next_fetch_offset(self) -> int:
        """Where a fetch should read from: the first AVAILABLE in-flight offset, else the SPEO."""
        for entry in self._ranges:
            if entry.state is RecordState.AVAILABLE:
                return entry.first
        return self.end_offset

    def next_lock_deadline(self) -> int | None:
        deadlines = [e.lock_deadline_ms for e in self._ranges if e.lock_deadline_ms is not None]
        return min(deadlines) if deadlines else None

    def has_available(self, high_watermark: int) -> bool:
        offset = self.next_fetch_offset()
        return offset < high_watermark and (offset < self.end_offset or not self._window_full())

    def _window_full(self) -> bool:
        return self.end_offset - self.start_offset >= self.max_record_locks

    def lag(self, high_watermark: int) -> int:
        """KIP-1226's share-partition lag: records from the SPSO to ``high_watermark`` not yet finished."""
        finished = sum(min(e.last, high_watermark - 1) - e.first + 1 for e in self._ranges
                       if e.state in _TERMINAL and e.first < high_watermark)
        return max(high_watermark - self.start_offset - finished, 0)

    # -- acquisition ----------------------------------------------------------

    def acquire(self, member_id: str, batches: Iterable[FetchedBatch], max_records: int, now_ms: int, *,
                record_limit: bool = False) -> list[Acquired]:
        """Acquire records of the fetched ``batches`` for ``member_id``; the acquired ranges in offset order.

        AVAILABLE in-flight ranges inside the batches are re-acquired, offsets
        past the SPEO are acquired whole batch by batch; acquisition stops once
        ``max_records`` are taken, or past the SPEO once the window is full.
        A batch is never cut (Kafka's
        batch_optimized acquire mode) unless ``record_limit`` (KIP-1206's
        record_limit mode) asks for ``max_records`` at most. Batches that are
        not deliverable are archived as they are passed.
        """
        deadline = now_ms + self.lock_duration_ms
        taken: list[Acquired] = []
        count = 0
        for batch in batches:
            base, last = batch.base_offset, batch.last_offset
            if count >= max_records:
                break
            if last < self.start_offset:
                continue
            if not batch.deliverable:
                self._archive(max(base, self.start_offset), last)
                continue
            first = max(base, self.start_offset)
            if first < self.end_offset:
                for entry in self._split_range(first, min(last, self.end_offset - 1)):
                    if entry.state is not RecordState.AVAILABLE:
                        continue
                    if record_limit and entry.last - entry.first + 1 > max_records - count:
                        if count >= max_records:
                            break
                        self._split_at(entry.first + max_records - count)  # entry keeps the first part
                    entry.state, entry.member_id, entry.lock_deadline_ms = RecordState.ACQUIRED, member_id, deadline
                    entry.delivery_count += 1
                    taken.append(Acquired(entry.first, entry.last, entry.delivery_count))
                    count += entry.last - entry.first + 1
                first = self.end_offset
            if first <= last and self._window_full():
                break
            if record_limit:
                last = min(last, first + max_records - count - 1)
            if first <= last:
                self._append_past_end(first, last, RecordState.ACQUIRED, member_id, deadline)
                taken.append(Acquired(first, last, 1))
                count += last - first + 1
        self._merge()
        self._advance_start()
        return _coalesce(taken)

    def _append_past_end(self, first: int, last: int, state: RecordState, member_id: str | None = None,
                         deadline: int | None = None) -> None:
        """Records from the SPEO on enter the in-flight window (a gap before ``first`` is archived)."""
        if first > self.end_offset:  # offsets missing from the log (compacted away, control batches)
            self._ranges.append(InFlight(self.end_offset, first - 1, RecordState.ARCHIVED, 0))
        delivered = 1 if state is RecordState.ACQUIRED else 0
        self._ranges.append(InFlight(first, last, state, delivered, member_id, deadline))
        self.end_offset = last + 1

    def _archive(self, first: int, last: int) -> None:
        """Records that must never be delivered: AVAILABLE ones in [first, last] and any past the SPEO."""
        if first < self.end_offset:
            for entry in self._split_range(first, min(last, self.end_offset - 1)):
                if entry.state is RecordState.AVAILABLE:
                    entry.state = RecordState.ARCHIVED
        if max(first, self.end_offset) <= last:
            self._append_past_end(max(first, self.end_offset), last, RecordState.ARCHIVED)

    # -- acknowledgement and release ----------------------------------------

    def acknowledge(self, member_id: str, first: int, last: int, types: Sequence[int], *, now_ms: int) -> ErrorCode:
        """Apply one acknowledgement batch: one type for the whole range, or one per offset."""
        if last < first or (len(types) != 1 and len(types) != last - first + 1):
            return ErrorCode.INVALID_REQUEST
        if any(t not in AcknowledgeType._value2member_map_ for t in types):
            return ErrorCode.INVALID_REQUEST
        if first < self.start_offset or last >= self.end_offset:
            return ErrorCode.INVALID_RECORD_STATE
        covered = self._covering(first, last)
        if sum(e.last - e.first + 1 for e in covered) != last - first + 1 or any(
                e.state is not RecordState.ACQUIRED or e.member_id != member_id for e in covered):
            return ErrorCode.INVALID_RECORD_STATE
        if len(types) == 1:
            self._settle(self._split_range(first, last), AcknowledgeType(types[0]), now_ms)
        else:
            run_start = first
            for offset in range(first, last + 1):  # one run per stretch of equal types, not per record
                at_end = offset == last or types[offset + 1 - first] != types[offset - first]
                if at_end:
                    self._settle(self._split_range(run_start, offset), AcknowledgeType(types[offset - first]), now_ms)
                    run_start = offset + 1
        self._merge()
        self._advance_start()
        return ErrorCode.NONE

    def acknowledge_batches(self, member_id: str, batches: Sequence[tuple[int, int, Sequence[int]]], *,
                            now_ms: int) -> ErrorCode:
        """Apply a request's acknowledgement batches for this partition all together, or none of them."""
        saved = ([e.piece(e.first, e.last) for e in self._ranges], self.start_offset)
        for first, last, types in batches:
            error = self.acknowledge(member_id, first, last, types, now_ms=now_ms)
            if error is not ErrorCode.NONE:
                self._ranges, self.start_offset = saved
                return error
        return ErrorCode.NONE

    def release_member(self, member_id: str) -> int:
        """Release everything ``member_id`` holds (it left, or its share session closed); count released."""
        held = [e for e in self._ranges if e.state is RecordState.ACQUIRED and e.member_id == member_id]
        self._settle(held, AcknowledgeType.RELEASE, None)
        self._merge()
        self._advance_start()
        return sum(e.last - e.first + 1 for e in held)

    def expire_locks(self, now_ms: int) -> int:
        """Release acquired ranges whose lock ran out; the number of records released."""
        expired = [e for e in self._ranges if e.lock_deadline_ms is not None and e.lock_deadline_ms <= now_ms]
        self._settle(expired, AcknowledgeType.RELEASE, None)
        self._merge()
        self._advance_start()
        return sum(e.last - e.first + 1 for e in expired)

    def _settle(self, entries: Iterable[InFlight], ack: AcknowledgeType, now_ms: int | None) -> None:
        for entry in entries:
            if ack is AcknowledgeType.RENEW and now_ms is not None:
                entry.lock_deadline_ms = now_ms + self.lock_duration_ms
                continue
            if ack is AcknowledgeType.ACCEPT:
                entry.state = RecordState.ACKNOWLEDGED
            elif ack is AcknowledgeType.RELEASE and entry.delivery_count < self.delivery_count_limit:
                entry.state = RecordState.AVAILABLE
            else:
                entry.state = RecordState.ARCHIVED
            entry.member_id = entry.lock_deadline_ms = None

    # -- moving the window ----------------------------------------------------

    def move_start(self, log_start_offset: int) -> None:
        """Records below the log start offset are gone: they count as finished."""
        if log_start_offset <= self.start_offset:
            return
        self._ranges = [e for e in self._split_at(log_start_offset) if e.first >= log_start_offset]
        self.start_offset = log_start_offset
        self.end_offset = max(self.end_offset, log_start_offset)

    def reset(self, start_offset: int) -> None:
        """AlterShareGroupOffsets: forget every in-flight record and start at ``start_offset``."""
        self._ranges = []
        self.start_offset = self.end_offset = start_offset
        self.state_epoch += 1

    def _advance_start(self) -> None:
        while self._ranges and self._ranges[0].state in _TERMINAL:
            self.start_offset = self._ranges.pop(0).last + 1
        if not self._ranges:
            self.start_offset = self.end_offset

    # -- range surgery ------------------------------------------------------

    def _covering(self, first: int, last: int) -> list[InFlight]:
        """The ranges overlapping [first, last], clipped to it (copies, for checks only)."""
        lo = bisect.bisect_right([e.last for e in self._ranges], first - 1)
        found = []
        for entry in self._ranges[lo:]:
            if entry.first > last:
                break
            found.append(entry.piece(max(entry.first, first), min(entry.last, last)))
        return found

    def _split_at(self, offset: int) -> list[InFlight]:
        """Split the range containing ``offset`` so that a range starts there (the range before it stays
        the same object, shortened); the ranges, in order."""
        for i, entry in enumerate(self._ranges):
            if entry.first < offset <= entry.last:
                tail = entry.piece(offset, entry.last)
                entry.last = offset - 1
                self._ranges.insert(i + 1, tail)
                break
        return self._ranges

    def _split_range(self, first: int, last: int) -> Iterator[InFlight]:
        """The in-flight ranges exactly covering the in-flight part of [first, last], split to fit."""
        self._split_at(first)
        self._split_at(last + 1)
        lo = bisect.bisect_left([e.first for e in self._ranges], first)
        return iter([e for e in self._ranges[lo:] if e.last <= last])

    def _merge(self) -> None:
        """Join neighbours with the same state, count and holder, so ranges stay few."""
        merged: list[InFlight] = []
        for entry in self._ranges:
            prev = merged[-1] if merged else None
            if (prev is not None and prev.last + 1 == entry.first and prev.state is entry.state
                    and prev.delivery_count == entry.delivery_count and prev.member_id == entry.member_id
                    and prev.lock_deadline_ms == entry.lock_deadline_ms):
                prev.last = entry.last
            else:
                merged.append(entry)
        self._ranges = merged

    # -- durability -----------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        def stored(e: InFlight) -> list[int]:
            state = RecordState.AVAILABLE if e.state is RecordState.ACQUIRED else e.state
            return [e.first, e.last, int(state), e.delivery_count]

        return {"start_offset": self.start_offset, "end_offset": self.end_offset,
                "state_epoch": self.state_epoch, "batches": [stored(e) for e in self._ranges]}

    @classmethod
    def restore(cls, stored: dict[str, Any], *, lock_duration_ms: int, delivery_count_limit: int,
                max_record_locks: int) -> SharePartition:
        partition = cls(int(stored["start_offset"]), lock_duration_ms=lock_duration_ms,
                        delivery_count_limit=delivery_count_limit, max_record_locks=max_record_locks)
        partition.end_offset = int(stored["end_offset"])
        partition.state_epoch = int(stored.get("state_epoch", 0))
        partition._ranges = [InFlight(first, last, RecordState(state), count)
                             for first, last, state, count in stored["batches"]]
        partition._merge()
        return partition


def _coalesce(taken: list[Acquired]) -> list[Acquired]:
    out: list[Acquired] = []
    for entry in taken:
        if out and out[-1].last_offset + 1 == entry.first_offset and out[-1].delivery_count == entry.delivery_count:
            out[-1] = Acquired(out[-1].first_offset, entry.last_offset, entry.delivery_count)
        else:
            out.append(entry)
    return out
