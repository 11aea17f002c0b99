"""The share-partition state machine: acquisition by ranges, locks, delivery counts, acknowledgements."""

from __future__ import annotations

import pytest

from kafkacompat.config import BrokerConfig, ConfigError
from kafkacompat.group.share.coordinator import ShareSettings
from kafkacompat.group.share.partition import Acquired, AcknowledgeType, FetchedBatch, RecordState, SharePartition
from kafkacompat.protocol.errors import ErrorCode

ACCEPT, RELEASE, REJECT, GAP, RENEW = (int(t) for t in (AcknowledgeType.ACCEPT, AcknowledgeType.RELEASE,
                                                        AcknowledgeType.REJECT, AcknowledgeType.GAP,
                                                        AcknowledgeType.RENEW))
LOCK_MS = 1000


def share_partition(start: int = 0, limit: int = 3, max_record_locks: int = 2000) -> SharePartition:
    return SharePartition(start, lock_duration_ms=LOCK_MS, delivery_count_limit=limit,
                          max_record_locks=max_record_locks)


def spans(offsets: list[tuple[int, int]]) -> list[FetchedBatch]:
    """Fetched batches of deliverable records, one per (base offset, last offset)."""
    return [FetchedBatch(base, last) for base, last in offsets]


def states(partition: SharePartition) -> list[tuple[int, int, RecordState, int]]:
    return [(e.first, e.last, e.state, e.delivery_count) for e in partition.in_flight]


def test_a_fetch_acquires_whole_batches_as_ranges_and_a_second_member_gets_the_rest() -> None:
    partition = share_partition()
    assert partition.acquire("a", spans([(0, 9), (10, 19)]), max_records=5, now_ms=0) == [Acquired(0, 9, 1)]
    assert partition.end_offset == 10 and partition.next_fetch_offset() == 10
    assert partition.acquire("b", spans([(0, 9), (10, 19)]), max_records=500, now_ms=0) == [Acquired(10, 19, 1)]
    assert states(partition) == [(0, 9, RecordState.ACQUIRED, 1), (10, 19, RecordState.ACQUIRED, 1)]
    assert [e.member_id for e in partition.in_flight] == ["a", "b"]


def test_accepting_moves_the_start_offset_past_finished_records_only() -> None:
    partition = share_partition()
    partition.acquire("a", spans([(0, 4), (5, 9)]), max_records=100, now_ms=0)
    assert partition.acknowledge("a", 5, 9, [ACCEPT], now_ms=0) == ErrorCode.NONE
    assert partition.start_offset == 0  # 0-4 still acquired
    assert partition.acknowledge("a", 0, 4, [ACCEPT], now_ms=0) == ErrorCode.NONE
    assert (partition.start_offset, partition.end_offset, partition.in_flight) == (10, 10, ())


def test_per_offset_types_split_a_range_released_records_come_back_with_a_higher_count() -> None:
    partition = share_partition()
    partition.acquire("a", spans([(0, 4)]), max_records=100, now_ms=0)
    assert partition.acknowledge("a", 0, 4, [ACCEPT, RELEASE, RELEASE, REJECT, ACCEPT], now_ms=0) == ErrorCode.NONE
    assert states(partition) == [(1, 2, RecordState.AVAILABLE, 1), (3, 3, RecordState.ARCHIVED, 1),
                                 (4, 4, RecordState.ACKNOWLEDGED, 1)]
    assert partition.start_offset == 1
    assert partition.acquire("b", spans([(0, 4)]), max_records=100, now_ms=0) == [Acquired(1, 2, 2)]


def test_only_the_holder_may_acknowledge_and_only_acquired_records() -> None:
    partition = share_partition()
    partition.acquire("a", spans([(0, 4)]), max_records=100, now_ms=0)
    assert partition.acknowledge("b", 0, 4, [ACCEPT], now_ms=0) == ErrorCode.INVALID_RECORD_STATE
    assert partition.acknowledge("a", 3, 7, [ACCEPT], now_ms=0) == ErrorCode.INVALID_RECORD_STATE  # 5-7 never acquired
    assert partition.acknowledge("a", 0, 1, [ACCEPT], now_ms=0) == ErrorCode.NONE
    assert partition.acknowledge("a", 1, 1, [ACCEPT], now_ms=0) == ErrorCode.INVALID_RECORD_STATE  # already finished
    assert partition.acknowledge("a", 2, 4, [ACCEPT, ACCEPT], now_ms=0) == ErrorCode.INVALID_REQUEST  # wrong type count
    assert partition.acknowledge("a", 2, 4, [9], now_ms=0) == ErrorCode.INVALID_REQUEST
    assert states(partition) == [(2, 4, RecordState.ACQUIRED, 1)]


