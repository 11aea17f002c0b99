"""``kafkacompat groups list|describe``: what kafka-consumer-groups.sh (and kafka-share-groups.sh) show.

Groups are listed from every broker (each lists the groups it coordinates);
a group is described by its coordinator, and lag is measured against the
log end offsets at the partitions' leaders.
"""

from __future__ import annotations

import argparse
from typing import Any

from kafkacompat.client import ApiKey, ClientError, Cluster, check
from kafkacompat.group.classic.consumer_protocol import assigned_partitions
from kafkacompat.tools import output

LATEST_OFFSET, EARLIEST_OFFSET = -1, -2
CONSUMER_MEMBER = 1  # ConsumerGroupDescribe's member_type: 0 classic protocol, 1 consumer protocol
RESET_TARGETS = ("earliest", "latest", "timestamp", "offset")
# A group may have its offsets moved only while nobody consumes (kafka-consumer-groups.sh's rule).
INACTIVE_STATES = ("Empty", "Dead")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from kafkacompat.tools import common_options

    groups = sub.add_parser("groups", help="list and describe consumer groups")
    common_options(groups, leaf=False)
    actions = groups.add_subparsers(dest="groups_command", required=True)
    common_options(actions.add_parser("list", help="one line per group: id, state, protocol type, group type"))
    describe = actions.add_parser("describe", help="state, members, assignments, offsets and lag")
    describe.add_argument("group")
    common_options(describe)
    reset = actions.add_parser("reset-offsets", help="move an inactive group's committed offsets of a topic")
    reset.add_argument("group")
    reset.add_argument("--topic", required=True)
    reset.add_argument("--to", choices=RESET_TARGETS, required=True,
                       help="earliest, latest, the first offset at --value ms (timestamp) or offset --value")
    reset.add_argument("--value", default="", help="the timestamp (ms) or offset for --to timestamp|offset")
    common_options(reset)
    return groups


def list_groups(cluster: Cluster) -> list[tuple[str, str, str, str]]:
    """(group id, state, protocol type, group type); brokers before ListGroups v5 only have classic groups."""
    cluster.metadata([])
    found = set()
    for node_id in sorted(cluster.brokers):
        response = cluster.node(node_id).send(ApiKey.LIST_GROUPS, {"states_filter": [], "types_filter": []})
        check(response.error_code, f"ListGroups from broker {node_id}")
        found.update((g.group_id, g.group_state, g.protocol_type, g.get("group_type") or "classic")
                     for g in response.groups)
    return sorted(found)


def describe_share_group(cluster: Cluster, group_id: str) -> dict[str, Any] | None:
    """A share group (KIP-932) as kafka-share-groups.sh shows it; None when the id is not a share group.

    Its offsets are share-partition start offsets, its lag the records from there to the log end.
    """
    coordinator = cluster.coordinator(group_id)
    if ApiKey.SHARE_GROUP_DESCRIBE not in coordinator.api_versions():
        return None
    described = coordinator.send(ApiKey.SHARE_GROUP_DESCRIBE, {
        "group_ids": [group_id], "include_authorized_operations": False}).groups[0]
    if described.error_code != 0:
        return None
    members = [{"member_id": m.member_id, "group_instance_id": None, "client_id": m.client_id,
                "client_host": m.client_host,
                "partitions": [(t.topic_name, p) for t in m.assignment.topic_partitions for p in t.partitions]}
               for m in described.members]
    answer = coordinator.send(ApiKey.DESCRIBE_SHARE_GROUP_OFFSETS, {"groups": [{"group_id": group_id, "topics": None}]})
    starts = {(t.topic_name, p.partition_index): p.start_offset
              for t in answer.groups[0].topics for p in t.partitions if p.start_offset >= 0}
    ends = cluster.list_offsets(sorted(starts), LATEST_OFFSET) if starts else {}
    offsets = [{"topic": topic, "partition": partition, "committed": start, "log_end": ends.get((topic, partition), -1),
                "lag": max(ends.get((topic, partition), start) - start, 0)}
               for (topic, partition), start in sorted(starts.items())]
    return {"group_id": group_id, "state": described.group_state, "protocol": described.assignor_name,
            "type": "share", "members": members, "offsets": offsets}


