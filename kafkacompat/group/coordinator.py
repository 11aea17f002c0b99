"""The group coordinator: classic and KIP-848 consumer groups and their committed offsets, sans I/O.

Group ids are one namespace: a group is either classic (JoinGroup/SyncGroup,
:mod:`.classic`) or a consumer group (ConsumerGroupHeartbeat, :mod:`.consumer`),
and both kinds share the committed offsets. An *empty* group of one kind
becomes the other kind when a member of the other protocol joins (offsets
kept), in both directions, as Kafka converts empty groups whatever
``group.consumer.migration.policy`` says. A consumer group with members takes
classic members too (JoinGroup, SyncGroup, Heartbeat, LeaveGroup are served
by :mod:`.consumer.classic_members`); a classic group with members is
upgraded by a ConsumerGroupHeartbeat, and a consumer group whose last KIP-848
member leaves is downgraded, as the policy allows (:mod:`.migration`).

Every method runs to completion synchronously; nothing here awaits or does
network I/O. JoinGroup and SyncGroup return a :class:`PendingResult` that may
be resolved later, by another member's request or by :meth:`tick`. Time comes
only from the injected clock (epoch milliseconds) and from ``tick(now_ms)``.

Driving the timers: the broker calls ``tick(now)`` once ``next_deadline_ms()``
has passed, and polls often (its ``run_group_timers`` loop wakes at least
every 100 ms), because any request may schedule an earlier deadline.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Collection, Mapping, Sequence

from kafkacompat.group.classic.consumer_protocol import CONSUMER_PROTOCOL_TYPE, encode_assignment, encode_subscription
from kafkacompat.group.classic.membership import JoinRequest, Membership, TimerKind
from kafkacompat.group.offsets import CommittedOffset, OffsetStore, write_or_error
from kafkacompat.group.results import (
    GroupDescription,
    GroupListing,
    JoinResult,
    LeaveResult,
    LeavingMember,
    MemberDescription,
    PendingResult,
    SyncResult,
    TopicPartition,
)
from kafkacompat.group.classic.state import Group, GroupState
from kafkacompat.group.consumer.classic_members import ClassicMembers
from kafkacompat.group.consumer.membership import (
    ConsumerGroupConfig,
    ConsumerMembership,
    ConsumerTimer,
    HeartbeatRequest,
    HeartbeatResult,
    TopicSource,
)
from kafkacompat.group.consumer.state import ConsumerGroup, ConsumerGroupState
from kafkacompat.group.migration import GroupMigration
from kafkacompat.group.timers import Timers
from kafkacompat.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from kafkacompat.config import BrokerConfig

__all__ = ["GroupCoordinator", "JoinRequest", "CommittedOffset", "TopicPartition", "LeavingMember"]

log = logging.getLogger("kafkacompat.group")

OFFSETS_DIR = "__consumer_offsets"
OFFSET_METADATA_MAX_BYTES = 4096
INT64_MAX = 2**63 - 1

CLASSIC_GROUP_TYPE, CONSUMER_GROUP_TYPE = "classic", "consumer"
_E, _C, _S = GroupState.EMPTY, GroupState.COMPLETING_REBALANCE, GroupState.STABLE
_RETENTION_TIMER = (TimerKind.RETENTION,)


class _NoTopics:
    """The topic source of a coordinator built without a log (unit tests of the classic protocol)."""

    def by_name(self, name: str) -> None:
        return None

    def by_id(self, topic_id: object) -> None:
        return None

    def names(self) -> list[str]:
        return []


class GroupCoordinator:
    """All consumer groups of this broker and their committed offsets.

    Owns the group map, the timers, the rebalance protocol
    (:class:`Membership`) and the :class:`OffsetStore` under
    ``<data_dir>/__consumer_offsets/``. Group snapshots (members, generation,
    assignments) are stored whenever a generation becomes Stable or Empty, so
    after a restart members keep their ids, generation and assignments, as
    after a Kafka coordinator failover. Not thread-safe and not reentrant:
    the broker calls it from one Trio task at a time (it never awaits).
    """

    def __init__(
        self,
        data_dir: Path,
        clock: Callable[[], int],
        *,
        initial_rebalance_delay_ms: int = 0,
        min_session_timeout_ms: int = 6000,
        max_session_timeout_ms: int = 1800000,
        offsets_retention_ms: int = 7 * 24 * 3600 * 1000,
        offsets_retention_check_interval_ms: int = 600_000,
        topics: TopicSource | None = None,
        consumer_config: ConsumerGroupConfig = ConsumerGroupConfig(),
    ) -> None:
        self._clock = clock
        self._offsets_retention_ms = offsets_retention_ms
        self._retention_check_interval_ms = offsets_retention_check_interval_ms
        self._timers = Timers()
        self._groups: dict[str, Group] = {}
        self._store = OffsetStore(Path(data_dir) / OFFSETS_DIR)
        self._membership = Membership(
            self._groups,
            self._timers,
            self._store,
            clock,
            initial_rebalance_delay_ms=initial_rebalance_delay_ms,
            min_session_timeout_ms=min_session_timeout_ms,
            max_session_timeout_ms=max_session_timeout_ms,
        )
        self._consumer_groups: dict[str, ConsumerGroup] = {}
        self._consumer = ConsumerMembership(
            self._consumer_groups, self._timers, self._store_consumer_group, clock,
            topics if topics is not None else _NoTopics(), consumer_config,
        )
        self._classic_members = ClassicMembers(self._consumer, self._timers, clock)
        self._migration = GroupMigration(self._groups, self._consumer_groups, self._membership, self._consumer,
                                         self._store_consumer_group)
        self._consumer.downgrade = self._migration.downgrade
        self._classic_members.downgrade_replaced = self._migration.downgrade_replaced
        now = clock()
        for group_id in sorted(self._store.group_ids()):
            state = self._store.consumer_group(group_id)
            if state is not None:
                consumer_group = self._consumer_groups[group_id] = ConsumerGroup.from_json(json.loads(state))
                self._consumer.restore_timers(consumer_group, now)
                continue
            snapshot = self._store.snapshot(group_id)
            group = Group.restore(snapshot) if snapshot is not None else Group(group_id, now)
            self._groups[group_id] = group
            for member_id in group.members:
                self._membership.touch(group, member_id, now)
        self._timers.schedule(_RETENTION_TIMER, now + self._retention_check_interval_ms)

    @classmethod
    def from_config(cls, data_dir: Path, clock: Callable[[], int], topics: TopicSource,
                    config: BrokerConfig) -> GroupCoordinator:
        """The coordinator a broker (or a cluster's brokers) runs, with its journal in ``data_dir``."""
        return cls(
            data_dir, clock,
            initial_rebalance_delay_ms=config.get_int("group.initial.rebalance.delay.ms"),
            min_session_timeout_ms=config.get_int("group.min.session.timeout.ms"),
            max_session_timeout_ms=config.get_int("group.max.session.timeout.ms"),
            offsets_retention_ms=config.get_int("offsets.retention.minutes") * 60_000,
            offsets_retention_check_interval_ms=config.get_int("offsets.retention.check.interval.ms"),
            topics=topics,
            consumer_config=ConsumerGroupConfig.from_broker_config(config),
        )

    def close(self) -> None:
        self._store.close()

    # -- timers -----------------------------------------------------------

    def next_deadline_ms(self) -> int | None:
        return self._timers.next_deadline()

    def tick(self, now_ms: int) -> None:
        """Fire every timer due at or before ``now_ms``, earliest first."""
        while (key := self._timers.pop_due(now_ms)) is not None:
            if key == _RETENTION_TIMER:
                self._expire_offsets(now_ms)
                self._timers.schedule(_RETENTION_TIMER, now_ms + self._retention_check_interval_ms)
            elif isinstance(key[0], ConsumerTimer):  # type: ignore[index]
                self._consumer.on_timer(key, now_ms)
            else:
                self._membership.on_timer(key, now_ms)

    # -- the rebalance protocol (see membership.py) ------------------------

    def join_group(self, request: JoinRequest) -> PendingResult[JoinResult]:
        consumer_group = self._consumer_groups.get(request.group_id)
        if consumer_group is not None:
            if consumer_group.members:
                return PendingResult.resolved(self._classic_members.join(consumer_group, request))
            self._forget_consumer_group(consumer_group)  # an empty consumer group becomes classic
        return self._membership.join_group(request)

    # -- the KIP-848 consumer protocol (see consumer/membership.py) ----------

    def consumer_group_heartbeat(self, request: HeartbeatRequest) -> HeartbeatResult:
        classic = self._groups.get(request.group_id)
        if classic is not None and request.member_epoch == 0:
            if not classic.members:
                del self._groups[request.group_id]  # an empty classic group becomes a consumer group
                self._membership.forget(classic)
            elif (invalid := self._consumer.refusal(request)) is not None:
                return invalid  # a request Kafka rejects converts nothing
            elif (refusal := self._migration.upgrade(classic, self._clock())) is not None:
                return HeartbeatResult(ErrorCode.GROUP_ID_NOT_FOUND, refusal)
        elif classic is not None:
            return HeartbeatResult(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {request.group_id} is not a consumer group.")
        return self._consumer.heartbeat(request)

    def consumer_group(self, group_id: str) -> ConsumerGroup | None:
        return self._consumer_groups.get(group_id)

    def preferred_assignor(self, group: ConsumerGroup) -> str:
        return self._consumer.preferred_assignor(group)

    def _store_consumer_group(self, group: ConsumerGroup) -> ErrorCode:
        state = json.dumps(group.to_json(), separators=(",", ":")).encode()
        return write_or_error(lambda: self._store.store_consumer_group(group.group_id, state))

    def _forget_consumer_group(self, group: ConsumerGroup) -> None:
        group.transition_to(ConsumerGroupState.DEAD, self._clock())
        del self._consumer_groups[group.group_id]
        self._consumer.forget(group)

    def offset_fetch_error(self, group_id: str, member_id: str | None, member_epoch: int) -> ErrorCode | None:
        """OffsetFetch v9+ naming a member: Kafka checks it against a consumer group."""
        group = self._consumer_groups.get(group_id)
        if group is None:
            return None
        return self._consumer.offset_request_error(group, member_id, member_epoch)

    def sync_group(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        assignments: Mapping[str, bytes],
        *,
        group_instance_id: str | None = None,
        protocol_type: str | None = None,
        protocol_name: str | None = None,
    ) -> PendingResult[SyncResult]:
        consumer_group = self._consumer_groups.get(group_id)
        if consumer_group is not None:
            return PendingResult.resolved(self._classic_members.sync(
                consumer_group, generation_id, member_id, group_instance_id, protocol_type, protocol_name))
        return self._membership.sync_group(
            group_id,
            generation_id,
            member_id,
            assignments,
            group_instance_id=group_instance_id,
            protocol_type=protocol_type,
            protocol_name=protocol_name,
        )

    def heartbeat(
        self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None = None
    ) -> ErrorCode:
        consumer_group = self._consumer_groups.get(group_id)
        if consumer_group is not None:
            return self._classic_members.heartbeat(consumer_group, generation_id, member_id, group_instance_id)
        return self._membership.heartbeat(group_id, generation_id, member_id, group_instance_id)

    def leave_group(self, group_id: str, members: Sequence[LeavingMember]) -> LeaveResult:
        consumer_group = self._consumer_groups.get(group_id)
        if consumer_group is not None:
            return self._classic_members.leave(consumer_group, members)
        return self._membership.leave_group(group_id, members)

    # -- offsets ----------------------------------------------------------

    def commit_offsets(
        self,
        group_id: str,
        generation_id: int,
        member_id: str,
        offsets: Mapping[TopicPartition, CommittedOffset],
        *,
        group_instance_id: str | None = None,
        retention_time_ms: int = -1,
        version: int = 9,
    ) -> dict[TopicPartition, ErrorCode]:
        """Store offsets; an entry's ``commit_timestamp_ms`` of -1 means now (only v1 sends one).

        ``retention_time_ms`` (v2-4, -1 for the broker default) gives the
        offsets an explicit expiry time.
        """
        now = self._clock()
        consumer_group = self._consumer_groups.get(group_id)
        if consumer_group is not None:
            if generation_id < 0 and not consumer_group.members:
                error = None  # a consumer outside group management (assign()) or an admin: any member id
            else:
                error = self._consumer.offset_request_error(consumer_group, member_id, generation_id)
                if error is None and not member_id:
                    error = ErrorCode.UNKNOWN_MEMBER_ID  # only members commit for a group with members
            member = consumer_group.members.get(member_id)
            if error is None and member is not None and member.classic is None and version < 9:
                error = ErrorCode.UNSUPPORTED_VERSION  # a KIP-848 member commits with v9+
            return self._store_offsets(group_id, offsets, now, retention_time_ms, error)
        group = self._groups.get(group_id)
        if group is None:
            if generation_id >= 0:  # v9 on says so; older versions kept ILLEGAL_GENERATION, as Kafka does
                return dict.fromkeys(offsets, ErrorCode.GROUP_ID_NOT_FOUND if version >= 9
                                     else ErrorCode.ILLEGAL_GENERATION)
            group = self._groups[group_id] = Group(group_id, now)
        error = self._commit_error(group, generation_id, member_id, group_instance_id)
        if error is not None:
            return dict.fromkeys(offsets, error)
        if member_id in group.members:
            self._membership.touch(group, member_id, now)
        return self._store_offsets(group_id, offsets, now, retention_time_ms, error)

    def _store_offsets(
        self,
        group_id: str,
        offsets: Mapping[TopicPartition, CommittedOffset],
        now: int,
        retention_time_ms: int,
        error: ErrorCode | None,
    ) -> dict[TopicPartition, ErrorCode]:
        if error is not None:
            return dict.fromkeys(offsets, error)
        # A retention past the end of time never expires (Kafka's long would wrap).
        expire = min(now + retention_time_ms, INT64_MAX) if retention_time_ms >= 0 else None
        results: dict[TopicPartition, ErrorCode] = {}
        accepted: dict[TopicPartition, CommittedOffset] = {}
        for tp, entry in offsets.items():
            if len(entry.metadata.encode()) > OFFSET_METADATA_MAX_BYTES:
                results[tp] = ErrorCode.OFFSET_METADATA_TOO_LARGE
                continue
            results[tp] = ErrorCode.NONE
            accepted[tp] = CommittedOffset(
                offset=entry.offset,
                leader_epoch=max(entry.leader_epoch, -1),
                metadata=entry.metadata,
                commit_timestamp_ms=now if entry.commit_timestamp_ms < 0 else entry.commit_timestamp_ms,
                expire_timestamp_ms=expire,
            )
        error = write_or_error(lambda: self._store.commit(group_id, accepted))
        if error is not ErrorCode.NONE:
            results.update(dict.fromkeys(accepted, error))
        return results

    def check_transactional_commit(self, group_id: str, generation_id: int, member_id: str,
                                   group_instance_id: str | None) -> ErrorCode | None:
        """TxnOffsetCommit v3+ (KIP-447): the committing member must be current, as for OffsetCommit."""
        group = self._groups.get(group_id)
        if group is None:
            return None
        return self._commit_error(group, generation_id, member_id, group_instance_id)

    def commit_transactional_offsets(self, group_id: str,
                                     offsets: Mapping[TopicPartition, CommittedOffset]) -> ErrorCode:
        """Offsets a committed transaction staged: stored as its marker is written, whoever is a member now."""
        now = self._clock()
        if group_id not in self._groups:
            self._groups[group_id] = Group(group_id, now)
        stored = {tp: CommittedOffset(entry.offset, max(entry.leader_epoch, -1), entry.metadata, now)
                  for tp, entry in offsets.items()}
        return write_or_error(lambda: self._store.commit(group_id, stored))

    @staticmethod
    def _commit_error(
        group: Group, generation_id: int, member_id: str, group_instance_id: str | None
    ) -> ErrorCode | None:
        if generation_id < 0 and group.state is _E:
            return None  # outside group management (assign()) or an admin, whatever member id it sends
        if generation_id >= 0 or member_id or group_instance_id is not None:
            error = group.validate_member(member_id, group_instance_id)
            if error is not None:
                return error
            if generation_id != group.generation_id:
                return ErrorCode.ILLEGAL_GENERATION
        else:
            return ErrorCode.UNKNOWN_MEMBER_ID  # only members may commit for a group that has members
        if group.state is _C:
            # A valid member that has not got its assignment yet: let it finish the rebalance.
            return ErrorCode.REBALANCE_IN_PROGRESS
        return None

    def fetch_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition] | None
    ) -> dict[TopicPartition, CommittedOffset | None]:
        """Committed offsets (None where nothing is committed); ``partitions=None`` means all."""
        committed = self._store.offsets(group_id)
        if partitions is None:
            return dict(sorted(committed.items()))
        return {tp: committed.get(tp) for tp in partitions}

    def delete_offsets(
        self, group_id: str, partitions: Sequence[TopicPartition]
    ) -> tuple[ErrorCode, dict[TopicPartition, ErrorCode]]:
        """OffsetDelete: any partition of an Empty group, unsubscribed topics of a live consumer group."""
        group = self._groups.get(group_id)
        consumer_group = self._consumer_groups.get(group_id)
        if group is None and consumer_group is None:
            return ErrorCode.GROUP_ID_NOT_FOUND, {}
        results: dict[TopicPartition, ErrorCode] = {}
        if (group.state if group is not None else consumer_group.state) in (_E, ConsumerGroupState.EMPTY):
            eligible = list(partitions)
        elif consumer_group is not None or group.protocol_type == CONSUMER_PROTOCOL_TYPE:
            subscribed = self._subscribed(group_id)
            eligible = []
            for tp in partitions:
                if subscribed is None or tp.topic in subscribed:
                    results[tp] = ErrorCode.GROUP_SUBSCRIBED_TO_TOPIC
                else:
                    eligible.append(tp)
        else:
            return ErrorCode.NON_EMPTY_GROUP, {}
        error = write_or_error(lambda: self._store.delete_offsets(group_id, eligible))
        results.update(dict.fromkeys(eligible, error))
        return ErrorCode.NONE, results

    def _subscribed(self, group_id: str) -> frozenset[str] | None:
        """Topics a live group reads: a consumer group's resolved subscription, or the classic members' lists."""
        consumer_group = self._consumer_groups.get(group_id)
        if consumer_group is not None:
            return frozenset(name for name, _, _ in consumer_group.subscription_metadata)
        return self._groups[group_id].subscribed_topics()

    def _expire_offsets(self, now: int) -> None:
        """Kafka's retention rules; an Empty group left without offsets is removed."""
        for group in list(self._groups.values()):
            committed = self._store.offsets(group.group_id)
            expired = [tp for tp, entry in committed.items() if self._is_expired(group, tp, entry, now)]
            if expired:
                log.info("group %s: %d offsets expired", group.group_id, len(expired))
                write_or_error(lambda: self._store.delete_offsets(group.group_id, expired))
            if group.state is _E and not self._store.offsets(group.group_id):
                self._remove_group(group)
        for consumer_group in list(self._consumer_groups.values()):
            if consumer_group.state is not ConsumerGroupState.EMPTY:
                continue
            committed = self._store.offsets(consumer_group.group_id)
            expired = [tp for tp, entry in committed.items()
                       if (now >= entry.expire_timestamp_ms if entry.expire_timestamp_ms is not None
                           else now - consumer_group.state_timestamp_ms >= self._offsets_retention_ms)]
            if expired:
                write_or_error(lambda: self._store.delete_offsets(consumer_group.group_id, expired))
            if not self._store.offsets(consumer_group.group_id):
                self._remove_group(consumer_group)

    def _is_expired(self, group: Group, tp: TopicPartition, entry: CommittedOffset, now: int) -> bool:
        if group.protocol_type is None:
            base = entry.commit_timestamp_ms  # simple consumer: each offset ages on its own
        elif group.state is _E:
            base = group.state_timestamp_ms  # retention starts when the last member left
        elif group.state is _S and group.protocol_type == CONSUMER_PROTOCOL_TYPE:
            subscribed = group.subscribed_topics()
            if subscribed is None or tp.topic in subscribed:
                return False
            base = entry.commit_timestamp_ms  # a live group's abandoned topics
        else:
            return False
        if entry.expire_timestamp_ms is not None:
            return now >= entry.expire_timestamp_ms
        return now - base >= self._offsets_retention_ms

    # -- admin ------------------------------------------------------------

    def describe_group(self, group_id: str) -> GroupDescription:
        """Unknown groups describe as Dead with no members, as Kafka answers DescribeGroups v0-5."""
        consumer_group = self._consumer_groups.get(group_id)
        if consumer_group is not None:
            return self._describe_consumer_group(consumer_group)
        group = self._groups.get(group_id)
        if group is None:
            return GroupDescription(group_id, GroupState.DEAD, "", "", ())
        protocol = group.protocol_name if group.state is _S else None
        members = tuple(
            MemberDescription(
                member_id=m.member_id,
                group_instance_id=m.group_instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                metadata=m.metadata(protocol) if protocol else b"",
                assignment=m.assignment if protocol else b"",
            )
            for m in group.members.values()
        )
        return GroupDescription(group_id, group.state, group.protocol_type or "", protocol or "", members)

    def _describe_consumer_group(self, group: ConsumerGroup) -> GroupDescription:
        """A consumer group in DescribeGroups' classic shape, as Kafka shows one: consumer-protocol bytes."""
        topics = self._consumer.topics
        def named(assignment: Mapping) -> list[tuple[str, list[int]]]:
            return sorted((meta.name, sorted(p)) for topic_id, p in assignment.items()
                          if (meta := topics.by_id(topic_id)) is not None)
        members = tuple(
            MemberDescription(
                member_id=m.member_id,
                group_instance_id=m.instance_id,
                client_id=m.client_id,
                client_host=m.client_host,
                # A classic member shows the subscription it joined with, a KIP-848 member one made for it.
                metadata=m.classic.protocols[0][1] if m.classic is not None
                else encode_subscription(list(m.subscribed_topic_names), named(m.assigned), m.rack_id),
                assignment=encode_assignment(named(m.assigned)),
            )
            for m in group.members.values()
        )
        return GroupDescription(group.group_id, group.state, CONSUMER_PROTOCOL_TYPE,
                                self._consumer.preferred_assignor(group), members)

    @property
    def rebalances(self) -> int:
        """Rebalances since the broker started: classic generations plus consumer-group target assignments."""
        return self._membership.rebalances + self._consumer.assignments

    def list_groups(self, states_filter: Collection[str] = ()) -> list[GroupListing]:
        """Every group, or those whose state name matches the filter (case-insensitively)."""
        wanted = {state.lower() for state in states_filter}
        listed = [GroupListing(group.group_id, group.protocol_type or "", group.state, CLASSIC_GROUP_TYPE)
                  for group in self._groups.values()]
        listed += [GroupListing(group.group_id, CONSUMER_PROTOCOL_TYPE, group.state, CONSUMER_GROUP_TYPE)
                   for group in self._consumer_groups.values()]
        return [g for g in listed if not wanted or g.state.value.lower() in wanted]

    def delete_groups(self, group_ids: Sequence[str]) -> dict[str, ErrorCode]:
        """Delete Empty groups with their offsets; others get GROUP_ID_NOT_FOUND or NON_EMPTY_GROUP."""
        results: dict[str, ErrorCode] = {}
        for group_id in group_ids:
            group = self._groups.get(group_id) or self._consumer_groups.get(group_id)
            if group is None:
                results[group_id] = ErrorCode.GROUP_ID_NOT_FOUND
            elif group.state not in (_E, ConsumerGroupState.EMPTY):
                results[group_id] = ErrorCode.NON_EMPTY_GROUP
            else:
                results[group_id] = self._remove_group(group)
        return results

    def _remove_group(self, group: Group | ConsumerGroup) -> ErrorCode:
        error = write_or_error(lambda: self._store.delete_group(group.group_id))
        if error is ErrorCode.NONE and isinstance(group, ConsumerGroup):
            self._forget_consumer_group(group)
        elif error is ErrorCode.NONE:
            group.transition_to(GroupState.DEAD, self._clock())
            del self._groups[group.group_id]
            self._membership.forget(group)
        return error