def test_an_expired_lock_makes_records_available_again_until_the_delivery_limit_archives_them() -> None:
    partition = share_partition(limit=2)
    partition.acquire("a", spans([(0, 2)]), max_records=100, now_ms=0)
    assert partition.next_lock_deadline() == LOCK_MS
    assert partition.expire_locks(LOCK_MS - 1) == 0
    assert partition.expire_locks(LOCK_MS) == 3
    assert states(partition) == [(0, 2, RecordState.AVAILABLE, 1)]
    assert partition.acquire("b", spans([(0, 2)]), max_records=100, now_ms=5000) == [Acquired(0, 2, 2)]
    assert partition.acknowledge("a", 0, 2, [ACCEPT], now_ms=0) == ErrorCode.INVALID_RECORD_STATE  # a's lock is gone
    assert partition.expire_locks(5000 + LOCK_MS) == 3
    assert partition.in_flight == () and partition.start_offset == 3  # archived at the limit, then passed
    assert partition.acquire("c", spans([(0, 2)]), max_records=100, now_ms=9000) == []


def test_a_leaving_member_releases_what_it_holds() -> None:
    partition = share_partition()
    partition.acquire("a", spans([(0, 4)]), max_records=100, now_ms=0)
    partition.acquire("b", spans([(5, 9)]), max_records=100, now_ms=0)
    assert partition.release_member("a") == 5
    assert states(partition) == [(0, 4, RecordState.AVAILABLE, 1), (5, 9, RecordState.ACQUIRED, 1)]
    assert partition.next_fetch_offset() == 0


def test_gaps_between_batches_are_archived_and_acknowledged_as_gaps() -> None:
    partition = share_partition()
    assert partition.acquire("a", spans([(0, 1), (5, 6)]), max_records=100, now_ms=0) == [Acquired(0, 1, 1), Acquired(5, 6, 1)]
    assert partition.acknowledge("a", 0, 1, [ACCEPT], now_ms=0) == ErrorCode.NONE
    assert partition.acknowledge("a", 5, 6, [ACCEPT], now_ms=0) == ErrorCode.NONE
    assert (partition.start_offset, partition.in_flight) == (7, ())
    partition.acquire("a", spans([(7, 9)]), max_records=100, now_ms=0)
    assert partition.acknowledge("a", 7, 9, [ACCEPT, GAP, ACCEPT], now_ms=0) == ErrorCode.NONE
    assert partition.start_offset == 10


def test_the_log_start_moving_up_finishes_the_records_below_it() -> None:
    partition = share_partition()
    partition.acquire("a", spans([(0, 9)]), max_records=100, now_ms=0)
    partition.move_start(4)
    assert (partition.start_offset, states(partition)) == (4, [(4, 9, RecordState.ACQUIRED, 1)])
    partition.move_start(20)
    assert (partition.start_offset, partition.end_offset, partition.in_flight) == (20, 20, ())


def test_a_snapshot_restores_counts_and_states_with_acquired_records_available() -> None:
    partition = share_partition()
    partition.acquire("a", spans([(0, 4)]), max_records=100, now_ms=0)
    partition.acknowledge("a", 0, 4, [RELEASE, ACCEPT, ACCEPT, REJECT, RELEASE], now_ms=0)
    partition.acquire("a", spans([(0, 9)]), max_records=100, now_ms=0)
    restored = SharePartition.restore(partition.snapshot(), lock_duration_ms=LOCK_MS, delivery_count_limit=3,
                                      max_record_locks=2000)
    assert (restored.start_offset, restored.end_offset) == (0, 10)
    assert states(restored) == [
        (0, 0, RecordState.AVAILABLE, 2), (1, 2, RecordState.ACKNOWLEDGED, 1), (3, 3, RecordState.ARCHIVED, 1),
        (4, 4, RecordState.AVAILABLE, 2), (5, 9, RecordState.AVAILABLE, 1)]
    assert restored.next_lock_deadline() is None


@pytest.mark.parametrize("records", [1, 7, 10])
def test_max_records_stops_at_a_batch_boundary(records: int) -> None:
    partition = share_partition()
    taken = partition.acquire("a", spans([(0, 6), (7, 9), (10, 19)]), max_records=records, now_ms=0)
    expected_end = {1: 6, 7: 6, 10: 9}[records]
    assert taken == [Acquired(0, expected_end, 1)]


def test_a_request_s_batches_for_one_partition_apply_all_together_or_not_at_all() -> None:
    partition = share_partition()
    partition.acquire("a", spans([(0, 9)]), max_records=100, now_ms=0)
    assert partition.acknowledge_batches("a", [(0, 4, [ACCEPT]), (8, 12, [ACCEPT])], now_ms=0) == ErrorCode.INVALID_RECORD_STATE
    assert (partition.start_offset, states(partition)) == (0, [(0, 9, RecordState.ACQUIRED, 1)])
    assert partition.acknowledge_batches("a", [(0, 4, [ACCEPT]), (5, 9, [REJECT])], now_ms=0) == ErrorCode.NONE
    assert (partition.start_offset, partition.in_flight) == (10, ())


def test_aborted_batches_are_archived_as_they_are_passed_and_never_delivered() -> None:
    partition = share_partition()
    fetched = [FetchedBatch(0, 1), FetchedBatch(2, 4, deliverable=False), FetchedBatch(6, 7)]
    assert partition.acquire("a", fetched, max_records=100, now_ms=0) == [Acquired(0, 1, 1), Acquired(6, 7, 1)]
    assert states(partition) == [(0, 1, RecordState.ACQUIRED, 1), (2, 5, RecordState.ARCHIVED, 0),
                                 (6, 7, RecordState.ACQUIRED, 1)]
    assert partition.acknowledge("a", 0, 1, [ACCEPT], now_ms=0) == ErrorCode.NONE
    assert partition.start_offset == 6  # past the archived transaction and the marker's gap


