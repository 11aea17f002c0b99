"""What the HTTP side reads from the engines, in one place: offsets, lag, group views.

Called on the broker's event loop; each function reads state as it is at that
moment and copies out plain values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kafkacompat.group.consumer_protocol import assigned_partitions

if TYPE_CHECKING:
    from kafkacompat.broker import Broker

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