def consumer_group_epochs(coordinator: Any, group_id: str) -> dict[str, Any] | None:
    """A KIP-848 group's epochs, and each member's epoch and whether it uses the consumer protocol
    (kafka-consumer-groups.sh's UPGRADED: ConsumerGroupDescribe v1's member_type, None before v1);
    None for other groups."""
    try:
        answer = coordinator.send(ApiKey.CONSUMER_GROUP_DESCRIBE,
                                  {"group_ids": [group_id], "include_authorized_operations": False})
    except ClientError:
        return None  # a broker without KIP-848
    described = answer.groups[0]
    if described.error_code != 0:
        return None
    return {"group_epoch": described.group_epoch, "assignment_epoch": described.assignment_epoch,
            "member_epochs": {m.member_id: m.member_epoch for m in described.members},
            "upgraded": {m.member_id: None if m.get("member_type", -1) == -1 else m.member_type == CONSUMER_MEMBER
                         for m in described.members}}


def describe_group(cluster: Cluster, group_id: str) -> dict[str, Any]:
    coordinator = cluster.coordinator(group_id)
    described = coordinator.send(ApiKey.DESCRIBE_GROUPS, {"groups": [group_id]}).groups[0]
    check(described.error_code, f"DescribeGroups {group_id}")
    if described.group_state == "Dead":  # not a classic group: perhaps a share group
        share = describe_share_group(cluster, group_id)
        if share is not None:
            return share
    members = [
        {
            "member_id": m.member_id,
            "group_instance_id": m.group_instance_id,
            "client_id": m.client_id,
            "client_host": m.client_host,
            "partitions": assigned_partitions(m.member_assignment),
        }
        for m in described.members
    ]
    version = coordinator.version(ApiKey.OFFSET_FETCH, lowest=2)
    fetched = coordinator.request(ApiKey.OFFSET_FETCH, version, {
        "group_id": group_id, "topics": None, "groups": [{"group_id": group_id, "topics": None}]})
    if version >= 8:
        fetched = fetched.groups[0]
    check(fetched.error_code, f"OffsetFetch {group_id}")
    committed = {
        (t.name, p.partition_index): p.committed_offset
        for t in fetched.topics for p in t.partitions if p.committed_offset >= 0
    }
    ends = cluster.list_offsets(sorted(committed), LATEST_OFFSET) if committed else {}
    offsets = [
        {"topic": topic, "partition": partition, "committed": offset,
         "log_end": ends.get((topic, partition), -1),
         "lag": max(ends.get((topic, partition), offset) - offset, 0)}
        for (topic, partition), offset in sorted(committed.items())
    ]
    epochs = consumer_group_epochs(coordinator, group_id)
    for member in members:
        member["member_epoch"] = None if epochs is None else epochs["member_epochs"].get(member["member_id"])
        member["upgraded"] = None if epochs is None else epochs["upgraded"].get(member["member_id"])
    return {"group_id": group_id, "type": "classic" if epochs is None else "consumer", "state": described.group_state,
            "protocol": described.protocol_data, "members": members, "offsets": offsets,
            "group_epoch": None if epochs is None else epochs["group_epoch"],
            "assignment_epoch": None if epochs is None else epochs["assignment_epoch"]}


