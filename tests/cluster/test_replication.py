"""Replication without sockets: a follower's log copies the leader's bytes, high watermarks follow the ISR,
a divergent tail is cut by the epoch history, and a crash loses what was never fsynced."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafkacompat.cluster.controller import BrokerInfo, Controller
from kafkacompat.cluster.replication import ReplicaTracker, truncate_divergent_tail
from kafkacompat.log.partition_log import PartitionLog
from kafkacompat.log.topic_config import LogConfig, default_configs
from kafkacompat.protocol.errors import KafkaError
from kafkacompat.protocol.records import decode_records, parse_batches
from tests.log.batch_builder import build_batch, values
from tests.log.conftest import FakeClock

TP = ("t", 0)


@pytest.fixture
def logs(tmp_path: Path):
    clock = FakeClock()
    opened: list[PartitionLog] = []

    def open_log(name: str, **overrides: str) -> PartitionLog:
        configs = {**default_configs(), **overrides}
        log = PartitionLog("t", 0, tmp_path / name / "t-0", LogConfig.from_strings(configs), clock,
                           flush_on_ack=False)
        opened.append(log)
        return log

    yield open_log
    for log in opened:
        log.close()


def copy(follower: PartitionLog, leader: PartitionLog) -> None:
    """One replica fetch, as replication.follow does it."""
    data = leader.read(follower.log_end_offset, 1 << 20, to_log_end=True)
    if data:
        follower.append_replica(data)


def record_values(data: bytes) -> list[bytes]:
    return [r.value for h in parse_batches(data) for r in decode_records(data[h.position:h.end])]


def test_a_follower_stores_the_leaders_batches_byte_for_byte_with_their_epochs_and_producer_state(logs):
    leader, follower = logs("leader"), logs("follower")
    leader.become_leader(3)
    follower.become_follower(3)
    leader.append(build_batch(values(3), producer_id=7, producer_epoch=0, base_sequence=0))
    leader.append(build_batch(values(2)))
    copy(follower, leader)
    assert follower.read(0, 1 << 20, to_log_end=True) == leader.read(0, 1 << 20, to_log_end=True)
    assert follower.log_end_offset == 5
    assert follower.end_offset_for_epoch(3) == (3, 5)
    assert [(p.producer_id, p.last_sequence) for p in follower.active_producers] == [(7, 2)]


def test_a_replica_read_goes_past_the_high_watermark_a_consumer_stops_at(logs):
    leader = logs("leader")
    leader.become_leader(1)
    leader.append(build_batch([b"a"]))
    leader.append(build_batch([b"b"]))
    leader.set_replicated_end(1)
    assert leader.high_watermark == 1
    assert record_values(leader.read(0, 1 << 20)) == [b"a"]
    assert record_values(leader.read(0, 1 << 20, to_log_end=True)) == [b"a", b"b"]
    leader.set_replicated_end(None)
    assert leader.high_watermark == 2


def test_append_replica_refuses_a_gap(logs):
    leader, follower = logs("leader"), logs("follower")
    leader.append(build_batch([b"a"]))
    leader.append(build_batch([b"b"]))
    with pytest.raises(KafkaError):
        follower.append_replica(leader.read(1, 1 << 20, to_log_end=True))
    assert follower.log_end_offset == 0


def test_the_high_watermark_is_the_minimum_log_end_of_the_isr(logs):
    clock = FakeClock(0)
    controller = Controller(None, [BrokerInfo(n, "h", n, alive=True) for n in (1, 2, 3)], offsets_partitions=1)
    controller.add_partitions("t", [[1, 2, 3]])
    tracker = ReplicaTracker(controller, clock, lag_time_max_ms=1000)
    leader = logs("leader")
    for _ in range(4):
        leader.append(build_batch(values(1)))
    tracker.update_high_watermark(TP, leader)
    assert leader.high_watermark == 4  # no follower heard from yet: nothing lowers it
    tracker.fetched(TP, 2, 3, leader)
    tracker.fetched(TP, 3, 1, leader)
    assert leader.high_watermark == 1
    tracker.fetched(TP, 3, 4, leader)
    assert leader.high_watermark == 3

    leader.append(build_batch(values(1)))
    clock.now = 1500  # broker 2 has not reached the log end since time 0
    tracker.fetched(TP, 3, 5, leader)
    assert tracker.check_lag(TP, leader)
    assert controller.partition("t", 0).isr == [1, 3]
    assert leader.high_watermark == 5
    assert tracker.fetched(TP, 2, 5, leader)  # caught up with the high watermark: back in
    assert controller.partition("t", 0).isr == [1, 2, 3]


def test_followers_of_a_new_or_recreated_partition_are_late_only_from_its_leadership_on(logs):
    """Records reach a new partition's leader before its followers first fetch: they are not dropped from
    the ISR until replica.lag.time.max.ms after the leadership began (nor after a deleted namesake's)."""
    clock = FakeClock(500_000)
    controller = Controller(None, [BrokerInfo(n, "h", n, alive=True) for n in (1, 2, 3)], offsets_partitions=1)
    tracker = ReplicaTracker(controller, clock, lag_time_max_ms=1000)
    leader = logs("leader")
    for deleted_before in (False, True):
        if deleted_before:
            controller.remove_topic("t")
            tracker.forget_topic("t")
            clock.now += 60_000
        controller.add_partitions("t", [[1, 2, 3]])
        leader.append(build_batch(values(1)))
        assert not tracker.check_lag(TP, leader)
        clock.now += 999
        assert not tracker.check_lag(TP, leader)
        assert controller.partition("t", 0).isr == [1, 2, 3]
    clock.now += 2
    assert tracker.check_lag(TP, leader)  # silent for longer than the lag time: out
    assert controller.partition("t", 0).isr == [1]


def test_a_follower_level_with_the_leader_stays_in_sync_however_long_it_is_silent(logs):
    clock = FakeClock(0)
    controller = Controller(None, [BrokerInfo(n, "h", n, alive=True) for n in (1, 2)], offsets_partitions=1)
    controller.add_partitions("t", [[1, 2]])
    tracker = ReplicaTracker(controller, clock, lag_time_max_ms=1000)
    leader = logs("leader")
    leader.append(build_batch(values(1)))
    tracker.fetched(TP, 2, 1, leader)
    clock.now = 60_000
    assert not tracker.check_lag(TP, leader)  # Kafka's rule: behind the log end *and* late


def test_a_returning_replica_cuts_its_divergent_tail_at_the_leaders_epoch_end(logs):
    old, new = logs("old"), logs("new")
    for log in (old, new):
        log.become_follower(0)
    old.become_leader(1)
    old.append(build_batch([b"a", b"b"]))
    copy(new, old)
    old.append(build_batch([b"lost-1"]))
    old.append(build_batch([b"lost-2"]))
    new.become_leader(2)  # an election the old leader missed
    new.append(build_batch([b"c"]))

    old.become_follower(2)
    truncate_divergent_tail(old, new)
    assert old.log_end_offset == 2
    copy(old, new)
    assert record_values(old.read(0, 1 << 20, to_log_end=True)) == [b"a", b"b", b"c"]
    assert old.end_offset_for_epoch(1) == (1, 2)
    assert old.latest_epoch == 2


def test_truncation_across_a_segment_boundary_keeps_the_log_appendable(logs):
    log = logs("log", **{"segment.bytes": "200"})
    for _ in range(6):
        log.append(build_batch(values(2, 40)))
    assert len(log.segment_base_offsets) > 2
    log.truncate_to(4)
    assert log.log_end_offset == 4
    assert log.segment_base_offsets[-1] <= 4
    log.append(build_batch([b"after"]))
    assert record_values(log.read(4, 1 << 20)) == [b"after"]


def test_a_crash_loses_exactly_what_was_never_fsynced(tmp_path):
    clock = FakeClock()
    config = LogConfig.from_strings(default_configs())
    log = PartitionLog("t", 0, tmp_path / "t-0", config, clock, flush_on_ack=False)
    log.append(build_batch([b"durable"]))
    log.flush()
    log.append(build_batch([b"in the page cache only"]))
    log.abandon()
    reopened = PartitionLog("t", 0, tmp_path / "t-0", config, clock, recovery_point=0)
    try:
        assert reopened.log_end_offset == 1
        assert record_values(reopened.read(0, 1 << 20)) == [b"durable"]
    finally:
        reopened.close()


def test_a_follower_replays_transactions_and_markers_so_it_leads_with_the_right_lso(logs):
    """A new leader holds read_committed readers where the old one did, and takes the producer's next batch."""
    leader, follower = logs("leader"), logs("follower")
    leader.become_leader(1)
    follower.become_follower(1)
    leader.append(build_batch(values(2), producer_id=7, producer_epoch=0, base_sequence=0, transactional=True))
    leader.append(build_batch(values(3), producer_id=9, producer_epoch=0, base_sequence=0, transactional=True))
    leader.append_marker(9, 0, False, 0)  # producer 9 aborts; producer 7's transaction stays open
    copy(follower, leader)
    follower.set_replicated_end(leader.log_end_offset)
    assert follower.open_transactions == {7: 0}
    assert follower.last_stable_offset == 0

    follower.become_leader(2)  # the old leader is gone
    follower.append(build_batch(values(1), producer_id=7, producer_epoch=0, base_sequence=2, transactional=True))
    follower.append_marker(7, 0, True, 0)
    follower.set_replicated_end(None)
    assert follower.open_transactions == {}
    assert follower.last_stable_offset == follower.high_watermark == follower.log_end_offset == 8
