"""Share group membership (KIP-932): members, the group epoch and the broker-side assignment.

Theory of operation.  A share group has no rebalance protocol: members send
ShareGroupHeartbeat, and the coordinator owns the assignment.  Any change a
member brings (joining, leaving, a new subscription) or that the topics bring
(a subscribed topic created, deleted or grown) bumps the *group epoch*; the
next heartbeat then computes a new target assignment, whose epoch is the
*assignment epoch*.  Several members may be assigned the same partition —
records, not partitions, are what members divide (see partition.py) — so a
member never has to give a partition up before another gets it: each member
takes its target assignment at once, with member epoch = assignment epoch.

Only partitions whose share state is *initialized* are assigned (Kafka 4.1's
initializing and initialized topics). A heartbeat that leaves a subscribed
partition uninitialized makes the coordinator run :meth:`initialize` just
after it, as Kafka runs InitializeShareGroupState; that moves the group
epoch, so members get the new partitions at their next heartbeat, and
members joining together start with a split assignment.

States (Kafka's ShareGroupState names), what a heartbeat gets in each:

    =======  ===========================================  =====================
    state    heartbeat                                     moves to
    =======  ===========================================  =====================
    Empty    epoch 0 joins (needs a subscription);         Stable on a join
             other epochs: UNKNOWN_MEMBER_ID
    Stable   epoch 0 joins or rejoins; the member's        Empty when the last
             epoch: heartbeat; an older epoch:             member leaves (epoch
             FENCED_MEMBER_EPOCH; unknown member:          -1) or its session
             UNKNOWN_MEMBER_ID; epoch -1: leave            times out
    Dead     (deleted with DeleteGroups; never answered)   —
    =======  ===========================================  =====================

A join past ``group.share.max.size`` members gets GROUP_MAX_SIZE_REACHED.
The assignor is Kafka's "simple" one in spirit, deterministic: per topic,
with the members subscribed to it sorted by id, partition *i* goes to member
*i mod m* when there are at least as many partitions as members, and member
*j* gets partition *j mod p* otherwise, so every partition has a member and
every member a partition.  Sessions expire ``session_timeout_ms`` after the
last heartbeat; the injected ``now_ms`` arguments are the only clock.

Durability, as Kafka keeps share groups in __consumer_offsets: the group
(:meth:`snapshot`: epochs, the subscribed topics last seen, the initialized
partition counts) and each member
(:meth:`member_snapshot`: subscription, client, epoch and assignment) are
written whenever a heartbeat changes them; :meth:`restore` reads them back,
giving every member a full session timeout from the restart to heartbeat
again, so members that do keep their epoch and assignment.
Not safe for concurrent use: the share coordinator serialises access.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from kafkacompat.protocol.errors import ErrorCode

JOIN_EPOCH = 0
LEAVE_EPOCH = -1
SHARE_ASSIGNOR = "simple"

# topic name -> (topic id, partition count), for the topics that exist
TopicLookup = Callable[[str], "tuple[uuid.UUID, int] | None"]
Assignment = dict[uuid.UUID, tuple[int, ...]]


class ShareGroupState(enum.Enum):
    EMPTY = "Empty"
    STABLE = "Stable"
    DEAD = "Dead"


@dataclass
class ShareMember:
    member_id: str
    client_id: str
    client_host: str
    rack_id: str | None = None
    member_epoch: int = 0
    subscribed_topic_names: tuple[str, ...] = ()
    assignment: Assignment = field(default_factory=dict)
    session_deadline_ms: int = 0


@dataclass(frozen=True)
class HeartbeatResult:
    error: ErrorCode
    member_epoch: int = 0
    assignment: Assignment | None = None  # None: unchanged since the member's last heartbeat
    message: str | None = None
    left: ShareMember | None = None  # the member that left with this heartbeat


class ShareGroup:
    """One share group's members and epochs; see the module docstring."""

    def __init__(self, group_id: str, *, group_epoch: int = 0) -> None:
        self.group_id = group_id
        self.group_epoch = group_epoch
        self.assignment_epoch = group_epoch
        self.members: dict[str, ShareMember] = {}
        self._topics_seen: dict[str, tuple[uuid.UUID, int] | None] = {}
        self._targets: dict[str, Assignment] = {}  # the target assignment of assignment_epoch
        self._targets_unknown = False
        self._initialized: dict[uuid.UUID, int] = {}  # topic id -> partitions whose share state is initialized
        self.deleted = False

    @property
    def state(self) -> ShareGroupState:
        if self.deleted:
            return ShareGroupState.DEAD
        return ShareGroupState.STABLE if self.members else ShareGroupState.EMPTY

    def subscribed_topics(self) -> set[str]:
        return {name for m in self.members.values() for name in m.subscribed_topic_names}

    def heartbeat(self, member_id: str, member_epoch: int, *, rack_id: str | None,
                  subscribed_topic_names: Sequence[str] | None, client_id: str, client_host: str,
                  topics: TopicLookup, now_ms: int, session_timeout_ms: int, max_size: int) -> HeartbeatResult:
        if member_epoch == LEAVE_EPOCH:
            member = self.members.get(member_id)
            if member is None:
                return HeartbeatResult(ErrorCode.UNKNOWN_MEMBER_ID, message=f"Member {member_id} is not in group")
            self.remove(member_id)
            return HeartbeatResult(ErrorCode.NONE, LEAVE_EPOCH, left=member)
        member = self.members.get(member_id)
        bump = False  # one heartbeat bumps the group epoch at most once, whatever it changed
        if member_epoch == JOIN_EPOCH:
            if not subscribed_topic_names:
                return HeartbeatResult(ErrorCode.INVALID_REQUEST,
                                       message="SubscribedTopicNames must be set in first request.")
            if member is None:
                if len(self.members) >= max_size:
                    return HeartbeatResult(ErrorCode.GROUP_MAX_SIZE_REACHED,
                                           message=f"The share group has reached its maximum capacity of {max_size} members.")
                member = self.members[member_id] = ShareMember(member_id, client_id, client_host)
                bump = True
            member.assignment = {}  # a (re)joining member is sent its whole assignment
        elif member is None:
            return HeartbeatResult(ErrorCode.UNKNOWN_MEMBER_ID, message=f"Member {member_id} is not in group")
        elif member_epoch != member.member_epoch:
            return HeartbeatResult(ErrorCode.FENCED_MEMBER_EPOCH,
                                   message=f"The share group member has a smaller member epoch ({member_epoch}) "
                                           f"than the one known by the group coordinator ({member.member_epoch}).")
        member.session_deadline_ms = now_ms + session_timeout_ms
        if rack_id is not None:
            member.rack_id = rack_id
        if subscribed_topic_names is not None and tuple(sorted(subscribed_topic_names)) != member.subscribed_topic_names:
            member.subscribed_topic_names = tuple(sorted(subscribed_topic_names))
            bump = True
        if self._notice_topic_changes(topics) or bump:
            self.group_epoch += 1
        if self.assignment_epoch < self.group_epoch or self._targets_unknown:
            self._assign(topics)
        target = self._targets.get(member_id, {})
        changed = target != member.assignment or member_epoch == JOIN_EPOCH
        member.assignment = target
        member.member_epoch = self.assignment_epoch
        return HeartbeatResult(ErrorCode.NONE, member.member_epoch, dict(target) if changed else None)

    def needs_initializing(self, topics: TopicLookup) -> bool:
        """Whether a subscribed topic has partitions whose share state is not initialized yet."""
        return bool(self._uninitialized(topics))

    def initialize(self, topics: TopicLookup) -> bool:
        """Initialize every subscribed partition's share state (Kafka's InitializeShareGroupState); whether
        any was new, in which case the group epoch moves and members get them at their next heartbeat."""
        grown = self._uninitialized(topics)
        if not grown:
            return False
        subscribed = {found[0] for found in map(topics, self.subscribed_topics()) if found is not None}
        self._initialized = {tid: n for tid, n in self._initialized.items() if tid in subscribed} | grown
        self.group_epoch += 1
        return True

    def _uninitialized(self, topics: TopicLookup) -> dict[uuid.UUID, int]:
        found = (topics(name) for name in sorted(self.subscribed_topics()))
        return {topic_id: count for topic_id, count in filter(None, found)
                if count > self._initialized.get(topic_id, 0)}

    def remove(self, member_id: str) -> None:
        if self.members.pop(member_id, None) is not None:
            self.group_epoch += 1

    def expired_members(self, now_ms: int) -> list[str]:
        return [m.member_id for m in self.members.values() if m.session_deadline_ms <= now_ms]

    # -- durability -----------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {"epoch": self.group_epoch, "assignment_epoch": self.assignment_epoch,
                "topics": {name: None if seen is None else [str(seen[0]), seen[1]]
                           for name, seen in self._topics_seen.items()},
                "initialized": {str(topic_id): count for topic_id, count in sorted(self._initialized.items())}}

    def member_snapshot(self, member_id: str) -> dict[str, Any]:
        m = self.members[member_id]
        return {"client_id": m.client_id, "client_host": m.client_host, "rack_id": m.rack_id,
                "member_epoch": m.member_epoch, "subscribed_topic_names": list(m.subscribed_topic_names),
                "assignment": {str(topic_id): list(partitions) for topic_id, partitions in m.assignment.items()}}

    @classmethod
    def restore(cls, group_id: str, stored: Mapping[str, Any], members: Mapping[str, Mapping[str, Any]], *,
                session_deadline_ms: int) -> ShareGroup:
        """The group as written; its members' sessions run until ``session_deadline_ms``."""
        group = cls(group_id, group_epoch=int(stored["epoch"]))
        group.assignment_epoch = int(stored.get("assignment_epoch", group.group_epoch))
        group._topics_seen = {name: None if seen is None else (uuid.UUID(seen[0]), int(seen[1]))
                              for name, seen in stored.get("topics", {}).items()}
        initialized = stored.get("initialized")
        group._initialized = dict(filter(None, group._topics_seen.values())) if initialized is None else {
            uuid.UUID(topic_id): int(count) for topic_id, count in initialized.items()}  # older state: all of them
        for member_id, m in members.items():
            group.members[member_id] = ShareMember(
                member_id, m["client_id"], m["client_host"], m["rack_id"], int(m["member_epoch"]),
                tuple(m["subscribed_topic_names"]),
                {uuid.UUID(topic_id): tuple(partitions) for topic_id, partitions in m["assignment"].items()},
                session_deadline_ms)
        group._targets_unknown = True  # recomputed, as it was (the assignor is deterministic), when next needed
        return group

    def _notice_topic_changes(self, topics: TopicLookup) -> bool:
        """Whether a subscribed topic appeared, went away or grew since the last look."""
        seen = {name: topics(name) for name in sorted(self.subscribed_topics())}
        changed, self._topics_seen = seen != self._topics_seen, seen
        return changed

    def _assign(self, topics: TopicLookup) -> None:
        targets: dict[str, Assignment] = {member_id: {} for member_id in self.members}
        for name in sorted(self.subscribed_topics()):
            found = topics(name)
            if found is None or found[1] == 0:
                continue
            topic_id, count = found[0], min(found[1], self._initialized.get(found[0], 0))
            if count == 0:
                continue
            members = sorted(m.member_id for m in self.members.values() if name in m.subscribed_topic_names)
            for member_id, partitions in simple_assignment(members, count).items():
                if partitions:
                    targets[member_id][topic_id] = partitions
        self._targets, self._targets_unknown = targets, False
        self.assignment_epoch = self.group_epoch


def simple_assignment(members: Sequence[str], partition_count: int) -> Mapping[str, tuple[int, ...]]:
    """One topic's partitions over its subscribers (sorted ids), as the module docstring describes."""
    if not members:
        return {}
    if partition_count >= len(members):
        return {member: tuple(range(i, partition_count, len(members))) for i, member in enumerate(members)}
    return {member: (j % partition_count,) for j, member in enumerate(members)}
