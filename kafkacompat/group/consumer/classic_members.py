"""Classic members of KIP-848 consumer groups: JoinGroup, SyncGroup, Heartbeat and LeaveGroup.

A consumer group keeps members that speak the classic protocol, either
because its classic group was upgraded while they were in it, or because they
joined a consumer group with JoinGroup (any policy allows that). The broker
still computes their assignment; the classic requests only carry it:

- **JoinGroup** updates the member's subscription from its first protocol's
  metadata (all of a member's protocols subscribe the same topics), moves the
  group epoch if it changed, and reconciles the member with the owned
  partitions its subscription reports (none for an eager client, which has
  revoked everything before it rejoins). It is answered at once: generation
  = member epoch, no leader, no member list. A member that must still revoke
  keeps its epoch and gets what it keeps; it is asked to rejoin again.
- **SyncGroup** answers the member's current assignment, encoded in its own
  subscription version; REBALANCE_IN_PROGRESS while the group epoch is ahead
  of the member's (unless it is revoking, which needs the answer first).
- **Heartbeat** answers REBALANCE_IN_PROGRESS while the member lags the group
  epoch, must revoke, or waits for partitions that became free, which is how
  a classic client learns to rejoin.
- **LeaveGroup** fences the member like a KIP-848 leave.

A static classic member taking the place of a KIP-848 member (same instance
id) takes over its epoch and assignment; if that leaves only classic members,
the group may be downgraded on the spot (:mod:`..migration`), without a
rebalance, as Kafka does.

Timers (Kafka's): the session runs on the member's own session timeout; a
member told to rejoin must do so within its rebalance timeout (CLASSIC_JOIN),
and one answered at JoinGroup must send SyncGroup within it (CLASSIC_SYNC),
or it is fenced. Requests from a member using the KIP-848 protocol get
UNKNOWN_MEMBER_ID here, as in Kafka.
"""

from __future__ import annotations

import uuid
from typing import Callable, Sequence

from kafkacompat.group.classic.consumer_protocol import (
    CONSUMER_PROTOCOL_TYPE,
    Subscription,
    decode_subscription,
    encode_assignment,
)
from kafkacompat.group.classic.membership import JoinRequest
from kafkacompat.group.consumer.assignors import Assignment
from kafkacompat.group.consumer.membership import ConsumerMembership, ConsumerTimer, TopicSource
from kafkacompat.group.consumer.state import ClassicMetadata, ConsumerGroup, ConsumerMember, MemberState
from kafkacompat.group.results import JoinResult, LeaveResult, LeavingMember, SyncResult
from kafkacompat.group.timers import Timers
from kafkacompat.protocol.errors import ErrorCode, KafkaError


def owned_by_id(topics: TopicSource, owned: Sequence[tuple[str, Sequence[int]]]) -> Assignment:
    """Partitions named by topic, keyed by topic id (unknown topics left out)."""
    named: dict[uuid.UUID, frozenset[int]] = {}
    for name, partitions in owned:
        meta = topics.by_name(name)
        if meta is not None:
            named[meta.topic_id] = named.get(meta.topic_id, frozenset()) | frozenset(partitions)
    return named


def assignment_bytes(topics: TopicSource, assignment: Assignment, version: int) -> bytes:
    """An assignment by topic id as the ConsumerProtocolAssignment a classic client reads."""
    named = sorted((meta.name, sorted(partitions)) for topic_id, partitions in assignment.items()
                   if partitions and (meta := topics.by_id(topic_id)) is not None)
    return encode_assignment(named, version)


