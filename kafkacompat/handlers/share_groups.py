"""Share groups (KIP-932): membership, record delivery and share-group offsets.

Serves ShareGroupHeartbeat (76), ShareGroupDescribe (77), ShareFetch (78),
ShareAcknowledge (79), DescribeShareGroupOffsets (90), AlterShareGroupOffsets
(91) and DeleteShareGroupOffsets (92). The rules live in
:mod:`kafkacompat.group.share`; this module maps wire fields onto
coordinator calls. ShareFetch long-polls like Fetch: with nothing to acquire
it waits on the broker's append signal (also raised when records are
released) until ``max_wait_ms`` runs out. A share session belongs to the
connection that opened it and ends when that connection closes (the
connection's ``on_disconnect``). Version 2 of ShareFetch and
ShareAcknowledge (Kafka 4.2) adds KIP-1222's RENEW acknowledgements (a
request with ``is_renew_ack`` only acknowledges, it acquires nothing) and
ShareFetch's KIP-1206 record_limit acquire mode. ShareGroupDescribe hides a
group whose assignments name a topic the caller may not DESCRIBE
(TOPIC_AUTHORIZATION_FAILED, no members), and DescribeShareGroupOffsets such
topics (left out of a listing, TOPIC_AUTHORIZATION_FAILED when named), as
Kafka does. Share groups are served while the ``share.version`` feature is
finalized at level 1 or more; at level 0 every request here gets
UNSUPPORTED_VERSION, as Kafka answers with share groups off.

In a cluster the group requests (heartbeat, describe, offsets) go to the
group's coordinator (the dispatch checkpoint says NOT_COORDINATOR
elsewhere), while ShareFetch and ShareAcknowledge go to each partition's
leader: a partition this broker does not lead gets NOT_LEADER_OR_FOLLOWER
with its current leader and that leader's endpoint in ``node_endpoints``
(KIP-951's hints, as Kafka's Fetch gives them), and its acknowledgements are
not applied. A share session lives on the broker it was opened on.
"""

from __future__ import annotations

import uuid
from typing import Any, Callable, Iterable

import trio

from kafkacompat.group.share.coordinator import FINAL_EPOCH, INITIAL_EPOCH, ShareCoordinator
from kafkacompat.group.share.group import SHARE_ASSIGNOR
from kafkacompat.group.classic.state import GroupState
from kafkacompat.group.share.partition import AcknowledgeType
from kafkacompat.handlers.authorization import allowed, authorized_operations
from kafkacompat.security.authorizer import AclOperation, ResourceType
from kafkacompat.handlers.groups import UNSET_AUTHORIZED_OPERATIONS
from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode, KafkaError

SHARE_GROUP_HEARTBEAT, SHARE_GROUP_DESCRIBE, SHARE_FETCH, SHARE_ACKNOWLEDGE = 76, 77, 78, 79
DESCRIBE_SHARE_GROUP_OFFSETS, ALTER_SHARE_GROUP_OFFSETS, DELETE_SHARE_GROUP_OFFSETS = 90, 91, 92
SHARE_VERSION = "share.version"
NO_TOPIC_ID = uuid.UUID(int=0)
RECORD_LIMIT = 1  # ShareFetch v2's share_acquire_mode: at most max_records (0, batch_optimized, keeps batches whole)
_HIDDEN_TOPICS = "The group has described topic(s) that the client is not authorized to describe."

Key = tuple[uuid.UUID, int]


def _enabled(ctx: RequestContext) -> bool:
    return ctx.broker.features.levels.get(SHARE_VERSION, 0) >= 1


def _is_other_group_type(ctx: RequestContext, group_id: str) -> bool:
    """A classic (or consumer) group holds this id: Kafka's group ids are one namespace."""
    return ctx.broker.share_groups.group(group_id) is None and \
        ctx.broker.groups.describe_group(group_id).state is not GroupState.DEAD


def _local_log(ctx: RequestContext, topic_id: uuid.UUID, index: int) -> Any:
    """This broker's replica of the partition; None for an unknown one (the coordinator names the error)."""
    topic = ctx.broker.log_manager.topic_by_id(topic_id)
    return topic.partitions[index] if topic is not None and 0 <= index < len(topic.partitions) else None


