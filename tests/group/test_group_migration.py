"""KIP-848 online migration through the coordinator: upgrade, classic members of a consumer group, downgrade.

An injected clock and an in-memory topic list; the classic members are driven
the way an eager classic client reacts (rejoin on REBALANCE_IN_PROGRESS,
reporting no owned partitions, then SyncGroup).
"""

from __future__ import annotations

import pytest
from group_helpers import FakeClock, form_group, join, joined, subscription, synced
import test_consumer_heartbeat
from test_consumer_heartbeat import beat, join_consumer, open_coordinator, partitions, tid

from kafkacompat.group.classic.consumer_protocol import assigned_partitions, encode_assignment, encode_subscription
from kafkacompat.group.consumer.state import ConsumerGroupState, MemberState
from kafkacompat.group.coordinator import CommittedOffset, LeavingMember, TopicPartition
from kafkacompat.protocol.errors import ErrorCode

E = ErrorCode
PROTOCOLS = [("range", subscription("orders"))]
TP0 = TopicPartition("orders", 0)
# The heartbeat tests' fixtures: "orders" with six partitions, a coordinator that knows it.
topics, coordinator = test_consumer_heartbeat.topics, test_consumer_heartbeat.coordinator


def classic_group(coordinator, shares: list[set[int]]) -> tuple[list[str], int]:
    """A Stable classic group whose members own ``shares`` of "orders"; (member ids, generation)."""
    ids = form_group(coordinator, len(shares), protocols=PROTOCOLS)
    results = [joined(p) for p in [join(coordinator, "g", m, protocols=PROTOCOLS) for m in ids]]
    generation, leader = results[0].generation_id, results[0].leader_id
    assignments = {m: encode_assignment([("orders", sorted(s))], 0) for m, s in zip(ids, shares)}
    syncs = [coordinator.sync_group("g", generation, m, {}) for m in ids if m != leader]
    syncs.append(coordinator.sync_group("g", generation, leader, assignments))
    assert all(synced(s).error is E.NONE for s in syncs)
    return ids, generation


def rejoin(coordinator, member_id: str, protocols=PROTOCOLS) -> tuple[int, set[int]]:
    """One classic rejoin (JoinGroup then SyncGroup): the generation and the partitions it is given."""
    result = joined(join(coordinator, "g", member_id, protocols=protocols))
    assert (result.error, result.member_id, result.protocol_type, result.protocol_name, result.leader_id,
            result.members) == (E.NONE, member_id, "consumer", "range", "", ())
    answer = synced(coordinator.sync_group("g", result.generation_id, member_id, {},
                                           protocol_type="consumer", protocol_name="range"))
    assert answer.error is E.NONE
    return result.generation_id, {p for _, p in assigned_partitions(answer.assignment)}


def catch_up(coordinator, member_id: str, generation: int) -> tuple[int, set[int]]:
    """Heartbeat and rejoin while told to, as a classic client does; the final generation and partitions."""
    owned: set[int] = set()
    while coordinator.heartbeat("g", generation, member_id) is E.REBALANCE_IN_PROGRESS:
        generation, owned = rejoin(coordinator, member_id)
    return generation, owned


def owners(coordinator) -> dict[int, str]:
    return {p: member for (_, p), member in coordinator.consumer_group("g").owners.items()}


