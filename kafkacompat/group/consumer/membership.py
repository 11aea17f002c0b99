"""ConsumerGroupHeartbeat for KIP-848 groups: joins, leaves, fencing, assignment and timers.

The rules of reconciliation are in :mod:`.state`; this module validates each
heartbeat as Kafka does, decides when the group epoch moves, runs the
assignor, and keeps the session and revocation timers. Every call runs to
completion; nothing here waits.

Session: every heartbeat restarts a member's session timer
(``group.consumer.session.timeout.ms``); when it fires the member is fenced:
removed, its partitions freed, the group epoch bumped. A member that must
revoke partitions and does not within its rebalance timeout is fenced too.
A static member (instance id) leaving with epoch -2 keeps its place and
assignment until its session runs out; rejoining with epoch 0 under a new
member id takes them over without a new assignment.

Regular expressions are resolved after the heartbeat that brings a new one,
as Kafka's coordinator resolves them asynchronously: until then the regex
adds no topics to the target (a member subscribing to a regex and a name gets
the named topic first); a REGEX timer due at once then resolves it, moves the
group epoch and reassigns, and members see the matches at their next
heartbeat. Once resolved, a regex follows topic changes with the group's
metadata refresh. After a restart the members' regexes count as resolved.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, NamedTuple, Protocol, Sequence

from kafkacompat.config import BrokerConfig, ConfigError
from kafkacompat.group.consumer.assignors import ASSIGNORS, Assignment
from kafkacompat.group.consumer.regex import matching_topics, translate
from kafkacompat.group.consumer.state import ConsumerGroup, ConsumerMember, MemberState
from kafkacompat.group.timers import Timers
from kafkacompat.protocol.errors import ErrorCode, KafkaError

LEAVE_GROUP_EPOCH = -1
LEAVE_GROUP_STATIC_EPOCH = -2
# A group re-reads the topics it subscribes to at most this often (new, deleted, grown topics).
METADATA_REFRESH_MS = 1000


class ConsumerTimer(enum.Enum):
    """Timer keys are (kind, group_id, member_id)."""

    SESSION = "consumer-session"
    REVOCATION = "consumer-revocation"
    CLASSIC_JOIN = "consumer-classic-join"  # a classic member told to rejoin has not yet
    CLASSIC_SYNC = "consumer-classic-sync"  # a classic member answered at JoinGroup has not sent SyncGroup
    REGEX = "consumer-regex"  # (REGEX, group_id, regex): a new regex is due to be resolved


class TopicMeta(NamedTuple):
    name: str
    topic_id: uuid.UUID
    partitions: int


class TopicSource(Protocol):
    """What the coordinator may know about topics: the broker's log manager, seen through three lookups."""

    def by_name(self, name: str) -> TopicMeta | None: ...

    def by_id(self, topic_id: uuid.UUID) -> TopicMeta | None: ...

    def names(self) -> list[str]: ...


MIGRATION_POLICIES = ("disabled", "upgrade", "downgrade", "bidirectional")
UPGRADE_POLICIES = frozenset({"upgrade", "bidirectional"})
DOWNGRADE_POLICIES = frozenset({"downgrade", "bidirectional"})


@dataclass(frozen=True)
class ConsumerGroupConfig:
    heartbeat_interval_ms: int = 5000
    session_timeout_ms: int = 45000
    max_size: int = 2**31 - 1
    assignors: tuple[str, ...] = ("uniform", "range")
    migration_policy: str = "bidirectional"

    @property
    def upgrade_enabled(self) -> bool:
        return self.migration_policy in UPGRADE_POLICIES

    @property
    def downgrade_enabled(self) -> bool:
        return self.migration_policy in DOWNGRADE_POLICIES

    @classmethod
    def from_broker_config(cls, config: BrokerConfig) -> ConsumerGroupConfig:
        """The ``group.consumer.*`` configs, checked as Kafka checks them at start-up."""
        def bounded(name: str) -> int:
            value = config.get_int(f"group.consumer.{name}.ms")
            low, high = (config.get_int(f"group.consumer.{bound}.{name}.ms") for bound in ("min", "max"))
            if not low <= value <= high:
                raise ConfigError(f"group.consumer.{name}.ms must be between {low} and {high}, got {value}")
            return value

        heartbeat, session = bounded("heartbeat.interval"), bounded("session.timeout")
        if heartbeat >= session:
            raise ConfigError("group.consumer.heartbeat.interval.ms must be less than "
                              "group.consumer.session.timeout.ms")
        assignors = tuple(name.strip() for name in config.get("group.consumer.assignors").split(",") if name.strip())
        unknown = [name for name in assignors if name not in ASSIGNORS]
        if unknown or not assignors:
            raise ConfigError(f"group.consumer.assignors: unknown assignor(s) {unknown}; known: {sorted(ASSIGNORS)}")
        policy = config.get("group.consumer.migration.policy").lower()
        if policy not in MIGRATION_POLICIES:
            raise ConfigError(f"group.consumer.migration.policy must be one of {', '.join(MIGRATION_POLICIES)}")
        return cls(heartbeat, session, config.get_int("group.consumer.max.size"), assignors, policy)