def test_an_available_range_found_aborted_on_a_later_read_is_archived() -> None:
    partition = share_partition()
    partition.acquire("a", spans([(0, 4)]), max_records=100, now_ms=0)
    partition.release_member("a")
    assert partition.acquire("b", [FetchedBatch(0, 4, deliverable=False)], max_records=100, now_ms=0) == []
    assert (partition.start_offset, partition.in_flight, partition.next_fetch_offset()) == (5, (), 5)


def test_the_first_batch_at_the_start_being_aborted_moves_the_start_at_once() -> None:
    partition = share_partition()
    assert partition.acquire("a", [FetchedBatch(0, 2, deliverable=False)], max_records=100, now_ms=0) == []
    assert (partition.start_offset, partition.end_offset, partition.in_flight) == (3, 3, ())


def test_renew_restarts_the_lock_without_changing_state_or_count() -> None:
    partition = share_partition()
    partition.acquire("a", spans([(0, 4)]), max_records=100, now_ms=0)
    assert partition.acknowledge("a", 0, 4, [RENEW, RENEW, ACCEPT, RENEW, RENEW], now_ms=800) == ErrorCode.NONE
    assert partition.next_lock_deadline() == 800 + LOCK_MS
    assert partition.expire_locks(LOCK_MS) == 0  # the first deadline passed, the renewed lock holds
    assert states(partition) == [(0, 1, RecordState.ACQUIRED, 1), (2, 2, RecordState.ACKNOWLEDGED, 1),
                                 (3, 4, RecordState.ACQUIRED, 1)]
    assert partition.expire_locks(800 + LOCK_MS) == 4
    assert partition.acknowledge("b", 0, 0, [RENEW], now_ms=900) == ErrorCode.INVALID_RECORD_STATE


def test_record_limit_mode_cuts_batches_to_max_records() -> None:
    partition = share_partition()
    assert partition.acquire("a", spans([(0, 9)]), max_records=3, now_ms=0, record_limit=True) == [Acquired(0, 2, 1)]
    assert partition.acquire("b", spans([(0, 9)]), max_records=4, now_ms=0, record_limit=True) == [Acquired(3, 6, 1)]
    partition.release_member("a")
    assert partition.acquire("c", spans([(0, 9)]), max_records=5, now_ms=0, record_limit=True) == [
        Acquired(0, 2, 2), Acquired(7, 8, 1)]
    assert partition.acquire("c", spans([(0, 9)]), max_records=5, now_ms=0) == [Acquired(9, 9, 1)]


def test_lag_counts_the_records_after_the_start_not_yet_finished() -> None:
    partition = share_partition()
    assert partition.lag(10) == 10
    partition.acquire("a", spans([(0, 9)]), max_records=100, now_ms=0)
    partition.acknowledge("a", 0, 9, [ACCEPT, RELEASE, ACCEPT, REJECT] + [RELEASE] * 6, now_ms=0)
    assert (partition.start_offset, partition.lag(10), partition.lag(12)) == (1, 7, 9)


def test_a_full_window_stops_new_acquisitions_until_the_start_offset_moves() -> None:
    partition = share_partition(max_record_locks=100)
    log = spans([(0, 59), (60, 119), (120, 179)])
    # Whole batches: the second overshoots the limit, the third waits.
    assert partition.acquire("a", log, max_records=500, now_ms=0) == [Acquired(0, 119, 1)]
    assert partition.acquire("b", log, max_records=500, now_ms=0) == []
    assert not partition.has_available(high_watermark=180)
    # A released record inside the window is still handed out.
    assert partition.acknowledge("a", 0, 0, [RELEASE], now_ms=0) == ErrorCode.NONE
    assert partition.has_available(high_watermark=180)
    assert partition.acquire("b", log, max_records=500, now_ms=0) == [Acquired(0, 0, 2)]
    # Finishing records moves the start offset and frees the window.
    assert partition.acknowledge("a", 1, 119, [ACCEPT], now_ms=0) == ErrorCode.NONE
    assert partition.acknowledge("b", 0, 0, [ACCEPT], now_ms=0) == ErrorCode.NONE
    assert partition.acquire("b", log, max_records=500, now_ms=0) == [Acquired(120, 179, 1)]


def test_the_broker_config_bounds_the_window_as_kafka_does() -> None:
    assert ShareSettings.from_config(BrokerConfig()).partition_max_record_locks == 2000
    assert ShareSettings.from_config(
        BrokerConfig({"group.share.partition.max.record.locks": "100"})).partition_max_record_locks == 100
    for out_of_range in ("99", "10001"):
        with pytest.raises(ConfigError, match="group.share.partition.max.record.locks"):
            ShareSettings.from_config(BrokerConfig({"group.share.partition.max.record.locks": out_of_range}))
