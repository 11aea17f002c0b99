"""The authorization checkpoint: which ACL operation each request needs, decided before its handler runs.

``RULES`` lists, for every Kafka API key (served here or not yet), the
checks Kafka's request handling makes, in its order, each naming the
resource type and operation, where the resource names come from, and the
error Kafka answers with. A rule whose names come from the request as a
whole (the cluster, ``group_id``, ``transactional_id``) refuses the whole
request when denied; a rule over a top-level array (``topics``,
``resources``, ``groups``) refuses only the denied entries: the handler runs
on the rest and the refused entries are merged into its answer with the
rule's error, as Kafka answers per topic or group. Authorization comes
before existence, so an unauthorized unknown topic is
TOPIC_AUTHORIZATION_FAILED, never UNKNOWN_TOPIC_OR_PARTITION.

Where Kafka filters instead of failing (Metadata, ListGroups) the handler
asks :func:`allowed` for what it may list. With no authorizer configured,
dispatch never calls in here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterator, Mapping

from kafkacompat.handlers.error_response import error_response
from kafkacompat.handlers.registry import Deferred, Request, RequestContext
from kafkacompat.handlers.resources import merge_responses
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.security.authorizer import CLUSTER_NAME, AclOperation as Op, ResourceType as Res

Answer = Mapping[str, Any] | Deferred | None
Handle = Callable[[Request, RequestContext], Awaitable[Answer]]

TOPIC_FAILED = ErrorCode.TOPIC_AUTHORIZATION_FAILED
GROUP_FAILED = ErrorCode.GROUP_AUTHORIZATION_FAILED
CLUSTER_FAILED = ErrorCode.CLUSTER_AUTHORIZATION_FAILED
TXN_FAILED = ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED
PRODUCE = 0
# DescribeConfigs-style resource types, and the ACL resource each is checked on.
_CONFIG_RESOURCES = {2: (Res.TOPIC, TOPIC_FAILED), 4: (Res.CLUSTER, CLUSTER_FAILED), 8: (Res.CLUSTER, CLUSTER_FAILED),
                     16: (Res.CLUSTER, CLUSTER_FAILED), 32: (Res.GROUP, GROUP_FAILED)}
_TOPIC_KEYS = ("name", "topic", "topic_name")


def allowed(ctx: RequestContext, operation: Op, resource_type: Res, name: str) -> bool:
    """May the caller do this? Always true without an authorizer."""
    authorizer = ctx.broker.authorizer
    return authorizer is None or authorizer.authorize(ctx.principal, ctx.client_host, operation, resource_type, name)


def topic_describe_check(ctx: RequestContext) -> Callable[[str], bool] | None:
    """The caller's DESCRIBE check on topics, for a group that resolves a regex later (None: no authorizer).

    Kafka lets a regex subscription match only topics the member may DESCRIBE.
    """
    if ctx.broker.authorizer is None:
        return None
    return lambda name: allowed(ctx, Op.DESCRIBE, Res.TOPIC, name)


# The operations Kafka reports in authorized-operations bitfields, per resource type.
_SUPPORTED_OPERATIONS = {
    Res.TOPIC: (Op.READ, Op.WRITE, Op.CREATE, Op.DELETE, Op.ALTER, Op.DESCRIBE, Op.DESCRIBE_CONFIGS,
                Op.ALTER_CONFIGS),
    Res.GROUP: (Op.READ, Op.DELETE, Op.DESCRIBE),
    Res.CLUSTER: (Op.CREATE, Op.ALTER, Op.DESCRIBE, Op.CLUSTER_ACTION, Op.DESCRIBE_CONFIGS, Op.ALTER_CONFIGS,
                  Op.IDEMPOTENT_WRITE),
}


def authorized_operations(ctx: RequestContext, resource_type: Res, name: str) -> int:
    """Kafka's bitfield of the supported operations the caller may perform (all of them without an authorizer)."""
    return sum(1 << op for op in _SUPPORTED_OPERATIONS[resource_type] if allowed(ctx, op, resource_type, name))


@dataclass(frozen=True)
class Rule:
    """One check: ``operation`` on ``resource`` for the names ``source`` finds, refused with ``error``.

    ``array`` names the top-level array whose entries are refused one by one;
    None refuses the whole request, as does ``whole`` when any entry is denied.
    ``when`` limits the rule to some requests;
    ``unless`` is a cluster operation that, when allowed, grants every name
    (CreateTopics' CREATE on the cluster).
    """

    resource: Res
    operation: Op
    error: ErrorCode
    array: str | None = None
    field: str | None = None
    when: Callable[[Request], bool] | None = None
    unless: Op | None = None
    whole: bool = False


