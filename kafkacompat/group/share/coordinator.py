"""The share coordinator: share groups, share sessions and share-partition state, sans I/O.

It ties the two state machines together — membership (group.py) and the
records each share partition has handed out (partition.py) — with what they
need from outside: the log (to read batches for acquisition), the group
configs, the durable store and the timers (sessions, acquisition locks).
Time comes only from the injected clock and ``tick(now_ms)``.

Share sessions (KIP-932) are kept per (group id, member id, broker): a
session lives on the broker the client talks to, as Kafka's share session
cache does. ShareFetch with epoch 0 opens one with the partitions it names,
each later ShareFetch or ShareAcknowledge must carry the next epoch and may
add or forget partitions. A share session ends, releasing the records its
member holds in the partitions that broker leads (the delivery count those
records got when acquired stays), when it is closed with epoch -1 and when
the connection that opened it closes — records in flight to a client that
went away included. A member leaving the group (heartbeat epoch -1) keeps
its sessions, as Kafka's brokers keep theirs: a closing client may send its
final acknowledgements after its leave heartbeat. When its group session
times out, all its sessions end and everything it holds is released.
Nothing is released earlier.

In a cluster one coordinator serves every broker (cluster/runtime.py), as
the group coordinator does: ``leader_log`` finds a partition's log at its
current leader (records are read there) and ``leader_node`` names that
leader. Share-partition state lives with the leader in Kafka and is reloaded
from the persisted snapshot when leadership moves; here
:meth:`ShareCoordinator.leadership_moved` does the equivalent: every record
acquired in the partition goes back to available with its delivery count,
what was acknowledged stays so.

Not thread-safe and not reentrant: the broker calls it from one Trio task at
a time. Every state change that must survive a restart (share groups, their
configs, share-partition snapshots after acknowledgements, releases and lock
expiry, members as heartbeats change them) is fsynced to the
:class:`ShareStateStore` before the call returns; an acquisition alone is
not written, as Kafka writes none, so a broker killed before any later
write of the partition delivers those records again with the delivery count
last written. Members are durable as in Kafka: after a restart each has a
session timeout to heartbeat again and keeps its epoch and assignment.
Share sessions are not (nor are they in Kafka): clients open new ones.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Hashable, Iterable, Mapping, Sequence

from kafkacompat.config import ConfigError
from kafkacompat.group.share.group import HeartbeatResult, ShareGroup, ShareGroupState
from kafkacompat.group.share.partition import Acquired, FetchedBatch, SharePartition
from kafkacompat.group.share.store import PartitionKey, ShareStateStore
from kafkacompat.group.timers import Timers
from kafkacompat.log.log_manager import LogManager
from kafkacompat.log.partition_log import PartitionLog
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.records import BATCH_HEADER, LOG_OVERHEAD, BatchHeader, read_header

if TYPE_CHECKING:
    from kafkacompat.config import BrokerConfig

INITIAL_EPOCH, FINAL_EPOCH = 0, -1
MAX_SESSION_EPOCH = 2**31 - 1
AUTO_OFFSET_RESET = "share.auto.offset.reset"
ISOLATION_LEVEL = "share.isolation.level"
RECORD_LOCK_DURATION = "share.record.lock.duration.ms"

SessionPartition = tuple[uuid.UUID, int]  # topic id, partition index
SessionKey = tuple[str, str, int]  # group id, member id, the broker the session lives on
LeaderLog = Callable[[str, int], PartitionLog]  # (topic, index) -> the log at its leader; KafkaError if none
LeaderNode = Callable[[str, int], int]  # (topic, index) -> the node leading it
EVERY_LOCK_MS = 2**63 - 1  # a time past every acquisition lock


MIN_RECORD_LOCKS, MAX_RECORD_LOCKS = 100, 10_000  # Kafka's bounds for group.share.partition.max.record.locks


@dataclass(frozen=True)
class ShareSettings:
    """The broker's group.share.* configs."""

    heartbeat_interval_ms: int = 5000
    session_timeout_ms: int = 45000
    record_lock_duration_ms: int = 30000
    min_record_lock_duration_ms: int = 15000
    max_record_lock_duration_ms: int = 60000
    delivery_count_limit: int = 5
    max_size: int = 200
    partition_max_record_locks: int = 2000

    @classmethod
    def from_config(cls, config: BrokerConfig) -> ShareSettings:
        locks = config.get_int("group.share.partition.max.record.locks")
        if not MIN_RECORD_LOCKS <= locks <= MAX_RECORD_LOCKS:
            raise ConfigError(f"group.share.partition.max.record.locks must be in "
                              f"[{MIN_RECORD_LOCKS}, {MAX_RECORD_LOCKS}], not {locks}")
        return cls(
            heartbeat_interval_ms=config.get_int("group.share.heartbeat.interval.ms"),
            session_timeout_ms=config.get_int("group.share.session.timeout.ms"),
            record_lock_duration_ms=config.get_int("group.share.record.lock.duration.ms"),
            min_record_lock_duration_ms=config.get_int("group.share.min.record.lock.duration.ms"),
            max_record_lock_duration_ms=config.get_int("group.share.max.record.lock.duration.ms"),
            delivery_count_limit=config.get_int("group.share.delivery.count.limit"),
            max_size=config.get_int("group.share.max.size"),
            partition_max_record_locks=locks,
        )


