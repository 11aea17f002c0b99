"""A classic consumer group member for ``kafkacompat consume --group``.

Theory of operation: the member finds its coordinator (FindCoordinator),
joins (JoinGroup, retrying once with the member id the coordinator hands
out under MEMBER_ID_REQUIRED), and syncs (SyncGroup). The leader computes
the assignment with Kafka's ``range`` assignor over every member's
subscription, so stock consumers can share the group. Between fetches the
member heartbeats every ``session_timeout_ms / 3``; REBALANCE_IN_PROGRESS,
ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID or a moved coordinator end the
generation, and the caller commits what it read (when the generation is
still valid) and joins again. Offsets are committed with the generation, as
a Java consumer commits them; leaving sends LeaveGroup.
"""

from __future__ import annotations

import struct
import time
from typing import Any

from kafkacompat.client import ApiKey, ClientError, Cluster, KafkaClient, check
from kafkacompat.group.consumer.assignors import range_assign
from kafkacompat.protocol import decode_data, encode_data
from kafkacompat.protocol.errors import ErrorCode

PROTOCOL_TYPE = "consumer"
ASSIGNOR = "range"
SUBSCRIPTION_VERSION = 0
ASSIGNMENT_VERSION = 0
_VERSION = struct.Struct(">h")
REJOIN = {ErrorCode.REBALANCE_IN_PROGRESS, ErrorCode.ILLEGAL_GENERATION, ErrorCode.UNKNOWN_MEMBER_ID,
          ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.FENCED_INSTANCE_ID}
RETRY_JOIN = {ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE, ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
              ErrorCode.REBALANCE_IN_PROGRESS, ErrorCode.UNKNOWN_MEMBER_ID, ErrorCode.ILLEGAL_GENERATION}


def _with_version(version: int, data: bytes) -> bytes:
    return _VERSION.pack(version) + data


def _decode_versioned(name: str, data: bytes) -> Any:
    (version,) = _VERSION.unpack_from(data)
    return decode_data(name, min(version, 3), data[_VERSION.size:])