def cluster(operation: Op, error: ErrorCode = CLUSTER_FAILED, when: Callable[[Request], bool] | None = None) -> Rule:
    return Rule(Res.CLUSTER, operation, error, when=when)


def group(operation: Op, field: str = "group_id") -> Rule:
    return Rule(Res.GROUP, operation, GROUP_FAILED, field=field)


def groups(operation: Op, array: str) -> Rule:
    return Rule(Res.GROUP, operation, GROUP_FAILED, array=array)


def topics(operation: Op, array: str = "topics", when: Callable[[Request], bool] | None = None,
           unless: Op | None = None) -> Rule:
    return Rule(Res.TOPIC, operation, TOPIC_FAILED, array=array, when=when, unless=unless)


def subscribed_topics() -> Rule:
    """A group heartbeat's subscription: one topic it may not DESCRIBE refuses the heartbeat, so the
    member never learns of it through its assignment."""
    return Rule(Res.TOPIC, Op.DESCRIBE, TOPIC_FAILED, array="subscribed_topic_names", whole=True)


def txn(operation: Op = Op.WRITE) -> Rule:
    return Rule(Res.TRANSACTIONAL_ID, operation, TXN_FAILED, field="transactional_id")


def configs(operation: Op) -> Rule:
    """Config resources: each entry's type decides the ACL resource and the error (see _CONFIG_RESOURCES)."""
    return Rule(Res.UNKNOWN, operation, CLUSTER_FAILED, array="resources")


def _follower(request: Request) -> bool:
    body = request.body
    state = body.get("replica_state")
    return body.get("replica_id", -1) >= 0 or (state is not None and state.replica_id >= 0)


def _consumer(request: Request) -> bool:
    return not _follower(request)


def _by_key_type(kind: int) -> Callable[[Request], bool]:
    return lambda request: request.body.get("key_type", 0) == kind


def _legacy_txn(request: Request) -> bool:
    return request.version <= 3


def _broker_txn(request: Request) -> bool:
    return request.version >= 4


_BROKER_ONLY = [cluster(Op.CLUSTER_ACTION)]  # inter-broker and controller APIs

