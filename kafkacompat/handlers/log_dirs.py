"""DescribeLogDirs (key 35) and AlterReplicaLogDirs (key 34): the broker's log directories.

This broker has one log directory, its data directory, named by its absolute
path as Kafka names it. DescribeLogDirs reports the size of each partition
with a replica on this broker (in a cluster, the others are left out as Kafka
does); the offset lag is always 0, as Kafka's is for a current replica
(its high watermark less its log end, never below 0), and no partition is
ever a "future" replica being moved; v4 adds the file system's total and
usable bytes.
AlterReplicaLogDirs can only "move" a replica to the directory it is in,
which succeeds at once; any other path is LOG_DIR_NOT_FOUND, as Kafka answers
for a directory that is not in its log.dirs, and a partition with no replica
here is NOT_LEADER_OR_FOLLOWER.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode

API_ALTER_REPLICA_LOG_DIRS = 34
API_DESCRIBE_LOG_DIRS = 35
# Kafka moves a replica through "<topic>-<partition>.<32 hex digits>-future", which must fit a file name.
_FUTURE_DIR_SUFFIX_LENGTH = len(".") + 32 + len("-future")
_MAX_FILE_NAME_LENGTH = 255


def log_dir(ctx: RequestContext) -> str:
    return os.path.abspath(ctx.broker.log_manager.data_dir)


def _wanted_partitions(ctx: RequestContext, topics: Any) -> dict[str, list[Any]]:
    """The partition logs a request names (all of them for null), by topic, with a replica here."""
    manager = ctx.broker.log_manager
    if topics is None:
        candidates = [(topic.name, log) for topic in manager.topics() for log in topic.partitions]
    else:
        candidates = [(requested.topic, manager.partition(requested.topic, index))
                      for requested in topics for index in requested.partitions]
    wanted: dict[str, list[Any]] = {}
    for name, log in candidates:
        if log is not None and _hosted(ctx, log) and log not in wanted.setdefault(name, []):
            wanted[name].append(log)
    return {name: logs for name, logs in wanted.items() if logs}


def _hosted(ctx: RequestContext, log: Any) -> bool:
    return ctx.broker.node_id in ctx.broker.cluster.partition_state(log).replicas


async def handle_describe_log_dirs(request: Request, ctx: RequestContext) -> dict[str, Any]:
    path = log_dir(ctx)
    usage = shutil.disk_usage(path)
    topics = [
        {"name": name, "partitions": [
            {"partition_index": log.index, "partition_size": log.size_in_bytes, "offset_lag": 0,
             "is_future_key": False}
            for log in sorted(logs, key=lambda log: log.index)
        ]}
        for name, logs in sorted(_wanted_partitions(ctx, request.body.topics).items())
    ]
    return {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "results": [{"error_code": ErrorCode.NONE, "log_dir": path, "topics": topics,
                     "total_bytes": usage.total, "usable_bytes": usage.free}],
    }


def _move_error(ctx: RequestContext, path: str, topic: str, index: int) -> ErrorCode:
    if len(f"{topic}-{index}") + _FUTURE_DIR_SUFFIX_LENGTH > _MAX_FILE_NAME_LENGTH:
        return ErrorCode.INVALID_TOPIC_EXCEPTION
    if path != log_dir(ctx):
        return ErrorCode.LOG_DIR_NOT_FOUND
    log = ctx.broker.log_manager.partition(topic, index)
    if log is None:
        return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
    if not _hosted(ctx, log):
        return ErrorCode.NOT_LEADER_OR_FOLLOWER
    return ErrorCode.NONE


async def handle_alter_replica_log_dirs(request: Request, ctx: RequestContext) -> dict[str, Any]:
    results: dict[str, list[dict[str, Any]]] = {}
    for destination in request.body.dirs:
        for topic in destination.topics:
            results.setdefault(topic.name, []).extend(
                {"partition_index": index, "error_code": _move_error(ctx, destination.path, topic.name, index)}
                for index in topic.partitions
            )
    return {
        "throttle_time_ms": 0,
        "results": [{"topic_name": name, "partitions": partitions} for name, partitions in results.items()],
    }


API_HANDLERS = [
    ApiHandler(API_ALTER_REPLICA_LOG_DIRS, handle_alter_replica_log_dirs),
    ApiHandler(API_DESCRIBE_LOG_DIRS, handle_describe_log_dirs),
]
