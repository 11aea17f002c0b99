"""The fetch-session cache and sessions (KIP-227) on their own, with an injected clock."""

from __future__ import annotations

import random

import pytest

from kafkacompat.handlers.fetch_session import (
    EVICTION_MS,
    INT32_MAX,
    INVALID_SESSION_ID,
    CachedPartition,
    FetchSessionCache,
    SessionError,
    next_epoch,
)
from kafkacompat.protocol.errors import ErrorCode


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def partitions(count: int, topic: str = "t") -> dict:
    return {(topic, index): CachedPartition(0, 1 << 20) for index in range(count)}


def answer(hw: int, records: bytes = b"", error: ErrorCode = ErrorCode.NONE, log_start: int = 0) -> dict:
    return {"high_watermark": hw, "last_stable_offset": hw, "log_start_offset": log_start,
            "records": records, "error_code": error}


@pytest.fixture
def clock():
    return Clock()


def test_epochs_run_from_one_and_wrap_past_int32_max():
    assert next_epoch(1) == 2 and next_epoch(INT32_MAX) == 1


def test_incremental_fetch_checks_id_epoch_and_topic_id_use(clock):
    cache = FetchSessionCache(10, clock, rng=random.Random(1))
    session_id = cache.create(False, partitions(2))
    assert session_id != INVALID_SESSION_ID
    with pytest.raises(SessionError) as unknown:
        cache.incremental(session_id + 1, 1, False)
    assert unknown.value.code == ErrorCode.FETCH_SESSION_ID_NOT_FOUND
    with pytest.raises(SessionError) as early:
        cache.incremental(session_id, 2, False)
    assert early.value.code == ErrorCode.INVALID_FETCH_SESSION_EPOCH
    with pytest.raises(SessionError) as switched:
        cache.incremental(session_id, 1, True)
    assert switched.value.code == ErrorCode.FETCH_SESSION_TOPIC_ID_ERROR
    assert cache.incremental(session_id, 1, False).epoch == 2
    with pytest.raises(SessionError) as replayed:  # the same epoch twice
        cache.incremental(session_id, 1, False)
    assert replayed.value.code == ErrorCode.INVALID_FETCH_SESSION_EPOCH
    assert cache.incremental(session_id, 2, False).epoch == 3


def test_incremental_responses_carry_only_partitions_with_something_new(clock):
    cache = FetchSessionCache(10, clock)
    cached = partitions(5)
    for key, value in zip(cached, [answer(3), answer(3), answer(3), answer(3), answer(3)]):
        cached[key].remember(value)
    session = cache.get(cache.create(False, cached))
    keys = list(cached)
    chosen = session.select([
        (keys[0], answer(3)),                          # nothing new
        (keys[1], answer(4)),                          # high watermark moved
        (keys[2], answer(3, log_start=2)),             # log start offset moved
        (keys[3], answer(3, error=ErrorCode.OFFSET_OUT_OF_RANGE)),
        (keys[4], answer(3, records=b"batch")),        # records (hw unchanged: unlikely, but records decide)
    ])
    assert [key for key, _ in chosen] == keys[1:]
    # What was told is remembered: the same values again are not news, an error always is.
    again = session.select([(k, answer(4 if k == keys[1] else 3, log_start=2 if k == keys[2] else 0,
                                       error=ErrorCode.OFFSET_OUT_OF_RANGE if k == keys[3] else ErrorCode.NONE))
                            for k in keys])
    assert [key for key, _ in again] == [keys[3]]
    # The partition that returned records went to the end of the fetch order.
    assert list(session.partitions) == [keys[0], keys[1], keys[2], keys[3], keys[4]]
    session.select([(keys[1], answer(5, records=b"more"))])
    assert list(session.partitions) == [keys[0], keys[2], keys[3], keys[4], keys[1]]


def test_update_adds_changes_and_forgets_partitions(clock):
    cache = FetchSessionCache(10, clock)
    session = cache.get(cache.create(False, partitions(2)))
    session.update([(("t", 1), 7, 100), (("u", 0), 3, 200)], [("t", 0), ("absent", 9)])
    assert {key: (c.fetch_offset, c.partition_max_bytes) for key, c in session.partitions.items()} == {
        ("t", 1): (7, 100), ("u", 0): (3, 200)}


def test_a_full_cache_evicts_a_session_idle_past_the_eviction_time(clock):
    cache = FetchSessionCache(2, clock)
    first = cache.create(False, partitions(5))
    clock.now += 10
    second = cache.create(False, partitions(5))
    assert cache.create(False, partitions(1)) == INVALID_SESSION_ID  # nobody idle long enough, nobody smaller
    clock.now += EVICTION_MS
    cache.incremental(second, 1, False)  # keeps the second one fresh
    clock.now += 1
    third = cache.create(False, partitions(1))
    assert third != INVALID_SESSION_ID
    assert cache.get(first) is None and cache.get(second) is not None and len(cache) == 2


def test_a_full_cache_evicts_an_old_smaller_session_for_a_larger_one(clock):
    cache = FetchSessionCache(2, clock)
    small = cache.create(False, partitions(2))
    large = cache.create(False, partitions(8))
    # Both in use (never idle past the eviction time), both created long ago.
    for _ in range(3):
        clock.now += EVICTION_MS // 2
        for session_id in (small, large):
            session = cache.get(session_id)
            cache.incremental(session_id, session.epoch, False)
    assert cache.create(False, partitions(2)) == INVALID_SESSION_ID  # not larger than the smallest
    newcomer = cache.create(False, partitions(3))
    assert newcomer != INVALID_SESSION_ID
    assert cache.get(small) is None and cache.get(large) is not None


def test_young_sessions_are_not_evicted_for_larger_ones(clock):
    cache = FetchSessionCache(1, clock)
    cache.create(False, partitions(1))
    clock.now += EVICTION_MS  # idle exactly the eviction time: not past it
    assert cache.create(False, partitions(100)) == INVALID_SESSION_ID


def test_zero_slots_means_no_sessions(clock):
    assert FetchSessionCache(0, clock).create(False, partitions(1)) == INVALID_SESSION_ID
