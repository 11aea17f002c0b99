"""Fetch (key 1): serve byte ranges of partition logs, long-polling for data.

Records go out as byte ranges of segment files: large ones as FileSlices,
which the connection sends with sendfile, small ones read. A fetch that finds
fewer than ``min_bytes`` waits on the broker's append signal until data
arrives or ``max_wait_ms`` runs out — no polling loop. The response holds at
most the smaller of ``max_bytes`` and the broker's fetch.max.bytes, partitions
filled in order, only its first batch allowed past a limit (KIP-74).
Incremental fetch sessions (KIP-227) are kept in the broker's
FetchSessionCache (see fetch_session.py). A read_committed fetch
(isolation_level 1) reads up to the last stable offset and lists the aborted
transactions in its range from the log's aborted index; with no open
transaction the LSO is the high watermark and the read is the same.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable
from typing import Any, NamedTuple

import trio

from kafkacompat.handlers.fetch_session import (
    FINAL_EPOCH,
    INITIAL_EPOCH,
    INVALID_SESSION_ID,
    CachedPartition,
    FetchSession,
    PartitionKey,
    SessionError,
)
from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.log.file_slice import FileSlice
from kafkacompat.protocol.errors import ErrorCode, KafkaError

API_KEY = 1
# Fetch v4 is the first whose records are in message format v2; older versions
# would need down-conversion, which the broker never does (see handle_fetch).
MIN_USABLE_VERSION = 4
# Fetch v7 added sessions; v13 switched topics from names to ids.
FIRST_SESSION_VERSION = 7
FIRST_TOPIC_ID_VERSION = 13
NO_TOPIC_ID = uuid.UUID(int=0)
READ_COMMITTED = 1
# Smaller ranges are read into memory: the copy costs less than sendfile's extra system calls.
SENDFILE_MIN_BYTES = 16 * 1024 if hasattr(os, "sendfile") else None
# Each FileSlice holds a descriptor until it is sent; a response's later ranges are read.
MAX_SLICES_PER_RESPONSE = 64


class _Target(NamedTuple):
    """One partition to read: its session key, where to read from, and how much."""

    key: PartitionKey
    fetch_offset: int
    partition_max_bytes: int
    current_leader_epoch: int = -1  # v9+ (KIP-320); -1 for partitions a fetch session carries over


class _FetchPlan:
    """The partitions of one fetch, resolved once, read on every wake-up."""

    def __init__(self, targets: list[_Target], use_ids: bool, max_bytes: int, ctx: RequestContext,
                 read_committed: bool, version: int, rack_id: str | None) -> None:
        self.targets = targets
        self.read_committed = read_committed
        self.use_ids = use_ids
        self.max_bytes = max_bytes
        self.cluster = ctx.broker.cluster
        self.version = version
        self.rack_id = rack_id
        manager = ctx.broker.log_manager
        lookup = manager.topic_by_id if use_ids else manager.topic
        self.topics = {key[0]: lookup(key[0]) for key, *_ in targets}

    def read(self) -> tuple[list[tuple[PartitionKey, dict[str, Any]]], int, bool]:
        """Read every partition now: ((key, answer) in order, bytes found, any error or replica redirect)."""
        budget = self.max_bytes
        total = 0
        failed = False
        answers = []
        slices = 0
        for target in self.targets:
            slice_from = SENDFILE_MIN_BYTES if slices < MAX_SLICES_PER_RESPONSE else None
            answer, size = self._read_partition(target, budget, total == 0, slice_from)
            slices += isinstance(answer["records"], FileSlice)
            failed |= answer["error_code"] != ErrorCode.NONE or answer["preferred_read_replica"] != -1
            budget -= size
            total += size
            answers.append((target.key, answer))
        return answers, total, failed

    def _read_partition(
        self, target: _Target, budget: int, first: bool, slice_from: int | None
    ) -> tuple[dict[str, Any], int]:
        index, topic = target.key[1], self.topics[target.key[0]]
        missing = ErrorCode.UNKNOWN_TOPIC_ID if self.use_ids else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        if topic is None or not 0 <= index < len(topic.partitions):
            return _empty_partition(index, missing), 0
        log = topic.partitions[index]
        refused = self.cluster.fetch_error(log, self.version)
        if refused is None and target.current_leader_epoch >= 0 and target.current_leader_epoch != log.leader_epoch:
            # KIP-320: a client behind the leader epoch re-reads metadata and validates its position
            # (so it detects a truncation); one ahead of this replica waits for it to catch up.
            refused = (ErrorCode.FENCED_LEADER_EPOCH if target.current_leader_epoch < log.leader_epoch
                       else ErrorCode.UNKNOWN_LEADER_EPOCH)
        if refused is not None:
            return _empty_partition(index, refused), 0
        answer = _empty_partition(index, ErrorCode.NONE)
        answer.update(
            high_watermark=log.high_watermark,
            last_stable_offset=log.last_stable_offset,
            log_start_offset=log.log_start_offset,
        )
        preferred = self.cluster.preferred_read_replica(log, self.rack_id)
        if preferred != -1:  # KIP-392: no records, the client moves to that replica
            answer["preferred_read_replica"] = preferred
            return answer, 0
        limit = min(target.partition_max_bytes, budget)
        if limit <= 0 and not first:
            return answer, 0
        try:
            data = log.read(target.fetch_offset, limit, slice_from=slice_from, committed=self.read_committed)
        except KafkaError as exc:
            answer["error_code"] = exc.code
            return answer, 0
        if not first and len(data) > limit:
            # Only the first batch of the response may exceed a limit (KIP-74): a partition's
            # partition_max_bytes or what is left of max_bytes.
            if isinstance(data, FileSlice):
                data.close()
            return answer, 0
        answer["records"] = data
        if self.read_committed:
            answer["aborted_transactions"] = [
                {"producer_id": aborted.producer_id, "first_offset": aborted.first_offset}
                for aborted in log.aborted_transactions(target.fetch_offset)] if data else []
        return answer, len(data)

    def record_bytes_by_topic(self, answers: Iterable[tuple[PartitionKey, dict[str, Any]]]) -> dict[str, int]:
        """Record bytes each topic sends in these answers (for the metrics: sizes only, nothing read)."""
        sizes: dict[str, int] = {}
        for (topic_key, _), answer in answers:
            topic = self.topics.get(topic_key)
            if topic is not None and len(answer["records"]):
                sizes[topic.name] = sizes.get(topic.name, 0) + len(answer["records"])
        return sizes

    def responses(self, answers: Iterable[tuple[PartitionKey, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Topic responses, consecutive partitions of one topic grouped as Kafka groups them."""
        responses: list[dict[str, Any]] = []
        previous = None
        for (topic_key, _), answer in answers:
            if not responses or topic_key != previous:
                topic = self.topics.get(topic_key)
                responses.append({
                    "topic": topic_key if not self.use_ids else (topic.name if topic else ""),
                    "topic_id": topic_key if self.use_ids else (topic.topic_id if topic else NO_TOPIC_ID),
                    "partitions": [],
                })
                previous = topic_key
            responses[-1]["partitions"].append(answer)
        return responses