class ClassicMembers:
    """The classic group APIs for the consumer groups of one :class:`ConsumerMembership`. Not thread-safe."""

    def __init__(self, consumer: ConsumerMembership, timers: Timers, clock: Callable[[], int]) -> None:
        self._consumer = consumer
        self._timers = timers
        self._clock = clock
        # Asked when a static classic member replaced a KIP-848 one; True when it made the group classic.
        self.downgrade_replaced: Callable[[ConsumerGroup, int], bool] | None = None

    # -- JoinGroup --------------------------------------------------------

    def join(self, group: ConsumerGroup, request: JoinRequest) -> JoinResult:
        try:
            return self._join(group, request)
        except KafkaError as exc:
            return JoinResult(exc.code, request.member_id)

    def _join(self, group: ConsumerGroup, request: JoinRequest) -> JoinResult:
        now = self._clock()
        member_id = request.member_id or str(uuid.uuid4())
        config = self._consumer.config
        if len(group.members) >= config.max_size and member_id not in group.members:
            raise KafkaError(ErrorCode.GROUP_MAX_SIZE_REACHED)
        if not self._supports(group, request):
            raise KafkaError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        if request.require_known_member_id and not request.member_id and request.group_instance_id is None:
            return JoinResult(ErrorCode.MEMBER_ID_REQUIRED, member_id)
        subscription = decode_subscription(request.protocols[0][1])
        if subscription is None:
            raise KafkaError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
        replaced_kip848_member = self._replaces_kip848_member(group, member_id, request.group_instance_id)
        member, joined = self._member(group, member_id, request.group_instance_id)
        epoch_moves = joined | self._update(member, request, subscription)
        topics = self._consumer.topics
        self._consumer.update(group, member, epoch_moves, owned_by_id(topics, subscription.owned), now)
        assert member.classic is not None
        result = JoinResult(ErrorCode.NONE, member.member_id, member.member_epoch, CONSUMER_PROTOCOL_TYPE,
                            member.classic.protocol_name, leader_id="")
        if replaced_kip848_member and self.downgrade_replaced is not None and self.downgrade_replaced(group, now):
            return result  # the group is classic now, and times its members itself
        key = (group.group_id, member.member_id)
        self._timers.cancel((ConsumerTimer.CLASSIC_JOIN, *key))
        self._consumer.schedule_session(group, member, now)
        self._timers.schedule((ConsumerTimer.CLASSIC_SYNC, *key), now + member.rebalance_timeout_ms)
        return result

    @staticmethod
    def _replaces_kip848_member(group: ConsumerGroup, member_id: str, instance_id: str | None) -> bool:
        """Whether this JoinGroup takes the static place of a member using the KIP-848 protocol."""
        holder_id = group.static_members.get(instance_id) if instance_id is not None else None
        return holder_id is not None and holder_id != member_id and group.members[holder_id].classic is None

    @staticmethod
    def _supports(group: ConsumerGroup, request: JoinRequest) -> bool:
        """Kafka's check: protocol type ``consumer``, and a protocol every classic member also offers."""
        if request.protocol_type != CONSUMER_PROTOCOL_TYPE or not request.protocols:
            return False
        offered = [{name for name, _ in m.classic.protocols} for m in group.members.values()
                   if m.classic is not None and m.member_id != request.member_id]
        return any(all(name in names for names in offered) for name, _ in request.protocols)

    def _member(self, group: ConsumerGroup, member_id: str, instance_id: str | None) -> tuple[ConsumerMember, bool]:
        """The joining member, and whether it is new; a static instance rejoining takes its old place."""
        if instance_id is not None:
            holder_id = group.static_members.get(instance_id)
            if holder_id is not None and holder_id != member_id:
                holder = group.members[holder_id]
                for kind in ConsumerTimer:
                    self._timers.cancel((kind, group.group_id, holder_id))
                member = group.replace_static_member(holder, member_id)
                member.member_epoch = member.previous_member_epoch = 0
                return member, False
        existing = group.members.get(member_id)
        if existing is not None:
            return existing, False
        member = ConsumerMember(member_id, instance_id=instance_id)
        group.add(member)
        return member, True

    @staticmethod
    def _update(member: ConsumerMember, request: JoinRequest, subscription: Subscription) -> bool:
        """Record the JoinGroup; True when the subscription changed (the group epoch moves)."""
        before = member.subscribed_topic_names
        member.instance_id = request.group_instance_id
        if subscription.rack_id is not None:
            member.rack_id = subscription.rack_id
        member.rebalance_timeout_ms = request.rebalance_timeout_ms
        member.subscribed_topic_names = tuple(sorted(set(subscription.topics)))
        member.client_id, member.client_host = request.client_id, request.client_host
        member.classic = ClassicMetadata(request.session_timeout_ms, tuple(request.protocols))
        return before != member.subscribed_topic_names

    # -- SyncGroup, Heartbeat, LeaveGroup ----------------------------------

    def _known(self, group: ConsumerGroup, member_id: str, instance_id: str | None) -> ConsumerMember:
        """The classic member a request names; UNKNOWN_MEMBER_ID / FENCED_INSTANCE_ID as Kafka answers."""
        if instance_id is not None:
            holder_id = group.static_members.get(instance_id)
            if holder_id is None:
                raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID)
            if member_id and holder_id != member_id:
                raise KafkaError(ErrorCode.FENCED_INSTANCE_ID)
            member_id = holder_id
        member = group.members.get(member_id)
        if member is None or member.classic is None:
            raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID)
        return member

    def _current(self, group: ConsumerGroup, generation_id: int, member_id: str,
                 instance_id: str | None) -> ConsumerMember:
        member = self._known(group, member_id, instance_id)
        if generation_id != member.member_epoch:
            raise KafkaError(ErrorCode.ILLEGAL_GENERATION)
        return member

    def _ask_to_rejoin(self, group: ConsumerGroup, member: ConsumerMember, now: int) -> None:
        join = (ConsumerTimer.CLASSIC_JOIN, group.group_id, member.member_id)
        if not self._timers.scheduled(join):
            self._timers.schedule(join, now + member.rebalance_timeout_ms)
        raise KafkaError(ErrorCode.REBALANCE_IN_PROGRESS)

    def sync(self, group: ConsumerGroup, generation_id: int, member_id: str, instance_id: str | None,
             protocol_type: str | None, protocol_name: str | None) -> SyncResult:
        now = self._clock()
        try:
            member = self._current(group, generation_id, member_id, instance_id)
            assert member.classic is not None
            if (protocol_type is not None and protocol_type != CONSUMER_PROTOCOL_TYPE) or (
                    protocol_name is not None and protocol_name != member.classic.protocol_name):
                raise KafkaError(ErrorCode.INCONSISTENT_GROUP_PROTOCOL)
            if group.group_epoch > member.member_epoch and member.state is not MemberState.UNREVOKED_PARTITIONS:
                self._ask_to_rejoin(group, member, now)
        except KafkaError as exc:
            return SyncResult(exc.code)
        self._timers.cancel((ConsumerTimer.CLASSIC_SYNC, group.group_id, member.member_id))
        self._consumer.schedule_session(group, member, now)
        subscription = decode_subscription(member.classic.protocols[0][1])
        version = subscription.version if subscription is not None else 0
        return SyncResult(ErrorCode.NONE, assignment_bytes(self._consumer.topics, member.assigned, version),
                          protocol_type, protocol_name)

    def heartbeat(self, group: ConsumerGroup, generation_id: int, member_id: str,
                  instance_id: str | None) -> ErrorCode:
        now = self._clock()
        try:
            member = self._current(group, generation_id, member_id, instance_id)
            self._consumer.schedule_session(group, member, now)
            if (member.member_epoch < group.group_epoch
                    or member.state is MemberState.UNREVOKED_PARTITIONS
                    or (member.state is MemberState.UNRELEASED_PARTITIONS
                        and not group.waiting_on_unreleased(member))):
                self._ask_to_rejoin(group, member, now)
        except KafkaError as exc:
            return exc.code
        return ErrorCode.NONE

    def leave(self, group: ConsumerGroup, members: Sequence[LeavingMember]) -> LeaveResult:
        now = self._clock()
        answers: list[tuple[LeavingMember, ErrorCode]] = []
        for leaving in members:
            try:
                member = self._known(group, leaving.member_id, leaving.group_instance_id)
            except KafkaError as exc:
                answers.append((leaving, exc.code))
                continue
            self._consumer.fence(group, member.member_id, now)
            answers.append((leaving, ErrorCode.NONE))
        return LeaveResult(ErrorCode.NONE, tuple(answers))
