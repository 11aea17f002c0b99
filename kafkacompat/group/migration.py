"""Online migration between classic and KIP-848 consumer groups, as ``group.consumer.migration.policy`` allows.

Upgrade (policy ``upgrade`` or ``bidirectional``): a ConsumerGroupHeartbeat
joining a classic group with members whose protocol type is ``consumer``
turns it into a consumer group. Each classic member becomes a *classic
member* of it, Stable at an epoch equal to the classic generation, owning
what its last SyncGroup gave it, which is also its target; the group epoch
and target epoch are the generation. Waiting JoinGroups and SyncGroups are
answered REBALANCE_IN_PROGRESS. The joining member then moves the group
epoch, the assignor computes a new target, and the classic members are asked
to rejoin (:mod:`.consumer.classic_members`), revoking before anyone else gets
their partitions. Refused (GROUP_ID_NOT_FOUND, as Kafka) when the policy
forbids it, when the group's protocol type is not ``consumer``, when it has
more members than ``group.consumer.max.size``, or when a subscription does
not parse.

Downgrade (policy ``downgrade`` or ``bidirectional``): when the last member
using the KIP-848 protocol leaves or is fenced and classic members remain,
the group becomes a classic group instead of removing it: Stable at a
generation equal to the group epoch, each member's assignment its target
encoded in its own subscription version, the protocol chosen by the usual
vote; then a rebalance starts, so the classic clients rejoin with a leader of
their own. A static classic member that takes the place of the last KIP-848
member downgrades the group the same way, without the rebalance. Under other
policies the group stays a consumer group with only classic members.

Committed offsets belong to the group id and are untouched in both
directions. The converted group is stored at once (a consumer-group record
replaces a classic snapshot and back), so a restart finds the new kind.
"""

from __future__ import annotations

import logging
from typing import Callable

from kafkacompat.group.classic.consumer_protocol import CONSUMER_PROTOCOL_TYPE, assigned_partitions, decode_subscription
from kafkacompat.group.classic.membership import Membership
from kafkacompat.group.classic.state import Group, GroupState, Member
from kafkacompat.group.consumer.classic_members import assignment_bytes, owned_by_id
from kafkacompat.group.consumer.membership import ConsumerMembership
from kafkacompat.group.consumer.state import ClassicMetadata, ConsumerGroup, ConsumerGroupState, ConsumerMember
from kafkacompat.group.results import JoinResult, SyncResult
from kafkacompat.protocol.errors import ErrorCode

log = logging.getLogger("kafkacompat.group")


