"""The classic consumer-group state machine: one group's members, generation and state.

Theory of operation
-------------------
Members of a group agree, one *generation* at a time, on who reads what. The
broker never computes assignments; it runs two barriers and relays bytes:

1. **Join barrier** (PreparingRebalance). Something changed (a member joined,
   left, died or changed its subscription), so every member must send
   JoinGroup again. The barrier closes when every known member is waiting in
   JoinGroup, or when the rebalance timeout (the largest of the members') runs
   out; dynamic members that did not rejoin by then are dropped. Closing it
   bumps the generation, picks the protocol (assignor) every member supports
   with the most first-choice votes, elects a leader among the rejoined, and
   answers all the waiting JoinGroups at once; only the leader's answer lists
   the members and their subscriptions.
2. **Sync barrier** (CompletingRebalance). The leader computes the assignment
   client side and sends it with its SyncGroup; followers' SyncGroups wait for
   it. The leader's SyncGroup makes the group Stable and answers every waiting
   follower with its own slice. Members that never send SyncGroup within the
   rebalance timeout are dropped and a new rebalance starts.

Liveness is the session timeout: every Heartbeat, commit or rebalance answer
restarts a member's session timer; a member waiting at a barrier cannot
heartbeat and is not timed out while it waits. A *static* member
(``group_instance_id``) survives a restart: a JoinGroup with its instance id
and no member id takes over the old member id's place and assignment without
a rebalance, and the old member id is fenced (FENCED_INSTANCE_ID).

States, what each request gets there, and what moves the group on
-------------------------------------------------------------------
``Empty`` — no members (fresh group, or everyone left). JoinGroup adds the
member and starts a rebalance (after the initial rebalance delay, which
lengthens while new members keep arriving in generation 0). SyncGroup,
Heartbeat: UNKNOWN_MEMBER_ID (nobody is a member). OffsetCommit: accepted
from simple consumers (generation -1, no member id). DeleteGroups succeeds;
offsets expire ``offsets_retention_ms`` after the group became Empty.
Moves to PreparingRebalance (JoinGroup) or Dead (deleted, or expired with no
offsets left).

``PreparingRebalance`` — the join barrier is open. JoinGroup waits for the
barrier. SyncGroup: REBALANCE_IN_PROGRESS. Heartbeat: REBALANCE_IN_PROGRESS
(that is how members learn to rejoin). OffsetCommit from a current member of
the current generation is still accepted. LeaveGroup and session expiry
remove members and may close the barrier. Moves to CompletingRebalance when
the barrier closes with members, to Empty when it closes with none.

``CompletingRebalance`` — the sync barrier is open, waiting for the leader's
assignment. JoinGroup with unchanged metadata gets the current generation's
answer again (a lost response); changed metadata restarts the rebalance.
SyncGroup from a follower waits; from the leader it stores the assignment,
answers everyone and makes the group Stable. Heartbeat: NONE. OffsetCommit:
REBALANCE_IN_PROGRESS. Moves to Stable (leader's SyncGroup) or back to
PreparingRebalance (join with new metadata, leave, session or sync expiry).

``Stable`` — everyone has (or can fetch) its assignment. SyncGroup answers the
stored assignment at once. Heartbeat and OffsetCommit: NONE. JoinGroup from
the leader or with changed metadata starts a rebalance; from a follower with
unchanged metadata it gets the current generation back. A known static
instance rejoining with a new member id is swapped in without a rebalance.
Moves to PreparingRebalance.

``Dead`` — the group is gone (deleted, or expired with no offsets). The
coordinator drops a Dead group from its map in the same step, so no request
ever finds one; a later JoinGroup creates a fresh group.
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from kafkacompat.group.classic.consumer_protocol import CONSUMER_PROTOCOL_TYPE, subscribed_topics
from kafkacompat.group.offsets import GroupSnapshot, MemberSnapshot
from kafkacompat.group.results import JoinedMember, JoinResult, PendingResult, SyncResult
from kafkacompat.protocol.errors import ErrorCode


class GroupState(enum.Enum):
    """The five states, valued by the names Kafka shows in DescribeGroups and ListGroups."""

    EMPTY = "Empty"
    PREPARING_REBALANCE = "PreparingRebalance"
    COMPLETING_REBALANCE = "CompletingRebalance"
    STABLE = "Stable"
    DEAD = "Dead"


_E, _P, _C, _S, _D = (
    GroupState.EMPTY,
    GroupState.PREPARING_REBALANCE,
    GroupState.COMPLETING_REBALANCE,
    GroupState.STABLE,
    GroupState.DEAD,
)

# Every legal transition, as target state -> the states it may be entered from.
TRANSITIONS: dict[GroupState, frozenset[GroupState]] = {
    _P: frozenset({_E, _C, _S}),  # a join, leave, expiry or metadata change
    _C: frozenset({_P}),  # join barrier closed with members
    _S: frozenset({_C}),  # leader's SyncGroup delivered the assignment
    _E: frozenset({_P}),  # join barrier closed with nobody left
    _D: frozenset({_E, _P, _C, _S, _D}),  # deleted or expired
}

# States from which a membership change starts a new rebalance.
REBALANCEABLE = frozenset({_E, _C, _S})

Protocols = Sequence[tuple[str, bytes]]


@dataclass(eq=False)
class Member:
    """One member: its identity, timeouts, subscriptions and the requests it is blocked in.

    ``join_waiter`` / ``sync_waiter`` are the unanswered JoinGroup / SyncGroup
    of this member; a member blocked in one is "awaiting join/sync". ``is_new``
    marks a member added in the current join barrier (it has never been
    answered, so its session timer is the long new-member join timeout).
    """

    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    protocols: list[tuple[str, bytes]]
    assignment: bytes = b""
    is_new: bool = False
    join_waiter: PendingResult[JoinResult] | None = field(default=None, repr=False)
    sync_waiter: PendingResult[SyncResult] | None = field(default=None, repr=False)

    @property
    def is_awaiting_join(self) -> bool:
        return self.join_waiter is not None

    @property
    def is_awaiting_sync(self) -> bool:
        return self.sync_waiter is not None

    def metadata(self, protocol_name: str) -> bytes:
        for name, metadata in self.protocols:
            if name == protocol_name:
                return metadata
        raise KeyError(f"member {self.member_id} does not support protocol {protocol_name}")

    def matches(self, protocols: Protocols) -> bool:
        """Same protocols, same order, same metadata: a rejoin that changes nothing."""
        return list(protocols) == self.protocols

    @property
    def protocol_names(self) -> set[str]:
        """Each protocol this member offers, once: a name offered twice still counts as one member's support."""
        return {name for name, _ in self.protocols}

    def vote(self, candidates: Iterable[str]) -> str:
        """This member's most preferred protocol among those every member supports."""
        allowed = set(candidates)
        return next(name for name, _ in self.protocols if name in allowed)

    def resolve_join(self, result: JoinResult) -> None:
        if self.join_waiter is not None:
            waiter, self.join_waiter = self.join_waiter, None
            waiter.resolve(result)

    def resolve_sync(self, result: SyncResult) -> bool:
        """Answer a waiting SyncGroup; False when none was waiting."""
        if self.sync_waiter is None:
            return False
        waiter, self.sync_waiter = self.sync_waiter, None
        waiter.resolve(result)
        return True


