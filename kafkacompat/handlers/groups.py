"""Consumer-group membership and administration over the classic protocol.

Serves JoinGroup (11), Heartbeat (12), LeaveGroup (13), SyncGroup (14),
DescribeGroups (15), ListGroups (16) and DeleteGroups (42); share groups
(KIP-932) are listed and deleted here too, and describe as Dead, as Kafka's
DescribeGroups v0-5 describes any group that is not classic. The rules live in
:mod:`kafkacompat.group`; this module maps wire versions onto coordinator
calls. JoinGroup and SyncGroup may wait for the rest of the group: the
coordinator hands back a pending result and this task sleeps on a Trio event
until another member's request or the broker's timer loop resolves it.
"""

from __future__ import annotations

from typing import Any, TypeVar

import trio

from kafkacompat.group.coordinator import JoinRequest, LeavingMember
from kafkacompat.group.results import PendingResult
from kafkacompat.handlers.authorization import allowed, authorized_operations
from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.security.authorizer import CLUSTER_NAME, AclOperation, ResourceType

JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP, DESCRIBE_GROUPS, LIST_GROUPS, DELETE_GROUPS = 11, 12, 13, 14, 15, 16, 42

UNSET_AUTHORIZED_OPERATIONS = -2147483648
SHARE_GROUP_TYPE = "share"

T = TypeVar("T")


async def _outcome(pending: PendingResult[T]) -> T:
    """Wait until the coordinator resolves ``pending``."""
    if not pending.done():
        answered = trio.Event()
        pending.add_done_callback(lambda _: answered.set())
        await answered.wait()
    return pending.result()


def client_host(ctx: RequestContext) -> str:
    # Kafka reports the client's InetAddress, which prints with a leading slash.
    return f"/{ctx.client_host}"


