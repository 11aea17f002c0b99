"""Route one request frame to its handler and frame the answer.

Injected faults and authorization are decided here, at one fixed point of
every request: after decoding, with the resources the request names
(handlers/resources.py, handlers/authorization.py), before any side effect;
faults that come after the work are applied once the handler has run, and
so are client quotas (handlers/client_quotas.py). With no fault rule, no
authorizer and no quota each costs one attribute check.

In a multi-broker process the same point refuses group requests (share
groups' too) sent to a broker that does not coordinate the group, and transaction requests sent to
one that does not coordinate the transactional id: NOT_COORDINATOR, as Kafka
answers a client that has not found the moved coordinator yet. TxnOffsetCommit
goes to the group's coordinator, as in Kafka; AddOffsetsToTxn (which names a
group too) to the transaction's.

Kafka's rules for requests it cannot serve: an unknown API key, an
unsupported version (except ApiVersions) or a body that does not parse closes
the connection; ApiVersions with a version we do not know gets a v0 response
carrying UNSUPPORTED_VERSION and our ranges so the client can retry lower. A
handler that fails unexpectedly gets its API's error response with
UNKNOWN_SERVER_ERROR (see :mod:`.error_response`) and its stack trace logged.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Awaitable, Callable, Mapping

import trio

from kafkacompat.handlers import (
    acls,
    api_versions,
    authorization,
    client_quotas,
    cluster,
    configs,
    consumer_groups,
    coordinator,
    delegation_tokens,
    delete_records,
    features,
    fetch,
    groups,
    leader_epochs,
    list_offsets,
    log_dirs,
    metadata,
    offsets,
    produce,
    producer_ids,
    replicas,
    sasl,
    scram_credentials,
    share_groups,
    telemetry,
    topic_partitions,
    topics,
    transactions,
)
from kafkacompat.cluster.faults import Injection, RequestFacts
from kafkacompat.handlers.error_response import error_response
from kafkacompat.handlers.registry import ApiHandler, Deferred, Request, RequestContext, build_registry
from kafkacompat.handlers.resources import merge_responses, request_resources, split_request
from kafkacompat.protocol import (
    DecodeError,
    Part,
    RequestHeader,
    decode_request,
    encode_response_frame,
    encode_response_parts,
    join_parts,
    parse_request,
    response_frame_parts,
)
from kafkacompat.protocol.errors import ErrorCode

log = logging.getLogger("kafkacompat.dispatch")

REGISTRY: Mapping[int, ApiHandler] = build_registry(
    [
        api_versions, metadata, produce, fetch, list_offsets, producer_ids,
        topics, configs, cluster, coordinator, groups, offsets, delete_records, leader_epochs,
        log_dirs, topic_partitions, features, delegation_tokens, replicas, telemetry,
        share_groups, acls, client_quotas, consumer_groups, sasl, scram_credentials, transactions,
    ]
)
api_versions.use_registry(REGISTRY)
# OffsetCommit, OffsetFetch, JoinGroup, Heartbeat, LeaveGroup, SyncGroup, DescribeGroups, DeleteGroups,
# TxnOffsetCommit, OffsetDelete, and the share group coordinator's ShareGroupHeartbeat, ShareGroupDescribe,
# DescribeShareGroupOffsets, AlterShareGroupOffsets, DeleteShareGroupOffsets (ShareFetch and ShareAcknowledge
# go to the partitions' leaders instead).
GROUP_API_KEYS = frozenset({8, 9, 11, 12, 13, 14, 15, 28, 42, 47, 76, 77, 90, 91, 92})
# InitProducerId (when it names a transactional id), AddPartitionsToTxn, AddOffsetsToTxn, EndTxn,
# DescribeTransactions.
TRANSACTION_API_KEYS = frozenset({22, 24, 25, 26, 65})


class CloseConnection(Exception):
    """The request cannot be answered; Kafka drops the connection here."""


Buffer = bytes | bytearray | memoryview


class Answer:
    """One request's answer as the connection sends it: settled first when deferred, then framed.

    Settling is awaited by whoever frames the answer (the connection's
    writer), not in a task of its own: what it waits for was arranged when
    the request was handled (a Produce enlists in a flush round then), so no
    task per request is needed for pipelined requests to share that wait.
    """

    __slots__ = ("header", "body", "settle", "observe", "mute_ms", "close_after")

    def __init__(self, header: RequestHeader, body: Mapping[str, Any] | Buffer | None,
                 settle: Callable[[], Awaitable[None]] | None = None,
                 observe: Callable[[Any], None] | None = None) -> None:
        self.header = header
        self.body = body  # a response body, or one already encoded
        self.settle = settle
        self.observe = observe  # the metrics' look at the final body, when metrics are on
        self.mute_ms = 0  # a throttled answer: the connection reads nothing more for this long after it
        self.close_after = False  # the connection closes once this answer is sent (a failed authentication)

    async def frame_parts(self) -> list[Part] | None:
        """The response frame as parts to send in order (record sets uncopied); None when nothing is sent."""
        if self.settle is not None:
            await self.settle()
        if self.observe is not None:
            self.observe(self.body)
        if self.body is None:
            return None
        header = self.header
        if isinstance(self.body, (bytes, bytearray, memoryview)):
            return [encode_response_frame(header, self.body)]
        return response_frame_parts(header, encode_response_parts(header.api_key, header.api_version, self.body))


async def dispatch(frame: Buffer, ctx: RequestContext) -> bytes | None:
    """Answer one frame (size prefix already removed) as one buffer; None means no response."""
    parts = await (await begin(frame, ctx)).frame_parts()
    return None if parts is None else join_parts(parts)


async def begin(frame: Buffer, ctx: RequestContext) -> Answer:
    """Run the handler for one frame as far as its effects go; what is left to wait for is in the Answer.

    A connection calls this for its requests one at a time, in arrival order,
    and may begin the next request before the previous Answer has settled.
    """
    try:
        header, body_view = parse_request(frame)
    except DecodeError as exc:
        raise CloseConnection(f"unreadable request header: {exc}") from None
    session = ctx.sasl
    if session is not None and not session.admits(header.api_key):
        raise CloseConnection(f"request of API key {header.api_key} while SASL is in state {session.state}"
                              " (or past the session's lifetime)")
    handler = REGISTRY.get(header.api_key)
    if handler is None:
        raise CloseConnection(f"unknown API key {header.api_key} (version {header.api_version})")
    if not handler.supports(header.api_version):
        if header.api_key == api_versions.API_KEY:
            return Answer(header, api_versions.unsupported_version_body())
        raise CloseConnection(
            f"unsupported version {header.api_version} of API key {header.api_key}"
            f" (supported {handler.min_version}-{handler.max_version})"
        )
    try:
        body = decode_request(header.api_key, header.api_version, body_view)
    except DecodeError as exc:
        raise CloseConnection(
            f"malformed body for API key {header.api_key} v{header.api_version}: {exc}"
        ) from None
    metrics = ctx.broker.metrics
    observe = None if metrics is None else metrics.request_observer(header.api_key, header.api_version)
    if ctx.broker.cluster.replicated and not _coordinates(ctx, header.api_key, body):
        return Answer(header, error_response(header.api_key, header.api_version, body, ErrorCode.NOT_COORDINATOR),
                      observe=observe)
    if ctx.broker.quotas.active:
        return await _begin_throttled(handler, Request(header, body), ctx, observe, len(frame))
    if ctx.broker.faults.armed:
        answer = await _begin_with_faults(handler, Request(header, body), ctx, observe)
    else:
        answer = _answer(header, await _handle(handler, Request(header, body), ctx), observe)
    if session is not None and session.closing:
        answer.close_after = True
    return answer


async def _begin_throttled(handler: ApiHandler, request: Request, ctx: RequestContext,
                           observe: Callable[[Any], None] | None, request_bytes: int) -> Answer:
    """``begin`` for a broker with client quotas: the request is recorded against them once handled."""
    started = time.perf_counter_ns()
    if ctx.broker.faults.armed:
        answer = await _begin_with_faults(handler, request, ctx, observe)
    else:
        answer = _answer(request.header, await _handle(handler, request, ctx), observe)
    client_quotas.throttle(answer, request.header, ctx, request_bytes, time.perf_counter_ns() - started)
    return answer


def _coordinates(ctx: RequestContext, api_key: int, body: Any) -> bool:
    """Whether this broker coordinates every group (or transactional id) a coordinator request names.

    An empty group id is a field the request's version lacks (OffsetFetch v8+
    names its groups in an array), never a group to place.
    """
    cluster = ctx.broker.cluster
    if api_key in GROUP_API_KEYS:
        return all(cluster.coordinator(group) == cluster.node_id for group in request_resources(body).groups if group)
    if api_key in TRANSACTION_API_KEYS:
        return all(cluster.transaction_coordinator(transactional_id) == cluster.node_id
                   for transactional_id in request_resources(body).transactional_ids)
    return True


async def _handle(handler: ApiHandler, request: Request, ctx: RequestContext) -> Mapping[str, Any] | Deferred | None:
    """The handler's answer; for an unexpected failure, the API's error answer, as Kafka sends it."""
    header = request.header
    try:
        if ctx.broker.authorizer is not None:
            return await authorization.checkpoint(handler.handle, request, ctx)
        return await handler.handle(request, ctx)
    except CloseConnection:
        raise
    except Exception:
        log.exception("unexpected error handling API key %d v%d", header.api_key, header.api_version)
        response = error_response(header.api_key, header.api_version, request.body, ErrorCode.UNKNOWN_SERVER_ERROR)
        if response is None:
            raise CloseConnection("unexpected error handling a request that gets no response") from None
        return response


def _answer(header: RequestHeader, response: Mapping[str, Any] | Deferred | None,
            observe: Callable[[Any], None] | None) -> Answer:
    if isinstance(response, Deferred):
        return Answer(header, response.body, response.settle, observe)
    return Answer(header, response, observe=observe)


def _refusal(request: Request, body: Any, injection: Injection) -> dict[str, Any] | None:
    """The error answer for ``body``; none for a Produce with acks=0, which Kafka never answers."""
    header = request.header
    if header.api_key == produce.API_KEY and request.body.acks == 0:
        return None
    return error_response(header.api_key, header.api_version, body, injection.error_code, injection.message)


async def _never() -> None:
    await trio.sleep_forever()


async def _begin_with_faults(handler: ApiHandler, request: Request, ctx: RequestContext,
                             observe: Callable[[Any], None] | None) -> Answer:
    """``begin`` for a request the fault rules may touch: the checkpoint, then the handler (or not)."""
    header = request.header
    facts = RequestFacts(header.api_key, header.api_version, ctx.broker.node_id, header.client_id,
                         ctx.principal, ctx.listener_name)
    def topic_name(topic_id: Any) -> str | None:
        topic = ctx.broker.log_manager.topic_by_id(topic_id)
        return None if topic is None else topic.name

    injection = ctx.broker.faults.check(facts, lambda: request_resources(request.body, topic_name))
    if injection is None:
        return _answer(header, await _handle(handler, request, ctx), observe)
    action = injection.action
    if action == "delay":
        await trio.sleep(injection.delay_ms / 1000)
    elif action == "no_response":
        return Answer(header, None, _never)
    elif action == "close" and not injection.after_work:
        raise CloseConnection(f"fault rule {injection.rule.id} closes the connection")
    elif action == "error" and not injection.after_work:
        if injection.targeted is None:
            return Answer(header, _refusal(request, request.body, injection), observe=observe)
        served, refused = split_request(request.body, injection.targeted, topic_name)
        answer = _answer(header, await _handle(handler, Request(header, served), ctx), observe)
        refusal = _refusal(request, refused, injection)
        if refusal is not None and isinstance(answer.body, dict):
            answer.body.update(merge_responses(answer.body, refusal))
        return answer
    answer = _answer(header, await _handle(handler, request, ctx), observe)
    if action in ("close", "error"):  # after the work
        if answer.settle is not None:
            await answer.settle()
            answer.settle = None
        if action == "close":
            raise CloseConnection(f"fault rule {injection.rule.id} closes the connection after the work")
        answer.body = _refusal(request, request.body, injection) if answer.body is not None else None
    elif action == "throttle" and isinstance(answer.body, dict):
        answer.body["throttle_time_ms"] = injection.throttle_ms  # in place: a Deferred's settle fills this body
        answer.mute_ms = injection.throttle_ms
    return answer