def test_upgrade_keeps_the_classic_members_and_hands_partitions_over_only_once_revoked(coordinator):
    (a, b), generation = classic_group(coordinator, [{0, 1, 2}, {3, 4, 5}])
    coordinator.commit_offsets("g", generation, a, {TP0: CommittedOffset(7)})
    c = join_consumer(coordinator, "c")
    assert (c.error, c.member_epoch, partitions(c)) == (E.NONE, generation + 1, set())  # nothing is free yet
    group = coordinator.consumer_group("g")
    assert [m.classic is not None for m in group.members.values()] == [True, True, False]
    assert (group.members[a].member_epoch, group.members[a].assigned) == (generation, {tid("orders"): {0, 1, 2}})
    assert [(g.group_type, g.state.value) for g in coordinator.list_groups()] == [("consumer", "Reconciling")]
    # a is told to rejoin; its first rejoin keeps two partitions at its old epoch, revoking the third.
    assert coordinator.heartbeat("g", generation, a) is E.REBALANCE_IN_PROGRESS
    kept_generation, kept = rejoin(coordinator, a)
    assert (kept_generation, len(kept), group.members[a].state) == (
        generation, 2, MemberState.UNREVOKED_PARTITIONS)
    assert set(owners(coordinator)) == set(range(6))  # the third is still a's until it rejoins
    assert catch_up(coordinator, a, kept_generation) == (generation + 1, kept)
    assert catch_up(coordinator, b, generation)[0] == generation + 1
    c = beat(coordinator, "c", c.member_epoch, owned={tid("orders"): frozenset()})
    settled = {m.member_id: {p for ps in m.assigned.values() for p in ps} for m in group.members.values()}
    assert sorted(len(s) for s in settled.values()) == [2, 2, 2] and set().union(*settled.values()) == set(range(6))
    assert partitions(c) == settled["c"]
    assert group.state is ConsumerGroupState.STABLE
    assert coordinator.fetch_offsets("g", [TP0])[TP0].offset == 7


def test_classic_members_commit_with_their_generation(coordinator):
    (a, _), generation = classic_group(coordinator, [{0, 1, 2}, {3, 4, 5}])
    join_consumer(coordinator, "c")

    def commit(epoch: int, version: int = 8) -> ErrorCode:
        return coordinator.commit_offsets("g", epoch, a, {TP0: CommittedOffset(3)}, version=version)[TP0]

    assert commit(generation) is E.NONE  # OffsetCommit below v9 is fine for a classic member
    assert commit(generation + 1) is E.ILLEGAL_GENERATION
    assert commit(generation - 1) is E.ILLEGAL_GENERATION
    assert coordinator.offset_fetch_error("g", a, generation - 1) is E.ILLEGAL_GENERATION


def test_downgrade_when_the_last_consumer_member_leaves(tmp_path, clock, topics):
    coordinator = open_coordinator(tmp_path, clock, topics)
    (a, b), generation = classic_group(coordinator, [{0, 1, 2}, {3, 4, 5}])
    c = join_consumer(coordinator, "c")
    a_generation, _ = catch_up(coordinator, a, generation)
    b_generation, _ = catch_up(coordinator, b, generation)
    epoch = coordinator.consumer_group("g").group_epoch
    coordinator.commit_offsets("g", a_generation, a, {TP0: CommittedOffset(11)})
    assert beat(coordinator, "c", c.member_epoch).error is E.NONE
    assert beat(coordinator, "c", -1).error is E.NONE
    assert coordinator.consumer_group("g") is None
    [(listed)] = coordinator.list_groups()
    assert (listed.group_type, listed.state.value) == ("classic", "PreparingRebalance")
    described = coordinator.describe_group("g")
    assert (described.protocol_type, sorted(m.member_id for m in described.members)) == ("consumer", sorted([a, b]))
    # The classic group starts at the consumer group's epoch; its members learn of the rebalance by heartbeat.
    assert coordinator.heartbeat("g", epoch, a) is E.REBALANCE_IN_PROGRESS
    pendings = [join(coordinator, "g", m, protocols=PROTOCOLS) for m in (a, b)]
    results = [joined(p) for p in pendings]
    assert {r.generation_id for r in results} == {epoch + 1}
    leader = results[0].leader_id
    assert {m.member_id for m in next(r for r in results if r.member_id == leader).members} == {a, b}
    assert coordinator.fetch_offsets("g", [TP0])[TP0].offset == 11
    coordinator.close()
    reopened = open_coordinator(tmp_path, FakeClock(clock.now), topics)
    assert [g.group_type for g in reopened.list_groups()] == ["classic"]
    reopened.close()


