"""The classic rebalance protocol, driven with a fake clock: no sleeps, no sockets."""

from __future__ import annotations

from group_helpers import REBALANCE_MS, SESSION_MS, form_group, join, joined, make_coordinator, subscription, synced

from kafkacompat.group.results import LeavingMember
from kafkacompat.group.classic.state import GroupState
from kafkacompat.protocol.errors import ErrorCode

E = ErrorCode


def state(coordinator, group_id="g"):
    return coordinator.describe_group(group_id).state


# -- joining -------------------------------------------------------------------


def test_single_member_becomes_leader_of_generation_one(coordinator):
    result = joined(join(coordinator, client_id="c1"))
    assert result.error == E.NONE
    assert result.member_id.startswith("c1-")
    assert result.generation_id == 1
    assert result.leader_id == result.member_id
    assert result.protocol_type == "consumer" and result.protocol_name == "range"
    assert [m.member_id for m in result.members] == [result.member_id]
    assert result.members[0].metadata == subscription("t")
    assert state(coordinator) is GroupState.COMPLETING_REBALANCE

    sync = coordinator.sync_group("g", 1, result.member_id, {result.member_id: b"all of it"})
    assert synced(sync).error == E.NONE
    assert sync.result().assignment == b"all of it"
    assert sync.result().protocol_name == "range"
    assert state(coordinator) is GroupState.STABLE


def test_member_id_required_round_trip(coordinator):
    first = joined(join(coordinator, require_known_member_id=True, client_id="rdkafka"))
    assert first.error == E.MEMBER_ID_REQUIRED
    assert first.member_id.startswith("rdkafka-")
    assert first.generation_id == -1
    assert state(coordinator) is GroupState.EMPTY

    second = joined(join(coordinator, member_id=first.member_id, require_known_member_id=True))
    assert second.error == E.NONE
    assert second.member_id == first.member_id
    assert second.leader_id == first.member_id


def test_pending_member_id_expires_after_session_timeout(coordinator, clock):
    first = joined(join(coordinator, require_known_member_id=True))
    clock.now += SESSION_MS
    coordinator.tick(clock.now)
    late = joined(join(coordinator, member_id=first.member_id, require_known_member_id=True))
    assert late.error == E.UNKNOWN_MEMBER_ID


def test_three_members_share_one_generation(coordinator):
    members = form_group(coordinator, 3)
    description = coordinator.describe_group("g")
    assert description.state is GroupState.STABLE
    assert sorted(m.member_id for m in description.members) == sorted(members)
    assert {m.member_id: m.assignment for m in description.members} == {
        m: f"assignment-{m}".encode() for m in members
    }


def test_newcomer_waits_until_every_member_rejoins(coordinator):
    a, b = form_group(coordinator, 2)
    generation = 3  # one rebalance per arrival, plus the first
    assert coordinator.heartbeat("g", generation - 1, a) == E.NONE

    c_join = join(coordinator)
    assert not c_join.done()
    assert coordinator.heartbeat("g", generation - 1, a) == E.REBALANCE_IN_PROGRESS
    assert coordinator.heartbeat("g", generation - 1, b) == E.REBALANCE_IN_PROGRESS
    assert synced(coordinator.sync_group("g", generation - 1, a, {})).error == E.REBALANCE_IN_PROGRESS

    a_join = join(coordinator, member_id=a)
    assert not a_join.done() and not c_join.done()
    b_join = join(coordinator, member_id=b)
    results = [joined(p) for p in (a_join, b_join, c_join)]
    assert {r.generation_id for r in results} == {generation}
    leader = [r for r in results if r.members]
    assert len(leader) == 1 and leader[0].member_id == a
    assert len(leader[0].members) == 3