class GroupMember:
    """One member of ``group_id`` subscribed to one topic. Not thread-safe."""

    def __init__(self, cluster: Cluster, group_id: str, topic: str, *, session_timeout_ms: int = 10_000,
                 rebalance_timeout_ms: int = 30_000) -> None:
        self.cluster = cluster
        self.group_id = group_id
        self.topic = topic
        self.session_timeout_ms = session_timeout_ms
        self.rebalance_timeout_ms = rebalance_timeout_ms
        self.member_id = ""
        self.generation_id = -1
        self.protocol_name: str | None = None
        self.coordinator: KafkaClient | None = None
        self._next_heartbeat = 0.0

    def _coordinator(self) -> KafkaClient:
        if self.coordinator is None:
            self.coordinator = self.cluster.coordinator(self.group_id)
        return self.coordinator

    def join(self) -> list[int]:
        """Join (or rejoin) the group and return the partitions of our topic assigned to us."""
        subscription = _with_version(SUBSCRIPTION_VERSION, encode_data(
            "consumer_protocol_subscription", SUBSCRIPTION_VERSION, {"topics": [self.topic], "user_data": None}))
        deadline = time.monotonic() + self.rebalance_timeout_ms / 1000 + 10
        while time.monotonic() < deadline:
            joined = self._coordinator().send(ApiKey.JOIN_GROUP, {
                "group_id": self.group_id, "session_timeout_ms": self.session_timeout_ms,
                "rebalance_timeout_ms": self.rebalance_timeout_ms, "member_id": self.member_id,
                "group_instance_id": None, "protocol_type": PROTOCOL_TYPE, "reason": None,
                "protocols": [{"name": ASSIGNOR, "metadata": subscription}]})
            if joined.error_code == ErrorCode.MEMBER_ID_REQUIRED:
                self.member_id = joined.member_id
                continue
            if self._retry(joined.error_code):
                continue
            check(joined.error_code, f"JoinGroup {self.group_id}")
            self.member_id, self.generation_id = joined.member_id, joined.generation_id
            self.protocol_name = joined.protocol_name
            assignments = self._assign(joined.members) if joined.leader == self.member_id else {}
            synced = self._coordinator().send(ApiKey.SYNC_GROUP, {
                "group_id": self.group_id, "generation_id": self.generation_id, "member_id": self.member_id,
                "group_instance_id": None, "protocol_type": PROTOCOL_TYPE, "protocol_name": self.protocol_name,
                "assignments": [{"member_id": m, "assignment": a} for m, a in assignments.items()]})
            if self._retry(synced.error_code):
                continue
            check(synced.error_code, f"SyncGroup {self.group_id}")
            self._next_heartbeat = time.monotonic() + self.session_timeout_ms / 3000
            if not synced.assignment:
                return []
            assigned = _decode_versioned("consumer_protocol_assignment", synced.assignment)
            return sorted(p for t in assigned.assigned_partitions if t.topic == self.topic for p in t.partitions)
        raise ClientError(f"could not join group {self.group_id!r} in time")

    def _retry(self, code: int) -> bool:
        """Whether a join or sync failed in a way that only needs another try (after the backoff)."""
        if code not in RETRY_JOIN:
            return False
        if code in (ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE):
            self.coordinator = None
        if code == ErrorCode.UNKNOWN_MEMBER_ID:
            self.member_id = ""
        time.sleep(0.1)
        return True

    def _assign(self, members: list[Any]) -> dict[str, bytes]:
        subscriptions = {m.member_id: list(_decode_versioned("consumer_protocol_subscription", m.metadata).topics)
                         for m in members}
        topics = sorted({t for ts in subscriptions.values() for t in ts})
        counts = {t.name: len(t.partitions) for t in self.cluster.metadata(topics).topics}
        return {
            member: _with_version(ASSIGNMENT_VERSION, encode_data("consumer_protocol_assignment", ASSIGNMENT_VERSION, {
                "assigned_partitions": [{"topic": t, "partitions": ps} for t, ps in sorted(assigned.items())],
                "user_data": None}))
            for member, assigned in range_assign(subscriptions, counts).items()
        }

    def heartbeat(self) -> bool:
        """Heartbeat if one is due; False when the generation is over and the member must join again."""
        now = time.monotonic()
        if now < self._next_heartbeat:
            return True
        self._next_heartbeat = now + self.session_timeout_ms / 3000
        answer = self._coordinator().send(ApiKey.HEARTBEAT, {
            "group_id": self.group_id, "generation_id": self.generation_id, "member_id": self.member_id,
            "group_instance_id": None})
        if answer.error_code in REJOIN:
            if answer.error_code in (ErrorCode.NOT_COORDINATOR, ErrorCode.COORDINATOR_NOT_AVAILABLE):
                self.coordinator = None
            return False
        check(answer.error_code, f"Heartbeat {self.group_id}")
        return True

    def committed(self, partitions: list[int]) -> dict[int, int]:
        """Committed offsets of our topic's ``partitions`` (those with none are left out)."""
        client = self._coordinator()
        version = client.version(ApiKey.OFFSET_FETCH, lowest=1)
        topics = [{"name": self.topic, "partition_indexes": partitions}]
        answer = client.request(ApiKey.OFFSET_FETCH, version, {
            "group_id": self.group_id, "topics": topics, "require_stable": True,
            "groups": [{"group_id": self.group_id, "topics": topics}]})
        if version >= 8:
            answer = answer.groups[0]
        check(answer.error_code, f"OffsetFetch {self.group_id}")
        return {p.partition_index: p.committed_offset
                for t in answer.topics for p in t.partitions if p.committed_offset >= 0}

    def commit(self, positions: dict[int, int]) -> None:
        """Commit the next offset to read of each partition, in this generation."""
        if not positions:
            return
        answer = self._coordinator().send(ApiKey.OFFSET_COMMIT, {
            "group_id": self.group_id, "generation_id_or_member_epoch": self.generation_id,
            "member_id": self.member_id, "group_instance_id": None, "retention_time_ms": -1,
            "topics": [{"name": self.topic, "partitions": [
                {"partition_index": p, "committed_offset": o, "committed_leader_epoch": -1,
                 "committed_metadata": ""} for p, o in sorted(positions.items())]}]}, lowest=2)
        for topic in answer.topics:
            for result in topic.partitions:
                if result.error_code in REJOIN:
                    return  # the generation ended; the next owner starts from the last good commit
                check(result.error_code, f"OffsetCommit {self.topic}-{result.partition_index}")

    def leave(self) -> None:
        if not self.member_id:
            return
        self._coordinator().send(ApiKey.LEAVE_GROUP, {
            "group_id": self.group_id, "member_id": self.member_id,
            "members": [{"member_id": self.member_id, "group_instance_id": None, "reason": None}]})
        self.member_id, self.generation_id = "", -1