def test_a_classic_member_may_join_a_consumer_group_under_any_policy(tmp_path, clock, topics):
    coordinator = open_coordinator(tmp_path, clock, topics, migration_policy="disabled")
    a = join_consumer(coordinator, "a")
    required = joined(join(coordinator, "g", protocols=PROTOCOLS, require_known_member_id=True))
    assert required.error is E.MEMBER_ID_REQUIRED and required.member_id
    assert joined(join(coordinator, "g", protocol_type="connect", protocols=PROTOCOLS)).error is (
        E.INCONSISTENT_GROUP_PROTOCOL)
    generation, given = rejoin(coordinator, required.member_id)
    assert (generation, given) == (2, set())  # all six are still a's
    a = beat(coordinator, "a", 1, owned={tid("orders"): frozenset(range(6))})
    beat(coordinator, "a", 1, owned={tid("orders"): frozenset(partitions(a))})
    generation, given = catch_up(coordinator, required.member_id, generation)
    assert len(given) == 3 and not given & partitions(a)
    # The classic member leaves with LeaveGroup; the KIP-848 member gets everything back.
    assert coordinator.leave_group("g", [LeavingMember(required.member_id)]).members[0][1] is E.NONE
    assert partitions(beat(coordinator, "a", 2, owned={tid("orders"): frozenset(partitions(a))})) == set(range(6))
    coordinator.close()


@pytest.mark.parametrize("policy", ["disabled", "downgrade"])
def test_upgrade_refused_by_the_policy(tmp_path, clock, topics, policy):
    coordinator = open_coordinator(tmp_path, clock, topics, migration_policy=policy)
    classic_group(coordinator, [{0, 1, 2}, {3, 4, 5}])
    refused = join_consumer(coordinator, "c")
    assert (refused.error, refused.message) == (
        E.GROUP_ID_NOT_FOUND, "Cannot upgrade classic group g to consumer group: the online upgrade is disabled.")
    assert [(g.group_type, g.state.value) for g in coordinator.list_groups()] == [("classic", "Stable")]
    coordinator.close()


def test_upgrade_refused_for_another_protocol_type(coordinator):
    form_group(coordinator, 1, protocol_type="connect", protocols=[("default", b"x")])
    assert join_consumer(coordinator, "c").error is E.GROUP_ID_NOT_FOUND
    assert [g.group_type for g in coordinator.list_groups()] == ["classic"]


@pytest.mark.parametrize("policy", ["disabled", "upgrade"])
def test_without_downgrade_the_group_stays_a_consumer_group_of_classic_members(tmp_path, clock, topics, policy):
    coordinator = open_coordinator(tmp_path, clock, topics, migration_policy=policy)
    c = join_consumer(coordinator, "c")
    member_id = joined(join(coordinator, "g", protocols=PROTOCOLS, require_known_member_id=True)).member_id
    generation, _ = rejoin(coordinator, member_id)
    beat(coordinator, "c", -1)
    assert c.error is E.NONE
    assert [(g.group_type, g.state.value) for g in coordinator.list_groups()] == [("consumer", "Reconciling")]
    assert catch_up(coordinator, member_id, generation) == (3, set(range(6)))
    coordinator.close()


def test_a_classic_member_that_does_not_rejoin_in_its_rebalance_timeout_is_fenced(coordinator, clock):
    (a, b), generation = classic_group(coordinator, [{0, 1, 2}, {3, 4, 5}])
    join_consumer(coordinator, "c")
    b_generation, _ = catch_up(coordinator, b, generation)
    started, group = clock.now, coordinator.consumer_group("g")
    while a in group.members:  # a heartbeats (so its session lives on) but never rejoins
        assert coordinator.heartbeat("g", generation, a) is E.REBALANCE_IN_PROGRESS
        assert coordinator.heartbeat("g", b_generation, b) in (E.NONE, E.REBALANCE_IN_PROGRESS)
        beat(coordinator, "c", group.members["c"].member_epoch)
        clock.now += 3_000
        coordinator.tick(clock.now)
    assert clock.now - started == 30_000  # its rebalance timeout, not its 10 s session
    assert coordinator.heartbeat("g", generation, a) is E.UNKNOWN_MEMBER_ID


def test_a_silent_classic_member_is_fenced_after_its_own_session_timeout(coordinator, clock):
    (a, b), generation = classic_group(coordinator, [{0, 1, 2}, {3, 4, 5}])
    join_consumer(coordinator, "c")
    for _ in range(3):
        clock.now += 4_000
        coordinator.heartbeat("g", generation, b)
        beat(coordinator, "c", coordinator.consumer_group("g").members["c"].member_epoch)
        coordinator.tick(clock.now)
    assert set(coordinator.consumer_group("g").members) == {b, "c"}


