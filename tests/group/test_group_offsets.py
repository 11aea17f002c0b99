"""Committed offsets: validation, durability across restarts and crashes, retention."""

from __future__ import annotations

import pytest
from group_helpers import SESSION_MS, form_group, join, joined, make_coordinator, subscription

from kafkacompat.group.coordinator import OFFSETS_DIR, CommittedOffset, TopicPartition
from kafkacompat.group.journal import Journal
from kafkacompat.group.offsets import JOURNAL_NAME
from kafkacompat.group.results import LeavingMember
from kafkacompat.group.classic.state import GroupState
from kafkacompat.protocol.errors import ErrorCode

E = ErrorCode
T0, T1, U0 = TopicPartition("t", 0), TopicPartition("t", 1), TopicPartition("u", 0)
DAY_MS = 24 * 3600 * 1000


def commit(coordinator, offsets, group_id="g", generation_id=-1, member_id="", **kwargs):
    entries = {
        tp: value if isinstance(value, CommittedOffset) else CommittedOffset(value, commit_timestamp_ms=-1)
        for tp, value in offsets.items()
    }
    return coordinator.commit_offsets(group_id, generation_id, member_id, entries, **kwargs)


def offsets_of(coordinator, group_id="g"):
    return {tp: c.offset for tp, c in coordinator.fetch_offsets(group_id, None).items()}


def test_simple_consumer_commit_creates_empty_group(coordinator, clock):
    entry = CommittedOffset(42, leader_epoch=3, metadata="m", commit_timestamp_ms=-1)
    assert commit(coordinator, {T0: entry, T1: 7}) == {T0: E.NONE, T1: E.NONE}
    fetched = coordinator.fetch_offsets("g", [T0, T1, U0])
    assert fetched[T0] == CommittedOffset(42, 3, "m", clock.now, None)
    assert fetched[T1].offset == 7 and fetched[T1].leader_epoch == -1
    assert fetched[U0] is None
    listing = coordinator.list_groups()
    assert [(g.group_id, g.protocol_type, g.state) for g in listing] == [("g", "", GroupState.EMPTY)]


def test_fetch_unknown_group_returns_nothing(coordinator):
    assert coordinator.fetch_offsets("nobody", [T0]) == {T0: None}
    assert coordinator.fetch_offsets("nobody", None) == {}


def test_member_commits_need_current_generation(coordinator):
    a, b = form_group(coordinator, 2)
    assert commit(coordinator, {T0: 5}, generation_id=2, member_id=a) == {T0: E.NONE}
    assert commit(coordinator, {T0: 6}, generation_id=1, member_id=a) == {T0: E.ILLEGAL_GENERATION}
    assert commit(coordinator, {T0: 6}, generation_id=2, member_id="x") == {T0: E.UNKNOWN_MEMBER_ID}
    assert commit(coordinator, {T0: 6}) == {T0: E.UNKNOWN_MEMBER_ID}  # not a member of a live group
    assert commit(coordinator, {T0: 6}, group_id="fresh", generation_id=3, member_id=a) == {
        T0: E.GROUP_ID_NOT_FOUND
    }
    assert commit(coordinator, {T0: 6}, group_id="fresh", generation_id=3, member_id=a, version=8) == {
        T0: E.ILLEGAL_GENERATION
    }
    assert offsets_of(coordinator) == {T0: 5}


def test_an_empty_group_takes_commits_outside_group_management_whatever_the_member_id(coordinator):
    # librdkafka with group.protocol=consumer and assign() sends a member id of its own with generation -1.
    assert commit(coordinator, {T0: 3}, member_id="rdkafka-generated-id") == {T0: E.NONE}
    assert commit(coordinator, {T0: 4}, member_id="rdkafka-generated-id") == {T0: E.NONE}
    assert commit(coordinator, {T0: 5}, generation_id=1, member_id="rdkafka-generated-id") == {
        T0: E.UNKNOWN_MEMBER_ID}
    a, _ = form_group(coordinator, 2)
    assert commit(coordinator, {T0: 6}, member_id="rdkafka-generated-id") == {T0: E.UNKNOWN_MEMBER_ID}
    assert offsets_of(coordinator) == {T0: 4}


def test_commit_during_rebalance(coordinator):
    a, b = form_group(coordinator, 2)
    join(coordinator)  # PreparingRebalance: commits from current members still count
    assert commit(coordinator, {T0: 1}, generation_id=2, member_id=a) == {T0: E.NONE}
    a_join = join(coordinator, member_id=a)
    joined(join(coordinator, member_id=b))
    assert joined(a_join).generation_id == 3  # CompletingRebalance now
    assert commit(coordinator, {T0: 2}, generation_id=3, member_id=a) == {T0: E.REBALANCE_IN_PROGRESS}


def test_commit_keeps_member_alive(coordinator, clock):
    (a,) = form_group(coordinator, 1)
    clock.now += SESSION_MS - 1
    commit(coordinator, {T0: 1}, generation_id=1, member_id=a)
    clock.now += SESSION_MS - 1
    coordinator.tick(clock.now)
    assert coordinator.heartbeat("g", 1, a) == E.NONE


