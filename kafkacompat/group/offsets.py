"""Durable committed offsets and group snapshots (our ``__consumer_offsets``)."""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping

from kafkacompat.group.journal import Journal
from kafkacompat.group.results import TopicPartition
from kafkacompat.protocol.errors import ErrorCode

log = logging.getLogger("kafkacompat.group")

JOURNAL_NAME = "offsets.journal"

# Compact once this many records were appended beyond the live state's size.
COMPACT_MIN_GARBAGE = 10_000

_OFFSET, _OFFSET_DELETE, _GROUP, _GROUP_DELETE, _CONSUMER_GROUP = 1, 2, 3, 4, 5
_NULL = 0xFFFFFFFF
_I32, _I64, _U32 = struct.Struct(">i"), struct.Struct(">q"), struct.Struct(">I")


@dataclass(frozen=True)
class CommittedOffset:
    """One committed position; ``expire_timestamp_ms`` only for v2-4 commits with a retention time."""

    offset: int
    leader_epoch: int = -1
    metadata: str = ""
    commit_timestamp_ms: int = 0
    expire_timestamp_ms: int | None = None


@dataclass(frozen=True)
class MemberSnapshot:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    rebalance_timeout_ms: int
    session_timeout_ms: int
    subscription: bytes
    assignment: bytes


@dataclass(frozen=True)
class GroupSnapshot:
    """A group as of its last Stable or Empty generation, like Kafka's group metadata record."""

    group_id: str
    protocol_type: str | None
    generation_id: int
    protocol_name: str | None
    leader_id: str | None
    state_timestamp_ms: int
    members: tuple[MemberSnapshot, ...]


def write_or_error(write: Callable[[], None]) -> ErrorCode:
    """Run a store write; a disk failure becomes Kafka's answer to a storage error."""
    try:
        write()
    except OSError:
        log.exception("writing the offsets journal failed")
        return ErrorCode.NOT_COORDINATOR
    return ErrorCode.NONE


class _Writer:
    def __init__(self, record_type: int) -> None:
        self.buf = bytearray((record_type,))

    def i32(self, value: int) -> _Writer:
        self.buf += _I32.pack(value)
        return self

    def i64(self, value: int) -> _Writer:
        self.buf += _I64.pack(value)
        return self

    def blob(self, value: bytes | None) -> _Writer:
        if value is None:
            self.buf += _U32.pack(_NULL)
        else:
            self.buf += _U32.pack(len(value)) + value
        return self

    def text(self, value: str | None) -> _Writer:
        return self.blob(None if value is None else value.encode())


class _Reader:
    def __init__(self, payload: bytes) -> None:
        self.data, self.pos = payload, 1

    def _take(self, fmt: struct.Struct) -> int:
        (value,) = fmt.unpack_from(self.data, self.pos)
        self.pos += fmt.size
        return value

    def i32(self) -> int:
        return self._take(_I32)

    def i64(self) -> int:
        return self._take(_I64)

    def blob(self) -> bytes | None:
        length = self._take(_U32)
        if length == _NULL:
            return None
        value = self.data[self.pos : self.pos + length]
        self.pos += length
        return value

    def text(self) -> str | None:
        value = self.blob()
        return None if value is None else value.decode()


def _encode_offset(group_id: str, tp: TopicPartition, committed: CommittedOffset) -> bytes:
    expire = -1 if committed.expire_timestamp_ms is None else committed.expire_timestamp_ms
    w = _Writer(_OFFSET).text(group_id).text(tp.topic).i32(tp.partition)
    w.i64(committed.offset).i32(committed.leader_epoch).text(committed.metadata)
    return bytes(w.i64(committed.commit_timestamp_ms).i64(expire).buf)


def _encode_offset_delete(group_id: str, tp: TopicPartition) -> bytes:
    return bytes(_Writer(_OFFSET_DELETE).text(group_id).text(tp.topic).i32(tp.partition).buf)


def _encode_group(snapshot: GroupSnapshot) -> bytes:
    w = _Writer(_GROUP).text(snapshot.group_id).text(snapshot.protocol_type).i32(snapshot.generation_id)
    w.text(snapshot.protocol_name).text(snapshot.leader_id).i64(snapshot.state_timestamp_ms)
    w.i32(len(snapshot.members))
    for m in snapshot.members:
        w.text(m.member_id).text(m.group_instance_id).text(m.client_id).text(m.client_host)
        w.i32(m.rebalance_timeout_ms).i32(m.session_timeout_ms).blob(m.subscription).blob(m.assignment)
    return bytes(w.buf)


def _encode_consumer_group(group_id: str, state: bytes) -> bytes:
    return bytes(_Writer(_CONSUMER_GROUP).text(group_id).blob(state).buf)


def _encode_group_delete(group_id: str) -> bytes:
    return bytes(_Writer(_GROUP_DELETE).text(group_id).buf)


