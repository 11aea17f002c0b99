"""What the HTTP side reads from the engines, in one place: offsets, lag, group views.

Called on the broker's event loop; each function reads state as it is at that
moment and copies out plain values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from kafkacompat.group.classic.consumer_protocol import assigned_partitions
from kafkacompat.protocol.errors import KafkaError
from kafkacompat.protocol.records import Record, decode_records, parse_batches

if TYPE_CHECKING:
    from kafkacompat.broker import Broker
    from kafkacompat.log.partition_log import PartitionLog

READ_BYTES = 1 << 20

Lags = dict[tuple[str, str, int], int]


def high_watermarks(broker: Broker) -> dict[tuple[str, int], int]:
    return {(t.name, p.index): p.high_watermark for t in broker.log_manager.topics() for p in t.partitions}


def records_in_by_topic(broker: Broker) -> dict[str, int]:
    """Per topic, the sum of its partitions' log end offsets: it grows by one per record appended."""
    return {t.name: sum(p.log_end_offset for p in t.partitions) for t in broker.log_manager.topics()}


def group_lags(broker: Broker, ends: dict[tuple[str, int], int] | None = None) -> Lags:
    """(group, topic, partition) -> high watermark minus committed offset, for every committed offset."""
    ends = high_watermarks(broker) if ends is None else ends
    lags: Lags = {}
    groups = broker.groups
    for listing in groups.list_groups():
        for tp, committed in groups.fetch_offsets(listing.group_id, None).items():
            end = ends.get((tp.topic, tp.partition))
            if committed is not None and end is not None:
                lags[(listing.group_id, tp.topic, tp.partition)] = max(end - committed.offset, 0)
    return lags


def group_view(broker: Broker, group_id: str) -> dict[str, Any] | None:
    """State, members with their assignments, committed offsets with lag; None for an unknown group."""
    coordinator = broker.groups
    if not any(g.group_id == group_id for g in coordinator.list_groups()):
        return None
    described = coordinator.describe_group(group_id)
    ends = high_watermarks(broker)
    offsets = []
    for tp, committed in coordinator.fetch_offsets(group_id, None).items():
        if committed is None:
            continue
        end = ends.get((tp.topic, tp.partition))
        offsets.append({
            "topic": tp.topic, "partition": tp.partition, "committed": committed.offset,
            "high_watermark": end, "lag": None if end is None else max(end - committed.offset, 0),
        })
    return {
        "group_id": group_id,
        "state": described.state.value,
        "protocol_type": described.protocol_type,
        "protocol": described.protocol_name,
        "members": [
            {"member_id": m.member_id, "group_instance_id": m.group_instance_id, "client_id": m.client_id,
             "client_host": m.client_host,
             "partitions": [{"topic": t, "partition": p} for t, p in assigned_partitions(m.assignment)]}
            for m in described.members
        ],
        "offsets": offsets,
    }


def read_records(partition: PartitionLog, start: int, limit: int, scan_bytes: int,
                 matches: Callable[[Record], bool] | None = None) -> tuple[list[Record], int | None]:
    """Up to ``limit`` data records at or after ``start`` (those ``matches`` accepts), reading at most
    about ``scan_bytes``; and the offset to continue from, None at the high watermark.

    ``start`` is always read, so one outside the log raises KafkaError
    (OFFSET_OUT_OF_RANGE) as a Fetch would answer; a later read that fails
    (retention moved the log start) ends the scan.
    Control batches are skipped; records are decoded batch by batch, only as
    far as the page needs.
    """
    found: list[Record] = []
    offset, scanned = start, 0
    while offset == start or (len(found) < limit and offset < partition.high_watermark and scanned < scan_bytes):
        try:
            blob = bytes(partition.read(offset, READ_BYTES))
        except KafkaError:
            if offset == start:
                raise
            break
        if not blob:
            break
        scanned += len(blob)
        read_from = offset
        for header in parse_batches(blob):
            if not header.is_control:
                for record in decode_records(memoryview(blob)[header.position:header.end]):
                    if record.offset >= offset and (matches is None or matches(record)):
                        found.append(record)
                        if len(found) == limit:
                            return found, record.offset + 1
            offset = max(offset, header.last_offset + 1)
        if offset == read_from:  # nothing whole to step over
            break
    return found, (offset if offset < partition.high_watermark else None)