def _leader(ctx: RequestContext, topic_id: uuid.UUID, index: int) -> dict[str, int]:
    log = _local_log(ctx, topic_id, index)
    if log is None:
        return {"leader_id": -1, "leader_epoch": -1}
    state = ctx.broker.cluster.partition_state(log)
    return {"leader_id": state.leader, "leader_epoch": state.leader_epoch}


def _not_led(ctx: RequestContext, key: Key) -> ErrorCode | None:
    """NOT_LEADER_OR_FOLLOWER (LEADER_NOT_AVAILABLE while offline) for a partition this broker does not lead."""
    log = _local_log(ctx, *key)
    return None if log is None else ctx.broker.cluster.leader_error(log)


def _node_endpoints(ctx: RequestContext, answers: dict[Key, dict[str, Any]]) -> list[dict[str, Any]]:
    """The endpoints of the leaders named in answers that send the client elsewhere (KIP-951)."""
    wanted = {a["current_leader"]["leader_id"] for a in answers.values()
              if a["error_code"] == ErrorCode.NOT_LEADER_OR_FOLLOWER}
    return [{"node_id": b.node_id, "host": b.host, "port": b.port, "rack": b.rack}
            for b in ctx.broker.brokers_for(ctx.listener_name) if b.node_id in wanted]


def _topic_name(ctx: RequestContext, topic_id: uuid.UUID) -> str:
    topic = ctx.broker.log_manager.topic_by_id(topic_id)
    return topic.name if topic is not None else ""


# -- ShareGroupHeartbeat / ShareGroupDescribe ------------------------------------------