class GroupMigration:
    """Converts groups between the coordinator's two maps; owns no state of its own. Not thread-safe."""

    def __init__(
        self,
        classic_groups: dict[str, Group],
        consumer_groups: dict[str, ConsumerGroup],
        membership: Membership,
        consumer: ConsumerMembership,
        store_consumer_group: Callable[[ConsumerGroup], ErrorCode],
    ) -> None:
        self._classic_groups = classic_groups
        self._consumer_groups = consumer_groups
        self._membership = membership
        self._consumer = consumer
        self._store_consumer_group = store_consumer_group

    # -- classic to consumer -----------------------------------------------

    def upgrade(self, classic: Group, now: int) -> str | None:
        """Turn a classic group with members into a consumer group; the reason when that is refused."""
        config = self._consumer.config
        if not config.upgrade_enabled:
            return f"Cannot upgrade classic group {classic.group_id} to consumer group: the online upgrade is disabled."
        if classic.protocol_type != CONSUMER_PROTOCOL_TYPE:
            return (f"Cannot upgrade classic group {classic.group_id} to consumer group: "
                    "it does not use the consumer embedded protocol.")
        if len(classic.members) > config.max_size:
            return (f"Cannot upgrade classic group {classic.group_id} to consumer group: "
                    "its size exceeds the consumer group maximum size.")
        converted = self._consumer_group_from(classic, now)
        if converted is None:
            return (f"Cannot upgrade the classic group {classic.group_id} to consumer group because the "
                    "embedded consumer protocol is malformed.")
        for member in classic.members.values():
            member.resolve_join(JoinResult(ErrorCode.REBALANCE_IN_PROGRESS, member.member_id))
            member.resolve_sync(SyncResult(ErrorCode.REBALANCE_IN_PROGRESS))
        self._membership.release(classic)
        classic.transition_to(GroupState.DEAD, now)
        del self._classic_groups[classic.group_id]
        self._consumer_groups[classic.group_id] = converted
        for member in converted.members.values():
            self._consumer.schedule_session(converted, member, now)
        self._store_consumer_group(converted)
        log.info("group %s: upgraded from classic to consumer with %d members", classic.group_id,
                 len(converted.members))
        return None

    def _consumer_group_from(self, classic: Group, now: int) -> ConsumerGroup | None:
        """Kafka's fromClassicGroup: members Stable at the generation, owning (and targeted at) their assignment."""
        group = ConsumerGroup(classic.group_id, now)
        group.group_epoch = group.assignment_epoch = classic.generation_id
        topics = self._consumer.topics
        for m in classic.members.values():
            metadata = m.metadata(classic.protocol_name) if classic.protocol_name else m.protocols[0][1]
            subscription = decode_subscription(metadata)
            if subscription is None:
                return None
            by_topic: dict[str, list[int]] = {}
            for topic, partition in assigned_partitions(m.assignment):
                by_topic.setdefault(topic, []).append(partition)
            assigned = owned_by_id(topics, list(by_topic.items()))
            member = ConsumerMember(
                m.member_id, instance_id=m.group_instance_id, rack_id=subscription.rack_id, client_id=m.client_id,
                client_host=m.client_host, rebalance_timeout_ms=m.rebalance_timeout_ms,
                subscribed_topic_names=tuple(sorted(set(subscription.topics))),
                member_epoch=classic.generation_id, previous_member_epoch=classic.generation_id, assigned=assigned,
                classic=ClassicMetadata(m.session_timeout_ms, tuple(m.protocols)),
            )
            group.add(member)
            group.target[member.member_id] = assigned
        group.settle(now)
        return group

    # -- consumer to classic -----------------------------------------------

    def downgrade(self, group: ConsumerGroup, leaving_id: str, now: int) -> bool:
        """Instead of fencing the last KIP-848 member, turn the group classic; False when that does not apply."""
        leaving = group.members.get(leaving_id)
        remaining = [m for m in group.members.values() if m.member_id != leaving_id]
        if leaving is None or leaving.classic is not None or not remaining:
            return False
        if any(m.classic is None for m in remaining):
            return False
        return self._downgrade(group, remaining, now, rebalance=True)

    def downgrade_replaced(self, group: ConsumerGroup, now: int) -> bool:
        """A static classic member took the last KIP-848 member's place: classic at once, no rebalance."""
        if any(m.classic is None for m in group.members.values()):
            return False
        return self._downgrade(group, list(group.members.values()), now, rebalance=False)

    def _downgrade(self, group: ConsumerGroup, remaining: list[ConsumerMember], now: int, *, rebalance: bool) -> bool:
        if not self._consumer.config.downgrade_enabled:
            log.info("group %s: the online downgrade is disabled; it stays a consumer group", group.group_id)
            return False
        classic = self._classic_group_from(group, remaining, now)
        self._consumer.forget(group)
        group.transition_to(ConsumerGroupState.DEAD, now)
        del self._consumer_groups[group.group_id]
        self._classic_groups[group.group_id] = classic
        self._membership.adopt(classic, now, rebalance=rebalance)
        log.info("group %s: downgraded from consumer to classic with %d members", group.group_id,
                 len(classic.members))
        return True

    def _classic_group_from(self, group: ConsumerGroup, remaining: list[ConsumerMember], now: int) -> Group:
        """Kafka's fromConsumerGroup: Stable at the group epoch, each member assigned its target."""
        classic = Group(group.group_id, now)
        classic.generation_id = group.group_epoch
        for m in remaining:
            assert m.classic is not None
            classic.add(Member(m.member_id, m.instance_id, m.client_id, m.client_host, m.rebalance_timeout_ms,
                               m.classic.session_timeout_ms, list(m.classic.protocols)), CONSUMER_PROTOCOL_TYPE)
        classic.protocol_name = classic.select_protocol()
        topics = self._consumer.topics
        for m in classic.members.values():
            subscription = decode_subscription(m.metadata(classic.protocol_name))
            version = subscription.version if subscription is not None else 0
            m.assignment = assignment_bytes(topics, group.target.get(m.member_id, {}), version)
        classic.state = GroupState.STABLE  # built whole, as a restored group is
        return classic