def test_follower_sync_waits_for_leader_and_gets_its_slice(coordinator):
    a, b = form_group(coordinator, 2)
    c_join = join(coordinator)
    a_join, b_join = join(coordinator, member_id=a), join(coordinator, member_id=b)
    c = joined(c_join).member_id
    generation = joined(a_join).generation_id
    assert joined(b_join).leader_id == a

    b_sync = coordinator.sync_group("g", generation, b, {})
    c_sync = coordinator.sync_group("g", generation, c, {})
    assert not b_sync.done() and not c_sync.done()
    assert coordinator.heartbeat("g", generation, b) == E.NONE  # CompletingRebalance: NONE
    leader_sync = coordinator.sync_group("g", generation, a, {a: b"A", b: b"B"})
    assert synced(leader_sync).assignment == b"A"
    assert synced(b_sync).assignment == b"B"
    assert synced(c_sync).assignment == b""  # the leader left c out


def test_completing_rebalance_join_retry_repeats_the_answer(coordinator):
    first = joined(join(coordinator))
    again = joined(join(coordinator, member_id=first.member_id))
    assert again == first
    changed = join(coordinator, member_id=first.member_id, protocols=[("range", subscription("t", "u"))])
    assert joined(changed).generation_id == first.generation_id + 1


def test_stable_follower_rejoin_without_change_keeps_generation(coordinator):
    a, b = form_group(coordinator, 2)
    result = joined(join(coordinator, member_id=b))
    assert result.generation_id == 2 and result.leader_id == a and result.members == ()
    assert state(coordinator) is GroupState.STABLE


def test_stable_leader_rejoin_triggers_rebalance(coordinator):
    a, b = form_group(coordinator, 2)
    a_join = join(coordinator, member_id=a)
    assert not a_join.done()
    assert state(coordinator) is GroupState.PREPARING_REBALANCE
    joined(join(coordinator, member_id=b))
    assert joined(a_join).generation_id == 3


def test_initial_rebalance_delay_extends_while_members_arrive(tmp_path, clock):
    coordinator = make_coordinator(tmp_path, clock, initial_rebalance_delay_ms=3000)
    start = clock.now
    a = join(coordinator)
    clock.now = start + 1000
    b = join(coordinator)
    clock.now = start + 2000
    c = join(coordinator)
    assert coordinator.next_deadline_ms() == start + 3000
    coordinator.tick(start + 3000)  # b and c arrived during the first step: one more step
    assert not a.done()
    coordinator.tick(start + 5999)
    assert not a.done()
    clock.now = start + 6000
    coordinator.tick(start + 6000)
    results = [joined(p) for p in (a, b, c)]
    assert {r.generation_id for r in results} == {1}
    assert sum(1 for r in results if r.members) == 1
    coordinator.close()


# -- liveness ----------------------------------------------------------------------


def test_session_timeout_removes_silent_member_and_rebalances(coordinator, clock):
    a, b = form_group(coordinator, 2)
    clock.now += SESSION_MS - 1
    assert coordinator.heartbeat("g", 2, a) == E.NONE
    coordinator.tick(clock.now)
    assert state(coordinator) is GroupState.STABLE
    clock.now += 1
    coordinator.tick(clock.now)  # b's session ends
    assert state(coordinator) is GroupState.PREPARING_REBALANCE
    assert coordinator.heartbeat("g", 2, b) == E.UNKNOWN_MEMBER_ID
    assert coordinator.heartbeat("g", 2, a) == E.REBALANCE_IN_PROGRESS
    result = joined(join(coordinator, member_id=a))
    assert result.generation_id == 3 and [m.member_id for m in result.members] == [a]


def test_next_deadline_tracks_the_earliest_session(coordinator, clock):
    a, b = form_group(coordinator, 2)
    start = clock.now
    assert coordinator.next_deadline_ms() == start + SESSION_MS
    clock.now += 4000
    coordinator.heartbeat("g", 2, a)
    coordinator.heartbeat("g", 2, b)
    assert coordinator.next_deadline_ms() == start + 4000 + SESSION_MS