def test_oversized_metadata_is_refused_per_partition(coordinator):
    big = CommittedOffset(1, metadata="x" * 4097, commit_timestamp_ms=-1)
    assert commit(coordinator, {T0: big, T1: 2}) == {T0: E.OFFSET_METADATA_TOO_LARGE, T1: E.NONE}
    assert offsets_of(coordinator) == {T1: 2}


def test_offsets_and_groups_survive_restart(tmp_path, clock):
    coordinator = make_coordinator(tmp_path, clock)
    a, b = form_group(coordinator, 2)
    commit(coordinator, {T0: 10, U0: 3}, generation_id=2, member_id=a)
    commit(coordinator, {T0: 11}, generation_id=2, member_id=b)
    commit(coordinator, {T1: 99}, group_id="simple")
    coordinator.close()

    clock.now += 1000
    restarted = make_coordinator(tmp_path, clock)
    assert offsets_of(restarted) == {T0: 11, U0: 3}
    assert offsets_of(restarted, "simple") == {T1: 99}
    description = restarted.describe_group("g")
    assert description.state is GroupState.STABLE and description.protocol_name == "range"
    assert {m.member_id: m.assignment for m in description.members} == {
        a: f"assignment-{a}".encode(),
        b: f"assignment-{b}".encode(),
    }
    assert restarted.heartbeat("g", 2, a) == E.NONE  # same member id and generation as before
    assert commit(restarted, {T0: 12}, generation_id=2, member_id=b) == {T0: E.NONE}
    restarted.close()


def test_torn_tail_is_ignored(tmp_path, clock):
    coordinator = make_coordinator(tmp_path, clock)
    commit(coordinator, {T0: 1})
    commit(coordinator, {T0: 2, T1: 5})
    coordinator.close()
    journal = tmp_path / OFFSETS_DIR / JOURNAL_NAME
    intact = journal.read_bytes()
    with open(journal, "ab") as f:  # a crash in the middle of the next commit's write
        f.write(intact[-30:])
    coordinator = make_coordinator(tmp_path, clock)
    assert offsets_of(coordinator) == {T0: 2, T1: 5}
    commit(coordinator, {T0: 3})
    coordinator.close()
    assert offsets_of(reopened := make_coordinator(tmp_path, clock)) == {T0: 3, T1: 5}
    reopened.close()


def test_corrupt_record_ends_the_readable_journal(tmp_path):
    path = tmp_path / "j"
    journal = Journal(path)
    journal.append([b"one", b"two"])
    journal.append([b"three"])
    journal.close()
    data = bytearray(path.read_bytes())
    data[8 + 3 + 8] ^= 0xFF  # first byte of "two"
    path.write_bytes(bytes(data))
    assert Journal.read(path) == [b"one"]


def test_journal_is_compacted_at_open(tmp_path, clock):
    coordinator = make_coordinator(tmp_path, clock)
    for offset in range(200):
        commit(coordinator, {T0: offset})
    coordinator.close()
    path = tmp_path / OFFSETS_DIR / JOURNAL_NAME
    assert len(Journal.read(path)) == 200
    make_coordinator(tmp_path, clock).close()
    assert len(Journal.read(path)) == 1


def test_empty_consumer_group_offsets_expire_after_retention(tmp_path, clock):
    coordinator = make_coordinator(tmp_path, clock, offsets_retention_ms=DAY_MS,
                                   offsets_retention_check_interval_ms=60_000)
    (a,) = form_group(coordinator, 1)
    commit(coordinator, {T0: 5}, generation_id=1, member_id=a)
    clock.now += 2 * DAY_MS  # a live group's offsets never expire
    coordinator.heartbeat("g", 1, a)
    coordinator.tick(clock.now)
    assert offsets_of(coordinator) == {T0: 5}
    coordinator.leave_group("g", [LeavingMember(a)])
    emptied_at = clock.now
    coordinator.tick(emptied_at + DAY_MS - 1)
    assert offsets_of(coordinator) == {T0: 5}
    coordinator.tick(emptied_at + DAY_MS + 60_000)
    assert offsets_of(coordinator) == {}
    assert coordinator.list_groups() == []  # empty and offset-less: removed
    coordinator.close()
    reopened = make_coordinator(tmp_path, clock)
    assert reopened.list_groups() == [] and offsets_of(reopened) == {}
    reopened.close()


