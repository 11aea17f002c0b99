"""Named deadlines for the coordinator, in the injected clock's milliseconds."""

from __future__ import annotations

import heapq
import itertools
from typing import Hashable

# Rebuild the heap when stale entries outnumber live ones by this factor.
_STALE_FACTOR = 4


class Timers:
    """At most one deadline per key; rescheduling a key replaces its deadline.

    A heap of ``(deadline, seq, key)`` with lazy deletion: cancelled or
    replaced entries stay in the heap until they surface (or until a rebuild
    when they pile up), and are recognised because ``_live[key]`` no longer
    holds their sequence number. Heartbeats reschedule constantly, so this
    keeps every operation O(log n). Not safe for concurrent use.
    """

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Hashable]] = []
        self._live: dict[Hashable, tuple[int, int]] = {}
        self._seq = itertools.count()

    def schedule(self, key: Hashable, deadline_ms: int) -> None:
        seq = next(self._seq)
        self._live[key] = (deadline_ms, seq)
        heapq.heappush(self._heap, (deadline_ms, seq, key))
        if len(self._heap) > 64 and len(self._heap) > _STALE_FACTOR * len(self._live):
            self._heap = [(deadline, seq, key) for key, (deadline, seq) in self._live.items()]
            heapq.heapify(self._heap)

    def scheduled(self, key: Hashable) -> bool:
        return key in self._live

    def cancel(self, key: Hashable) -> None:
        self._live.pop(key, None)

    def next_deadline(self) -> int | None:
        self._drop_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now_ms: int) -> Hashable | None:
        """Remove and return the earliest key whose deadline is at or before ``now_ms``."""
        self._drop_stale()
        if not self._heap or self._heap[0][0] > now_ms:
            return None
        _, _, key = heapq.heappop(self._heap)
        del self._live[key]
        return key

    def _drop_stale(self) -> None:
        heap = self._heap
        while heap:
            deadline, seq, key = heap[0]
            if self._live.get(key) == (deadline, seq):
                return
            heapq.heappop(heap)