async def handle_join_group(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body, version = request.body, request.version
    join = JoinRequest(
        group_id=body.group_id,
        member_id=body.member_id,
        protocol_type=body.protocol_type,
        protocols=[(p.name, bytes(p.metadata)) for p in body.protocols],
        session_timeout_ms=body.session_timeout_ms,
        # v0 has no rebalance timeout; Kafka uses the session timeout.
        rebalance_timeout_ms=body.session_timeout_ms if version == 0 else body.rebalance_timeout_ms,
        group_instance_id=body.group_instance_id,
        client_id=request.header.client_id or "",
        client_host=client_host(ctx),
        require_known_member_id=version >= 4,
        supports_skip_assignment=version >= 9,
    )
    result = await _outcome(ctx.broker.groups.join_group(join))
    return {
        "throttle_time_ms": 0,
        "error_code": result.error,
        "generation_id": result.generation_id,
        "protocol_type": result.protocol_type,
        # Nullable only from v7; older versions say "" for "no protocol".
        "protocol_name": result.protocol_name if version >= 7 else result.protocol_name or "",
        "leader": result.leader_id,
        "skip_assignment": result.skip_assignment,
        "member_id": result.member_id,
        "members": [
            {"member_id": m.member_id, "group_instance_id": m.group_instance_id, "metadata": m.metadata}
            for m in result.members
        ],
    }


async def handle_sync_group(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    pending = ctx.broker.groups.sync_group(
        body.group_id,
        body.generation_id,
        body.member_id,
        {a.member_id: bytes(a.assignment) for a in body.assignments},
        group_instance_id=body.group_instance_id,
        protocol_type=body.protocol_type,
        protocol_name=body.protocol_name,
    )
    result = await _outcome(pending)
    return {
        "throttle_time_ms": 0,
        "error_code": result.error,
        "protocol_type": result.protocol_type,
        "protocol_name": result.protocol_name,
        "assignment": result.assignment,
    }


async def handle_heartbeat(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    error = ctx.broker.groups.heartbeat(body.group_id, body.generation_id, body.member_id, body.group_instance_id)
    return {"throttle_time_ms": 0, "error_code": error}


async def handle_leave_group(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body, version = request.body, request.version
    if version >= 3:
        leaving = [LeavingMember(m.member_id, m.group_instance_id) for m in body.members]
    else:
        leaving = [LeavingMember(body.member_id)]
    result = ctx.broker.groups.leave_group(body.group_id, leaving)
    error = result.error
    if version < 3 and error == ErrorCode.NONE and result.members:
        error = result.members[0][1]  # one member, no per-member list: its error is the answer
    return {
        "throttle_time_ms": 0,
        "error_code": error,
        "members": [
            {"member_id": m.member_id, "group_instance_id": m.group_instance_id, "error_code": code}
            for m, code in result.members
        ],
    }


async def handle_describe_groups(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    described = []
    for group_id in body.groups:
        group = ctx.broker.groups.describe_group(group_id)
        described.append({
            "error_code": ErrorCode.NONE,
            "group_id": group.group_id,
            "group_state": group.state.value,
            "protocol_type": group.protocol_type,
            "protocol_data": group.protocol_name,
            "members": [
                {
                    "member_id": m.member_id,
                    "group_instance_id": m.group_instance_id,
                    "client_id": m.client_id,
                    "client_host": m.client_host,
                    "member_metadata": m.metadata,
                    "member_assignment": m.assignment,
                }
                for m in group.members
            ],
            "authorized_operations": authorized_operations(ctx, ResourceType.GROUP, group_id)
            if body.include_authorized_operations else UNSET_AUTHORIZED_OPERATIONS,
        })
    return {"throttle_time_ms": 0, "groups": described}


async def handle_list_groups(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    types = {t.lower() for t in body.types_filter}
    cluster = ctx.broker.cluster  # each broker lists the groups it coordinates, as in Kafka
    everything_visible = ctx.broker.authorizer is None or allowed(ctx, AclOperation.DESCRIBE, ResourceType.CLUSTER,
                                                                  CLUSTER_NAME)

    def visible(group_id: str) -> bool:
        return everything_visible or allowed(ctx, AclOperation.DESCRIBE, ResourceType.GROUP, group_id)

    groups = [{"group_id": g.group_id, "protocol_type": g.protocol_type, "group_state": g.state.value,
               "group_type": g.group_type}
              for g in ctx.broker.groups.list_groups(body.states_filter)
              if (not types or g.group_type in types) and cluster.coordinator(g.group_id) == cluster.node_id
              and visible(g.group_id)]
    if not types or SHARE_GROUP_TYPE in types:
        states = {state.lower() for state in body.states_filter}
        # Kafka lists share groups with protocol type "share" at every version.
        groups += [{"group_id": g.group_id, "protocol_type": SHARE_GROUP_TYPE, "group_state": g.state.value,
                    "group_type": SHARE_GROUP_TYPE} for g in ctx.broker.share_groups.groups()
                   if (not states or g.state.value.lower() in states)
                   and cluster.coordinator(g.group_id) == cluster.node_id and visible(g.group_id)]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "groups": groups}


async def handle_delete_groups(request: Request, ctx: RequestContext) -> dict[str, Any]:
    names = request.body.groups_names
    share = ctx.broker.share_groups
    results = ctx.broker.groups.delete_groups([g for g in names if share.group(g) is None])
    results.update({g: share.delete_group(g) for g in names if share.group(g) is not None})
    return {
        "throttle_time_ms": 0,
        "results": [{"group_id": group_id, "error_code": code} for group_id, code in results.items()],
    }


API_HANDLERS = [
    ApiHandler(JOIN_GROUP, handle_join_group),
    ApiHandler(HEARTBEAT, handle_heartbeat),
    ApiHandler(LEAVE_GROUP, handle_leave_group),
    ApiHandler(SYNC_GROUP, handle_sync_group),
    ApiHandler(DESCRIBE_GROUPS, handle_describe_groups),
    ApiHandler(LIST_GROUPS, handle_list_groups),
    ApiHandler(DELETE_GROUPS, handle_delete_groups),
]