RULES: dict[int, list[Rule]] = {
    0: [txn(), topics(Op.WRITE, "topic_data")],  # Produce
    1: [cluster(Op.CLUSTER_ACTION, TOPIC_FAILED, when=_follower), topics(Op.READ, when=_consumer)],  # Fetch
    2: [topics(Op.DESCRIBE)],  # ListOffsets
    3: [],  # Metadata: the handler leaves out or refuses what the caller may not DESCRIBE
    4: _BROKER_ONLY, 5: _BROKER_ONLY, 6: _BROKER_ONLY, 7: _BROKER_ONLY,
    8: [group(Op.READ), topics(Op.READ)],  # OffsetCommit
    9: [Rule(Res.GROUP, Op.DESCRIBE, GROUP_FAILED, field="group_id", when=lambda r: r.version <= 7),
        groups(Op.DESCRIBE, "groups"), topics(Op.DESCRIBE)],  # OffsetFetch
    10: [Rule(Res.GROUP, Op.DESCRIBE, GROUP_FAILED, field="key", when=_by_key_type(0)),
         Rule(Res.GROUP, Op.DESCRIBE, GROUP_FAILED, array="coordinator_keys", when=_by_key_type(0)),
         Rule(Res.TRANSACTIONAL_ID, Op.DESCRIBE, TXN_FAILED, field="key", when=_by_key_type(1)),
         Rule(Res.TRANSACTIONAL_ID, Op.DESCRIBE, TXN_FAILED, array="coordinator_keys", when=_by_key_type(1))],
    11: [group(Op.READ)], 12: [group(Op.READ)], 13: [group(Op.READ)], 14: [group(Op.READ)],
    15: [groups(Op.DESCRIBE, "groups")],  # DescribeGroups
    16: [],  # ListGroups: the handler lists the groups the caller may DESCRIBE
    17: [], 18: [], 36: [],  # SaslHandshake, ApiVersions, SaslAuthenticate: before any principal is known
    19: [topics(Op.CREATE, unless=Op.CREATE)],  # CreateTopics
    20: [topics(Op.DELETE), topics(Op.DELETE, "topic_names")],  # DeleteTopics v6+, v0-5
    21: [topics(Op.DELETE)],  # DeleteRecords
    22: [txn(), Rule(Res.CLUSTER, Op.IDEMPOTENT_WRITE, CLUSTER_FAILED,
                     when=lambda r: r.body.transactional_id is None)],  # InitProducerId (see _idempotent_write)
    23: [cluster(Op.CLUSTER_ACTION, when=_follower), topics(Op.DESCRIBE, when=_consumer)],  # OffsetForLeaderEpoch
    24: [Rule(Res.TRANSACTIONAL_ID, Op.WRITE, TXN_FAILED, field="v3_and_below_transactional_id", when=_legacy_txn),
         topics(Op.WRITE, "v3_and_below_topics", when=_legacy_txn),
         cluster(Op.CLUSTER_ACTION, when=_broker_txn)],  # AddPartitionsToTxn
    25: [txn(), group(Op.READ)],  # AddOffsetsToTxn
    26: [txn()],  # EndTxn
    27: _BROKER_ONLY,  # WriteTxnMarkers
    28: [txn(), group(Op.READ), topics(Op.READ)],  # TxnOffsetCommit
    29: [cluster(Op.DESCRIBE)], 30: [cluster(Op.ALTER)], 31: [cluster(Op.ALTER)],  # ACLs
    32: [configs(Op.DESCRIBE_CONFIGS)], 33: [configs(Op.ALTER_CONFIGS)],
    34: [cluster(Op.ALTER)], 35: [cluster(Op.DESCRIBE)],  # AlterReplicaLogDirs, DescribeLogDirs
    37: [topics(Op.ALTER)],  # CreatePartitions
    # Delegation tokens: refused before any ACL on a connection that is not authenticated by SASL or TLS.
    38: [], 39: [], 40: [], 41: [],
    42: [groups(Op.DELETE, "groups_names")],  # DeleteGroups
    43: [cluster(Op.ALTER)],  # ElectLeaders
    44: [configs(Op.ALTER_CONFIGS)],  # IncrementalAlterConfigs
    45: [cluster(Op.ALTER)], 46: [cluster(Op.DESCRIBE)],  # partition reassignments
    47: [group(Op.DELETE), topics(Op.READ)],  # OffsetDelete
    48: [cluster(Op.DESCRIBE_CONFIGS)], 49: [cluster(Op.ALTER_CONFIGS)],  # client quotas
    50: [cluster(Op.DESCRIBE)], 51: [cluster(Op.ALTER)],  # SCRAM credentials
    52: _BROKER_ONLY, 53: _BROKER_ONLY, 54: _BROKER_ONLY,  # Raft votes and epochs
    55: [cluster(Op.DESCRIBE)],  # DescribeQuorum
    56: _BROKER_ONLY,  # AlterPartition
    57: [cluster(Op.ALTER)],  # UpdateFeatures
    58: _BROKER_ONLY, 59: _BROKER_ONLY,  # Envelope, FetchSnapshot
    60: [],  # DescribeCluster: no check, only the authorized operations it may report
    61: [topics(Op.READ)],  # DescribeProducers
    62: _BROKER_ONLY, 63: _BROKER_ONLY, 64: [cluster(Op.ALTER)],  # broker registration
    65: [Rule(Res.TRANSACTIONAL_ID, Op.DESCRIBE, TXN_FAILED, array="transactional_ids")],  # DescribeTransactions
    66: [],  # ListTransactions: lists what the caller may DESCRIBE
    67: _BROKER_ONLY,  # AllocateProducerIds
    68: [group(Op.READ), subscribed_topics()],  # ConsumerGroupHeartbeat (KIP-848)
    69: [groups(Op.DESCRIBE, "group_ids")],  # ConsumerGroupDescribe
    70: _BROKER_ONLY,  # ControllerRegistration
    71: [], 72: [],  # client telemetry
    73: _BROKER_ONLY,  # AssignReplicasToDirs
    74: [cluster(Op.DESCRIBE_CONFIGS)],  # ListClientMetricsResources
    75: [topics(Op.DESCRIBE)],  # DescribeTopicPartitions
    76: [group(Op.READ), subscribed_topics()],  # ShareGroupHeartbeat (KIP-932)
    77: [groups(Op.DESCRIBE, "group_ids")],  # ShareGroupDescribe
    78: [group(Op.READ), topics(Op.READ)],  # ShareFetch
    79: [group(Op.READ), topics(Op.READ)],  # ShareAcknowledge
    80: [cluster(Op.ALTER)], 81: [cluster(Op.ALTER)], 82: _BROKER_ONLY,  # Raft voters
    83: _BROKER_ONLY, 84: _BROKER_ONLY, 85: _BROKER_ONLY, 86: _BROKER_ONLY, 87: _BROKER_ONLY,  # share state
    88: [group(Op.READ)],  # StreamsGroupHeartbeat
    89: [groups(Op.DESCRIBE, "group_ids")],  # StreamsGroupDescribe
    90: [groups(Op.DESCRIBE, "groups")],  # DescribeShareGroupOffsets
    91: [group(Op.READ), topics(Op.READ)],  # AlterShareGroupOffsets
    92: [group(Op.DELETE), topics(Op.READ)],  # DeleteShareGroupOffsets
}