def test_classic_requests_from_a_consumer_protocol_member_are_unknown(coordinator):
    (a, _), generation = classic_group(coordinator, [{0, 1, 2}, {3, 4, 5}])
    c = join_consumer(coordinator, "c")
    assert coordinator.heartbeat("g", c.member_epoch, "c") is E.UNKNOWN_MEMBER_ID
    assert synced(coordinator.sync_group("g", c.member_epoch, "c", {})).error is E.UNKNOWN_MEMBER_ID
    assert coordinator.heartbeat("g", generation + 5, a) is E.ILLEGAL_GENERATION
    assert synced(coordinator.sync_group("g", generation, a, {}, protocol_name="roundrobin")).error is (
        E.INCONSISTENT_GROUP_PROTOCOL)


def test_an_upgraded_group_and_its_classic_members_survive_a_restart(tmp_path, clock, topics):
    coordinator = open_coordinator(tmp_path, clock, topics)
    (a, _), generation = classic_group(coordinator, [{0, 1, 2}, {3, 4, 5}])
    join_consumer(coordinator, "c")
    catch_up(coordinator, a, generation)
    before = coordinator.consumer_group("g").members[a]
    coordinator.close()
    reopened = open_coordinator(tmp_path, FakeClock(clock.now), topics)
    restored = reopened.consumer_group("g").members[a]
    assert (restored.classic, restored.member_epoch, restored.assigned) == (
        before.classic, before.member_epoch, before.assigned)
    assert reopened.heartbeat("g", restored.member_epoch, a) is E.NONE
    reopened.close()


def test_cooperative_members_report_what_they_still_own(coordinator):
    """A rejoin whose subscription lists owned partitions (cooperative clients) still owns them."""
    (a, b), generation = classic_group(coordinator, [{0, 1, 2}, {3, 4, 5}])
    join_consumer(coordinator, "c")
    first = joined(join(coordinator, "g", a, protocols=PROTOCOLS))
    kept = {p for _, p in assigned_partitions(synced(coordinator.sync_group("g", first.generation_id, a, {}))
                                             .assignment)}
    still_owning = [("cooperative-sticky", encode_subscription(["orders"], [("orders", [0, 1, 2])], None))]
    assert joined(join(coordinator, "g", a, protocols=still_owning)).error is E.INCONSISTENT_GROUP_PROTOCOL
    owning = [("range", encode_subscription(["orders"], [("orders", [0, 1, 2])], None))]
    again = joined(join(coordinator, "g", a, protocols=owning))
    assert again.generation_id == generation  # the revoked partition is still reported: no new epoch yet
    done = joined(join(coordinator, "g", a, protocols=[
        ("range", encode_subscription(["orders"], [("orders", sorted(kept))], None))]))
    assert done.generation_id == generation + 1


@pytest.mark.parametrize(("policy", "group_type"), [("bidirectional", "classic"), ("upgrade", "consumer")])
def test_a_static_classic_member_replacing_the_last_consumer_member_downgrades_without_a_rebalance(
        tmp_path, clock, topics, policy, group_type):
    coordinator = open_coordinator(tmp_path, clock, topics, migration_policy=policy)
    s = join_consumer(coordinator, "s", instance_id="i1")
    member_id = joined(join(coordinator, "g", protocols=PROTOCOLS, require_known_member_id=True)).member_id
    generation, _ = rejoin(coordinator, member_id)
    s = beat(coordinator, "s", s.member_epoch, owned={tid("orders"): frozenset(range(6))})
    kept = partitions(s)
    beat(coordinator, "s", s.member_epoch, owned={tid("orders"): frozenset(kept)})
    # The static instance restarts as a classic client: it takes s's place and its partitions.
    replacing = joined(join(coordinator, "g", protocols=PROTOCOLS, group_instance_id="i1"))
    assert replacing.error is E.NONE and replacing.member_id != "s"
    [(listed)] = coordinator.list_groups()
    assert listed.group_type == group_type
    answer = synced(coordinator.sync_group("g", replacing.generation_id, replacing.member_id, {},
                                           group_instance_id="i1"))
    assert (answer.error, {p for _, p in assigned_partitions(answer.assignment)}) == (E.NONE, kept)
    if group_type == "classic":
        assert listed.state.value == "Stable"  # no rebalance: everyone keeps what it has
        assert coordinator.heartbeat("g", replacing.generation_id, replacing.member_id, "i1") is E.NONE
    coordinator.close()
