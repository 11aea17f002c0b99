"""Incremental fetch sessions (KIP-227): the broker remembers what a consumer fetches.

Theory of operation.  A Fetch request names a session id and an epoch:

  id 0, epoch -1    sessionless full fetch: every partition asked is answered, nothing is kept.
  id N, epoch -1    the same, after closing session N.
  id N, epoch 0     full fetch opening a new session (closing N first when N is not 0): every
                    partition is answered and cached; the response carries the new id (0 when
                    the cache has no room, and the client then keeps sending full fetches).
  id N, epoch E>0   incremental fetch in session N: the request lists only partitions added or
                    changed (new fetch offset or max bytes) and `forgotten_topics_data` the ones
                    to drop; the broker reads every partition of the session, in the session's
                    order, but answers only those with something new: records, a changed high
                    watermark, last stable offset or log start offset, or an error.  Partitions
                    that returned records move to the end of the order, so each gets its turn.
                    An unknown N gets FETCH_SESSION_ID_NOT_FOUND, an E other than the one the
                    session expects INVALID_FETCH_SESSION_EPOCH, a session opened with topic
                    names used with topic ids (or back) FETCH_SESSION_TOPIC_ID_ERROR; all of
                    them a top-level error, session id 0 and no partitions, as Kafka answers.

The epoch a session expects starts at 1 and goes up by one per incremental fetch, wrapping to
1 after the largest int32.

Eviction, as Kafka's FetchSessionCache does it: with max.incremental.fetch.session.cache.slots
sessions cached, a new one may evict the session used least recently if that one has been idle
for over EVICTION_MS; failing that, the smallest session (fewest partitions, then lowest id)
among those created more than EVICTION_MS ago, if the new one is strictly larger.

Sans-I/O: no sockets, no Trio; time comes from the clock passed in (milliseconds).  Not safe for
concurrent use: the broker calls it from its event-loop thread.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafkacompat.protocol.errors import ErrorCode

INVALID_SESSION_ID = 0
INITIAL_EPOCH = 0
FINAL_EPOCH = -1
# Kafka's MIN_INCREMENTAL_FETCH_SESSION_EVICTION_MS.
EVICTION_MS = 120_000
INT32_MAX = 2**31 - 1

# (topic name or topic id, partition index)
PartitionKey = tuple[Hashable, int]


def next_epoch(epoch: int) -> int:
    return 1 if epoch >= INT32_MAX else epoch + 1


@dataclass
class CachedPartition:
    """What the session holds for one partition: the consumer's fetch position and what it was last told."""

    fetch_offset: int
    partition_max_bytes: int
    high_watermark: int = -1
    last_stable_offset: int = -1
    log_start_offset: int = -1

    def must_respond(self, answer: Mapping[str, Any]) -> bool:
        """Whether an incremental response includes this partition; remembers what it is told."""
        changed = (answer["high_watermark"], answer["last_stable_offset"], answer["log_start_offset"]) != (
            self.high_watermark, self.last_stable_offset, self.log_start_offset)
        self.remember(answer)
        return changed or len(answer["records"]) > 0 or answer["error_code"] != ErrorCode.NONE

    def remember(self, answer: Mapping[str, Any]) -> None:
        self.high_watermark = answer["high_watermark"]
        self.last_stable_offset = answer["last_stable_offset"]
        self.log_start_offset = answer["log_start_offset"]


@dataclass(eq=False)
class FetchSession:
    id: int
    uses_topic_ids: bool
    created_ms: int
    last_used_ms: int
    partitions: dict[PartitionKey, CachedPartition] = field(default_factory=dict)  # in fetch order
    epoch: int = 1  # the epoch the next incremental fetch must carry

    def update(self, changed: Iterable[tuple[PartitionKey, int, int]], forgotten: Iterable[PartitionKey]) -> None:
        """Apply an incremental request: (key, fetch offset, max bytes) added or changed, keys dropped."""
        for key, fetch_offset, max_bytes in changed:
            cached = self.partitions.get(key)
            if cached is None:
                self.partitions[key] = CachedPartition(fetch_offset, max_bytes)
            else:
                cached.fetch_offset, cached.partition_max_bytes = fetch_offset, max_bytes
        for key in forgotten:
            self.partitions.pop(key, None)

    def select(self, answers: list[tuple[PartitionKey, dict[str, Any]]]) -> list[tuple[PartitionKey, dict[str, Any]]]:
        """The answers an incremental response carries; those with records move to the end of the order."""
        chosen = []
        for key, answer in answers:
            cached = self.partitions.get(key)
            if cached is None or not cached.must_respond(answer):
                continue
            chosen.append((key, answer))
            if len(answer["records"]) > 0:
                self.partitions[key] = self.partitions.pop(key)
        return chosen


class SessionError(Exception):
    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.name)
        self.code = code


class FetchSessionCache:
    """Every open fetch session of the broker, at most `max_slots`."""

    def __init__(self, max_slots: int, clock: Callable[[], int], *, eviction_ms: int = EVICTION_MS,
                 rng: random.Random | None = None) -> None:
        self.max_slots = max_slots
        self._clock = clock
        self.eviction_ms = eviction_ms
        self._rng = rng or random.Random()
        self._sessions: dict[int, FetchSession] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: int) -> FetchSession | None:
        return self._sessions.get(session_id)

    def remove(self, session_id: int) -> None:
        self._sessions.pop(session_id, None)

    def incremental(self, session_id: int, epoch: int, uses_topic_ids: bool) -> FetchSession:
        """The session an incremental fetch names, touched; raises SessionError as Kafka answers."""
        session = self._sessions.get(session_id)
        if session is None:
            raise SessionError(ErrorCode.FETCH_SESSION_ID_NOT_FOUND)
        if epoch != session.epoch:
            raise SessionError(ErrorCode.INVALID_FETCH_SESSION_EPOCH)
        if session.uses_topic_ids != uses_topic_ids:
            raise SessionError(ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR)
        session.epoch = next_epoch(session.epoch)
        session.last_used_ms = self._clock()
        return session

    def create(self, uses_topic_ids: bool, partitions: dict[PartitionKey, CachedPartition]) -> int:
        """Open a session holding `partitions`; its id, or INVALID_SESSION_ID when there is no room."""
        now = self._clock()
        if len(self._sessions) >= self.max_slots and not self._evict_for(len(partitions), now):
            return INVALID_SESSION_ID
        session_id = self._new_id()
        self._sessions[session_id] = FetchSession(session_id, uses_topic_ids, now, now, partitions)
        return session_id

    def _evict_for(self, size: int, now: int) -> bool:
        if not self._sessions:
            return False
        stalest = min(self._sessions.values(), key=lambda s: (s.last_used_ms, s.id))
        if now - stalest.last_used_ms > self.eviction_ms:
            del self._sessions[stalest.id]
            return True
        old_enough = [s for s in self._sessions.values() if now - s.created_ms > self.eviction_ms]
        if not old_enough:
            return False
        smallest = min(old_enough, key=lambda s: (len(s.partitions), s.id))
        if size <= len(smallest.partitions):
            return False
        del self._sessions[smallest.id]
        return True

    def _new_id(self) -> int:
        while True:
            session_id = self._rng.randint(1, INT32_MAX)
            if session_id not in self._sessions:
                return session_id