async def checkpoint(handle: Handle, request: Request, ctx: RequestContext) -> Answer:
    """Run ``handle`` on what the caller may do; answer the rest with Kafka's authorization errors."""
    header, body = request.header, request.body
    refused: dict[str, dict[int, ErrorCode]] = {}  # array -> {id(entry): error}
    for rule in RULES.get(header.api_key, ()):
        if rule.when is not None and not rule.when(request):
            continue
        if rule.array is None:
            name = CLUSTER_NAME if rule.field is None else body.get(rule.field)
            if name and not _rule_allows(rule, ctx, name):  # an absent (or, before v4, empty) name is not checked
                return _whole_refusal(request, rule.error)
            continue
        if rule.unless is not None and allowed(ctx, rule.unless, Res.CLUSTER, CLUSTER_NAME):
            continue
        if rule.whole:
            entries = _entries(rule, body, ctx)
            if any(not allowed(ctx, rule.operation, resource, name) for _, resource, name, _ in entries):
                return _whole_refusal(request, rule.error)
            continue
        denied = refused.setdefault(rule.array, {})
        for entry, resource, name, error in _entries(rule, body, ctx):
            if id(entry) not in denied and not allowed(ctx, rule.operation, resource, name):
                denied[id(entry)] = error
    if not any(refused.values()):
        return await handle(request, ctx)
    if header.api_key == PRODUCE and body.acks == 0:
        from kafkacompat.handlers.dispatch import CloseConnection  # an unanswered produce: Kafka closes instead
        raise CloseConnection("produce with acks=0 to a topic the principal may not write")
    served = type(body)(body)
    for array, denied in refused.items():
        served[array] = [entry for entry in body[array] if id(entry) not in denied]
    if any(body[array] and not served[array] for array in refused):
        answer: Answer = error_response(header.api_key, header.api_version, served, ErrorCode.NONE)
    else:
        answer = await handle(Request(header, served), ctx)
    target = answer.body if isinstance(answer, Deferred) else answer
    if isinstance(target, dict):
        for array, denied in refused.items():
            for error in set(denied.values()):
                only = type(body)({k: ([] if isinstance(v, list) else v) for k, v in body.items()})
                only[array] = [entry for entry in body[array] if denied.get(id(entry)) == error]
                refusal = error_response(header.api_key, header.api_version, only, error)
                target.update(merge_responses(target, refusal))
    return answer


def _rule_allows(rule: Rule, ctx: RequestContext, name: str) -> bool:
    if rule.resource == Res.CLUSTER and rule.operation == Op.IDEMPOTENT_WRITE:
        return _idempotent_write(ctx)
    return allowed(ctx, rule.operation, rule.resource, name)


def _idempotent_write(ctx: RequestContext) -> bool:
    """InitProducerId without a transactional id: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic."""
    authorizer = ctx.broker.authorizer
    return (authorizer.authorize(ctx.principal, ctx.client_host, Op.IDEMPOTENT_WRITE, Res.CLUSTER, CLUSTER_NAME)
            or authorizer.authorize_any(ctx.principal, ctx.client_host, Op.WRITE, Res.TOPIC))


def _entries(rule: Rule, body: Mapping[str, Any], ctx: RequestContext) -> Iterator[tuple[Any, Res, str, ErrorCode]]:
    """(entry, resource type, name, error) for each entry of the rule's array the rule applies to."""
    for entry in body.get(rule.array) or ():
        if rule.array == "resources":
            kind = _CONFIG_RESOURCES.get(entry.resource_type)
            if kind is not None:
                resource, error = kind
                yield entry, resource, CLUSTER_NAME if resource == Res.CLUSTER else entry.resource_name, error
            continue
        name = entry if isinstance(entry, str) else _entry_name(entry, rule.resource, ctx)
        if name is not None:
            yield entry, rule.resource, name, rule.error


def _entry_name(entry: Mapping[str, Any], resource: Res, ctx: RequestContext) -> str | None:
    if resource == Res.GROUP:
        return entry.get("group_id")
    name = next((entry[k] for k in _TOPIC_KEYS if entry.get(k)), None)
    if name is None and entry.get("topic_id") is not None:
        topic = ctx.broker.log_manager.topic_by_id(entry["topic_id"])  # unknown ids are the handler's to answer
        name = topic.name if topic is not None else None
    return name


def _whole_refusal(request: Request, error: ErrorCode) -> Answer:
    header = request.header
    if header.api_key == PRODUCE and request.body.acks == 0:
        from kafkacompat.handlers.dispatch import CloseConnection
        raise CloseConnection("produce with acks=0 by a principal that may not use its transactional id")
    return error_response(header.api_key, header.api_version, request.body, error)
