"""The share coordinator with a real log and an injected clock: locks, sessions, durability."""

from __future__ import annotations

import time

import pytest

from kafkacompat.group.share.coordinator import FINAL_EPOCH, ShareCoordinator, ShareSettings
from kafkacompat.group.share.partition import Acquired
from kafkacompat.log.log_manager import LogManager
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from tests.group.group_helpers import FakeClock
from tests.log.batch_builder import RecordSpec, build_batch

SETTINGS = ShareSettings(session_timeout_ms=5000, record_lock_duration_ms=1000, delivery_count_limit=2)
NODE = 1  # the broker the sessions of these tests live on


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(int(time.time() * 1000))  # near the batches' timestamps, which the log checks


@pytest.fixture
def logs(tmp_path, clock):
    manager = LogManager(tmp_path / "data", {}, clock)
    topic = manager.create_topic("t", 1)
    for n in range(4):  # four batches of two records: offsets 0-7
        topic.partitions[0].append(build_batch([RecordSpec(b"a%d" % n), RecordSpec(b"b%d" % n)]))
    yield manager
    manager.close()


def open_coordinator(tmp_path, clock, logs) -> ShareCoordinator:
    return ShareCoordinator(tmp_path / "data", clock, logs, SETTINGS)


@pytest.fixture
def share(tmp_path, clock, logs):
    coordinator = open_coordinator(tmp_path, clock, logs)
    coordinator.set_group_configs("g", {"share.auto.offset.reset": "earliest"})
    yield coordinator
    coordinator.close()


def join(share: ShareCoordinator, member: str, clock: FakeClock) -> None:
    """Join, and let the timer that initializes the topic's share state (after the heartbeat, as in Kafka) run."""
    result = share.heartbeat("g", member, 0, rack_id=None, subscribed_topic_names=["t"], client_id="c",
                             client_host="/h")
    assert result.error is ErrorCode.NONE
    share.tick(clock.now)


def topic_id(logs: LogManager):
    return logs.topic("t").topic_id


def test_acquired_batches_come_back_whole_and_an_expired_lock_releases_them(share, logs, clock) -> None:
    join(share, "a", clock)
    records, acquired = share.acquire("g", "a", topic_id(logs), 0, max_bytes=1 << 20, max_records=3)
    assert acquired == [Acquired(0, 3, 1)] and len(records) > 0  # two whole batches for three records
    assert share.acquire("g", "a", topic_id(logs), 0, max_bytes=1 << 20, max_records=100)[1] == [Acquired(4, 7, 1)]
    assert share.next_deadline_ms() == clock.now + 1000
    assert share.tick(clock.now + 999) is False
    assert share.tick(clock.now + 1000) is True
    clock.now += 1000
    assert share.acquire("g", "a", topic_id(logs), 0, max_bytes=1 << 20, max_records=100)[1] == [Acquired(0, 7, 2)]
    clock.now += 1000
    assert share.tick(clock.now) is True  # the second expiry reaches the delivery limit: archived
    assert share.start_offsets("g") == {(topic_id(logs), 0): 8}


def test_a_member_whose_session_times_out_loses_its_records_and_share_session(share, logs, clock) -> None:
    join(share, "a", clock)
    share.open_session("g", "a", "conn-1", NODE)
    share.acquire("g", "a", topic_id(logs), 0, max_bytes=1 << 20, max_records=2)
    clock.now += 5000
    share.tick(clock.now)
    assert share.group("g").members == {}
    with pytest.raises(KafkaError) as info:
        share.session("g", "a", 1, NODE)
    assert info.value.code is ErrorCode.SHARE_SESSION_NOT_FOUND
    join(share, "b", clock)
    assert share.acquire("g", "b", topic_id(logs), 0, max_bytes=1 << 20, max_records=2)[1] == [Acquired(0, 1, 2)]


