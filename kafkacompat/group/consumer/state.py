"""The KIP-848 consumer group state machine: epochs, target assignment, per-member reconciliation.

Theory of operation
-------------------
The broker, not a group leader, decides who reads what. Three epochs order
the decisions:

- the **group epoch** counts changes to what the assignment depends on: a
  member joins or leaves (or is fenced), a member's subscription or server
  assignor changes, or a subscribed topic is created, deleted or grows;
- the **target assignment epoch** is the group epoch the current *target
  assignment* (the assignor's answer, one partition set per member) was
  computed for. This broker runs the assignor as soon as the group epoch
  moves, in the same call, so the two are equal again before any answer
  leaves; ``Assigning`` is therefore only ever seen inside one call;
- each **member epoch** is the target epoch the member has caught up with.

A member never receives a partition another member still owns, and never
loses one without revoking it first. Each heartbeat *reconciles* the member
towards its target (Kafka's CurrentAssignmentBuilder), in three member states:

``Stable`` — the member owns what its epoch's target gave it. When the target
epoch moves past its epoch, its next assignment is computed: partitions it
must give up make it ``UnrevokedPartitions`` (its epoch stays; its assignment
shrinks to what it keeps, and the client revokes the rest); otherwise it
moves to the target epoch and gets the new partitions that are free, and is
``UnreleasedPartitions`` if some of them are still owned by someone else.

``UnrevokedPartitions`` — partitions are *pending revocation*: they stay
owned by this member until a heartbeat reports owned partitions that no
longer include any of them (a null list means "unchanged", so still owned).
Then the next assignment is computed at the target epoch. A member that does
not revoke within its rebalance timeout is fenced.

``UnreleasedPartitions`` — the member is at the target epoch but waits for
partitions that other members have not revoked yet; each heartbeat hands it
those that became free, and it is ``Stable`` when none is left.

The group's state follows from its members: ``Empty`` (none),
``Assigning`` (group epoch ahead of the target epoch), ``Reconciling`` (some
member not yet Stable at the target epoch), ``Stable`` (all are), ``Dead``
(deleted). ``GROUP_TRANSITIONS`` lists the legal moves; a move outside it is
a bug and raises.

Classic members (KIP-848's online migration): a member that joined with
JoinGroup, directly or when its classic group was upgraded, carries its
JoinGroup protocols and session timeout (:class:`ClassicMetadata`). It is
reconciled by the same rules, only at its JoinGroup instead of a heartbeat:
its Heartbeat is answered REBALANCE_IN_PROGRESS while it lags (see
:mod:`.classic_members`), and its rejoin reports what it still owns.

Ownership: ``owners`` maps every partition some member owns (assigned or
pending revocation) to that member; a partition is free when absent.
Not safe for concurrent use; the coordinator serialises all access.
"""

from __future__ import annotations

import base64
import enum
import uuid
from dataclasses import dataclass, field
from typing import Any

from kafkacompat.group.consumer.assignors import Assignment

TopicPartitionId = tuple[uuid.UUID, int]


class ConsumerGroupState(enum.Enum):
    """Valued by the names Kafka shows for consumer groups in ListGroups and the describe APIs."""

    EMPTY = "Empty"
    ASSIGNING = "Assigning"
    RECONCILING = "Reconciling"
    STABLE = "Stable"
    DEAD = "Dead"


_E, _A, _R, _S, _D = (
    ConsumerGroupState.EMPTY,
    ConsumerGroupState.ASSIGNING,
    ConsumerGroupState.RECONCILING,
    ConsumerGroupState.STABLE,
    ConsumerGroupState.DEAD,
)

# Every legal transition, as target state -> the states it may be entered from.
GROUP_TRANSITIONS: dict[ConsumerGroupState, frozenset[ConsumerGroupState]] = {
    _A: frozenset({_E, _R, _S}),  # the group epoch moved (join, leave, subscription or topic change)
    _R: frozenset({_A, _R}),  # a new target left members to reconcile; or some caught up, others not yet
    _S: frozenset({_A, _R}),  # every member caught up with the target
    _E: frozenset({_A}),  # the last member left and the empty target was computed
    _D: frozenset({_E, _R, _S}),  # deleted or expired (Empty), or downgraded to a classic group
}


class MemberState(enum.Enum):
    STABLE = "Stable"
    UNREVOKED_PARTITIONS = "UnrevokedPartitions"
    UNRELEASED_PARTITIONS = "UnreleasedPartitions"


def _partitions(assignment: Assignment) -> set[TopicPartitionId]:
    return {(topic_id, p) for topic_id, partitions in assignment.items() for p in partitions}


def _grouped(partitions: set[TopicPartitionId]) -> Assignment:
    grouped: dict[uuid.UUID, set[int]] = {}
    for topic_id, p in partitions:
        grouped.setdefault(topic_id, set()).add(p)
    return {topic_id: frozenset(ps) for topic_id, ps in grouped.items()}


