"""ElectLeaders (key 43) and ListPartitionReassignments (key 46): partition leadership and
replica moves, for a cluster of one broker.

Every partition has a single replica, this broker, which is its preferred
leader and leads it, so an election is never needed: each named partition
gets ELECTION_NOT_NEEDED (UNKNOWN_TOPIC_OR_PARTITION when it does not exist),
and "every partition" (a null list) reports each topic with no partitions,
as Kafka leaves out partitions that already have their leader. No
reassignment can be in progress, so the list of reassignments is empty.
"""

from __future__ import annotations

from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode

API_ELECT_LEADERS = 43
API_LIST_PARTITION_REASSIGNMENTS = 46
ELECTION_TYPES = {0: "PREFERRED", 1: "UNCLEAN"}
ELECTION_NOT_NEEDED_MESSAGE = "Leader election not needed for topic partition."


def _election(manager: Any, topic: str, index: int) -> dict[str, Any]:
    if manager.topic(topic) is None:
        code, message = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such topic as {topic}"
    elif manager.partition(topic, index) is None:
        code, message = ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"No such partition as {topic}-{index}"
    else:
        code, message = ErrorCode.ELECTION_NOT_NEEDED, ELECTION_NOT_NEEDED_MESSAGE
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
    if body.topic_partitions is None:
        results = [{"topic": topic.name, "partition_result": []} for topic in manager.topics()]
    else:
        results = [{"topic": topic.topic, "partition_result": [_election(manager, topic.topic, index)
                                                               for index in topic.partitions]}
                   for topic in body.topic_partitions]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "replica_election_results": results}


async def handle_list_partition_reassignments(request: Request, ctx: RequestContext) -> dict[str, Any]:
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "topics": []}


API_HANDLERS = [
    ApiHandler(API_ELECT_LEADERS, handle_elect_leaders),
    ApiHandler(API_LIST_PARTITION_REASSIGNMENTS, handle_list_partition_reassignments),
]
