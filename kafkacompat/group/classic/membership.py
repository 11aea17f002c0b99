"""Kafka's classic rebalance protocol for every group: JoinGroup, SyncGroup, Heartbeat, LeaveGroup.

The rules of each state are in :mod:`kafkacompat.group.classic.state`; this module
runs the barriers and timers that move groups between states. Nothing here
blocks: JoinGroup and SyncGroup answers that must wait are
:class:`PendingResult` objects resolved by a later request or timer.
"""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass
from typing import Callable, Hashable, Mapping, Sequence

from kafkacompat.group.offsets import OffsetStore, write_or_error
from kafkacompat.group.results import JoinResult, LeaveResult, LeavingMember, PendingResult, SyncResult
from kafkacompat.group.classic.state import Group, GroupState, Member, Protocols
from kafkacompat.group.timers import Timers
from kafkacompat.protocol.errors import ErrorCode

log = logging.getLogger("kafkacompat.group")

# A member that joined but was never answered cannot heartbeat; Kafka gives it
# this long before dropping it from a join barrier that never closes.
NEW_MEMBER_JOIN_TIMEOUT_MS = 5 * 60 * 1000

_E, _P, _C, _S = (
    GroupState.EMPTY,
    GroupState.PREPARING_REBALANCE,
    GroupState.COMPLETING_REBALANCE,
    GroupState.STABLE,
)


class TimerKind(enum.Enum):
    """Timer keys are tuples starting with one of these."""

    SESSION = "session"  # (kind, group_id, member_id): heartbeat expected by then
    PENDING_MEMBER = "pending-member"  # (kind, group_id, member_id): MEMBER_ID_REQUIRED not followed up
    JOIN = "join"  # (kind, group_id): join barrier closes (rebalance timeout / initial delay)
    SYNC = "sync"  # (kind, group_id): members that have not sent SyncGroup are dropped
    RETENTION = "retention"  # (kind,): offsets expiry sweep, run by the coordinator


@dataclass(frozen=True)
class JoinRequest:
    """A JoinGroup as the coordinator needs it (the handler maps versions onto this)."""

    group_id: str
    member_id: str
    protocol_type: str
    protocols: Protocols
    session_timeout_ms: int
    rebalance_timeout_ms: int
    group_instance_id: str | None = None
    client_id: str = ""
    client_host: str = ""
    require_known_member_id: bool = False  # JoinGroup v4+: hand out an id first
    supports_skip_assignment: bool = False  # JoinGroup v9+