@dataclass
class ShareSession:
    """One member's share session: the partitions it fetches and the epoch its next request must carry."""

    connection: Hashable  # the connection that opened it: the session ends when that connection closes
    partitions: dict[SessionPartition, None] = field(default_factory=dict)
    epoch: int = 1

    def advance(self) -> None:
        self.epoch = 1 if self.epoch == MAX_SESSION_EPOCH else self.epoch + 1


class ShareCoordinator:
    """All share groups of a broker (or of a cluster's brokers); see the module docstring.

    ``topics`` is the topic registry (a LogManager, or in a cluster any running member's);
    ``leader_log`` and ``leader_node`` place partitions in a cluster (None: this broker's logs).
    """

    def __init__(self, data_dir: Path, clock: Callable[[], int], topics: LogManager,
                 settings: ShareSettings = ShareSettings(), *, leader_log: LeaderLog | None = None,
                 leader_node: LeaderNode | None = None) -> None:
        self._clock = clock
        self._logs = topics
        self._leader_log = leader_log
        self._leader_node = leader_node
        self.settings = settings
        self._store = ShareStateStore(data_dir)
        self._timers = Timers()
        self._groups: dict[str, ShareGroup] = {}
        for group_id, stored in self._store.groups.items():
            # Kafka gives loaded members a whole session timeout from the load to heartbeat again.
            deadline = clock() + self._session_timeout(group_id)
            members = {m: state for (g, m), state in self._store.members.items() if g == group_id}
            self._groups[group_id] = ShareGroup.restore(group_id, stored, members, session_deadline_ms=deadline)
            for member_id in members:
                self._timers.schedule(("session", group_id, member_id), deadline)
        self._partitions: dict[PartitionKey, SharePartition] = {}
        for key, stored in self._store.partitions.items():
            self._partitions[key] = SharePartition.restore(stored, **self._partition_settings(key[0]))
        self._sessions: dict[SessionKey, ShareSession] = {}

    def close(self) -> None:
        self._store.close()

    # -- groups ---------------------------------------------------------------

    def group(self, group_id: str) -> ShareGroup | None:
        return self._groups.get(group_id)

    def groups(self) -> list[ShareGroup]:
        return list(self._groups.values())

    def heartbeat(self, group_id: str, member_id: str, member_epoch: int, *, rack_id: str | None,
                  subscribed_topic_names: Sequence[str] | None, client_id: str, client_host: str) -> HeartbeatResult:
        """ShareGroupHeartbeat for a group that is not a classic or consumer group (the caller checks)."""
        now = self._clock()
        group = self._groups.get(group_id)
        if group is None:
            if member_epoch != INITIAL_EPOCH:
                return HeartbeatResult(ErrorCode.UNKNOWN_MEMBER_ID, message=f"Member {member_id} is not in group")
            group = ShareGroup(group_id)
        result = group.heartbeat(
            member_id, member_epoch, rack_id=rack_id, subscribed_topic_names=subscribed_topic_names,
            client_id=client_id, client_host=client_host, topics=self._topic_lookup, now_ms=now,
            session_timeout_ms=self._session_timeout(group_id), max_size=self.settings.max_size)
        if result.error is not ErrorCode.NONE:
            return result
        self._groups[group_id] = group
        self._persist_membership(group, member_id)
        if result.left is not None:
            self._timers.cancel(("session", group_id, member_id))  # its share sessions end on their own
        else:
            self._timers.schedule(("session", group_id, member_id), now + self._session_timeout(group_id))
        if group.needs_initializing(self._topic_lookup) and not self._timers.scheduled(("initialize", group_id)):
            self._timers.schedule(("initialize", group_id), now)  # after this answer, as Kafka does it
        return result

    def _persist_membership(self, group: ShareGroup, member_id: str) -> None:
        """Write the group and the member as they now are, if that differs from what was written."""
        records = []
        if self._store.groups.get(group.group_id) != (state := group.snapshot()):
            records.append(ShareStateStore.group_record(group.group_id, state))
        member = group.member_snapshot(member_id) if member_id in group.members else None
        if self._store.members.get((group.group_id, member_id)) != member:
            records.append(ShareStateStore.member_record((group.group_id, member_id), member))
        self._store.write(records)

    def heartbeat_interval_ms(self, group_id: str) -> int:
        return int(self._store.configs.get(group_id, {}).get("share.heartbeat.interval.ms",
                                                              self.settings.heartbeat_interval_ms))

    def _session_timeout(self, group_id: str) -> int:
        return int(self._store.configs.get(group_id, {}).get("share.session.timeout.ms",
                                                             self.settings.session_timeout_ms))

    def _lock_duration(self, group_id: str) -> int:
        return int(self._store.configs.get(group_id, {}).get(RECORD_LOCK_DURATION,
                                                             self.settings.record_lock_duration_ms))

    def lock_duration_ms(self, group_id: str) -> int:
        return self._lock_duration(group_id)

    def _topic_lookup(self, name: str) -> tuple[uuid.UUID, int] | None:
        topic = self._logs.topic(name)
        return None if topic is None else (topic.topic_id, len(topic.partitions))

    def delete_group(self, group_id: str) -> ErrorCode:
        """DeleteGroups for a share group: only an Empty one, with its share-partition state and configs."""
        group = self._groups.get(group_id)
        if group is None:
            return ErrorCode.GROUP_ID_NOT_FOUND
        if group.state is not ShareGroupState.EMPTY:
            return ErrorCode.NON_EMPTY_GROUP
        self._store.write([ShareStateStore.deleted_group(group_id)])
        group.deleted = True
        del self._groups[group_id]
        for key in [k for k in self._partitions if k[0] == group_id]:
            del self._partitions[key]
        return ErrorCode.NONE

    # -- group configs (IncrementalAlterConfigs / DescribeConfigs, resource type GROUP) ----------

    def group_configs(self, group_id: str) -> dict[str, str]:
        """Explicitly set configs of a group id (whatever its type), as Kafka keeps them."""
        return dict(self._store.configs.get(group_id, {}))

    def set_group_configs(self, group_id: str, configs: Mapping[str, str]) -> None:
        """Replace the group's explicit configs (validated by the caller)."""
        self._store.write([ShareStateStore.configs_record(group_id, dict(configs))])
        for key, partition in self._partitions.items():
            if key[0] == group_id:
                partition.lock_duration_ms = self._lock_duration(group_id)

    # -- share sessions -------------------------------------------------------

    def session(self, group_id: str, member_id: str, epoch: int, node_id: int) -> ShareSession:
        """The session on ``node_id`` a request with this (non-initial) epoch continues; KafkaError if none."""
        session = self._sessions.get((group_id, member_id, node_id))
        if session is None:
            raise KafkaError(ErrorCode.SHARE_SESSION_NOT_FOUND, "Share session not found")
        if epoch != FINAL_EPOCH:
            if epoch != session.epoch:
                raise KafkaError(ErrorCode.INVALID_SHARE_SESSION_EPOCH,
                                 f"Share session epoch {epoch} is not the expected {session.epoch}")
            session.advance()
        return session

    def open_session(self, group_id: str, member_id: str, connection: Hashable, node_id: int) -> ShareSession:
        """Epoch 0: a new session on ``node_id``, opened on ``connection``, replacing any the member had
        there (its records stay held)."""
        session = self._sessions[(group_id, member_id, node_id)] = ShareSession(connection)
        return session

    def close_session(self, group_id: str, member_id: str, node_id: int) -> bool:
        """The session on ``node_id`` ends and the member's records in the partitions that broker leads
        go back; whether any did."""
        self._sessions.pop((group_id, member_id, node_id), None)
        return self._release(group_id, member_id, node_id)

    def end_member(self, group_id: str, member_id: str) -> bool:
        """The member's group session timed out: every share session it had ends and all it holds goes back."""
        for key in [k for k in self._sessions if k[:2] == (group_id, member_id)]:
            del self._sessions[key]
        return self._release(group_id, member_id, None)

    def connection_closed(self, connection: Hashable) -> bool:
        """The sessions that ``connection`` opened end; whether any record was released."""
        ended = [key for key, session in self._sessions.items() if session.connection == connection]
        released = False
        for group_id, member_id, node_id in ended:
            released |= self.close_session(group_id, member_id, node_id)
        return released

    # -- records ----------------------------------------------------------------

    def _share_partition(self, group_id: str, topic_id: uuid.UUID, index: int) -> SharePartition:
        key = (group_id, str(topic_id), index)
        partition = self._partitions.get(key)
        if partition is None:
            log = self._log(topic_id, index)
            reset = self._store.configs.get(group_id, {}).get(AUTO_OFFSET_RESET, "latest")
            start = log.log_start_offset if reset == "earliest" else log.high_watermark
            partition = self._partitions[key] = SharePartition(start, **self._partition_settings(group_id))
        return partition

    def _partition_settings(self, group_id: str) -> dict[str, int]:
        return {"lock_duration_ms": self._lock_duration(group_id),
                "delivery_count_limit": self.settings.delivery_count_limit,
                "max_record_locks": self.settings.partition_max_record_locks}

    def _missing_partition(self, topic_id: uuid.UUID, index: int) -> KafkaError | None:
        """UNKNOWN_TOPIC_ID or UNKNOWN_TOPIC_OR_PARTITION when the partition does not exist (any more)."""
        topic = self._logs.topic_by_id(topic_id)
        if topic is None:
            return KafkaError(ErrorCode.UNKNOWN_TOPIC_ID, f"Unknown topic id {topic_id}")
        if not 0 <= index < len(topic.partitions):
            return KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"Unknown partition {index}")
        return None

    def _log(self, topic_id: uuid.UUID, index: int) -> PartitionLog:
        """The partition's log, at its leader in a cluster."""
        missing = self._missing_partition(topic_id, index)
        if missing is not None:
            raise missing
        topic = self._logs.topic_by_id(topic_id)
        return topic.partitions[index] if self._leader_log is None else self._leader_log(topic.name, index)

    def _led_by(self, key: PartitionKey, node_id: int | None) -> bool:
        """Whether ``node_id`` leads the partition of ``key`` (None, or a broker alone: every partition)."""
        if node_id is None or self._leader_node is None:
            return True
        topic = self._logs.topic_by_id(uuid.UUID(key[1]))
        return topic is not None and self._leader_node(topic.name, key[2]) == node_id

    def read_committed(self, group_id: str) -> bool:
        return self._store.configs.get(group_id, {}).get(ISOLATION_LEVEL) == "read_committed"

    def acquire(self, group_id: str, member_id: str, topic_id: uuid.UUID, index: int, *,
                max_bytes: int, max_records: int, record_limit: bool = False) -> tuple[bytes, list[Acquired]]:
        """Read batches from the partition's next available offset and acquire their records for the member.

        Returns the batches (whole, as stored, cut after the last one with an
        acquired record) and the acquired ranges; KafkaError for an unknown
        topic or partition or a log that cannot be read. A read_committed
        group (``share.isolation.level``) reads up to the last stable offset
        and archives the batches of aborted transactions, as Kafka does;
        control batches are archived by every group.
        """
        log = self._log(topic_id, index)
        partition = self._share_partition(group_id, topic_id, index)
        partition.move_start(log.log_start_offset)
        committed = self.read_committed(group_id)
        while True:  # a read that only archives (an aborted transaction, markers) goes on to the next
            offset = partition.next_fetch_offset()
            if offset >= (log.last_stable_offset if committed else log.high_watermark) or max_records <= 0:
                return b"", []
            data = log.read(offset, max(max_bytes, 1), committed=committed)
            spans = list(_batch_spans(data))
            batches = [FetchedBatch(h.base_offset, h.last_offset, not h.is_control and not (
                committed and h.is_transactional and log.is_aborted(h.producer_id, h.base_offset)))
                for h, _ in spans]
            acquired = partition.acquire(member_id, batches, max_records, self._clock(), record_limit=record_limit)
            if acquired:
                break
            if partition.next_fetch_offset() <= offset:
                return b"", []
        last_acquired = acquired[-1].last_offset
        end = next(stop for h, stop in spans if h.last_offset >= last_acquired)
        self._schedule_lock(group_id, topic_id, index, partition)
        return bytes(data[:end]), acquired

    def acknowledge(self, group_id: str, member_id: str,
                    acks: Mapping[SessionPartition, Sequence[tuple[int, int, Sequence[int]]]]
                    ) -> tuple[dict[SessionPartition, ErrorCode], bool]:
        """Apply acknowledgements partition by partition; the errors, and whether records became available."""
        results: dict[SessionPartition, ErrorCode] = {}
        changed: list[PartitionKey] = []
        for (topic_id, index), batches in acks.items():
            if not batches:
                continue
            key = (group_id, str(topic_id), index)
            missing = self._missing_partition(topic_id, index)
            if missing is not None:  # deleted: its share state goes with it, as in Kafka
                results[topic_id, index] = missing.code
                self._forget([key] if key in self._partitions else [])
                continue
            partition = self._partitions.get(key)
            if partition is None:
                results[topic_id, index] = ErrorCode.INVALID_RECORD_STATE
                continue
            results[topic_id, index] = partition.acknowledge_batches(member_id, batches, now_ms=self._clock())
            if results[topic_id, index] is ErrorCode.NONE:
                changed.append(key)
                self._schedule_lock(group_id, topic_id, index, partition)  # a RENEW moves a lock's deadline
        self._persist(changed)
        released = any(
            types_release(batches) for (topic_id, index), batches in acks.items()
            if results.get((topic_id, index)) is ErrorCode.NONE)
        return results, released

    def _release(self, group_id: str, member_id: str, node_id: int | None) -> bool:
        """Release what the member holds in the partitions ``node_id`` leads (None: everywhere)."""
        changed = [key for key, partition in self._partitions.items()
                   if key[0] == group_id and self._led_by(key, node_id) and partition.release_member(member_id)]
        self._persist(changed)
        return bool(changed)

    def leadership_moved(self, topic: str, index: int) -> bool:
        """A new leader took the partition: every group's acquired records there become available again
        with their delivery counts, as Kafka's new leader finds them in the persisted state; whether any did."""
        found = self._logs.topic(topic)
        if found is None:
            return False
        keys = [key for key, partition in self._partitions.items()
                if key[1:] == (str(found.topic_id), index) and partition.expire_locks(EVERY_LOCK_MS)]
        self._persist(keys)
        for group_id, _, _ in keys:
            self._schedule_lock(group_id, found.topic_id, index, self._partitions[group_id, str(found.topic_id), index])
        return bool(keys)

    def _persist(self, keys: Iterable[PartitionKey]) -> None:
        self._store.write(ShareStateStore.partition_record(key, self._partitions[key].snapshot()) for key in keys)

    def _schedule_lock(self, group_id: str, topic_id: uuid.UUID, index: int, partition: SharePartition) -> None:
        deadline = partition.next_lock_deadline()
        timer = ("lock", group_id, str(topic_id), index)
        if deadline is None:
            self._timers.cancel(timer)
        else:
            self._timers.schedule(timer, deadline)

    # -- admin: share-group offsets -----------------------------------------

    def start_offsets(self, group_id: str) -> dict[tuple[uuid.UUID, int], int]:
        """The share-partition start offset of every partition the group has state for."""
        return {(uuid.UUID(key[1]), key[2]): p.start_offset for key, p in self._partitions.items()
                if key[0] == group_id}

    def lag(self, group_id: str, topic_id: uuid.UUID, index: int) -> int:
        """DescribeShareGroupOffsets v1's lag of one share partition; -1 when the group has no state for it."""
        partition = self._partitions.get((group_id, str(topic_id), index))
        return -1 if partition is None else partition.lag(self._log(topic_id, index).high_watermark)

    def alter_start_offset(self, group_id: str, topic_id: uuid.UUID, index: int, offset: int) -> None:
        """AlterShareGroupOffsets for an Empty group: the partition starts over at ``offset``."""
        key = (group_id, str(topic_id), index)
        partition = self._partitions.get(key) or SharePartition(offset, **self._partition_settings(group_id))
        partition.reset(offset)
        self._partitions[key] = partition
        if group_id not in self._groups:
            group = self._groups[group_id] = ShareGroup(group_id)
            self._store.write([ShareStateStore.group_record(group_id, group.snapshot())])
        self._persist([key])

    def delete_start_offsets(self, group_id: str, topic_id: uuid.UUID) -> None:
        """DeleteShareGroupOffsets: the group forgets its state for the topic."""
        self._forget([k for k in self._partitions if k[0] == group_id and k[1] == str(topic_id)])

    def _forget(self, keys: list[PartitionKey]) -> None:
        self._store.write(ShareStateStore.partition_record(key, None) for key in keys)
        for key in keys:
            del self._partitions[key]
            self._timers.cancel(("lock", *key))

    # -- timers ---------------------------------------------------------------

    def next_deadline_ms(self) -> int | None:
        return self._timers.next_deadline()

    def tick(self, now_ms: int) -> bool:
        """Expire sessions and acquisition locks due by ``now_ms``; whether records became available."""
        released = False
        while (key := self._timers.pop_due(now_ms)) is not None:
            if key[0] == "initialize":
                group = self._groups.get(key[1])
                if group is not None and group.initialize(self._topic_lookup):
                    self._store.write([ShareStateStore.group_record(group.group_id, group.snapshot())])
            elif key[0] == "session":
                _, group_id, member_id = key
                group = self._groups.get(group_id)
                if group is not None and member_id in group.members and \
                        group.members[member_id].session_deadline_ms <= now_ms:
                    group.remove(member_id)
                    self._persist_membership(group, member_id)
                    released |= self.end_member(group_id, member_id)
            else:
                _, group_id, topic_id, index = key
                partition = self._partitions.get((group_id, topic_id, index))
                if partition is not None and partition.expire_locks(now_ms):
                    self._persist([(group_id, topic_id, index)])
                    released = True
                if partition is not None:
                    self._schedule_lock(group_id, uuid.UUID(topic_id), index, partition)
        return released


def types_release(batches: Sequence[tuple[int, int, Sequence[int]]]) -> bool:
    """Whether any of these acknowledgements releases records (so waiting fetches may find some)."""
    return any(2 in types for _, _, types in batches)


def _batch_spans(data: bytes | memoryview) -> Iterable[tuple[BatchHeader, int]]:
    """The header and end position of each whole batch in ``data``."""
    position = 0
    while position + BATCH_HEADER.size <= len(data):
        header = read_header(data, position)
        end = position + header.batch_length + LOG_OVERHEAD
        if end > len(data):
            return
        yield header, end
        position = end