@dataclass(frozen=True)
class ClassicMetadata:
    """What a member using the classic protocol joined with: its session timeout and JoinGroup protocols."""

    session_timeout_ms: int
    protocols: tuple[tuple[str, bytes], ...]

    @property
    def protocol_name(self) -> str:
        """The name its JoinGroup and SyncGroup answers carry: its first choice, as Kafka answers."""
        return self.protocols[0][0]

    def to_json(self) -> dict[str, Any]:
        return {"session_timeout_ms": self.session_timeout_ms,
                "protocols": [[name, base64.b64encode(metadata).decode()] for name, metadata in self.protocols]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClassicMetadata:
        return cls(data["session_timeout_ms"],
                   tuple((name, base64.b64decode(metadata)) for name, metadata in data["protocols"]))


@dataclass(eq=False)
class ConsumerMember:
    """One member as the coordinator knows it; nulls in a heartbeat leave these fields unchanged."""

    member_id: str
    instance_id: str | None = None
    rack_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    rebalance_timeout_ms: int = 300_000
    subscribed_topic_names: tuple[str, ...] = ()
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    member_epoch: int = 0
    previous_member_epoch: int = -1
    state: MemberState = MemberState.STABLE
    assigned: Assignment = field(default_factory=dict)
    pending_revocation: Assignment = field(default_factory=dict)
    classic: ClassicMetadata | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "member_id": self.member_id, "instance_id": self.instance_id, "rack_id": self.rack_id,
            "client_id": self.client_id, "client_host": self.client_host,
            "rebalance_timeout_ms": self.rebalance_timeout_ms,
            "subscribed_topic_names": list(self.subscribed_topic_names),
            "subscribed_topic_regex": self.subscribed_topic_regex, "server_assignor": self.server_assignor,
            "member_epoch": self.member_epoch, "previous_member_epoch": self.previous_member_epoch,
            "state": self.state.value, "assigned": _assignment_json(self.assigned),
            "pending_revocation": _assignment_json(self.pending_revocation),
            "classic": None if self.classic is None else self.classic.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConsumerMember:
        fields = dict(data)
        fields["subscribed_topic_names"] = tuple(data["subscribed_topic_names"])
        fields["state"] = MemberState(data["state"])
        fields["assigned"] = _assignment_from_json(data["assigned"])
        fields["pending_revocation"] = _assignment_from_json(data["pending_revocation"])
        classic = data.get("classic")
        fields["classic"] = None if classic is None else ClassicMetadata.from_json(classic)
        return cls(**fields)


def _assignment_json(assignment: Assignment) -> dict[str, list[int]]:
    return {str(topic_id): sorted(partitions) for topic_id, partitions in assignment.items()}


def _assignment_from_json(data: dict[str, list[int]]) -> Assignment:
    return {uuid.UUID(topic_id): frozenset(partitions) for topic_id, partitions in data.items()}


class ConsumerGroup:
    """One consumer group: members, the three epochs, the target assignment and partition ownership.

    Durable form: :meth:`to_json` / :meth:`from_json` (members with their
    epochs, states and assignments, the target, the epochs); the coordinator
    stores it after every change, so a restarted broker resumes where it was.
    """

    def __init__(self, group_id: str, now_ms: int) -> None:
        self.group_id = group_id
        self.state = _E
        self.state_timestamp_ms = now_ms
        self.group_epoch = 0
        self.assignment_epoch = 0
        self.members: dict[str, ConsumerMember] = {}
        self.static_members: dict[str, str] = {}
        self.target: dict[str, Assignment] = {}
        self.owners: dict[TopicPartitionId, str] = {}
        # What the last target was computed from: (topic name, topic id, partitions) per subscribed topic.
        self.subscription_metadata: tuple[tuple[str, str, int], ...] = ()

    # -- membership -------------------------------------------------------

    def add(self, member: ConsumerMember) -> None:
        self.members[member.member_id] = member
        if member.instance_id is not None:
            self.static_members[member.instance_id] = member.member_id
        self._own(member)

    def remove(self, member_id: str) -> ConsumerMember | None:
        """Drop a member and free every partition it owned; its target entry goes at the next assignment."""
        member = self.members.pop(member_id, None)
        if member is not None:
            self._disown(member)
            if member.instance_id is not None and self.static_members.get(member.instance_id) == member_id:
                del self.static_members[member.instance_id]
        return member

    def replace_static_member(self, old: ConsumerMember, new_member_id: str) -> ConsumerMember:
        """A static member rejoining under a new id takes over the old one's epoch, assignment and target."""
        self._disown(old)
        del self.members[old.member_id]
        target = self.target.pop(old.member_id, None)
        old.member_id = new_member_id
        self.add(old)
        if target is not None:
            self.target[new_member_id] = target
        return old

    def _own(self, member: ConsumerMember) -> None:
        for tp in _partitions(member.assigned) | _partitions(member.pending_revocation):
            self.owners[tp] = member.member_id

    def _disown(self, member: ConsumerMember) -> None:
        for tp in _partitions(member.assigned) | _partitions(member.pending_revocation):
            if self.owners.get(tp) == member.member_id:
                del self.owners[tp]

    # -- epochs and the target ---------------------------------------------

    def bump_group_epoch(self, now_ms: int) -> None:
        self.group_epoch += 1
        self.refresh_state(now_ms)

    def set_target(self, target: dict[str, Assignment], now_ms: int) -> None:
        self.target = target
        self.assignment_epoch = self.group_epoch
        self.refresh_state(now_ms)

    def reconcile(self, member: ConsumerMember, owned: Assignment | None) -> bool:
        """Move ``member`` towards its target; ``owned`` is what its heartbeat reports (None: unchanged).

        Returns whether its epoch, state or assignment changed.
        """
        before = (member.member_epoch, member.state, member.assigned, member.pending_revocation)
        if member.state is MemberState.UNREVOKED_PARTITIONS:
            still_owned = owned is None or bool(_partitions(owned) & _partitions(member.pending_revocation))
            if not still_owned:
                self._next_assignment(member)
        elif member.state is MemberState.UNRELEASED_PARTITIONS or member.member_epoch != self.assignment_epoch:
            self._next_assignment(member)
        return before != (member.member_epoch, member.state, member.assigned, member.pending_revocation)

    def _next_assignment(self, member: ConsumerMember) -> None:
        target = _partitions(self.target.get(member.member_id, {}))
        current = _partitions(member.assigned)
        kept = current & target
        revoke = current - target
        wanted = target - current
        free = {tp for tp in wanted if self.owners.get(tp, member.member_id) == member.member_id}
        self._disown(member)
        if revoke:
            member.state = MemberState.UNREVOKED_PARTITIONS
            member.assigned, member.pending_revocation = _grouped(kept), _grouped(revoke)
        else:
            member.state = MemberState.UNRELEASED_PARTITIONS if free != wanted else MemberState.STABLE
            if member.member_epoch != self.assignment_epoch:
                member.previous_member_epoch = member.member_epoch
                member.member_epoch = self.assignment_epoch
            member.assigned, member.pending_revocation = _grouped(kept | free), {}
        self._own(member)

    def waiting_on_unreleased(self, member: ConsumerMember) -> bool:
        """Whether a partition of the member's target is still owned by another member."""
        target = _partitions(self.target.get(member.member_id, {})) - _partitions(member.assigned)
        return any(self.owners.get(tp, member.member_id) != member.member_id for tp in target)

    def settle(self, now_ms: int) -> None:
        """Derive the state of a group built whole (restored, or converted from a classic group)."""
        self.state = _E if not self.members else _R
        self.refresh_state(now_ms)

    def refresh_state(self, now_ms: int) -> None:
        """Derive the group's state from its epochs and members, checking the move against the table."""
        if self.state is _D:
            return
        if self.group_epoch > self.assignment_epoch:
            state = _A
        elif not self.members:
            state = _E
        elif all(m.state is MemberState.STABLE and m.member_epoch == self.assignment_epoch
                 for m in self.members.values()):
            state = _S
        else:
            state = _R
        if state is not self.state:
            self.transition_to(state, now_ms)

    def transition_to(self, state: ConsumerGroupState, now_ms: int) -> None:
        if self.state not in GROUP_TRANSITIONS[state]:
            raise RuntimeError(f"group {self.group_id}: illegal transition {self.state.value} -> {state.value}")
        self.state = state
        self.state_timestamp_ms = now_ms

    def subscribed_topic_names(self) -> frozenset[str]:
        """Topic names the members list (regex subscriptions resolve elsewhere)."""
        return frozenset(name for m in self.members.values() for name in m.subscribed_topic_names)

    # -- persistence -------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "group_id": self.group_id, "state_timestamp_ms": self.state_timestamp_ms,
            "group_epoch": self.group_epoch, "assignment_epoch": self.assignment_epoch,
            "members": [m.to_json() for m in self.members.values()],
            "target": {member_id: _assignment_json(a) for member_id, a in self.target.items()},
            "subscription_metadata": [list(t) for t in self.subscription_metadata],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConsumerGroup:
        group = cls(data["group_id"], data["state_timestamp_ms"])
        group.group_epoch = data["group_epoch"]
        group.assignment_epoch = data["assignment_epoch"]
        for saved in data["members"]:
            group.add(ConsumerMember.from_json(saved))
        group.target = {member_id: _assignment_from_json(a) for member_id, a in data["target"].items()}
        group.subscription_metadata = tuple((n, i, p) for n, i, p in data["subscription_metadata"])
        group.settle(data["state_timestamp_ms"])  # the stored group had its target computed
        return group