def _empty_partition(index: int, code: ErrorCode) -> dict[str, Any]:
    return {
        "partition_index": index,
        "error_code": code,
        "high_watermark": -1,
        "last_stable_offset": -1,
        "log_start_offset": -1,
        "aborted_transactions": None,
        "preferred_read_replica": -1,
        "records": b"",
    }


def _requested(body: Any, use_ids: bool) -> list[_Target]:
    return [
        _Target((wanted.topic_id if use_ids else wanted.topic, p.partition), p.fetch_offset, p.partition_max_bytes,
                p.get("current_leader_epoch", -1))
        for wanted in body.topics
        for p in wanted.partitions
    ]


def _forgotten(body: Any, use_ids: bool) -> list[PartitionKey]:
    return [
        (topic.topic_id if use_ids else topic.topic, index)
        for topic in body.forgotten_topics_data
        for index in topic.partitions
    ]


def _session_targets(session: FetchSession) -> list[_Target]:
    return [_Target(key, cached.fetch_offset, cached.partition_max_bytes) for key, cached in session.partitions.items()]


def _session_error(code: ErrorCode) -> dict[str, Any]:
    return {"throttle_time_ms": 0, "error_code": code, "session_id": INVALID_SESSION_ID, "responses": []}


async def handle_fetch(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    if request.version < MIN_USABLE_VERSION:
        # Kafka's answer when message.downconversion.enable is false.
        return {"throttle_time_ms": 0, "responses": [
            {"topic": t.topic, "partitions": [_empty_partition(p.partition, ErrorCode.UNSUPPORTED_VERSION)
                                              for p in t.partitions]} for t in body.topics]}
    use_ids = request.version >= FIRST_TOPIC_ID_VERSION
    sessions = ctx.broker.fetch_sessions
    session_id, epoch = (body.session_id, body.session_epoch) if request.version >= FIRST_SESSION_VERSION else (
        INVALID_SESSION_ID, FINAL_EPOCH)
    session = None
    if epoch in (INITIAL_EPOCH, FINAL_EPOCH):  # a full fetch; it closes the session it names
        if session_id != INVALID_SESSION_ID:
            sessions.remove(session_id)
        targets = _requested(body, use_ids)
    else:
        try:
            session = sessions.incremental(session_id, epoch, use_ids)
        except SessionError as exc:
            return _session_error(exc.code)
        session.update([target[:3] for target in _requested(body, use_ids)], _forgotten(body, use_ids))
        targets = _session_targets(session)
    # Kafka caps a response at the smaller of the request's and the broker's fetch.max.bytes.
    # Fetch v11 added the consumer's rack (KIP-392).
    rack_id = body.rack_id if request.version >= 11 else None
    plan = _FetchPlan(targets, use_ids, min(body.max_bytes, ctx.broker.config.get_int("fetch.max.bytes")), ctx,
                      body.isolation_level == READ_COMMITTED, request.version, rack_id)
    deadline = trio.current_time() + max(body.max_wait_ms, 0) / 1000
    while True:
        answers, total, failed = plan.read()
        remaining = deadline - trio.current_time()
        if total >= min(body.min_bytes, plan.max_bytes) or failed or remaining <= 0:
            break
        await ctx.broker.appended.wait(remaining)
    if session is not None:
        answers, new_session_id = session.select(answers), session.id
    elif epoch == INITIAL_EPOCH:
        cached = {}
        for target, (key, answer) in zip(targets, answers):
            cached[key] = CachedPartition(target.fetch_offset, target.partition_max_bytes)
            cached[key].remember(answer)
        new_session_id = sessions.create(use_ids, cached)
    else:
        new_session_id = INVALID_SESSION_ID
    metrics = ctx.broker.metrics
    if metrics is not None:
        for topic_name, size in plan.record_bytes_by_topic(answers).items():
            metrics.fetched(topic_name, size)
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "session_id": new_session_id,
            "responses": plan.responses(answers)}


API_HANDLERS = [ApiHandler(API_KEY, handle_fetch)]