class LogTopics:
    """A :class:`TopicSource` over the broker's log manager (anything with ``topic``, ``topic_by_id``, ``topics``)."""

    def __init__(self, log_manager: Any) -> None:
        self._log = log_manager

    @staticmethod
    def _meta(topic: Any) -> TopicMeta | None:
        return None if topic is None else TopicMeta(topic.name, topic.topic_id, len(topic.partitions))

    def by_name(self, name: str) -> TopicMeta | None:
        return self._meta(self._log.topic(name))

    def by_id(self, topic_id: uuid.UUID) -> TopicMeta | None:
        return self._meta(self._log.topic_by_id(topic_id))

    def names(self) -> list[str]:
        return [topic.name for topic in self._log.topics()]


@dataclass(frozen=True)
class HeartbeatRequest:
    """A ConsumerGroupHeartbeat as the coordinator needs it; None means "unchanged since the last one"."""

    group_id: str
    member_id: str
    member_epoch: int
    instance_id: str | None = None
    rack_id: str | None = None
    rebalance_timeout_ms: int = -1
    subscribed_topic_names: Sequence[str] | None = None
    subscribed_topic_regex: str | None = None
    server_assignor: str | None = None
    owned: Assignment | None = None
    client_id: str = ""
    client_host: str = ""
    version: int = 1
    # Which topics the member may DESCRIBE (its principal's ACLs); regex matches are limited to them.
    may_describe: Callable[[str], bool] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class HeartbeatResult:
    error: ErrorCode
    message: str | None = None
    member_id: str | None = None
    member_epoch: int = 0
    heartbeat_interval_ms: int = 0
    assignment: Assignment | None = None