async def handle_share_group_heartbeat(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    answer: dict[str, Any] = {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None,
                              "member_id": None, "member_epoch": 0, "heartbeat_interval_ms": 0, "assignment": None}

    def refuse(code: ErrorCode, message: str | None) -> dict[str, Any]:
        answer.update(error_code=code, error_message=message)
        return answer

    if not _enabled(ctx):
        return refuse(ErrorCode.UNSUPPORTED_VERSION, "Share groups are not enabled (share.version is 0).")
    if not body.group_id:
        return refuse(ErrorCode.INVALID_REQUEST, "GroupId can't be empty.")
    if not body.member_id:
        return refuse(ErrorCode.INVALID_REQUEST, "MemberId can't be empty.")
    if body.member_epoch < FINAL_EPOCH:
        return refuse(ErrorCode.INVALID_REQUEST, f"MemberEpoch is {body.member_epoch}, but must be -1, 0 or above.")
    if _is_other_group_type(ctx, body.group_id):
        return refuse(ErrorCode.GROUP_ID_NOT_FOUND, f"Group {body.group_id} is not a share group.")
    share = ctx.broker.share_groups
    result = share.heartbeat(
        body.group_id, body.member_id, body.member_epoch, rack_id=body.rack_id,
        subscribed_topic_names=body.subscribed_topic_names, client_id=request.header.client_id or "",
        client_host=f"/{ctx.client_host}")
    if result.left is not None:
        ctx.broker.appended.notify()  # its records were released: waiting fetches may take them
    if result.error is not ErrorCode.NONE:
        return refuse(result.error, result.message)
    assignment = None
    if result.assignment is not None:
        assignment = {"topic_partitions": [{"topic_id": topic_id, "partitions": list(partitions)}
                                           for topic_id, partitions in sorted(result.assignment.items())]}
    answer.update(member_id=body.member_id, member_epoch=result.member_epoch,
                  heartbeat_interval_ms=share.heartbeat_interval_ms(body.group_id), assignment=assignment)
    return answer


async def handle_share_group_describe(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    described = []
    for group_id in body.group_ids:
        operations = (authorized_operations(ctx, ResourceType.GROUP, group_id) if body.include_authorized_operations
                      else UNSET_AUTHORIZED_OPERATIONS)
        group = ctx.broker.share_groups.group(group_id)
        entry: dict[str, Any] = {"error_code": ErrorCode.NONE, "error_message": None, "group_id": group_id,
                                 "group_state": "Dead", "group_epoch": -1, "assignment_epoch": -1,
                                 "assignor_name": "", "members": [], "authorized_operations": operations}
        if group is None:
            kind = "is not a share group" if _is_other_group_type(ctx, group_id) else "not found"
            entry.update(error_code=ErrorCode.GROUP_ID_NOT_FOUND, error_message=f"Group {group_id} {kind}.")
        elif not all(allowed(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, name)
                     for name in {_topic_name(ctx, topic_id) for m in group.members.values() for topic_id in m.assignment}):
            entry.update(error_code=ErrorCode.TOPIC_AUTHORIZATION_FAILED, error_message=_HIDDEN_TOPICS, group_state="")
        else:
            entry.update(group_state=group.state.value, group_epoch=group.group_epoch,
                         assignment_epoch=group.assignment_epoch, assignor_name=SHARE_ASSIGNOR, members=[
                             {"member_id": m.member_id, "rack_id": m.rack_id, "member_epoch": m.member_epoch,
                              "client_id": m.client_id, "client_host": m.client_host,
                              "subscribed_topic_names": list(m.subscribed_topic_names),
                              "assignment": {"topic_partitions": [
                                  {"topic_id": topic_id, "topic_name": _topic_name(ctx, topic_id),
                                   "partitions": list(partitions)}
                                  for topic_id, partitions in sorted(m.assignment.items())]}}
                             for m in group.members.values()])
        described.append(entry)
    return {"throttle_time_ms": 0, "groups": described}


# -- ShareFetch / ShareAcknowledge -------------------------------------------------------


def _acknowledgements(topics: Iterable[Any]) -> dict[Key, list[tuple[int, int, list[int]]]]:
    """Each partition's acknowledgement batches; a topic may appear more than once (librdkafka does that)."""
    acks: dict[Key, list[tuple[int, int, list[int]]]] = {}
    for topic in topics:
        for p in topic.partitions:
            acks.setdefault((topic.topic_id, p.partition_index), []).extend(
                (b.first_offset, b.last_offset, list(b.acknowledge_types)) for b in p.acknowledgement_batches)
    return acks


def _partition_answer(ctx: RequestContext, key: Key, *, fetch: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {"partition_index": key[1], "error_code": ErrorCode.NONE, "error_message": None,
                              "current_leader": _leader(ctx, *key)}
    if fetch:
        answer.update(acknowledge_error_code=ErrorCode.NONE, acknowledge_error_message=None, records=b"",
                      acquired_records=[])
    return answer


def _by_topic(answers: dict[Key, dict[str, Any]]) -> list[dict[str, Any]]:
    topics: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for (topic_id, _), answer in answers.items():
        topics.setdefault(topic_id, []).append(answer)
    return [{"topic_id": topic_id, "partitions": partitions} for topic_id, partitions in topics.items()]


def _session_answer(code: ErrorCode, message: str | None, **extra: Any) -> dict[str, Any]:
    return {"throttle_time_ms": 0, "error_code": code, "error_message": message, "responses": [],
            "node_endpoints": [], **extra}


def _open_or_continue(ctx: RequestContext, share: ShareCoordinator, group_id: str, member_id: str,
                      epoch: int) -> Any:
    """The request's share session; an opened one ends with the connection that opened it."""
    if epoch != INITIAL_EPOCH:
        return share.session(group_id, member_id, epoch, ctx.broker.node_id)
    connection = id(ctx)  # ctx lives as long as its connection, so its id names the connection meanwhile

    def ended() -> None:
        if share.connection_closed(connection):
            ctx.broker.appended.notify()

    ctx.on_disconnect.setdefault("share sessions", ended)
    return share.open_session(group_id, member_id, connection, ctx.broker.node_id)


def _renew_misused(acks: dict[Key, list[tuple[int, int, list[int]]]], is_renew_ack: bool) -> bool:
    """RENEW acknowledgements (KIP-1222) and the request's is_renew_ack flag must come together."""
    types = {t for batches in acks.values() for _, _, batch_types in batches for t in batch_types}
    return (AcknowledgeType.RENEW in types) != is_renew_ack if types else False


async def handle_share_fetch(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    share = ctx.broker.share_groups
    lock_ms = share.lock_duration_ms(body.group_id or "")
    if not _enabled(ctx):
        return _session_answer(ErrorCode.UNSUPPORTED_VERSION, "Share groups are not enabled.",
                               acquisition_lock_timeout_ms=lock_ms)
    group_id, member_id, epoch = body.group_id, body.member_id, body.share_session_epoch
    acks = _acknowledgements(body.topics)
    forgotten = [(t.topic_id, index) for t in body.forgotten_topics_data for index in t.partitions]
    if not group_id or not member_id:
        return _session_answer(ErrorCode.INVALID_REQUEST, "GroupId and MemberId must be set.",
                               acquisition_lock_timeout_ms=lock_ms)
    if (epoch == INITIAL_EPOCH and any(acks.values())) or (epoch == FINAL_EPOCH and forgotten):
        return _session_answer(ErrorCode.INVALID_REQUEST, "Acknowledgements need a share session; "
                               "a closing one cannot forget partitions.", acquisition_lock_timeout_ms=lock_ms)
    renewing = bool(getattr(body, "is_renew_ack", False))
    if _renew_misused(acks, renewing):
        return _session_answer(ErrorCode.INVALID_REQUEST, "RENEW acknowledgements need IsRenewAck.",
                               acquisition_lock_timeout_ms=lock_ms)
    try:
        session = _open_or_continue(ctx, share, group_id, member_id, epoch)
    except KafkaError as exc:
        return _session_answer(exc.code, exc.message, acquisition_lock_timeout_ms=lock_ms)
    answers: dict[Key, dict[str, Any]] = {}
    for key in acks:  # every partition the request names, with acknowledgements or not
        if (code := _not_led(ctx, key)) is not None:
            answers[key] = _partition_answer(ctx, key, fetch=True)
            answers[key].update(error_code=code, acknowledge_error_code=code if acks[key] else ErrorCode.NONE)
    ack_results, released = share.acknowledge(group_id, member_id, {k: v for k, v in acks.items() if k not in answers})
    for key, code in ack_results.items():
        answers[key] = _partition_answer(ctx, key, fetch=True)
        answers[key]["acknowledge_error_code"] = code
    if epoch == FINAL_EPOCH:
        released |= share.close_session(group_id, member_id, ctx.broker.node_id)
    else:
        session.partitions.update(dict.fromkeys(acks))
        for key in forgotten:
            session.partitions.pop(key, None)
    if released:
        ctx.broker.appended.notify()
    if epoch != FINAL_EPOCH and not renewing:  # a renewal only acknowledges, as Kafka answers it
        keys = [key for key in session.partitions if key not in answers or answers[key]["error_code"] == ErrorCode.NONE]
        await _acquire(ctx, share, group_id, member_id, keys, body, answers)
    return _session_answer(ErrorCode.NONE, None, acquisition_lock_timeout_ms=lock_ms, responses=_by_topic(answers),
                           node_endpoints=_node_endpoints(ctx, answers))


async def _acquire(ctx: RequestContext, share: ShareCoordinator, group_id: str, member_id: str,
                   keys: list[Key], body: Any, answers: dict[Key, dict[str, Any]]) -> None:
    """Acquire records from the session's partitions, waiting up to max_wait_ms until some can be."""
    max_bytes = min(body.max_bytes, ctx.broker.config.get_int("fetch.max.bytes"))
    record_limit = getattr(body, "share_acquire_mode", 0) == RECORD_LIMIT
    deadline = trio.current_time() + max(body.max_wait_ms, 0) / 1000
    while True:
        bytes_left, records_left, found = max_bytes, body.max_records, False
        for key in keys:
            if records_left <= 0 or bytes_left <= 0:
                break
            try:
                if (code := _not_led(ctx, key)) is not None:  # checked each round: leadership moves while waiting
                    raise KafkaError(code, f"Broker {ctx.broker.node_id} does not lead this partition.")
                records, acquired = share.acquire(group_id, member_id, *key, max_bytes=bytes_left,
                                                  max_records=records_left, record_limit=record_limit)
            except KafkaError as exc:
                answer = answers.setdefault(key, _partition_answer(ctx, key, fetch=True))
                answer.update(error_code=exc.code, error_message=exc.message)
                found = True
                continue
            if acquired:
                answer = answers.setdefault(key, _partition_answer(ctx, key, fetch=True))
                answer.update(records=records, acquired_records=[
                    {"first_offset": a.first_offset, "last_offset": a.last_offset, "delivery_count": a.delivery_count}
                    for a in acquired])
                bytes_left -= len(records)
                records_left -= sum(a.last_offset - a.first_offset + 1 for a in acquired)
                found = True
        remaining = deadline - trio.current_time()
        if found or answers or remaining <= 0 or not keys:
            return
        await ctx.broker.appended.wait(remaining)


async def handle_share_acknowledge(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    share = ctx.broker.share_groups
    lock_ms = share.lock_duration_ms(body.group_id or "")
    if not _enabled(ctx):
        return _session_answer(ErrorCode.UNSUPPORTED_VERSION, "Share groups are not enabled.",
                               acquisition_lock_timeout_ms=lock_ms)
    group_id, member_id, epoch = body.group_id, body.member_id, body.share_session_epoch
    if not group_id or not member_id:
        return _session_answer(ErrorCode.INVALID_REQUEST, "GroupId and MemberId must be set.",
                               acquisition_lock_timeout_ms=lock_ms)
    if epoch == INITIAL_EPOCH:
        return _session_answer(ErrorCode.INVALID_SHARE_SESSION_EPOCH,
                               "ShareAcknowledge cannot open a share session (epoch 0).",
                               acquisition_lock_timeout_ms=lock_ms)
    acks = _acknowledgements(body.topics)
    if _renew_misused(acks, bool(getattr(body, "is_renew_ack", False))):
        return _session_answer(ErrorCode.INVALID_REQUEST, "RENEW acknowledgements need IsRenewAck.",
                               acquisition_lock_timeout_ms=lock_ms)
    try:
        share.session(group_id, member_id, epoch, ctx.broker.node_id)
    except KafkaError as exc:
        return _session_answer(exc.code, exc.message, acquisition_lock_timeout_ms=lock_ms)
    refused = {key: code for key in acks if (code := _not_led(ctx, key)) is not None}
    results, released = share.acknowledge(group_id, member_id, {k: v for k, v in acks.items() if k not in refused})
    if epoch == FINAL_EPOCH:
        released |= share.close_session(group_id, member_id, ctx.broker.node_id)
    if released:
        ctx.broker.appended.notify()
    answers = {}
    for key in acks:
        answers[key] = _partition_answer(ctx, key, fetch=False)
        answers[key]["error_code"] = refused.get(key, results.get(key, ErrorCode.NONE))
    return _session_answer(ErrorCode.NONE, None, acquisition_lock_timeout_ms=lock_ms, responses=_by_topic(answers),
                           node_endpoints=_node_endpoints(ctx, answers))


# -- share-group offsets -------------------------------------------------------------------


async def handle_describe_share_group_offsets(request: Request, ctx: RequestContext) -> dict[str, Any]:
    share, logs = ctx.broker.share_groups, ctx.broker.log_manager
    groups = []
    for wanted in request.body.groups:
        entry: dict[str, Any] = {"group_id": wanted.group_id, "topics": [], "error_code": ErrorCode.NONE,
                                 "error_message": None}
        groups.append(entry)
        # A group without state (or no group at all) has -1 for every partition asked about, as in Kafka.
        starts = share.start_offsets(wanted.group_id)
        if wanted.topics is None:
            requested: dict[str, list[int]] = {}
            for (topic_id, index) in sorted(starts, key=lambda k: (_topic_name(ctx, k[0]), k[1])):
                requested.setdefault(_topic_name(ctx, topic_id), []).append(index)
        else:
            requested = {t.topic_name: list(t.partitions) for t in wanted.topics}
        for name, indexes in requested.items():
            hidden = not allowed(ctx, AclOperation.DESCRIBE, ResourceType.TOPIC, name)
            if hidden and wanted.topics is None:
                continue  # as OffsetFetch: a listing leaves out what the caller may not DESCRIBE
            topic = None if hidden else logs.topic(name)
            partitions = []
            for index in indexes:
                known = topic is not None and 0 <= index < len(topic.partitions)
                code = (ErrorCode.TOPIC_AUTHORIZATION_FAILED if hidden else
                        ErrorCode.NONE if known else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION)
                partitions.append({
                    "partition_index": index,
                    "start_offset": starts.get((topic.topic_id, index), -1) if known else -1,
                    "leader_epoch": topic.partitions[index].leader_epoch if known else -1,
                    "lag": share.lag(wanted.group_id, topic.topic_id, index) if known else -1,  # v1 (KIP-1226)
                    "error_code": code,
                    "error_message": None if known or hidden else "This server does not host this topic-partition.",
                })
            entry["topics"].append({"topic_name": name, "topic_id": topic.topic_id if topic else NO_TOPIC_ID,
                                    "partitions": partitions})
    return {"throttle_time_ms": 0, "groups": groups}


def _offsets_refusal(ctx: RequestContext, group_id: str, *, must_exist: bool) -> dict[str, Any] | None:
    """The whole answer when the group's offsets may not change: not a share group, or one with members."""
    group = ctx.broker.share_groups.group(group_id)
    if not group_id:
        code, message = ErrorCode.INVALID_GROUP_ID, "The group id can't be empty."
    elif group is None and (must_exist or _is_other_group_type(ctx, group_id)):
        code, message = ErrorCode.GROUP_ID_NOT_FOUND, f"Group {group_id} is not a share group."
    elif group is not None and group.members:
        code, message = ErrorCode.NON_EMPTY_GROUP, "The group is not empty."
    else:
        return None
    return {"throttle_time_ms": 0, "error_code": code, "error_message": message, "responses": []}


def _change_offsets(request: Request, ctx: RequestContext, *, must_exist: bool,
                    answer_topic: Callable[[Any, Any], dict[str, Any]]) -> dict[str, Any]:
    """Alter or delete offsets topic by topic (``answer_topic(wanted, topic or None)``) unless refused."""
    refusal = _offsets_refusal(ctx, request.body.group_id, must_exist=must_exist)
    if refusal is not None:
        return refusal
    logs = ctx.broker.log_manager
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None,
            "responses": [answer_topic(wanted, logs.topic(wanted.topic_name)) for wanted in request.body.topics]}


async def handle_alter_share_group_offsets(request: Request, ctx: RequestContext) -> dict[str, Any]:
    group_id = request.body.group_id

    def alter(wanted: Any, topic: Any) -> dict[str, Any]:
        partitions = []
        for p in wanted.partitions:
            code = ErrorCode.NONE
            if topic is None or not 0 <= p.partition_index < len(topic.partitions):
                code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
            elif p.start_offset < 0:
                code = ErrorCode.INVALID_REQUEST
            else:
                ctx.broker.share_groups.alter_start_offset(group_id, topic.topic_id, p.partition_index, p.start_offset)
            partitions.append({"partition_index": p.partition_index, "error_code": code, "error_message": None})
        return {"topic_name": wanted.topic_name, "topic_id": topic.topic_id if topic else NO_TOPIC_ID,
                "partitions": partitions}

    return _change_offsets(request, ctx, must_exist=False, answer_topic=alter)


async def handle_delete_share_group_offsets(request: Request, ctx: RequestContext) -> dict[str, Any]:
    group_id = request.body.group_id

    def delete(wanted: Any, topic: Any) -> dict[str, Any]:
        if topic is not None:
            ctx.broker.share_groups.delete_start_offsets(group_id, topic.topic_id)
        return {"topic_name": wanted.topic_name, "topic_id": topic.topic_id if topic else NO_TOPIC_ID,
                "error_code": ErrorCode.UNKNOWN_TOPIC_OR_PARTITION if topic is None else ErrorCode.NONE,
                "error_message": None}

    return _change_offsets(request, ctx, must_exist=True, answer_topic=delete)


API_HANDLERS = [
    ApiHandler(SHARE_GROUP_HEARTBEAT, handle_share_group_heartbeat),
    ApiHandler(SHARE_GROUP_DESCRIBE, handle_share_group_describe),
    ApiHandler(SHARE_FETCH, handle_share_fetch),
    ApiHandler(SHARE_ACKNOWLEDGE, handle_share_acknowledge),
    ApiHandler(DESCRIBE_SHARE_GROUP_OFFSETS, handle_describe_share_group_offsets),
    ApiHandler(ALTER_SHARE_GROUP_OFFSETS, handle_alter_share_group_offsets),
    ApiHandler(DELETE_SHARE_GROUP_OFFSETS, handle_delete_share_group_offsets),
]