class Membership:
    """Runs the join and sync barriers and the session timers of all groups.

    Shares the coordinator's group map (it may add groups, never removes
    them), its :class:`Timers` (all keys except RETENTION are ours) and its
    store (group snapshots at each Stable or Empty generation). Not
    thread-safe; called from one task at a time.
    """

    def __init__(
        self,
        groups: dict[str, Group],
        timers: Timers,
        store: OffsetStore,
        clock: Callable[[], int],
        *,
        initial_rebalance_delay_ms: int,
        min_session_timeout_ms: int,
        max_session_timeout_ms: int,
    ) -> None:
        self.rebalances = 0  # join barriers closed with a new generation, all groups (a metric)
        self._groups = groups
        self._timers = timers
        self._store = store
        self._clock = clock
        self._initial_rebalance_delay_ms = initial_rebalance_delay_ms
        self._min_session_timeout_ms = min_session_timeout_ms
        self._max_session_timeout_ms = max_session_timeout_ms

    def on_timer(self, key: Hashable, now: int) -> None:
        """Handle one of our expired timers (see :class:`TimerKind`)."""
        kind, group_id, *member = key  # type: ignore[misc]
        group = self._groups.get(group_id)
        if group is None:
            return
        if kind is TimerKind.SESSION:
            self._on_session_expired(group, member[0], now)
        elif kind is TimerKind.PENDING_MEMBER:
            self._remove_pending_member(group, member[0], now)
        elif kind is TimerKind.JOIN:
            self._on_join_deadline(group, now)
        else:
            self._on_sync_expired(group, now)

    def touch(self, group: Group, member_id: str, now: int) -> None:
        """A sign of life other than Heartbeat (an offset commit) restarts the session timer."""
        self._schedule_session(group, group.members[member_id], now)

    def forget(self, group: Group) -> None:
        """Cancel the timers of a group the coordinator removed (only Empty groups are removed)."""
        for member_id in group.pending_join_members:
            self._timers.cancel((TimerKind.PENDING_MEMBER, group.group_id, member_id))
        self._timers.cancel((TimerKind.JOIN, group.group_id))

    def release(self, group: Group) -> None:
        """Cancel every timer of a group that stops being classic (upgraded to a consumer group)."""
        self.forget(group)
        self._timers.cancel((TimerKind.SYNC, group.group_id))
        for member_id in group.members:
            self._timers.cancel((TimerKind.SESSION, group.group_id, member_id))

    def adopt(self, group: Group, now: int, *, rebalance: bool) -> None:
        """Take on a Stable group built from a downgraded consumer group: store it, time it, maybe rebalance it."""
        self._store_group(group)
        for member in group.members.values():
            self._schedule_session(group, member, now)
        if rebalance:
            self._prepare_rebalance(group, now)

    # -- JoinGroup --------------------------------------------------------

    def join_group(self, request: JoinRequest) -> PendingResult[JoinResult]:
        now = self._clock()
        pending: PendingResult[JoinResult] = PendingResult()
        error = self._join_error(request)
        if error is not None:
            pending.resolve(JoinResult(error, request.member_id))
            return pending
        group = self._groups.get(request.group_id)
        is_new_member = request.member_id == ""
        if group is None:
            if not is_new_member:
                pending.resolve(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, request.member_id))
                return pending
            group = self._groups[request.group_id] = Group(request.group_id, now)
        if not group.supports_protocols(request.protocol_type, (name for name, _ in request.protocols)):
            pending.resolve(JoinResult(ErrorCode.INCONSISTENT_GROUP_PROTOCOL, request.member_id))
        elif is_new_member:
            self._join_new_member(group, request, pending, now)
        else:
            self._join_known_member(group, request, pending, now)
        return pending

    def _join_error(self, request: JoinRequest) -> ErrorCode | None:
        if not request.group_id:
            return ErrorCode.INVALID_GROUP_ID
        if not self._min_session_timeout_ms <= request.session_timeout_ms <= self._max_session_timeout_ms:
            return ErrorCode.INVALID_SESSION_TIMEOUT
        return None

    def _join_new_member(self, group: Group, request: JoinRequest, pending: PendingResult[JoinResult], now: int) -> None:
        prefix = request.group_instance_id if request.group_instance_id is not None else request.client_id
        member_id = f"{prefix}-{uuid.uuid4()}"
        if request.group_instance_id is not None:
            old_member_id = group.static_members.get(request.group_instance_id)
            if old_member_id is not None:
                self._replace_static_member(group, request, old_member_id, member_id, pending, now)
                return
        elif request.require_known_member_id:
            group.pending_join_members.add(member_id)
            self._timers.schedule(
                (TimerKind.PENDING_MEMBER, group.group_id, member_id), now + request.session_timeout_ms
            )
            pending.resolve(JoinResult(ErrorCode.MEMBER_ID_REQUIRED, member_id))
            return
        self._add_member_and_rebalance(group, request, member_id, pending, now)

    def _join_known_member(self, group: Group, request: JoinRequest, pending: PendingResult[JoinResult], now: int) -> None:
        member_id = request.member_id
        if member_id in group.pending_join_members:
            self._add_member_and_rebalance(group, request, member_id, pending, now)
            return
        error = group.validate_member(member_id, request.group_instance_id)
        if error is not None:
            pending.resolve(JoinResult(error, member_id))
            return
        member = group.members[member_id]
        unchanged = member.matches(request.protocols)
        if group.state is _C and unchanged:
            # The member lost our answer; repeat it.
            pending.resolve(group.join_result(member_id))
        elif group.state is _S and unchanged and member_id != group.leader_id:
            # A follower with nothing new may go straight to SyncGroup. The
            # leader rejoining always rebalances: that is how it asks for one.
            pending.resolve(group.join_result(member_id))
        else:
            group.update_member(
                member, request.protocols, request.rebalance_timeout_ms, request.session_timeout_ms, pending
            )
            self._rebalance_for_join(group, now)

    def _add_member_and_rebalance(
        self, group: Group, request: JoinRequest, member_id: str, pending: PendingResult[JoinResult], now: int
    ) -> None:
        member = Member(
            member_id=member_id,
            group_instance_id=request.group_instance_id,
            client_id=request.client_id,
            client_host=request.client_host,
            rebalance_timeout_ms=request.rebalance_timeout_ms,
            session_timeout_ms=request.session_timeout_ms,
            protocols=list(request.protocols),
            is_new=True,
            join_waiter=pending,
        )
        if group.state is _P and group.generation_id == 0:
            group.new_member_added = True
        group.add(member, request.protocol_type)
        self._timers.cancel((TimerKind.PENDING_MEMBER, group.group_id, member_id))
        self._schedule_session(group, member, now, NEW_MEMBER_JOIN_TIMEOUT_MS)
        self._rebalance_for_join(group, now)

    def _rebalance_for_join(self, group: Group, now: int) -> None:
        if group.state is _P:
            self._try_complete_join(group, now)
        else:
            self._prepare_rebalance(group, now)

    def _replace_static_member(
        self,
        group: Group,
        request: JoinRequest,
        old_member_id: str,
        new_member_id: str,
        pending: PendingResult[JoinResult],
        now: int,
    ) -> None:
        """A restarted static instance takes over its old member's place (and assignment)."""
        assert request.group_instance_id is not None
        previous_leader = group.leader_id
        member = group.replace_static_member(request.group_instance_id, old_member_id, new_member_id)
        self._timers.cancel((TimerKind.SESSION, group.group_id, old_member_id))
        group.update_member(member, request.protocols, request.rebalance_timeout_ms, request.session_timeout_ms, pending)
        self._schedule_session(group, member, now)
        if group.state is _P:
            self._try_complete_join(group, now)
        elif group.state is _S and group.select_protocol() == group.protocol_name:
            log.info("group %s: static member %s rejoined as %s without rebalance",
                     group.group_id, request.group_instance_id, new_member_id)
            error = self._store_group(group)
            if error is not ErrorCode.NONE:
                member.resolve_join(JoinResult(error, new_member_id))
            elif new_member_id == group.leader_id and request.supports_skip_assignment:
                member.resolve_join(group.join_result(new_member_id, skip_assignment=True))
            else:
                # Naming the old leader id keeps a restarted leader from
                # computing an assignment a Stable group would never deliver.
                member.resolve_join(group.join_result(new_member_id, leader_id=previous_leader))
        else:
            # Completing: the leader may be assigning to the old member id.
            # Stable with a different protocol choice: the assignment is stale.
            self._prepare_rebalance(group, now)

    # -- rebalance machinery ----------------------------------------------

    def _prepare_rebalance(self, group: Group, now: int) -> None:
        """Open the join barrier (from Empty with the initial delay, else with the rebalance timeout)."""
        if group.state is _C:
            self._reset_and_propagate_assignment_error(group, ErrorCode.REBALANCE_IN_PROGRESS, now)
        group.pending_sync_members.clear()
        self._timers.cancel((TimerKind.SYNC, group.group_id))
        from_empty = group.state is _E
        group.transition_to(_P, now)
        log.info("group %s: preparing rebalance (generation %d)", group.group_id, group.generation_id)
        if from_empty:
            delay = self._initial_rebalance_delay_ms
            group.initial_delay_ms = delay
            group.initial_delay_remaining_ms = max(group.rebalance_timeout_ms - delay, 0)
            if delay == 0:
                self._on_join_deadline(group, now)
            else:
                self._timers.schedule((TimerKind.JOIN, group.group_id), now + delay)
        else:
            group.initial_delay_remaining_ms = None
            self._timers.schedule((TimerKind.JOIN, group.group_id), now + group.rebalance_timeout_ms)
            self._try_complete_join(group, now)

    def _try_complete_join(self, group: Group, now: int) -> None:
        """Close the join barrier early once everyone is in (never during the initial delay)."""
        if group.state is _P and group.initial_delay_remaining_ms is None and group.has_all_members_joined():
            self._complete_join(group, now)

    def _on_join_deadline(self, group: Group, now: int) -> None:
        remaining = group.initial_delay_remaining_ms
        if remaining is not None and group.new_member_added and remaining > 0:
            # Someone arrived during this delay step: wait one more step.
            group.new_member_added = False
            group.initial_delay_remaining_ms = max(remaining - group.initial_delay_ms, 0)
            group.initial_delay_ms = min(self._initial_rebalance_delay_ms, remaining)
            self._timers.schedule((TimerKind.JOIN, group.group_id), now + group.initial_delay_ms)
        else:
            self._complete_join(group, now)

    def _complete_join(self, group: Group, now: int) -> None:
        """Close the join barrier: drop dynamic laggards, start the next generation, answer everyone."""
        self._timers.cancel((TimerKind.JOIN, group.group_id))
        group.initial_delay_remaining_ms = None
        group.new_member_added = False
        for laggard in group.not_yet_rejoined_members():
            if laggard.group_instance_id is None:
                log.info("group %s: member %s did not rejoin in time", group.group_id, laggard.member_id)
                self._drop_member(group, laggard.member_id)
        if not group.maybe_elect_new_joined_leader() and group.members:
            # Only absent static members are left: wait for them to rejoin or expire.
            self._timers.schedule((TimerKind.JOIN, group.group_id), now + group.rebalance_timeout_ms)
            return
        group.init_next_generation(now)
        self.rebalances += 1
        log.info("group %s: generation %d with %d members (%s)", group.group_id, group.generation_id,
                 len(group.members), group.state.value)
        if group.state is _E:
            self._store_group(group)
            return
        for member in group.members.values():
            member.resolve_join(group.join_result(member.member_id))
            member.is_new = False
            self._schedule_session(group, member, now)
        self._timers.schedule((TimerKind.SYNC, group.group_id), now + group.rebalance_timeout_ms)

    def _on_session_expired(self, group: Group, member_id: str, now: int) -> None:
        member = group.members.get(member_id)
        if member is None:
            return
        if not member.is_new and (member.is_awaiting_join or member.is_awaiting_sync):
            # Blocked at a barrier it cannot heartbeat from; the barrier's answer restarts the timer.
            return
        log.info("group %s: member %s session expired", group.group_id, member_id)
        self._remove_member_and_update_group(group, member, now)

    def _on_sync_expired(self, group: Group, now: int) -> None:
        if group.state not in (_C, _S) or not group.pending_sync_members:
            return
        log.info("group %s: members %s never sent SyncGroup", group.group_id, sorted(group.pending_sync_members))
        for member_id in list(group.pending_sync_members):
            self._drop_member(group, member_id)
        self._prepare_rebalance(group, now)

    def _remove_member_and_update_group(self, group: Group, member: Member, now: int) -> None:
        member.resolve_join(JoinResult(ErrorCode.UNKNOWN_MEMBER_ID, member.member_id))
        member.resolve_sync(SyncResult(ErrorCode.UNKNOWN_MEMBER_ID))
        self._drop_member(group, member.member_id)
        if group.state in (_S, _C):
            self._prepare_rebalance(group, now)
        else:
            self._try_complete_join(group, now)

    def _remove_pending_member(self, group: Group, member_id: str, now: int) -> None:
        group.pending_join_members.discard(member_id)
        self._timers.cancel((TimerKind.PENDING_MEMBER, group.group_id, member_id))
        self._try_complete_join(group, now)

    def _drop_member(self, group: Group, member_id: str) -> None:
        group.remove(member_id)
        self._timers.cancel((TimerKind.SESSION, group.group_id, member_id))
        if not group.pending_sync_members:
            self._timers.cancel((TimerKind.SYNC, group.group_id))

    def _schedule_session(self, group: Group, member: Member, now: int, timeout_ms: int | None = None) -> None:
        timeout = member.session_timeout_ms if timeout_ms is None else timeout_ms
        self._timers.schedule((TimerKind.SESSION, group.group_id, member.member_id), now + timeout)

    def _reset_and_propagate_assignment_error(self, group: Group, error: ErrorCode, now: int) -> None:
        for member in group.members.values():
            member.assignment = b""
        self._propagate_assignment(group, error, now)

    def _propagate_assignment(self, group: Group, error: ErrorCode, now: int) -> None:
        ok = error is ErrorCode.NONE
        for member in group.members.values():
            result = SyncResult(
                error,
                member.assignment,
                group.protocol_type if ok else None,
                group.protocol_name if ok else None,
            )
            if member.resolve_sync(result):
                self._schedule_session(group, member, now)

    def _store_group(self, group: Group) -> ErrorCode:
        return write_or_error(lambda: self._store.store_group(group.snapshot()))

    # -- SyncGroup, Heartbeat, LeaveGroup --------------------------------

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
        now = self._clock()
        pending: PendingResult[SyncResult] = PendingResult()
        group = self._groups.get(group_id) if group_id else None
        error = self._sync_error(group, group_id, generation_id, member_id, group_instance_id,
                                 protocol_type, protocol_name)
        if error is not None:
            pending.resolve(SyncResult(error))
            return pending
        assert group is not None
        member = group.members[member_id]
        group.pending_sync_members.discard(member_id)
        if not group.pending_sync_members:
            self._timers.cancel((TimerKind.SYNC, group.group_id))
        if group.state is _S:
            pending.resolve(SyncResult(ErrorCode.NONE, member.assignment, group.protocol_type, group.protocol_name))
            self._schedule_session(group, member, now)
            return pending
        member.resolve_sync(SyncResult(ErrorCode.REBALANCE_IN_PROGRESS))
        member.sync_waiter = pending
        if member_id == group.leader_id:
            for each in group.members.values():
                each.assignment = assignments.get(each.member_id, b"")
            error = self._store_group(group)
            if error is ErrorCode.NONE:
                group.transition_to(_S, now)
                self._propagate_assignment(group, ErrorCode.NONE, now)
            else:
                self._reset_and_propagate_assignment_error(group, error, now)
                self._prepare_rebalance(group, now)
        return pending

    @staticmethod
    def _sync_error(
        group: Group | None,
        group_id: str,
        generation_id: int,
        member_id: str,
        group_instance_id: str | None,
        protocol_type: str | None,
        protocol_name: str | None,
    ) -> ErrorCode | None:
        error = _member_error(group, group_id, generation_id, member_id, group_instance_id)
        if error is not None:
            return error
        assert group is not None
        if (protocol_type is not None and protocol_type != group.protocol_type) or (
            protocol_name is not None and protocol_name != group.protocol_name
        ):
            return ErrorCode.INCONSISTENT_GROUP_PROTOCOL
        if group.state is _P:
            return ErrorCode.REBALANCE_IN_PROGRESS
        return None

    def heartbeat(
        self, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None = None
    ) -> ErrorCode:
        group = self._groups.get(group_id) if group_id else None
        error = _member_error(group, group_id, generation_id, member_id, group_instance_id)
        if error is not None:
            return error
        assert group is not None
        self._schedule_session(group, group.members[member_id], self._clock())
        return ErrorCode.REBALANCE_IN_PROGRESS if group.state is _P else ErrorCode.NONE

    def leave_group(self, group_id: str, members: Sequence[LeavingMember]) -> LeaveResult:
        """Remove members by id, or by instance id alone (administrative removal of a static member)."""
        if not group_id:
            return LeaveResult(ErrorCode.INVALID_GROUP_ID)
        group = self._groups.get(group_id)
        if group is None:
            return LeaveResult(ErrorCode.NONE, tuple((m, ErrorCode.UNKNOWN_MEMBER_ID) for m in members))
        now = self._clock()
        return LeaveResult(ErrorCode.NONE, tuple((m, self._leave_one(group, m, now)) for m in members))

    def _leave_one(self, group: Group, leaving: LeavingMember, now: int) -> ErrorCode:
        member_id = leaving.member_id
        if not member_id:
            instance_id = leaving.group_instance_id
            member_id = None if instance_id is None else group.static_members.get(instance_id)
            if member_id is None:
                return ErrorCode.UNKNOWN_MEMBER_ID
        elif member_id in group.pending_join_members:
            self._remove_pending_member(group, member_id, now)
            return ErrorCode.NONE
        else:
            error = group.validate_member(member_id, leaving.group_instance_id)
            if error is not None:
                return error
        log.info("group %s: member %s left", group.group_id, member_id)
        self._remove_member_and_update_group(group, group.members[member_id], now)
        return ErrorCode.NONE


def _member_error(
    group: Group | None, group_id: str, generation_id: int, member_id: str, group_instance_id: str | None
) -> ErrorCode | None:
    """The checks SyncGroup and Heartbeat share: a known member of the current generation."""
    if not group_id:
        return ErrorCode.INVALID_GROUP_ID
    if group is None:
        return ErrorCode.UNKNOWN_MEMBER_ID
    error = group.validate_member(member_id, group_instance_id)
    if error is not None:
        return error
    if generation_id != group.generation_id:
        return ErrorCode.ILLEGAL_GENERATION
    return None