def reset_offsets(cluster: Cluster, group_id: str, topic: str, target: str, value: str = "") -> dict[int, int]:
    """Commit new offsets for every partition of ``topic``, as kafka-consumer-groups.sh --reset-offsets.

    ``offset`` targets are kept within each partition's log start and end;
    ``timestamp`` finds the first offset at or after it (the end when none).
    Refused while the group has members. Returns the committed offsets.
    """
    if target not in RESET_TARGETS:
        raise ClientError(f"reset to one of {', '.join(RESET_TARGETS)}, not {target!r}")
    if target in ("timestamp", "offset") and not value.lstrip("-").isdigit():
        raise ClientError(f"--to {target} needs an integer --value")
    coordinator = cluster.coordinator(group_id)
    described = coordinator.send(ApiKey.DESCRIBE_GROUPS, {"groups": [group_id]}).groups[0]
    check(described.error_code, f"DescribeGroups {group_id}")
    if described.group_state not in INACTIVE_STATES:
        raise ClientError(f"group {group_id!r} is {described.group_state}: offsets can be reset only "
                          "when it has no members")
    partitions = [(topic, p.partition_index) for p in cluster.topic(topic).partitions]
    earliest = cluster.list_offsets(partitions, EARLIEST_OFFSET)
    latest = cluster.list_offsets(partitions, LATEST_OFFSET)
    if target == "earliest":
        wanted = earliest
    elif target == "latest":
        wanted = latest
    elif target == "timestamp":
        found = cluster.list_offsets(partitions, int(value))
        wanted = {tp: latest[tp] if offset < 0 else offset for tp, offset in found.items()}
    else:
        wanted = {tp: min(max(int(value), earliest[tp]), latest[tp]) for tp in partitions}
    answer = coordinator.send(ApiKey.OFFSET_COMMIT, {
        "group_id": group_id, "generation_id_or_member_epoch": -1, "member_id": "", "topics": [{
            "name": topic, "partitions": [
                {"partition_index": p, "committed_offset": wanted[t, p], "committed_metadata": ""}
                for t, p in partitions]}]}, lowest=2)
    for result in answer.topics[0].partitions:
        check(result.error_code, f"OffsetCommit {topic}-{result.partition_index}")
    return {p: wanted[t, p] for t, p in partitions}


def run(args: argparse.Namespace, cluster: Cluster) -> int:
    if args.groups_command == "list":
        listed = list_groups(cluster)
        if args.json:
            output.emit_json([{"group_id": g, "state": s, "protocol_type": t, "type": k} for g, s, t, k in listed])
        else:
            output.table(None, ["GROUP", "STATE", "PROTOCOL-TYPE", "TYPE"], listed)
        return 0
    if args.groups_command == "reset-offsets":
        moved = reset_offsets(cluster, args.group, args.topic, args.to, args.value)
        if args.json:
            output.emit_json([{"topic": args.topic, "partition": p, "offset": o} for p, o in sorted(moved.items())])
        else:
            output.table(None, ["TOPIC", "PARTITION", "NEW-OFFSET"], ([args.topic, p, o] for p, o in sorted(moved.items())))
        return 0
    group = describe_group(cluster, args.group)
    if args.json:
        output.emit_json(group)
        return 0
    output.line(f"GROUP {group['group_id']}  STATE {group['state']}  ASSIGNOR {group['protocol'] or '-'}"
                f"  TYPE {group['type']}")
    if group.get("group_epoch") is not None:
        output.line(f"GROUP-EPOCH {group['group_epoch']}  ASSIGNMENT-EPOCH {group['assignment_epoch']}")
    partitions = lambda m: ",".join(f"{t}-{p}" for t, p in m["partitions"])  # noqa: E731
    if group["type"] == "consumer":
        output.table(None, ["MEMBER", "CLIENT-ID", "HOST", "EPOCH", "UPGRADED", "PARTITIONS"], (
            [m["member_id"], m["client_id"], m["client_host"], m["member_epoch"],
             "-" if m["upgraded"] is None else str(m["upgraded"]).lower(), partitions(m)]
            for m in group["members"]))
    else:
        output.table(None, ["MEMBER", "CLIENT-ID", "HOST", "PARTITIONS"], (
            [m["member_id"], m["client_id"], m["client_host"], partitions(m)] for m in group["members"]))
    committed = "START-OFFSET" if group["type"] == "share" else "COMMITTED"
    output.table(None, ["TOPIC", "PARTITION", committed, "LOG-END", "LAG"], (
        [o["topic"], o["partition"], o["committed"], o["log_end"], o["lag"]] for o in group["offsets"]
    ))
    return 0