class Group:
    """One group's membership, generation and state; the coordinator drives it.

    Owns the members (in join order, so the next leader is the oldest
    member), the static instance-id map, the member ids handed out by
    MEMBER_ID_REQUIRED that have not joined yet (``pending_join_members``) and
    the members of the current generation that have not sent SyncGroup
    (``pending_sync_members``). Timers live in the coordinator; only the
    initial-delay bookkeeping of the open join barrier is kept here.
    Not safe for concurrent use; the coordinator serialises all access.
    """

    def __init__(self, group_id: str, now_ms: int) -> None:
        self.group_id = group_id
        self.state = GroupState.EMPTY
        self.state_timestamp_ms = now_ms
        self.generation_id = 0
        self.protocol_type: str | None = None
        self.protocol_name: str | None = None
        self.leader_id: str | None = None
        self.members: dict[str, Member] = {}
        self.static_members: dict[str, str] = {}
        self.pending_join_members: set[str] = set()
        self.pending_sync_members: set[str] = set()
        self._protocol_support: Counter[str] = Counter()
        # Initial rebalance delay (join barrier opened from Empty): the
        # current delay step, the rebalance time still left to spend on
        # further steps (None once the barrier is an ordinary one), and
        # whether a member arrived during this step.
        self.initial_delay_ms = 0
        self.initial_delay_remaining_ms: int | None = None
        self.new_member_added = False

    def transition_to(self, state: GroupState, now_ms: int) -> None:
        if self.state not in TRANSITIONS[state]:
            raise RuntimeError(f"group {self.group_id}: illegal transition {self.state.value} -> {state.value}")
        self.state = state
        self.state_timestamp_ms = now_ms

    # -- membership -------------------------------------------------------

    def add(self, member: Member, protocol_type: str) -> None:
        if not self.members:
            self.protocol_type = protocol_type
        self.members[member.member_id] = member
        self._protocol_support.update(member.protocol_names)
        if member.group_instance_id is not None:
            self.static_members[member.group_instance_id] = member.member_id
        if self.leader_id is None:
            self.leader_id = member.member_id
        self.pending_join_members.discard(member.member_id)

    def remove(self, member_id: str) -> Member | None:
        member = self.members.pop(member_id, None)
        if member is not None:
            self._protocol_support.subtract(member.protocol_names)
            if member.group_instance_id is not None:
                self.static_members.pop(member.group_instance_id, None)
        if self.leader_id == member_id:
            self.leader_id = next(iter(self.members), None)
        self.pending_join_members.discard(member_id)
        self.pending_sync_members.discard(member_id)
        return member

    def update_member(
        self,
        member: Member,
        protocols: Protocols,
        rebalance_timeout_ms: int,
        session_timeout_ms: int,
        join_waiter: PendingResult[JoinResult],
    ) -> None:
        """Record a rejoin; an older JoinGroup still waiting is told to retry."""
        self._protocol_support.subtract(member.protocol_names)
        member.protocols = list(protocols)
        self._protocol_support.update(member.protocol_names)
        member.rebalance_timeout_ms = rebalance_timeout_ms
        member.session_timeout_ms = session_timeout_ms
        member.resolve_join(JoinResult(ErrorCode.REBALANCE_IN_PROGRESS, member.member_id))
        member.join_waiter = join_waiter

    def replace_static_member(self, group_instance_id: str, old_member_id: str, new_member_id: str) -> Member:
        """Give a restarted static instance the old member's place; the old id is fenced."""
        member = self.members.pop(old_member_id)
        member.resolve_join(JoinResult(ErrorCode.FENCED_INSTANCE_ID, old_member_id))
        member.resolve_sync(SyncResult(ErrorCode.FENCED_INSTANCE_ID))
        member.member_id = new_member_id
        self.members[new_member_id] = member
        self.static_members[group_instance_id] = new_member_id
        if self.leader_id == old_member_id:
            self.leader_id = new_member_id
        if old_member_id in self.pending_sync_members:
            self.pending_sync_members.discard(old_member_id)
            self.pending_sync_members.add(new_member_id)
        return member

    def validate_member(self, member_id: str, group_instance_id: str | None) -> ErrorCode | None:
        """Kafka's check for requests from an existing member: fenced instance, else unknown id."""
        if group_instance_id is not None:
            current = self.static_members.get(group_instance_id)
            if current is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
            if current != member_id:
                return ErrorCode.FENCED_INSTANCE_ID
            return None
        return None if member_id in self.members else ErrorCode.UNKNOWN_MEMBER_ID

    # -- protocol selection ----------------------------------------------

    def supports_protocols(self, protocol_type: str, protocol_names: Iterable[str]) -> bool:
        """Can a member with these protocols join? Empty groups take any non-empty offer."""
        names = set(protocol_names)
        if self.state is GroupState.EMPTY:
            return bool(protocol_type) and bool(names)
        return protocol_type == self.protocol_type and any(
            self._protocol_support[name] == len(self.members) for name in names
        )

    def candidate_protocols(self) -> list[str]:
        return [name for name, count in self._protocol_support.items() if count == len(self.members)]

    def select_protocol(self) -> str:
        """Every member votes for its favourite common protocol; most votes wins (first vote on ties)."""
        candidates = self.candidate_protocols()
        votes = Counter(member.vote(candidates) for member in self.members.values())
        return votes.most_common(1)[0][0]

    def subscribed_topics(self) -> frozenset[str] | None:
        """Topics a consumer group's members subscribe to; None when not known."""
        if self.protocol_type != CONSUMER_PROTOCOL_TYPE or self.protocol_name is None:
            return None
        topics: set[str] = set()
        for member in self.members.values():
            member_topics = subscribed_topics(member.metadata(self.protocol_name))
            if member_topics is None:
                return None
            topics |= member_topics
        return frozenset(topics)

    # -- rebalance --------------------------------------------------------

    @property
    def rebalance_timeout_ms(self) -> int:
        return max((m.rebalance_timeout_ms for m in self.members.values()), default=0)

    def has_all_members_joined(self) -> bool:
        return not self.pending_join_members and all(m.is_awaiting_join for m in self.members.values())

    def not_yet_rejoined_members(self) -> list[Member]:
        return [m for m in self.members.values() if not m.is_awaiting_join]

    def maybe_elect_new_joined_leader(self) -> bool:
        """Keep a leader that rejoined, else pick any member that did; False if none did."""
        if self.leader_id is None:
            return False
        if self.members[self.leader_id].is_awaiting_join:
            return True
        for member in self.members.values():
            if member.is_awaiting_join:
                self.leader_id = member.member_id
                return True
        return False

    def init_next_generation(self, now_ms: int) -> None:
        """Close the join barrier: new generation, chosen protocol, everyone owes a SyncGroup."""
        self.generation_id += 1
        if self.members:
            self.protocol_name = self.select_protocol()
            self.pending_sync_members = set(self.members)
            self.transition_to(GroupState.COMPLETING_REBALANCE, now_ms)
        else:
            self.protocol_name = None
            self.transition_to(GroupState.EMPTY, now_ms)

    def current_member_metadata(self) -> tuple[JoinedMember, ...]:
        assert self.protocol_name is not None
        return tuple(
            JoinedMember(m.member_id, m.group_instance_id, m.metadata(self.protocol_name))
            for m in self.members.values()
        )

    def join_result(self, member_id: str, *, leader_id: str | None = None, skip_assignment: bool = False) -> JoinResult:
        """The current generation as ``member_id`` sees it (members listed for the leader only)."""
        leader = self.leader_id if leader_id is None else leader_id
        return JoinResult(
            error=ErrorCode.NONE,
            member_id=member_id,
            generation_id=self.generation_id,
            protocol_type=self.protocol_type,
            protocol_name=self.protocol_name,
            leader_id=leader or "",
            skip_assignment=skip_assignment,
            members=self.current_member_metadata() if member_id == leader else (),
        )

    # -- persistence -------------------------------------------------------

    def snapshot(self) -> GroupSnapshot:
        """What survives a restart: Kafka's group metadata record (members with the chosen protocol)."""
        protocol = self.protocol_name
        return GroupSnapshot(
            group_id=self.group_id,
            protocol_type=self.protocol_type,
            generation_id=self.generation_id,
            protocol_name=protocol,
            leader_id=self.leader_id,
            state_timestamp_ms=self.state_timestamp_ms,
            members=tuple(
                MemberSnapshot(
                    member_id=m.member_id,
                    group_instance_id=m.group_instance_id,
                    client_id=m.client_id,
                    client_host=m.client_host,
                    rebalance_timeout_ms=m.rebalance_timeout_ms,
                    session_timeout_ms=m.session_timeout_ms,
                    subscription=m.metadata(protocol) if protocol is not None else b"",
                    assignment=m.assignment,
                )
                for m in self.members.values()
            ),
        )

    @classmethod
    def restore(cls, snapshot: GroupSnapshot) -> Group:
        """Reload a snapshot: Stable with its members, or Empty when it had none."""
        group = cls(snapshot.group_id, snapshot.state_timestamp_ms)
        group.generation_id = snapshot.generation_id
        group.protocol_type = snapshot.protocol_type
        group.protocol_name = snapshot.protocol_name
        for saved in snapshot.members:
            protocols = [(snapshot.protocol_name or "", saved.subscription)]
            member = Member(
                member_id=saved.member_id,
                group_instance_id=saved.group_instance_id,
                client_id=saved.client_id,
                client_host=saved.client_host,
                rebalance_timeout_ms=saved.rebalance_timeout_ms,
                session_timeout_ms=saved.session_timeout_ms,
                protocols=protocols,
                assignment=saved.assignment,
            )
            group.add(member, snapshot.protocol_type or "")
        if snapshot.leader_id in group.members:
            group.leader_id = snapshot.leader_id
        if group.members:
            group.state = GroupState.STABLE
        return group