def test_share_session_epochs_must_follow_one_another(share) -> None:
    session = share.open_session("g", "a", "conn-1", NODE)
    assert share.session("g", "a", 1, NODE) is session
    with pytest.raises(KafkaError) as info:
        share.session("g", "a", 1, NODE)
    assert info.value.code is ErrorCode.INVALID_SHARE_SESSION_EPOCH
    assert share.session("g", "a", 2, NODE) is session and share.session("g", "a", -1, NODE) is session


def test_state_groups_and_configs_survive_reopening(logs, clock, tmp_path) -> None:
    share = open_coordinator(tmp_path, clock, logs)
    share.set_group_configs("g", {"share.auto.offset.reset": "earliest"})
    join(share, "a", clock)
    share.acquire("g", "a", topic_id(logs), 0, max_bytes=1 << 20, max_records=100)
    results, released = share.acknowledge("g", "a", {(topic_id(logs), 0): [(0, 1, [1]), (2, 3, [2]), (4, 7, [3])]})
    assert (results, released) == ({(topic_id(logs), 0): ErrorCode.NONE}, True)
    share.close()
    reopened = open_coordinator(tmp_path, clock, logs)
    try:
        assert reopened.group("g").group_epoch == 2 and reopened.group_configs("g") == {  # joined, initialized
            "share.auto.offset.reset": "earliest"}
        assert reopened.start_offsets("g") == {(topic_id(logs), 0): 2}
        join(reopened, "b", clock)
        assert reopened.acquire("g", "b", topic_id(logs), 0, max_bytes=1 << 20, max_records=100)[1] == [
            Acquired(2, 3, 2)]
        for member in ("a", "b"):  # a is still a member: members are durable
            reopened.heartbeat("g", member, -1, rack_id=None, subscribed_topic_names=None, client_id="c",
                               client_host="/h")
        assert reopened.delete_group("g") is ErrorCode.NONE
    finally:
        reopened.close()
    again = open_coordinator(tmp_path, clock, logs)
    try:
        assert (again.group("g"), again.start_offsets("g"), again.group_configs("g")) == (None, {}, {})
    finally:
        again.close()


def test_latest_starts_at_the_high_watermark_and_altering_moves_the_start(share, logs) -> None:
    share.set_group_configs("h", {})
    assert share.acquire("h", "m", topic_id(logs), 0, max_bytes=1 << 20, max_records=10) == (b"", [])
    assert share.start_offsets("h") == {(topic_id(logs), 0): 8}
    share.alter_start_offset("h", topic_id(logs), 0, 6)
    assert share.acquire("h", "m", topic_id(logs), 0, max_bytes=1 << 20, max_records=10)[1] == [Acquired(6, 7, 1)]
    share.delete_start_offsets("h", topic_id(logs))
    assert share.start_offsets("h") == {}


def test_a_closed_connection_ends_the_sessions_it_opened_and_releases_their_records(share, logs, clock) -> None:
    join(share, "a", clock)
    join(share, "b", clock)
    share.open_session("g", "a", "conn-a", NODE)
    share.open_session("g", "b", "conn-b", NODE)
    assert share.acquire("g", "a", topic_id(logs), 0, max_bytes=1 << 20, max_records=2)[1] == [Acquired(0, 1, 1)]
    assert share.acquire("g", "b", topic_id(logs), 0, max_bytes=1 << 20, max_records=2)[1] == [Acquired(2, 3, 1)]
    assert share.connection_closed("conn-other") is False
    assert share.connection_closed("conn-a") is True
    with pytest.raises(KafkaError) as info:
        share.session("g", "a", 1, NODE)
    assert info.value.code is ErrorCode.SHARE_SESSION_NOT_FOUND
    assert share.session("g", "b", 1, NODE) is not None  # b's session and records are untouched
    assert share.acquire("g", "b", topic_id(logs), 0, max_bytes=1 << 20, max_records=100)[1] == [
        Acquired(0, 1, 2), Acquired(4, 7, 1)]


