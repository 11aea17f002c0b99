"""KIP-848 consumer groups: ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe (69).

The rules live in :mod:`kafkacompat.group.consumer`; this module maps the
wire onto them. Partitions travel by topic id; the describe answer also
names each topic, and a group whose assignments name a topic the caller may
not DESCRIBE is answered TOPIC_AUTHORIZATION_FAILED without its members, as
Kafka hides it (the heartbeat's own topic check is in authorization; a
regex matches only topics the member may DESCRIBE). Both
APIs are refused with UNSUPPORTED_VERSION while the cluster's
``group.version`` feature is finalized below 1, as Kafka refuses them.
"""

from __future__ import annotations

from typing import Any, Mapping

from kafkacompat.group.consumer.assignors import Assignment
from kafkacompat.group.consumer.membership import HeartbeatRequest
from kafkacompat.handlers.authorization import allowed, authorized_operations, topic_describe_check
from kafkacompat.handlers.groups import UNSET_AUTHORIZED_OPERATIONS, client_host
from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.security.authorizer import AclOperation, ResourceType

CONSUMER_GROUP_HEARTBEAT, CONSUMER_GROUP_DESCRIBE = 68, 69
GROUP_VERSION = "group.version"
CLASSIC_MEMBER, CONSUMER_MEMBER = 0, 1  # ConsumerGroupDescribe v1's member_type (KIP-1099)
_HIDDEN_TOPICS = "The group has described topic(s) that the client is not authorized to describe."


def _consumer_protocol_enabled(ctx: RequestContext) -> bool:
    return ctx.broker.features.levels.get(GROUP_VERSION, 0) >= 1


def _owned(topic_partitions: Any) -> Assignment | None:
    if topic_partitions is None:
        return None
    return {t.topic_id: frozenset(t.partitions) for t in topic_partitions}


def _wire_assignment(assignment: Assignment) -> list[dict[str, Any]]:
    return [{"topic_id": topic_id, "partitions": sorted(partitions)}
            for topic_id, partitions in sorted(assignment.items()) if partitions]


async def handle_consumer_group_heartbeat(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    if not _consumer_protocol_enabled(ctx):
        return {"throttle_time_ms": 0, "error_code": ErrorCode.UNSUPPORTED_VERSION,
                "error_message": "The new consumer group protocol is not enabled (group.version < 1).",
                "member_id": None, "member_epoch": -1, "heartbeat_interval_ms": 0, "assignment": None}
    result = ctx.broker.groups.consumer_group_heartbeat(HeartbeatRequest(
        group_id=body.group_id,
        member_id=body.member_id,
        member_epoch=body.member_epoch,
        instance_id=body.instance_id,
        rack_id=body.rack_id,
        rebalance_timeout_ms=body.rebalance_timeout_ms,
        subscribed_topic_names=None if body.subscribed_topic_names is None else list(body.subscribed_topic_names),
        subscribed_topic_regex=body.subscribed_topic_regex if request.version >= 1 else None,
        server_assignor=body.server_assignor,
        owned=_owned(body.topic_partitions),
        client_id=request.header.client_id or "",
        client_host=client_host(ctx),
        version=request.version,
        may_describe=topic_describe_check(ctx),
    ))
    return {
        "throttle_time_ms": 0,
        "error_code": result.error,
        "error_message": result.message,
        "member_id": result.member_id,
        "member_epoch": result.member_epoch,
        "heartbeat_interval_ms": result.heartbeat_interval_ms,
        "assignment": None if result.assignment is None else {"topic_partitions": _wire_assignment(result.assignment)},
    }


def _named(ctx: RequestContext, assignment: Mapping[Any, frozenset[int]]) -> dict[str, Any]:
    log = ctx.broker.log_manager
    return {"topic_partitions": [
        {"topic_id": topic_id, "topic_name": topic.name, "partitions": sorted(partitions)}
        for topic_id, partitions in sorted(assignment.items())
        if partitions and (topic := log.topic_by_id(topic_id)) is not None
    ]}


def _names_hidden_topic(ctx: RequestContext, members: list[dict[str, Any]]) -> bool:
    return any(not allowed(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, t["topic_name"])
               for m in members for kind in ("assignment", "target_assignment")
               for t in m[kind]["topic_partitions"])


def _failed(group_id: str, error: ErrorCode, message: str) -> dict[str, Any]:
    return {"error_code": error, "error_message": message, "group_id": group_id,
            "group_state": "", "group_epoch": 0, "assignment_epoch": 0, "assignor_name": "", "members": []}


async def handle_consumer_group_describe(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body, groups = request.body, ctx.broker.groups
    described = []
    for group_id in body.group_ids:
        operations = (authorized_operations(ctx, ResourceType.GROUP, group_id) if body.include_authorized_operations
                      else UNSET_AUTHORIZED_OPERATIONS)
        group = groups.consumer_group(group_id) if _consumer_protocol_enabled(ctx) else None
        if group is None:
            exists = groups.describe_group(group_id).state.value != "Dead"
            described.append(_failed(group_id, ErrorCode.GROUP_ID_NOT_FOUND,
                                     f"Group {group_id} is not a consumer group." if exists
                                     else f"Group {group_id} not found."))
            continue
        members = [
            {
                "member_id": m.member_id,
                "instance_id": m.instance_id,
                "rack_id": m.rack_id,
                "member_epoch": m.member_epoch,
                "client_id": m.client_id,
                "client_host": m.client_host,
                "subscribed_topic_names": list(m.subscribed_topic_names),
                "subscribed_topic_regex": m.subscribed_topic_regex,
                "assignment": _named(ctx, m.assigned),
                "target_assignment": _named(ctx, group.target.get(m.member_id, {})),
                "member_type": CLASSIC_MEMBER if m.classic is not None else CONSUMER_MEMBER,
            }
            for m in group.members.values()
        ]
        if _names_hidden_topic(ctx, members):
            described.append(_failed(group_id, ErrorCode.TOPIC_AUTHORIZATION_FAILED, _HIDDEN_TOPICS))
            continue
        described.append({
            "error_code": ErrorCode.NONE,
            "error_message": None,
            "group_id": group_id,
            "group_state": group.state.value,
            "group_epoch": group.group_epoch,
            "assignment_epoch": group.assignment_epoch,
            "assignor_name": groups.preferred_assignor(group),
            "members": members,
            "authorized_operations": operations,
        })
    return {"throttle_time_ms": 0, "groups": described}


API_HANDLERS = [
    ApiHandler(CONSUMER_GROUP_HEARTBEAT, handle_consumer_group_heartbeat),
    ApiHandler(CONSUMER_GROUP_DESCRIBE, handle_consumer_group_describe),
]
