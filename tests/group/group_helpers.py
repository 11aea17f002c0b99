"""Shared helpers for the coordinator unit tests: a fake clock and request shorthands."""

from __future__ import annotations

import struct
from pathlib import Path

from kafkacompat.group.coordinator import GroupCoordinator, JoinRequest
from kafkacompat.group.results import JoinResult, PendingResult, SyncResult

SESSION_MS = 10_000
REBALANCE_MS = 30_000


class FakeClock:
    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def subscription(*topics: str) -> bytes:
    """A ConsumerProtocolSubscription v0: version, topics, null user data."""
    body = struct.pack(">hi", 0, len(topics))
    for topic in topics:
        body += struct.pack(">h", len(topic)) + topic.encode()
    return body + struct.pack(">i", -1)


def make_coordinator(data_dir: Path, clock: FakeClock, **kwargs: int) -> GroupCoordinator:
    return GroupCoordinator(data_dir, clock, **kwargs)


def join(
    coordinator: GroupCoordinator,
    group_id: str = "g",
    member_id: str = "",
    *,
    protocols: list[tuple[str, bytes]] | None = None,
    protocol_type: str = "consumer",
    group_instance_id: str | None = None,
    session_timeout_ms: int = SESSION_MS,
    rebalance_timeout_ms: int = REBALANCE_MS,
    client_id: str = "client",
    require_known_member_id: bool = False,
    supports_skip_assignment: bool = False,
) -> PendingResult[JoinResult]:
    return coordinator.join_group(
        JoinRequest(
            group_id=group_id,
            member_id=member_id,
            protocol_type=protocol_type,
            protocols=protocols if protocols is not None else [("range", subscription("t"))],
            session_timeout_ms=session_timeout_ms,
            rebalance_timeout_ms=rebalance_timeout_ms,
            group_instance_id=group_instance_id,
            client_id=client_id,
            client_host="/127.0.0.1",
            require_known_member_id=require_known_member_id,
            supports_skip_assignment=supports_skip_assignment,
        )
    )


def joined(pending: PendingResult[JoinResult]) -> JoinResult:
    assert pending.done(), "JoinGroup should have been answered"
    return pending.result()


def synced(pending: PendingResult[SyncResult]) -> SyncResult:
    assert pending.done(), "SyncGroup should have been answered"
    return pending.result()


def form_group(coordinator: GroupCoordinator, count: int, group_id: str = "g", **join_kwargs) -> list[str]:
    """Bring ``count`` dynamic members to Stable; returns member ids, leader first.

    Each newcomer starts a rebalance that every existing member rejoins, the way
    consumers react to REBALANCE_IN_PROGRESS on their heartbeat.
    """
    members: list[str] = []
    for _ in range(count):
        pendings = [join(coordinator, group_id, **join_kwargs)]
        pendings += [join(coordinator, group_id, m, **join_kwargs) for m in members]
        results = [joined(p) for p in pendings]
        members = [r.member_id for r in results]
        leader = results[0].leader_id
        members.sort(key=lambda m: m != leader)
        generation = results[0].generation_id
        assignments = {m: f"assignment-{m}".encode() for m in members}
        syncs = [coordinator.sync_group(group_id, generation, m, {}) for m in members[1:]]
        syncs.append(coordinator.sync_group(group_id, generation, leader, assignments))
        for sync in syncs:
            assert synced(sync).error == 0
    return members