def test_leaving_the_group_keeps_the_share_session_for_the_closing_acknowledgements(share, logs, clock) -> None:
    join(share, "a", clock)
    share.open_session("g", "a", "conn-a", NODE)
    share.acquire("g", "a", topic_id(logs), 0, max_bytes=1 << 20, max_records=4)
    result = share.heartbeat("g", "a", -1, rack_id=None, subscribed_topic_names=None, client_id="c", client_host="/h")
    assert result.left is not None
    # A closing client may acknowledge after its leave heartbeat, as librdkafka does; Kafka keeps the session.
    share.session("g", "a", FINAL_EPOCH, NODE)
    assert share.acknowledge("g", "a", {(topic_id(logs), 0): [(0, 1, [1])]})[0] == {
        (topic_id(logs), 0): ErrorCode.NONE}
    assert share.close_session("g", "a", NODE) is True  # the final epoch: what it still holds goes back
    join(share, "b", clock)
    assert share.acquire("g", "b", topic_id(logs), 0, max_bytes=1 << 20, max_records=2)[1] == [Acquired(2, 3, 2)]


def test_reopening_a_session_keeps_the_records_the_member_holds(share, logs, clock) -> None:
    join(share, "a", clock)
    share.open_session("g", "a", "conn-a", NODE)
    share.acquire("g", "a", topic_id(logs), 0, max_bytes=1 << 20, max_records=2)
    share.open_session("g", "a", "conn-a2", NODE)  # epoch 0 again, as Kafka: the old session goes, the records stay
    results, _ = share.acknowledge("g", "a", {(topic_id(logs), 0): [(0, 1, [1])]})
    assert results == {(topic_id(logs), 0): ErrorCode.NONE}
    assert share.connection_closed("conn-a") is False


def test_a_renewal_moves_the_lock_timer(share, logs, clock) -> None:
    join(share, "a", clock)
    share.acquire("g", "a", topic_id(logs), 0, max_bytes=1 << 20, max_records=2)
    start = clock.now
    clock.now += 800
    results, released = share.acknowledge("g", "a", {(topic_id(logs), 0): [(0, 1, [4])]})
    assert (results, released) == ({(topic_id(logs), 0): ErrorCode.NONE}, False)
    assert share.next_deadline_ms() == start + 800 + 1000
    assert share.tick(start + 1000) is False and share.tick(start + 1800) is True


def test_acknowledging_records_of_a_deleted_topic_is_unknown_topic_id_and_its_state_is_gone(share, logs,
                                                                                          clock) -> None:
    join(share, "a", clock)
    deleted = topic_id(logs)
    share.acquire("g", "a", deleted, 0, max_bytes=1 << 20, max_records=100)
    logs.delete_topic("t")
    results, released = share.acknowledge("g", "a", {(deleted, 0): [(0, 7, [1])]})
    assert (results, released) == ({(deleted, 0): ErrorCode.UNKNOWN_TOPIC_ID}, False)
    assert share.start_offsets("g") == {}
    assert share.tick(clock.now + 1000) is False  # its lock timer went with it


def test_acquired_records_written_with_another_change_come_back_with_their_count(logs, clock, tmp_path) -> None:
    share = open_coordinator(tmp_path, clock, logs)
    share.set_group_configs("g", {"share.auto.offset.reset": "earliest"})
    join(share, "a", clock)
    share.acquire("g", "a", topic_id(logs), 0, max_bytes=1 << 20, max_records=100)
    share.acknowledge("g", "a", {(topic_id(logs), 0): [(0, 1, [1])]})  # written: 2-7 acquired once
    share.acquire("g", "a", topic_id(logs), 0, max_bytes=1 << 20, max_records=100)  # nothing new is written
    share._store.close()  # a crash: no shutdown, nothing released
    reopened = open_coordinator(tmp_path, clock, logs)
    try:
        join(reopened, "b", clock)
        assert reopened.acquire("g", "b", topic_id(logs), 0, max_bytes=1 << 20, max_records=100)[1] == [
            Acquired(2, 7, 2)]
    finally:
        reopened.close()


PID = 700