def test_simple_consumer_offsets_expire_one_by_one(tmp_path, clock):
    coordinator = make_coordinator(tmp_path, clock, offsets_retention_ms=DAY_MS,
                                   offsets_retention_check_interval_ms=60_000)
    commit(coordinator, {T0: 1})
    clock.now += DAY_MS // 2
    commit(coordinator, {T1: 2})
    coordinator.tick(clock.now + DAY_MS // 2)
    assert offsets_of(coordinator) == {T1: 2}
    coordinator.close()


def test_explicit_retention_time(coordinator, clock):
    commit(coordinator, {T0: 1}, retention_time_ms=1000)
    coordinator.tick(clock.now + 600_000)
    assert offsets_of(coordinator) == {}


def test_a_retention_time_past_the_end_of_time_never_expires(coordinator, clock):
    # Found by the fuzz campaign: now + retention overflowed the stored int64 and the commit crashed.
    assert commit(coordinator, {T0: 1}, retention_time_ms=2**63 - 1) == {T0: ErrorCode.NONE}
    coordinator.tick(clock.now + 10 * 365 * DAY_MS)
    assert offsets_of(coordinator) == {T0: 1}


def test_live_group_loses_offsets_of_topics_it_no_longer_reads(tmp_path, clock):
    coordinator = make_coordinator(tmp_path, clock, offsets_retention_ms=DAY_MS,
                                   offsets_retention_check_interval_ms=60_000)
    (a,) = form_group(coordinator, 1)  # subscribed to "t"
    commit(coordinator, {T0: 1, U0: 2}, generation_id=1, member_id=a)
    for _ in range(26):
        clock.now += 3600 * 1000
        coordinator.heartbeat("g", 1, a)
        coordinator.tick(clock.now)
    assert offsets_of(coordinator) == {T0: 1}
    coordinator.close()


def test_offset_delete(coordinator):
    (a,) = form_group(coordinator, 1)  # subscribed to "t"
    commit(coordinator, {T0: 1, U0: 2}, generation_id=1, member_id=a)
    error, results = coordinator.delete_offsets("g", [T0, U0])
    assert error == E.NONE
    assert results == {T0: E.GROUP_SUBSCRIBED_TO_TOPIC, U0: E.NONE}
    assert offsets_of(coordinator) == {T0: 1}
    coordinator.leave_group("g", [LeavingMember(a)])
    assert coordinator.delete_offsets("g", [T0]) == (E.NONE, {T0: E.NONE})
    assert offsets_of(coordinator) == {}
    assert coordinator.delete_offsets("nobody", [T0]) == (E.GROUP_ID_NOT_FOUND, {})


def test_offset_delete_refused_for_non_consumer_live_group(coordinator):
    joined(join(coordinator, protocol_type="connect", protocols=[("v1", b"")]))
    assert coordinator.delete_offsets("g", [T0]) == (E.NON_EMPTY_GROUP, {})


# -- describe, list, delete ----------------------------------------------------------


def test_describe_shows_metadata_only_when_stable(coordinator):
    a, b = form_group(coordinator, 2)
    stable = coordinator.describe_group("g")
    assert stable.protocol_type == "consumer" and stable.protocol_name == "range"
    assert {m.metadata for m in stable.members} == {subscription("t")}
    assert {m.client_host for m in stable.members} == {"/127.0.0.1"}
    join(coordinator)
    preparing = coordinator.describe_group("g")
    assert preparing.state is GroupState.PREPARING_REBALANCE and preparing.protocol_name == ""
    assert len(preparing.members) == 3
    assert {(m.metadata, m.assignment) for m in preparing.members} == {(b"", b"")}
    unknown = coordinator.describe_group("nobody")
    assert unknown.state is GroupState.DEAD and unknown.members == ()


def test_list_groups_with_state_filter(coordinator):
    form_group(coordinator, 1, group_id="live")
    commit(coordinator, {T0: 1}, group_id="idle")
    assert {g.group_id for g in coordinator.list_groups()} == {"live", "idle"}
    assert [g.group_id for g in coordinator.list_groups(["stable"])] == ["live"]
    assert [g.group_id for g in coordinator.list_groups(["Empty", "Dead"])] == ["idle"]
    assert coordinator.list_groups(["NoSuchState"]) == []


def test_delete_groups(tmp_path, clock):
    coordinator = make_coordinator(tmp_path, clock)
    form_group(coordinator, 1, group_id="live")
    commit(coordinator, {T0: 1}, group_id="idle")
    results = coordinator.delete_groups(["live", "idle", "nobody"])
    assert results == {"live": E.NON_EMPTY_GROUP, "idle": E.NONE, "nobody": E.GROUP_ID_NOT_FOUND}
    assert offsets_of(coordinator, "idle") == {}
    assert [g.group_id for g in coordinator.list_groups()] == ["live"]
    coordinator.close()
    reopened = make_coordinator(tmp_path, clock)
    assert offsets_of(reopened, "idle") == {} and {g.group_id for g in reopened.list_groups()} == {"live"}
    reopened.close()


@pytest.mark.parametrize("fail_on", ["commit", "store_group"])
def test_disk_failure_answers_not_coordinator(coordinator, monkeypatch, fail_on):
    def broken(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(coordinator._store, fail_on, broken)
    if fail_on == "commit":
        assert commit(coordinator, {T0: 1}) == {T0: E.NOT_COORDINATOR}
    else:
        first = joined(join(coordinator))
        sync = coordinator.sync_group("g", 1, first.member_id, {first.member_id: b"x"})
        assert sync.result().error == E.NOT_COORDINATOR
        assert coordinator.describe_group("g").state is GroupState.PREPARING_REBALANCE
