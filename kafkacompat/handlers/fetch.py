"""Fetch (key 1): serve byte ranges of partition logs, long-polling for data.

Records go out as byte ranges of segment files: large ones as FileSlices,
which the connection sends with sendfile, small ones read. A fetch that finds
fewer than ``min_bytes`` waits on the broker's append signal until data
arrives or ``max_wait_ms`` runs out — no polling loop. Incremental fetch
sessions are declined (session id 0), which every client handles by sending
full fetches.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import trio

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.log.file_slice import FileSlice
from kafkacompat.protocol.errors import ErrorCode, KafkaError

API_KEY = 1
# Fetch v13 switched topics from names to ids.
FIRST_TOPIC_ID_VERSION = 13
NO_TOPIC_ID = uuid.UUID(int=0)
# Smaller ranges are read into memory: the copy costs less than sendfile's extra system calls.
SENDFILE_MIN_BYTES = 16 * 1024 if hasattr(os, "sendfile") else None
# Each FileSlice holds a descriptor until it is sent; a response's later ranges are read.
MAX_SLICES_PER_RESPONSE = 64


class _FetchPlan:
    """The partitions of one request, resolved once, read on every wake-up."""

    def __init__(self, request: Request, ctx: RequestContext) -> None:
        self.ctx = ctx
        body = request.body
        self.use_ids = request.version >= FIRST_TOPIC_ID_VERSION
        # Kafka caps a response at the smaller of the request's and the broker's fetch.max.bytes.
        self.max_bytes = min(body.max_bytes, ctx.broker.config.get_int("fetch.max.bytes"))
        self.topics: list[tuple[Any, Any, list[Any]]] = []
        manager = ctx.broker.log_manager
        for wanted in body.topics:
            topic = manager.topic_by_id(wanted.topic_id) if self.use_ids else manager.topic(wanted.topic)
            self.topics.append((wanted, topic, list(wanted.partitions)))

    def read(self) -> tuple[list[dict[str, Any]], int, bool]:
        """Read every partition now: (topic responses, bytes found, any error)."""
        budget = self.max_bytes
        total = 0
        failed = False
        responses = []
        slices = 0
        for wanted, topic, partitions in self.topics:
            answers = []
            for p in partitions:
                slice_from = SENDFILE_MIN_BYTES if slices < MAX_SLICES_PER_RESPONSE else None
                answer, size = self._read_partition(topic, p, budget, total == 0, slice_from)
                slices += isinstance(answer["records"], FileSlice)
                failed |= answer["error_code"] != ErrorCode.NONE
                budget -= size
                total += size
                answers.append(answer)
            responses.append({
                "topic": wanted.topic if not self.use_ids else (topic.name if topic else ""),
                "topic_id": wanted.topic_id if self.use_ids else (topic.topic_id if topic else NO_TOPIC_ID),
                "partitions": answers,
            })
        return responses, total, failed

    def _read_partition(
        self, topic: Any, p: Any, budget: int, first: bool, slice_from: int | None
    ) -> tuple[dict[str, Any], int]:
        missing = ErrorCode.UNKNOWN_TOPIC_ID if self.use_ids else ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        if topic is None or not 0 <= p.partition < len(topic.partitions):
            return _empty_partition(p.partition, missing), 0
        log = topic.partitions[p.partition]
        answer = _empty_partition(p.partition, ErrorCode.NONE)
        answer.update(
            high_watermark=log.high_watermark,
            last_stable_offset=log.high_watermark,
            log_start_offset=log.log_start_offset,
        )
        limit = min(p.partition_max_bytes, budget)
        if limit <= 0 and not first:
            return answer, 0
        try:
            data = log.read(p.fetch_offset, limit, slice_from=slice_from)
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
        return answer, len(data)


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


async def handle_fetch(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    if request.version >= 7 and body.session_id != 0:
        # We never hand out a session, so any id a client names is unknown.
        return {"error_code": ErrorCode.FETCH_SESSION_ID_NOT_FOUND, "session_id": 0, "responses": []}
    plan = _FetchPlan(request, ctx)
    deadline = trio.current_time() + max(body.max_wait_ms, 0) / 1000
    while True:
        responses, total, failed = plan.read()
        remaining = deadline - trio.current_time()
        if total >= min(body.min_bytes, plan.max_bytes) or failed or remaining <= 0:
            break
        await ctx.broker.appended.wait(remaining)
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "session_id": 0, "responses": responses}


API_HANDLERS = [ApiHandler(API_KEY, 4, 17, handle_fetch)]
