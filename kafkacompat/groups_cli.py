"""``kafkacompat groups list|describe``: what kafka-consumer-groups.sh shows.

Talks to a running broker over the wire with our own client, so it works
against any Kafka broker, not only kafkacompat.
"""

from __future__ import annotations

import argparse
import struct
from typing import Any

from kafkacompat.client import KafkaClient
from kafkacompat.protocol import decode_data
from kafkacompat.protocol.errors import ErrorCode

LIST_GROUPS, DESCRIBE_GROUPS, OFFSET_FETCH, LIST_OFFSETS = 16, 15, 9, 2
LATEST_OFFSET = -1


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    groups = sub.add_parser("groups", help="list and describe consumer groups")
    groups.add_argument("--bootstrap-server", default="127.0.0.1:9092")
    actions = groups.add_subparsers(dest="groups_command", required=True)
    actions.add_parser("list", help="one line per group: id, state, protocol type")
    describe = actions.add_parser("describe", help="state, members, assignments, offsets and lag")
    describe.add_argument("group")


def _assigned_partitions(assignment: bytes) -> list[tuple[str, int]]:
    if not assignment:
        return []
    (version,) = struct.unpack_from(">h", assignment)
    decoded = decode_data("consumer_protocol_assignment", version, assignment[2:])
    return [(t.topic, p) for t in decoded.assigned_partitions for p in t.partitions]


def _check(code: int, what: str) -> None:
    if code != ErrorCode.NONE:
        raise SystemExit(f"{what}: {ErrorCode(code).name}")


def list_groups(client: KafkaClient) -> list[tuple[str, str, str]]:
    response = client.request(LIST_GROUPS, 4, {"states_filter": []})
    _check(response.error_code, "ListGroups")
    return sorted((g.group_id, g.group_state, g.protocol_type) for g in response.groups)


def describe_group(client: KafkaClient, group_id: str) -> dict[str, Any]:
    described = client.request(DESCRIBE_GROUPS, 5, {"groups": [group_id]}).groups[0]
    _check(described.error_code, f"DescribeGroups {group_id}")
    members = [
        {
            "member_id": m.member_id,
            "group_instance_id": m.group_instance_id,
            "client_id": m.client_id,
            "client_host": m.client_host,
            "partitions": _assigned_partitions(m.member_assignment),
        }
        for m in described.members
    ]
    fetched = client.request(OFFSET_FETCH, 7, {"group_id": group_id, "topics": None})
    _check(fetched.error_code, f"OffsetFetch {group_id}")
    committed = {
        (t.name, p.partition_index): p.committed_offset
        for t in fetched.topics for p in t.partitions if p.committed_offset >= 0
    }
    ends = _log_end_offsets(client, sorted(committed))
    offsets = [
        {"topic": topic, "partition": partition, "committed": offset,
         "log_end": ends.get((topic, partition), -1),
         "lag": max(ends.get((topic, partition), offset) - offset, 0)}
        for (topic, partition), offset in sorted(committed.items())
    ]
    return {"group_id": group_id, "state": described.group_state,
            "protocol": described.protocol_data, "members": members, "offsets": offsets}


def _log_end_offsets(client: KafkaClient, partitions: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
    if not partitions:
        return {}
    by_topic: dict[str, list[int]] = {}
    for topic, partition in partitions:
        by_topic.setdefault(topic, []).append(partition)
    response = client.request(LIST_OFFSETS, 7, {
        "replica_id": -1,
        "topics": [
            {"name": topic, "partitions": [{"partition_index": p, "timestamp": LATEST_OFFSET} for p in parts]}
            for topic, parts in by_topic.items()
        ],
    })
    return {(t.name, p.partition_index): p.offset for t in response.topics for p in t.partitions}


def run(args: argparse.Namespace) -> int:
    with KafkaClient(args.bootstrap_server) as client:
        if args.groups_command == "list":
            print(f"{'GROUP':<40} {'STATE':<20} PROTOCOL-TYPE")
            for group_id, state, protocol_type in list_groups(client):
                print(f"{group_id:<40} {state:<20} {protocol_type}")
            return 0
        group = describe_group(client, args.group)
    print(f"GROUP {group['group_id']}  STATE {group['state']}  ASSIGNOR {group['protocol'] or '-'}")
    print(f"{'MEMBER':<60} {'CLIENT-ID':<24} {'HOST':<16} PARTITIONS")
    for m in group["members"]:
        parts = ",".join(f"{t}-{p}" for t, p in m["partitions"]) or "-"
        print(f"{m['member_id']:<60} {m['client_id']:<24} {m['client_host']:<16} {parts}")
    print(f"{'TOPIC':<30} {'PARTITION':>9} {'COMMITTED':>12} {'LOG-END':>12} {'LAG':>8}")
    for o in group["offsets"]:
        print(f"{o['topic']:<30} {o['partition']:>9} {o['committed']:>12} {o['log_end']:>12} {o['lag']:>8}")
    return 0