class OffsetStore:
    """Committed offsets per group/topic/partition, plus each group's last snapshot.

    On-disk format: one :class:`Journal` (``<directory>/offsets.journal``) of
    records, each a type byte then fields (big-endian ints; strings and bytes
    as u32 length + data, 0xFFFFFFFF for null): 1 = offset commit (group,
    topic, partition, offset, leader epoch, metadata, commit time, expire time
    or -1), 2 = offset deletion (group, topic, partition), 3 = group snapshot,
    4 = group deletion (drops its snapshot and every offset), 5 = KIP-848
    consumer group state (group, JSON bytes; replaces a classic snapshot). Replaying the
    journal in order rebuilds the state; at open, and whenever dead records
    outnumber live ones, the journal is rewritten with just the live state.
    Every write is fsynced before the method returns, so an acknowledged
    commit survives a crash; a torn tail from a crash mid-write is ignored.
    Not safe for concurrent use; the coordinator serialises access.
    """

    def __init__(self, directory: Path) -> None:
        self._offsets: dict[str, dict[TopicPartition, CommittedOffset]] = {}
        self._snapshots: dict[str, GroupSnapshot] = {}
        self._consumer_groups: dict[str, bytes] = {}
        path = directory / JOURNAL_NAME
        for payload in Journal.read(path):
            self._replay(payload)
        self._journal = Journal(path)
        self._compact()

    # -- reads ------------------------------------------------------------

    def group_ids(self) -> set[str]:
        """Every group with a snapshot or at least one committed offset."""
        return set(self._snapshots) | set(self._offsets) | set(self._consumer_groups)

    def snapshot(self, group_id: str) -> GroupSnapshot | None:
        return self._snapshots.get(group_id)

    def consumer_group(self, group_id: str) -> bytes | None:
        return self._consumer_groups.get(group_id)

    def offsets(self, group_id: str) -> Mapping[TopicPartition, CommittedOffset]:
        return self._offsets.get(group_id, {})

    # -- writes (each fsynced) -------------------------------------------

    def commit(self, group_id: str, offsets: Mapping[TopicPartition, CommittedOffset]) -> None:
        self._write([_encode_offset(group_id, tp, committed) for tp, committed in offsets.items()])

    def delete_offsets(self, group_id: str, partitions: Iterable[TopicPartition]) -> None:
        self._write([_encode_offset_delete(group_id, tp) for tp in partitions])

    def store_group(self, snapshot: GroupSnapshot) -> None:
        self._write([_encode_group(snapshot)])

    def store_consumer_group(self, group_id: str, state: bytes) -> None:
        self._write([_encode_consumer_group(group_id, state)])

    def delete_group(self, group_id: str) -> None:
        self._write([_encode_group_delete(group_id)])

    def close(self) -> None:
        self._journal.close()

    # -- internals --------------------------------------------------------

    def _write(self, payloads: list[bytes]) -> None:
        """Append, then apply through the same replay path a restart uses."""
        if not payloads:
            return
        self._journal.append(payloads)
        for payload in payloads:
            self._replay(payload)
        self._appended += len(payloads)
        if self._appended > max(COMPACT_MIN_GARBAGE, self._live_records()):
            self._compact()

    def _live_records(self) -> int:
        return len(self._snapshots) + len(self._consumer_groups) + sum(len(offsets) for offsets in self._offsets.values())

    def _compact(self) -> None:
        payloads = [_encode_group(snapshot) for snapshot in self._snapshots.values()]
        payloads.extend(_encode_consumer_group(group_id, state) for group_id, state in self._consumer_groups.items())
        for group_id, offsets in self._offsets.items():
            payloads.extend(_encode_offset(group_id, tp, committed) for tp, committed in offsets.items())
        self._journal.rewrite(payloads)
        self._appended = 0

    def _replay(self, payload: bytes) -> None:
        r = _Reader(payload)
        record_type = payload[0]
        group_id = r.text() or ""
        if record_type == _OFFSET:
            tp = TopicPartition(r.text() or "", r.i32())
            offset, leader_epoch, metadata, commit_ts, expire = r.i64(), r.i32(), r.text(), r.i64(), r.i64()
            self._offsets.setdefault(group_id, {})[tp] = CommittedOffset(
                offset, leader_epoch, metadata or "", commit_ts, None if expire < 0 else expire
            )
        elif record_type == _OFFSET_DELETE:
            offsets = self._offsets.get(group_id, {})
            offsets.pop(TopicPartition(r.text() or "", r.i32()), None)
            if not offsets:
                self._offsets.pop(group_id, None)
        elif record_type == _GROUP:
            self._snapshots[group_id] = self._read_group(group_id, r)
            self._consumer_groups.pop(group_id, None)
        elif record_type == _CONSUMER_GROUP:
            self._consumer_groups[group_id] = r.blob() or b""
            self._snapshots.pop(group_id, None)
        elif record_type == _GROUP_DELETE:
            self._snapshots.pop(group_id, None)
            self._consumer_groups.pop(group_id, None)
            self._offsets.pop(group_id, None)
        else:
            raise ValueError(f"unknown offsets journal record type {record_type}")

    @staticmethod
    def _read_group(group_id: str, r: _Reader) -> GroupSnapshot:
        protocol_type, generation_id = r.text(), r.i32()
        protocol_name, leader_id, state_ts = r.text(), r.text(), r.i64()
        members = tuple(
            MemberSnapshot(
                member_id=r.text() or "",
                group_instance_id=r.text(),
                client_id=r.text() or "",
                client_host=r.text() or "",
                rebalance_timeout_ms=r.i32(),
                session_timeout_ms=r.i32(),
                subscription=r.blob() or b"",
                assignment=r.blob() or b"",
            )
            for _ in range(r.i32())
        )
        return GroupSnapshot(group_id, protocol_type, generation_id, protocol_name, leader_id, state_ts, members)