def test_rebalance_timeout_drops_members_that_do_not_rejoin(coordinator, clock):
    a, b = form_group(coordinator, 2)
    start = clock.now
    c_join = join(coordinator)
    a_join = join(coordinator, member_id=a)
    while clock.now + 5000 < start + REBALANCE_MS:
        clock.now += 5000
        assert coordinator.heartbeat("g", 2, b) == E.REBALANCE_IN_PROGRESS  # alive, but never rejoins
        coordinator.tick(clock.now)
    assert not a_join.done()
    clock.now = start + REBALANCE_MS
    coordinator.tick(clock.now)
    a_result, c_result = joined(a_join), joined(c_join)
    assert a_result.generation_id == 3
    assert {m.member_id for m in a_result.members} == {a, c_result.member_id}
    assert coordinator.heartbeat("g", 3, b) == E.UNKNOWN_MEMBER_ID


def test_member_waiting_in_join_is_not_session_expired(coordinator, clock):
    a, b = form_group(coordinator, 2)
    a_join = join(coordinator, member_id=a)  # b must rejoin too
    clock.now += SESSION_MS + 1
    coordinator.tick(clock.now)  # b's session ends; a is waiting at the barrier
    result = joined(a_join)
    assert [m.member_id for m in result.members] == [a]


def test_members_that_never_sync_are_dropped(coordinator, clock):
    a, b = form_group(coordinator, 2)
    a_join, b_join = join(coordinator, member_id=a), join(coordinator, member_id=b)
    generation = joined(a_join).generation_id
    joined(b_join)
    a_sync = coordinator.sync_group("g", generation, a, {a: b"A", b: b"B"})
    assert synced(a_sync).assignment == b"A"
    for _ in range(REBALANCE_MS // 5000 - 1):  # both stay alive, but b never syncs
        clock.now += 5000
        assert coordinator.heartbeat("g", generation, a) == E.NONE
        assert coordinator.heartbeat("g", generation, b) == E.NONE
        coordinator.tick(clock.now)
    clock.now += 5000
    coordinator.tick(clock.now)
    assert coordinator.heartbeat("g", generation, b) == E.UNKNOWN_MEMBER_ID
    assert coordinator.heartbeat("g", generation, a) == E.REBALANCE_IN_PROGRESS


# -- leaving ---------------------------------------------------------------------


def test_leave_rebalances_remaining_members(coordinator):
    a, b, c = form_group(coordinator, 3)
    result = coordinator.leave_group("g", [LeavingMember(a)])
    assert result.error == E.NONE and result.members == ((LeavingMember(a), E.NONE),)
    assert coordinator.heartbeat("g", 3, b) == E.REBALANCE_IN_PROGRESS
    pendings = [join(coordinator, member_id=m) for m in (b, c)]
    results = {r.member_id: r for r in map(joined, pendings)}
    leader = results[b].leader_id
    assert leader in (b, c) and results[c].leader_id == leader
    assert {m.member_id for m in results[leader].members} == {b, c}
    assert {r.generation_id for r in results.values()} == {4}


def test_leave_of_last_member_empties_group(coordinator):
    (a,) = form_group(coordinator, 1)
    coordinator.leave_group("g", [LeavingMember(a)])
    assert state(coordinator) is GroupState.EMPTY
    again = joined(join(coordinator))
    assert again.generation_id == 3  # the empty generation counted too


def test_leave_answers_a_waiting_join_with_unknown_member(coordinator):
    a, b = form_group(coordinator, 2)
    a_join = join(coordinator, member_id=a)
    coordinator.leave_group("g", [LeavingMember(a)])
    assert joined(a_join).error == E.UNKNOWN_MEMBER_ID
    assert joined(join(coordinator, member_id=b)).members[0].member_id == b


def test_leave_errors(coordinator):
    a, _ = form_group(coordinator, 2)
    unknown = coordinator.leave_group("nope", [LeavingMember("x")])
    assert unknown.error == E.NONE and unknown.members[0][1] == E.UNKNOWN_MEMBER_ID
    result = coordinator.leave_group("g", [LeavingMember("x"), LeavingMember("", "no-such-instance")])
    assert [error for _, error in result.members] == [E.UNKNOWN_MEMBER_ID, E.UNKNOWN_MEMBER_ID]
    assert coordinator.leave_group("", [LeavingMember(a)]).error == E.INVALID_GROUP_ID


# -- static membership ---------------------------------------------------------


def form_static_group(coordinator, **join_kwargs):
    a = joined(join(coordinator, group_instance_id="ia", client_id="ca", **join_kwargs))
    assert a.member_id.startswith("ia-")
    coordinator.sync_group("g", 1, a.member_id, {a.member_id: b"A"}, group_instance_id="ia")
    b_join = join(coordinator, group_instance_id="ib", **join_kwargs)
    a_join = join(coordinator, member_id=a.member_id, group_instance_id="ia", **join_kwargs)
    b = joined(b_join).member_id
    generation = joined(a_join).generation_id
    b_sync = coordinator.sync_group("g", generation, b, {}, group_instance_id="ib")
    coordinator.sync_group("g", generation, a.member_id, {a.member_id: b"A", b: b"B"}, group_instance_id="ia")
    assert synced(b_sync).assignment == b"B"
    return a.member_id, b, generation


def test_static_member_restart_keeps_assignment_without_rebalance(coordinator):
    a, b, generation = form_static_group(coordinator)
    rejoin = joined(join(coordinator, group_instance_id="ib"))
    new_b = rejoin.member_id
    assert rejoin.error == E.NONE and new_b != b
    assert rejoin.generation_id == generation and rejoin.leader_id == a and rejoin.members == ()
    assert state(coordinator) is GroupState.STABLE
    assert coordinator.heartbeat("g", generation, a, "ia") == E.NONE  # others see nothing
    sync = coordinator.sync_group("g", generation, new_b, {}, group_instance_id="ib")
    assert synced(sync).assignment == b"B"
    assert coordinator.heartbeat("g", generation, b, "ib") == E.FENCED_INSTANCE_ID
    assert synced(coordinator.sync_group("g", generation, b, {}, group_instance_id="ib")).error == (
        E.FENCED_INSTANCE_ID
    )


def test_static_leader_restart_names_old_leader_unless_client_can_skip(coordinator):
    a, b, generation = form_static_group(coordinator)
    old_style = joined(join(coordinator, group_instance_id="ia"))
    assert old_style.leader_id == a and old_style.members == () and not old_style.skip_assignment
    newest = joined(join(coordinator, group_instance_id="ia", supports_skip_assignment=True))
    assert newest.leader_id == newest.member_id and newest.skip_assignment
    assert len(newest.members) == 2 and newest.generation_id == generation


def test_static_member_is_kept_through_rebalance(coordinator, clock):
    a, b, generation = form_static_group(coordinator, rebalance_timeout_ms=5000)
    a_join = join(coordinator, member_id=a, group_instance_id="ia", rebalance_timeout_ms=5000,
                  protocols=[("range", subscription("u"))])
    clock.now += 5000
    coordinator.tick(clock.now)  # b did not rejoin in time, but a static member stays
    a_result = joined(a_join)
    assert a_result.generation_id == generation + 1
    assert {m.member_id for m in a_result.members} == {a, b}
    assert coordinator.heartbeat("g", generation, b, "ib") == E.ILLEGAL_GENERATION  # told to rejoin


def test_known_member_id_with_wrong_instance_is_fenced(coordinator):
    a, b, _ = form_static_group(coordinator)
    assert joined(join(coordinator, member_id=b, group_instance_id="ia")).error == E.FENCED_INSTANCE_ID
    assert coordinator.leave_group("g", [LeavingMember(b, "ia")]).members[0][1] == E.FENCED_INSTANCE_ID


def test_leave_by_instance_id_alone(coordinator):
    a, b, generation = form_static_group(coordinator)
    result = coordinator.leave_group("g", [LeavingMember("", "ib")])
    assert result.members[0][1] == E.NONE
    assert coordinator.heartbeat("g", generation, a, "ia") == E.REBALANCE_IN_PROGRESS


# -- request validation -----------------------------------------------------------


def test_illegal_generation(coordinator):
    a, b = form_group(coordinator, 2)
    assert coordinator.heartbeat("g", 1, a) == E.ILLEGAL_GENERATION
    assert synced(coordinator.sync_group("g", 7, b, {})).error == E.ILLEGAL_GENERATION


def test_unknown_member(coordinator):
    (a,) = form_group(coordinator, 1)
    assert coordinator.heartbeat("other", 1, a) == E.UNKNOWN_MEMBER_ID
    assert coordinator.heartbeat("g", 1, "stranger") == E.UNKNOWN_MEMBER_ID
    assert joined(join(coordinator, member_id="stranger")).error == E.UNKNOWN_MEMBER_ID
    assert joined(join(coordinator, "fresh", member_id="stranger")).error == E.UNKNOWN_MEMBER_ID
    assert synced(coordinator.sync_group("other", 1, a, {})).error == E.UNKNOWN_MEMBER_ID


def test_join_validation(coordinator):
    assert joined(join(coordinator, "")).error == E.INVALID_GROUP_ID
    assert joined(join(coordinator, session_timeout_ms=5999)).error == E.INVALID_SESSION_TIMEOUT
    assert joined(join(coordinator, session_timeout_ms=1800001)).error == E.INVALID_SESSION_TIMEOUT
    assert joined(join(coordinator, protocol_type="")).error == E.INCONSISTENT_GROUP_PROTOCOL
    form_group(coordinator, 1)
    assert joined(join(coordinator, protocol_type="connect")).error == E.INCONSISTENT_GROUP_PROTOCOL
    assert joined(join(coordinator, protocols=[("sticky", b"")])).error == E.INCONSISTENT_GROUP_PROTOCOL


def test_sync_protocol_check(coordinator):
    (a,) = form_group(coordinator, 1)
    assert synced(coordinator.sync_group("g", 1, a, {}, protocol_name="roundrobin")).error == (
        E.INCONSISTENT_GROUP_PROTOCOL
    )
    assert synced(coordinator.sync_group("g", 1, a, {}, protocol_type="consumer", protocol_name="range")).error == (
        E.NONE
    )


def test_protocol_chosen_by_votes_among_common_protocols(coordinator):
    a_join = join(coordinator, protocols=[("cooperative-sticky", b"a1"), ("range", b"a2")])
    a = joined(a_join).member_id
    coordinator.sync_group("g", 1, a, {})
    b_join = join(coordinator, protocols=[("roundrobin", b"b0"), ("range", b"b1"), ("cooperative-sticky", b"b2")])
    c_join = join(coordinator, protocols=[("range", b"c1"), ("cooperative-sticky", b"c2")])
    a_join = join(coordinator, member_id=a, protocols=[("cooperative-sticky", b"a1"), ("range", b"a2")])
    result = joined(a_join)
    # Common: range, cooperative-sticky. Votes: a sticky, b range, c range.
    assert result.protocol_name == "range"
    assert {m.metadata for m in result.members} == {b"a2", b"b1", b"c1"}
    assert joined(b_join).protocol_name == joined(c_join).protocol_name == "range"


def test_a_protocol_named_twice_by_one_member_is_still_chosen(coordinator):
    # Found by the fuzz campaign: the duplicate counted as a second member's support and no protocol was left.
    offered = [("range", subscription("t")), ("range", subscription("u")), ("roundrobin", subscription("t"))]
    result = joined(join(coordinator, protocols=offered))
    assert (result.error, result.generation_id, result.protocol_name) == (E.NONE, 1, "range")
