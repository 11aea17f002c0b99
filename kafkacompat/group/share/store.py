"""The share coordinator's durable state: share groups and their members, configs, share-partition snapshots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

from kafkacompat.group.journal import Journal

STATE_DIR = "__share_group_state"
# Rewrite the journal once it holds this many more records than live keys.
_COMPACT_SLACK = 1000

PartitionKey = tuple[str, str, int]  # group id, topic id (text), partition index
MemberKey = tuple[str, str]  # group id, member id


class ShareStateStore:
    """Every share group and its members, group configs and every share-partition snapshot.

    On-disk format: one :class:`Journal` at ``<data_dir>/__share_group_state/
    share-state.journal`` whose payloads are JSON objects, replayed in order,
    the last record for a key winning: ``{"group": G, "epoch": E, ...}`` for a
    group (ShareGroup.snapshot: its epochs and the subscribed topics it last
    saw), ``{"group": G, "configs": {...}}`` for its configs, ``{"group": G,
    "member": M, "state": {...}}`` for a member (ShareGroup.member_snapshot:
    what Kafka's ShareGroupMemberMetadata and current-assignment records
    hold), ``{"group": G, "topic_id": T, "partition": P, "state": {...}}`` for
    a share partition, and the same keys with ``"deleted": true`` to remove
    one; a deleted group takes its members and partitions with it. A share partition's state (SharePartition.snapshot) is what
    Kafka's ShareSnapshot record holds: ``{"start_offset": SPSO,
    "end_offset": SPEO, "state_epoch": E, "batches": [[first, last,
    state, delivery_count], ...]}``, one entry per in-flight range (state 0
    available, 2 acknowledged, 4 archived; an acquired range is written as
    available with the count its acquisition gave it). The coordinator
    writes it when acknowledgements, releases (a share session ending) or
    expired locks change the partition, one record per partition and
    request, never per record. Every write is fsynced before it returns; the
    journal is rewritten with only the live records when it grows.
    Not safe for concurrent use; the share coordinator serialises access.
    """

    def __init__(self, data_dir: Path) -> None:
        path = Path(data_dir) / STATE_DIR / "share-state.journal"
        self.groups: dict[str, dict[str, Any]] = {}  # group id -> ShareGroup.snapshot()
        self.members: dict[MemberKey, dict[str, Any]] = {}
        self.configs: dict[str, dict[str, str]] = {}
        self.partitions: dict[PartitionKey, dict[str, Any]] = {}
        records = Journal.read(path)
        for payload in records:
            self._apply(json.loads(payload))
        self._journal = Journal(path)
        self._records = len(records)

    def _apply(self, record: dict[str, Any]) -> None:
        group = record["group"]
        if "partition" in record:
            key = (group, record["topic_id"], int(record["partition"]))
            if record.get("deleted"):
                self.partitions.pop(key, None)
            else:
                self.partitions[key] = record["state"]
        elif "member" in record:
            if record.get("deleted"):
                self.members.pop((group, record["member"]), None)
            else:
                self.members[group, record["member"]] = record["state"]
        elif record.get("deleted"):
            self.groups.pop(group, None)
            self.configs.pop(group, None)
            for keyed in (self.partitions, self.members):
                for key in [k for k in keyed if k[0] == group]:
                    del keyed[key]
        elif "configs" in record:
            self.configs[group] = record["configs"]
        else:
            self.groups[group] = {name: value for name, value in record.items() if name != "group"}

    @staticmethod
    def group_record(group_id: str, state: dict[str, Any]) -> dict[str, Any]:
        return {"group": group_id, **state}

    @staticmethod
    def member_record(key: MemberKey, state: dict[str, Any] | None) -> dict[str, Any]:
        group, member = key
        return {"group": group, "member": member, **({"deleted": True} if state is None else {"state": state})}

    @staticmethod
    def configs_record(group_id: str, configs: dict[str, str]) -> dict[str, Any]:
        return {"group": group_id, "configs": configs}

    @staticmethod
    def partition_record(key: PartitionKey, state: dict[str, Any] | None) -> dict[str, Any]:
        group, topic_id, partition = key
        record: dict[str, Any] = {"group": group, "topic_id": topic_id, "partition": partition}
        if state is None:
            record["deleted"] = True
        else:
            record["state"] = state
        return record

    @staticmethod
    def deleted_group(group_id: str) -> dict[str, Any]:
        return {"group": group_id, "deleted": True}

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        """Append and fsync the records (one write for all), then apply them."""
        records = list(records)
        if not records:
            return
        self._journal.append(json.dumps(r, sort_keys=True).encode() for r in records)
        for record in records:
            self._apply(record)
        self._records += len(records)
        live = len(self.groups) + len(self.configs) + len(self.partitions) + len(self.members)
        if self._records > live + _COMPACT_SLACK:
            self._compact()

    def _compact(self) -> None:
        live = [self.group_record(g, state) for g, state in self.groups.items()]
        live += [self.configs_record(g, configs) for g, configs in self.configs.items()]
        live += [self.member_record(k, v) for k, v in self.members.items()]
        live += [self.partition_record(k, v) for k, v in self.partitions.items()]
        self._journal.rewrite(json.dumps(r, sort_keys=True).encode() for r in live)
        self._records = len(live)

    def close(self) -> None:
        self._journal.close()