def _transaction(partition, values: list[bytes], *, commit: bool | None, sequence: int) -> None:
    """Transactional records and, unless ``commit`` is None (still open), the marker ending them."""
    partition.append(build_batch([RecordSpec(v) for v in values], producer_id=PID, producer_epoch=0,
                                 base_sequence=sequence, transactional=True))
    if commit is not None:
        partition.append_marker(PID, 0, commit, 0)


@pytest.mark.parametrize("level, expected", [
    ("read_committed", [Acquired(0, 0, 1), Acquired(4, 5, 1)]),
    ("read_uncommitted", [Acquired(0, 2, 1), Acquired(4, 5, 1), Acquired(7, 8, 1)]),
])
def test_read_committed_stops_at_the_lso_and_archives_aborted_transactions(share, logs, clock, level, expected) -> None:
    topic = logs.create_topic("tx", 1)
    partition = topic.partitions[0]
    partition.append(build_batch([RecordSpec(b"plain")]))  # 0
    _transaction(partition, [b"a1", b"a2"], commit=False, sequence=0)  # 1-2, abort marker 3
    _transaction(partition, [b"c1", b"c2"], commit=True, sequence=2)  # 4-5, commit marker 6
    _transaction(partition, [b"o1", b"o2"], commit=None, sequence=4)  # 7-8, open: the LSO is 7
    share.set_group_configs("g", {"share.auto.offset.reset": "earliest", "share.isolation.level": level})
    join(share, "a", clock)
    taken: list[Acquired] = []
    while acquired := share.acquire("g", "a", topic.topic_id, 0, max_bytes=1 << 20, max_records=100)[1]:
        taken += acquired  # a read stops at a segment's end, and markers may roll segments
    assert taken == expected
    if level == "read_committed":
        share.acknowledge("g", "a", {(topic.topic_id, 0): [(0, 0, [1]), (4, 5, [1])]})
        assert share.start_offsets("g")[topic.topic_id, 0] == 7
        assert share.lag("g", topic.topic_id, 0) == partition.high_watermark - 7
        assert share.acquire("g", "a", topic.topic_id, 0, max_bytes=1 << 20, max_records=100) == (b"", [])


def test_members_survive_a_restart_and_keep_their_epoch_if_they_heartbeat_in_time(logs, clock, tmp_path) -> None:
    share = open_coordinator(tmp_path, clock, logs)
    share.set_group_configs("g", {"share.auto.offset.reset": "earliest"})
    join(share, "a", clock)
    join(share, "b", clock)
    epochs = {m.member_id: (m.member_epoch, m.assignment) for m in share.group("g").members.values()}
    share.heartbeat("g", "a", epochs["a"][0], rack_id=None, subscribed_topic_names=None, client_id="c",
                    client_host="/h")  # a learns the epoch b's join gave the group
    epochs["a"] = (share.group("g").members["a"].member_epoch, share.group("g").members["a"].assignment)
    group_epoch = share.group("g").group_epoch
    share.close()
    clock.now += 60_000  # the broker was down a minute, longer than the session timeout
    reopened = open_coordinator(tmp_path, clock, logs)
    try:
        group = reopened.group("g")
        assert group.group_epoch == group_epoch
        assert {m.member_id: (m.member_epoch, m.assignment) for m in group.members.values()} == epochs
        clock.now += 4000  # within the 5 s session timeout counted from the restart
        reopened.tick(clock.now)
        result = reopened.heartbeat("g", "a", epochs["a"][0], rack_id=None, subscribed_topic_names=None,
                                    client_id="c", client_host="/h")
        assert (result.error, result.member_epoch, result.assignment) == (ErrorCode.NONE, epochs["a"][0], None)
        clock.now += 2000  # b never came back: its session ends, the group moves on
        reopened.tick(clock.now)
        assert set(reopened.group("g").members) == {"a"} and reopened.group("g").group_epoch == group_epoch + 1
    finally:
        reopened.close()
    again = open_coordinator(tmp_path, clock, logs)
    try:
        assert set(again.group("g").members) == {"a"}
    finally:
        again.close()


