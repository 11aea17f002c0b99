"""ElectLeaders (key 43), AlterPartitionReassignments (key 45) and ListPartitionReassignments
(key 46): partition leadership and replica moves.

Elections go to ``broker.cluster.elect``: preferred (type 0) moves leadership
to the first replica when it is alive and in sync, unclean (type 1) gives an
offline partition any live replica. A broker alone always leads with its only
replica, so there every named partition gets ELECTION_NOT_NEEDED. "Every
partition" (a null list) answers only the partitions an election changed,
each topic listed, as Kafka leaves out partitions that already have their
leader. Reassignments go to ``broker.cluster.reassign``: the new replicas
catch up by replicating, and the move ends once they are all in sync (a
broker alone accepts only its own id); ListPartitionReassignments shows the
moves still going, with their adding and removing replicas.
"""

from __future__ import annotations

from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode

API_ELECT_LEADERS = 43
API_ALTER_PARTITION_REASSIGNMENTS = 45
API_LIST_PARTITION_REASSIGNMENTS = 46
ELECTION_TYPES = {0: "PREFERRED", 1: "UNCLEAN"}
ELECTION_NOT_NEEDED_MESSAGE = "Leader election not needed for topic partition."


_MESSAGES = {
    ErrorCode.ELECTION_NOT_NEEDED: ELECTION_NOT_NEEDED_MESSAGE,
    ErrorCode.PREFERRED_LEADER_NOT_AVAILABLE: "Failed to elect leader for partition: the preferred leader is "
                                              "not alive or not in sync.",
    ErrorCode.ELIGIBLE_LEADERS_NOT_AVAILABLE: "No eligible leader is alive for the partition.",
}


def _election(manager: Any, cluster: Any, election_type: int, topic: str, index: int) -> dict[str, Any]:
    if manager.topic(topic) is None:
        code, message = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such topic as {topic}"
    elif manager.partition(topic, index) is None:
        code, message = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such partition as {topic}-{index}"
    else:
        code = cluster.elect(topic, index, election_type)
        message = _MESSAGES.get(code)
    return {"partition_id": index, "error_code": code, "error_message": message}


async def handle_elect_leaders(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    manager = ctx.broker.log_manager
    if body.election_type not in ELECTION_TYPES:
        message = f"Unknown election type {body.election_type}"
        return {"throttle_time_ms": 0, "error_code": ErrorCode.INVALID_REQUEST, "replica_election_results": [
            {"topic": topic.topic, "partition_result": [
                {"partition_id": index, "error_code": ErrorCode.INVALID_REQUEST, "error_message": message}
                for index in topic.partitions]}
            for topic in body.topic_partitions or ()]}
    cluster = ctx.broker.cluster
    if body.topic_partitions is None:
        results = [{"topic": topic.name, "partition_result": [
            answer for index in range(len(topic.partitions))
            if (answer := _election(manager, cluster, body.election_type, topic.name, index))["error_code"]
            == ErrorCode.NONE]} for topic in manager.topics()]
    else:
        results = [{"topic": topic.topic, "partition_result": [
            _election(manager, cluster, body.election_type, topic.topic, index) for index in topic.partitions]}
                   for topic in body.topic_partitions]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "replica_election_results": results}


def _reassignment(ctx: RequestContext, topic: str, wanted: Any) -> dict[str, Any]:
    index = wanted.partition_index
    if ctx.broker.log_manager.partition(topic, index) is None:
        code = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    else:
        code = ctx.broker.cluster.reassign(topic, index, None if wanted.replicas is None else list(wanted.replicas))
    return {"partition_index": index, "error_code": code,
            "error_message": None if code == ErrorCode.NONE else code.name}


async def handle_alter_partition_reassignments(request: Request, ctx: RequestContext) -> dict[str, Any]:
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "responses": [
        {"name": topic.name, "partitions": [_reassignment(ctx, topic.name, p) for p in topic.partitions]}
        for topic in request.body.topics]}


async def handle_list_partition_reassignments(request: Request, ctx: RequestContext) -> dict[str, Any]:
    wanted = request.body.topics
    asked = None if wanted is None else {(t.name, index) for t in wanted for index in t.partition_indexes}
    topics: dict[str, list[dict[str, Any]]] = {}
    for topic, index, state in ctx.broker.cluster.reassignments():
        if asked is None or (topic, index) in asked:
            topics.setdefault(topic, []).append({"partition_index": index, "replicas": state.replicas,
                                                 "adding_replicas": state.adding, "removing_replicas": state.removing})
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None,
            "topics": [{"name": name, "partitions": partitions} for name, partitions in topics.items()]}


API_HANDLERS = [
    ApiHandler(API_ELECT_LEADERS, handle_elect_leaders),
    ApiHandler(API_ALTER_PARTITION_REASSIGNMENTS, handle_alter_partition_reassignments),
    ApiHandler(API_LIST_PARTITION_REASSIGNMENTS, handle_list_partition_reassignments),
]