class ConsumerMembership:
    """The heartbeat protocol over the consumer groups the coordinator owns.

    ``groups`` is the coordinator's map of consumer groups; ``store`` persists
    one group (called after every change). ``downgrade``, when set, is asked
    first whenever a member is fenced, and answers True when it turned the
    group into a classic group instead (KIP-848's online downgrade). Not safe
    for concurrent use.
    """

    def __init__(
        self,
        groups: dict[str, ConsumerGroup],
        timers: Timers,
        store: Callable[[ConsumerGroup], ErrorCode],
        clock: Callable[[], int],
        topics: TopicSource,
        config: ConsumerGroupConfig,
    ) -> None:
        self._groups = groups
        self._timers = timers
        self._store = store
        self._clock = clock
        self.topics = topics
        self.config = config
        self.assignments = 0  # target assignments computed, all groups (a metric)
        self._patterns: dict[str, re.Pattern[str]] = {}
        self._metadata_checked_ms: dict[str, int] = {}
        self._resolved_regexes: dict[str, set[str]] = {}  # per group: the regexes resolved at least once
        # Per (group, member): the DESCRIBE check of its last heartbeat's principal (not durable).
        self._describable: dict[tuple[str, str], Callable[[str], bool]] = {}
        self.downgrade: Callable[[ConsumerGroup, str, int], bool] | None = None

    # -- the heartbeat ----------------------------------------------------

    def heartbeat(self, request: HeartbeatRequest) -> HeartbeatResult:
        try:
            self._validate(request)
            if request.member_epoch in (LEAVE_GROUP_EPOCH, LEAVE_GROUP_STATIC_EPOCH):
                return self._leave(request)
            return self._heartbeat(request)
        except KafkaError as exc:
            return HeartbeatResult(exc.code, exc.message or None)

    def refusal(self, request: HeartbeatRequest) -> HeartbeatResult | None:
        """The answer to a heartbeat that fails Kafka's request checks, else None."""
        try:
            self._validate(request)
        except KafkaError as exc:
            return HeartbeatResult(exc.code, exc.message or None)
        return None

    def _validate(self, request: HeartbeatRequest) -> None:
        invalid = ErrorCode.INVALID_REQUEST
        if not request.group_id:
            raise KafkaError(invalid, "GroupId can't be empty.")
        if request.member_epoch == 0:
            if not request.member_id and request.version >= 1:
                raise KafkaError(invalid, "MemberId can't be empty.")
            if request.rebalance_timeout_ms == -1:
                raise KafkaError(invalid, "RebalanceTimeoutMs must be provided in first request.")
            if request.owned is None or any(request.owned.values()):
                raise KafkaError(invalid, "TopicPartitions must be empty when (re-)joining.")
            if request.subscribed_topic_names is None and request.subscribed_topic_regex is None:
                raise KafkaError(invalid, "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
        elif request.member_epoch == LEAVE_GROUP_STATIC_EPOCH:
            if request.instance_id is None:
                raise KafkaError(invalid, "InstanceId can't be null.")
        elif request.member_epoch < LEAVE_GROUP_STATIC_EPOCH:
            raise KafkaError(invalid, f"MemberEpoch is invalid: {request.member_epoch}.")
        if request.member_epoch != 0 and not request.member_id:
            raise KafkaError(invalid, "MemberId can't be empty.")
        if request.server_assignor is not None and request.server_assignor not in self.config.assignors:
            raise KafkaError(ErrorCode.UNSUPPORTED_ASSIGNOR,
                             f"ServerAssignor {request.server_assignor} is not supported. "
                             f"Supported assignors: {', '.join(self.config.assignors)}.")
        if request.subscribed_topic_regex:
            self._pattern(request.subscribed_topic_regex)

    def _pattern(self, regex: str) -> re.Pattern[str]:
        compiled = self._patterns.get(regex)
        if compiled is None:
            compiled = self._patterns[regex] = translate(regex)
        return compiled

    def _heartbeat(self, request: HeartbeatRequest) -> HeartbeatResult:
        now = self._clock()
        group = self._groups.get(request.group_id)
        if group is None:
            if request.member_epoch != 0:
                raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {request.group_id} not found.")
            group = self._groups[request.group_id] = ConsumerGroup(request.group_id, now)
        member, joined = self._member(group, request)
        if request.may_describe is not None:
            self._describable[(group.group_id, member.member_id)] = request.may_describe
        epoch_moves = joined | self._update_subscription(member, request)
        self._forget_unused_regexes(group)
        before_assigned = member.assigned
        self.update(group, member, epoch_moves, {} if request.member_epoch == 0 else request.owned, now)
        self._schedule(group, member, now)
        full = request.member_epoch == 0 or (
            request.rebalance_timeout_ms != -1
            and (request.subscribed_topic_names is not None or request.subscribed_topic_regex is not None)
            and request.owned is not None
        )
        return HeartbeatResult(
            ErrorCode.NONE,
            member_id=member.member_id,
            member_epoch=member.member_epoch,
            heartbeat_interval_ms=self.config.heartbeat_interval_ms,
            assignment=member.assigned if full or member.assigned != before_assigned else None,
        )

    def update(self, group: ConsumerGroup, member: ConsumerMember, epoch_moves: bool, owned: Assignment | None,
               now: int) -> None:
        """After a member's heartbeat or JoinGroup: move the group epoch if need be, reassign, reconcile, store."""
        last_checked = self._metadata_checked_ms.get(group.group_id, -METADATA_REFRESH_MS)
        if epoch_moves or now - last_checked >= METADATA_REFRESH_MS:
            epoch_moves |= self._subscription_metadata(group) != group.subscription_metadata
            self._metadata_checked_ms[group.group_id] = now
        if epoch_moves:
            group.bump_group_epoch(now)
            self._assign(group, now)
        self._schedule_regex_resolution(group, now)
        changed = group.reconcile(member, owned) or epoch_moves
        group.refresh_state(now)
        if changed:
            error = self._store(group)
            if error is not ErrorCode.NONE:
                raise KafkaError(error, "The group could not be stored.")

    def _member(self, group: ConsumerGroup, request: HeartbeatRequest) -> tuple[ConsumerMember, bool]:
        """The member the request speaks for, and whether it is new; raises Kafka's fencing errors."""
        member_id = request.member_id or str(uuid.uuid4())
        if request.member_epoch == 0:
            if request.instance_id is not None:
                holder_id = group.static_members.get(request.instance_id)
                if holder_id is not None and holder_id != member_id:
                    holder = group.members[holder_id]
                    if holder.member_epoch != LEAVE_GROUP_STATIC_EPOCH:
                        raise KafkaError(ErrorCode.UNRELEASED_INSTANCE_ID,
                                         f"Static member {holder_id} with instance id {request.instance_id}"
                                         " is not released.")
                    self._cancel(group, holder_id)
                    group.replace_static_member(holder, member_id)
            existing = group.members.get(member_id)
            if existing is not None:
                if existing.member_epoch == LEAVE_GROUP_STATIC_EPOCH:
                    existing.member_epoch = existing.previous_member_epoch  # back from a temporary leave
                return existing, False
            if len(group.members) >= self.config.max_size:
                raise KafkaError(ErrorCode.GROUP_MAX_SIZE_REACHED,
                                 "The consumer group has reached its maximum capacity of "
                                 f"{self.config.max_size} members.")
            member = ConsumerMember(member_id, instance_id=request.instance_id)
            group.add(member)
            return member, True
        member = group.members.get(member_id)
        if member is None:
            raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID,
                             f"Member {member_id} is not a member of group {group.group_id}.")
        received = request.member_epoch
        if received != member.member_epoch:
            owned_kept = request.owned is not None and all(
                partitions <= member.assigned.get(topic_id, frozenset())
                for topic_id, partitions in request.owned.items()
            )
            if received > member.member_epoch or received != member.previous_member_epoch or not owned_kept:
                relation = "smaller" if received < member.member_epoch else "greater"
                raise KafkaError(ErrorCode.FENCED_MEMBER_EPOCH,
                                 f"The consumer group member has a {relation} member epoch ({received}) than the one "
                                 f"known by the group coordinator ({member.member_epoch}). The member must abandon "
                                 "all its partitions and rejoin.")
        return member, False

    @staticmethod
    def _update_subscription(member: ConsumerMember, request: HeartbeatRequest) -> bool:
        """Apply the non-null fields; True when the subscription or assignor changed (the group epoch moves)."""
        before = (member.subscribed_topic_names, member.subscribed_topic_regex, member.server_assignor)
        if request.instance_id is not None:
            member.instance_id = request.instance_id
        if request.rack_id is not None:
            member.rack_id = request.rack_id
        if request.rebalance_timeout_ms != -1:
            member.rebalance_timeout_ms = request.rebalance_timeout_ms
        if request.subscribed_topic_names is not None:
            member.subscribed_topic_names = tuple(sorted(set(request.subscribed_topic_names)))
        if request.subscribed_topic_regex is not None:
            member.subscribed_topic_regex = request.subscribed_topic_regex or None
        if request.server_assignor is not None:
            member.server_assignor = request.server_assignor
        member.client_id, member.client_host = request.client_id, request.client_host
        return before != (member.subscribed_topic_names, member.subscribed_topic_regex, member.server_assignor)

    # -- leaving and fencing -----------------------------------------------

    def _leave(self, request: HeartbeatRequest) -> HeartbeatResult:
        now = self._clock()
        group = self._groups.get(request.group_id)
        if group is None:
            raise KafkaError(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {request.group_id} not found.")
        member_id = request.member_id
        if request.instance_id is not None:
            member_id = group.static_members.get(request.instance_id, "")
            if member_id != request.member_id:
                raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID if not member_id else ErrorCode.FENCED_INSTANCE_ID,
                                 f"Instance id {request.instance_id} is not held by member {request.member_id}.")
        member = group.members.get(member_id)
        if member is None:
            raise KafkaError(ErrorCode.UNKNOWN_MEMBER_ID,
                             f"Member {member_id} is not a member of group {group.group_id}.")
        if request.member_epoch == LEAVE_GROUP_STATIC_EPOCH:
            # A static member going away for a while keeps its partitions until its session runs out.
            member.previous_member_epoch, member.member_epoch = member.member_epoch, LEAVE_GROUP_STATIC_EPOCH
            self._timers.cancel((ConsumerTimer.REVOCATION, group.group_id, member_id))
            self._store(group)
        else:
            self.fence(group, member_id, now)
        return HeartbeatResult(ErrorCode.NONE, member_id=member_id, member_epoch=request.member_epoch)

    def fence(self, group: ConsumerGroup, member_id: str, now: int) -> None:
        """Remove a member (left, expired, or too slow to revoke) and hand its partitions on."""
        if self.downgrade is not None and self.downgrade(group, member_id, now):
            return
        self._cancel(group, member_id)
        group.remove(member_id)
        self._forget_unused_regexes(group)
        group.bump_group_epoch(now)
        self._assign(group, now)
        self._store(group)

    def _cancel(self, group: ConsumerGroup, member_id: str) -> None:
        for kind in ConsumerTimer:
            self._timers.cancel((kind, group.group_id, member_id))
        self._describable.pop((group.group_id, member_id), None)

    def on_timer(self, key: Hashable, now: int) -> None:
        kind, group_id, member_id = key  # type: ignore[misc]
        group = self._groups.get(group_id)
        if group is not None and kind is ConsumerTimer.REGEX:
            self._resolve_regex(group, member_id, now)
            return
        if group is None or member_id not in group.members:
            return
        if kind is not ConsumerTimer.REVOCATION or group.members[member_id].state is MemberState.UNREVOKED_PARTITIONS:
            self.fence(group, member_id, now)

    def schedule_session(self, group: ConsumerGroup, member: ConsumerMember, now: int) -> None:
        """Restart a member's session: the broker's KIP-848 timeout, or a classic member's own."""
        timeout = self.config.session_timeout_ms if member.classic is None else member.classic.session_timeout_ms
        self._timers.schedule((ConsumerTimer.SESSION, group.group_id, member.member_id), now + timeout)

    def _schedule(self, group: ConsumerGroup, member: ConsumerMember, now: int) -> None:
        self.schedule_session(group, member, now)
        revocation = (ConsumerTimer.REVOCATION, group.group_id, member.member_id)
        # Classic members are timed by their JoinGroup and SyncGroup instead (Kafka's join and sync timers).
        if member.state is MemberState.UNREVOKED_PARTITIONS and member.classic is None:
            if not self._timers.scheduled(revocation):
                self._timers.schedule(revocation, now + member.rebalance_timeout_ms)
        else:
            self._timers.cancel(revocation)

    def restore_timers(self, group: ConsumerGroup, now: int) -> None:
        """After a restart every member gets a fresh session (as after a Kafka coordinator failover)."""
        self._resolved_regexes[group.group_id] = self._regexes(group)
        for member in group.members.values():
            self._schedule(group, member, now)

    def forget(self, group: ConsumerGroup) -> None:
        for member_id in group.members:
            self._cancel(group, member_id)
        for regex in self._resolved_regexes.pop(group.group_id, set()) | self._regexes(group):
            self._timers.cancel((ConsumerTimer.REGEX, group.group_id, regex))
        self._metadata_checked_ms.pop(group.group_id, None)

    # -- regular expressions, resolved after the heartbeat that brings them --

    @staticmethod
    def _regexes(group: ConsumerGroup) -> set[str]:
        return {m.subscribed_topic_regex for m in group.members.values() if m.subscribed_topic_regex}

    def _schedule_regex_resolution(self, group: ConsumerGroup, now: int) -> None:
        for regex in self._regexes(group) - self._resolved_regexes.get(group.group_id, set()):
            key = (ConsumerTimer.REGEX, group.group_id, regex)
            if not self._timers.scheduled(key):
                self._timers.schedule(key, now)

    def _forget_unused_regexes(self, group: ConsumerGroup) -> None:
        """A regex no member uses any more is forgotten: subscribing to it again waits for it again."""
        self._resolved_regexes.get(group.group_id, set()).intersection_update(self._regexes(group))

    def _resolve_regex(self, group: ConsumerGroup, regex: str, now: int) -> None:
        self._forget_unused_regexes(group)
        resolved = self._resolved_regexes.setdefault(group.group_id, set())
        if regex not in self._regexes(group) or regex in resolved:
            return
        resolved.add(regex)
        if self._subscription_metadata(group) != group.subscription_metadata:
            group.bump_group_epoch(now)
            self._assign(group, now)
            group.refresh_state(now)
            self._store(group)

    # -- the target assignment ---------------------------------------------

    def _resolve(self, group: ConsumerGroup, member: ConsumerMember, names: list[str] | None) -> list[TopicMeta]:
        """The existing topics a member subscribes to, by name or by its regex (those it may DESCRIBE)."""
        wanted = list(member.subscribed_topic_names)
        if member.subscribed_topic_regex in self._resolved_regexes.get(group.group_id, ()):
            matched = matching_topics(self._pattern(member.subscribed_topic_regex), names or [])
            may_describe = self._describable.get((group.group_id, member.member_id))
            wanted += matched if may_describe is None else [name for name in matched if may_describe(name)]
        return [meta for name in dict.fromkeys(wanted) if (meta := self.topics.by_name(name)) is not None]

    def _subscription_metadata(self, group: ConsumerGroup) -> tuple[tuple[str, str, int], ...]:
        names = self.topics.names() if any(m.subscribed_topic_regex for m in group.members.values()) else None
        metas = {meta for m in group.members.values() for meta in self._resolve(group, m, names)}
        return tuple(sorted((meta.name, str(meta.topic_id), meta.partitions) for meta in metas))

    def _assign(self, group: ConsumerGroup, now: int) -> None:
        """Run the preferred assignor for the current group epoch and make its answer the target."""
        names = self.topics.names() if any(m.subscribed_topic_regex for m in group.members.values()) else None
        subscriptions: dict[str, frozenset[uuid.UUID]] = {}
        sizes: dict[uuid.UUID, int] = {}
        metas: set[TopicMeta] = set()
        for member in group.members.values():
            resolved = self._resolve(group, member, names)
            metas.update(resolved)
            subscriptions[member.member_id] = frozenset(meta.topic_id for meta in resolved)
            sizes.update((meta.topic_id, meta.partitions) for meta in resolved)
        assignor = ASSIGNORS[self.preferred_assignor(group)]
        group.subscription_metadata = tuple(sorted((m.name, str(m.topic_id), m.partitions) for m in metas))
        group.set_target(assignor(subscriptions, sizes, group.target), now)
        self.assignments += 1

    def preferred_assignor(self, group: ConsumerGroup) -> str:
        """The assignor most members ask for (ties: the broker's order); the broker's first when none asks."""
        votes = Counter(m.server_assignor for m in group.members.values() if m.server_assignor)
        if not votes:
            return self.config.assignors[0]
        order = {name: index for index, name in enumerate(self.config.assignors)}
        return min(votes, key=lambda name: (-votes[name], order.get(name, len(order))))

    # -- offsets ------------------------------------------------------------

    @staticmethod
    def offset_request_error(group: ConsumerGroup, member_id: str | None, member_epoch: int) -> ErrorCode | None:
        """Kafka's check of an OffsetCommit / OffsetFetch naming a member of a consumer group.

        A classic member names its generation, which is its member epoch: any other is ILLEGAL_GENERATION.
        """
        if member_epoch < 0 and not member_id:
            return None
        member = group.members.get(member_id or "")
        if member is None:
            return ErrorCode.UNKNOWN_MEMBER_ID
        if member.classic is not None:
            return None if member_epoch == member.member_epoch else ErrorCode.ILLEGAL_GENERATION
        if member_epoch > member.member_epoch:
            return ErrorCode.FENCED_MEMBER_EPOCH
        if member_epoch < member.member_epoch:
            return ErrorCode.STALE_MEMBER_EPOCH
        return None