# -- in a cluster: partitions placed at their leaders, sessions per broker ------------------------------


@pytest.fixture
def placed(tmp_path, clock, logs):
    """A coordinator for a two-broker cluster: partition 0 of "u" led by node 1, partition 1 by node 2."""
    topic = logs.create_topic("u", 2)
    for partition in topic.partitions:
        for n in range(2):
            partition.append(build_batch([RecordSpec(b"x%d" % n)]))
    leaders = {0: 1, 1: 2}
    coordinator = ShareCoordinator(tmp_path / "data", clock, logs, SETTINGS,
                                   leader_log=lambda name, index: logs.topic(name).partitions[index],
                                   leader_node=lambda name, index: leaders[index])
    coordinator.set_group_configs("g", {"share.auto.offset.reset": "earliest"})
    join_topic = coordinator.heartbeat("g", "a", 0, rack_id=None, subscribed_topic_names=["u"], client_id="c",
                                       client_host="/h")
    assert join_topic.error is ErrorCode.NONE
    yield coordinator, logs.topic("u").topic_id, leaders
    coordinator.close()


def test_a_member_has_one_session_per_broker_and_closing_one_releases_only_what_that_broker_leads(placed) -> None:
    share, u, _ = placed
    on_1 = share.open_session("g", "a", "conn-1", 1)
    on_2 = share.open_session("g", "a", "conn-2", 2)
    assert on_1 is not on_2 and share.session("g", "a", 1, 2) is on_2
    assert share.acquire("g", "a", u, 0, max_bytes=1 << 20, max_records=10)[1] == [Acquired(0, 1, 1)]
    assert share.acquire("g", "a", u, 1, max_bytes=1 << 20, max_records=10)[1] == [Acquired(0, 1, 1)]
    assert share.connection_closed("conn-1") is True
    with pytest.raises(KafkaError):
        share.session("g", "a", 1, 1)
    assert share.session("g", "a", 2, 2) is on_2
    assert share.acquire("g", "a", u, 0, max_bytes=1 << 20, max_records=10)[1] == [Acquired(0, 1, 2)]
    assert share.acquire("g", "a", u, 1, max_bytes=1 << 20, max_records=10)[1] == []  # node 2's: still held


def test_a_leadership_move_makes_acquired_records_available_again_and_keeps_acknowledged_ones(placed) -> None:
    share, u, leaders = placed
    share.open_session("g", "a", "conn-1", 1)
    assert share.acquire("g", "a", u, 0, max_bytes=1 << 20, max_records=10)[1] == [Acquired(0, 1, 1)]
    assert share.acknowledge("g", "a", {(u, 0): [(0, 0, [1])]})[0] == {(u, 0): ErrorCode.NONE}
    leaders[0] = 2
    assert share.leadership_moved("u", 0) is True
    assert share.leadership_moved("u", 1) is False  # nothing acquired there
    assert share.acquire("g", "a", u, 0, max_bytes=1 << 20, max_records=10)[1] == [Acquired(1, 1, 2)]
    assert share.start_offsets("g")[u, 0] == 1


def test_records_are_read_through_the_leader_log(tmp_path, clock, logs) -> None:
    other = LogManager(tmp_path / "leader", {}, clock)
    try:
        leader = other.create_topic("t", 1).partitions[0]
        leader.append(build_batch([RecordSpec(b"only")]))
        share = ShareCoordinator(tmp_path / "data", clock, logs, SETTINGS,
                                 leader_log=lambda name, index: leader, leader_node=lambda name, index: 1)
        try:
            share.set_group_configs("g", {"share.auto.offset.reset": "earliest"})
            join(share, "a", clock)
            assert share.acquire("g", "a", topic_id(logs), 0, max_bytes=1 << 20, max_records=10)[1] == [
                Acquired(0, 0, 1)]
            assert share.lag("g", topic_id(logs), 0) == 1  # the leader's high watermark, not the 8 of this copy
        finally:
            share.close()
    finally:
        other.close()
