"""The authorization checkpoint, driven through dispatch with real frames, a real broker and ACLs."""

from __future__ import annotations

import pytest

from kafkacompat.broker import Broker
from kafkacompat.config import BrokerConfig
from kafkacompat.handlers.authorization import RULES
from kafkacompat.handlers.dispatch import REGISTRY, CloseConnection, dispatch
from kafkacompat.handlers.registry import RequestContext
from kafkacompat.protocol import decode_response, encode_request, encode_request_frame, parse_response_frame
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.security.authorizer import (AclBinding, AclOperation as Op, AclPermission as Perm,
                                             PatternType as Pat, ResourceType as Res)
from tests.log.batch_builder import RecordSpec, build_batch

PRODUCE, FETCH, OFFSET_COMMIT, CREATE_TOPICS, INIT_PRODUCER_ID, DESCRIBE_ACLS, DESCRIBE_CONFIGS = 0, 1, 8, 19, 22, 29, 32
CONSUMER_GROUP_HEARTBEAT, CONSUMER_GROUP_DESCRIBE, SHARE_GROUP_HEARTBEAT = 68, 69, 76
ME = "User:ANONYMOUS"
TOPIC_FAILED = ErrorCode.TOPIC_AUTHORIZATION_FAILED


@pytest.fixture
def ctx(tmp_path):
    broker = Broker(BrokerConfig({"log.dirs": str(tmp_path), "auto.create.topics.enable": "false",
                                  "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer"}))
    for name in ("open", "closed"):
        broker.log_manager.create_topic(name, 1)
    yield RequestContext(broker=broker, client_host="127.0.0.1")
    broker.close()


def grant(ctx, kind: Res, name: str, op: Op, perm: Perm = Perm.ALLOW, pattern: Pat = Pat.LITERAL) -> None:
    ctx.broker.authorizer.store.add([AclBinding(kind, name, pattern, ME, "*", op, perm)])


async def call(ctx, api_key: int, version: int, body: dict):
    frame = encode_request_frame(api_key, version, 7, "test", encode_request(api_key, version, body))[4:]
    raw = await dispatch(frame, ctx)
    return decode_response(api_key, version, parse_response_frame(api_key, version, raw[4:])[1])


def produce_body(*topics: str, acks: int = -1) -> dict:
    batch = build_batch([RecordSpec(b"v")])
    return {"acks": acks, "timeout_ms": 1000, "topic_data": [
        {"name": topic, "partition_data": [{"index": 0, "records": batch}]} for topic in topics]}


def test_every_kafka_api_key_has_its_checks_listed() -> None:
    assert set(RULES) == set(range(93))
    assert set(REGISTRY) <= set(RULES)


async def test_produce_is_served_for_the_topics_it_may_write_and_refused_for_the_rest(ctx):
    grant(ctx, Res.TOPIC, "open", Op.WRITE)
    answer = await call(ctx, PRODUCE, 9, produce_body("open", "closed", "unknown"))
    codes = {t.name: [(p.index, p.error_code, p.base_offset) for p in t.partition_responses] for t in answer.responses}
    assert codes == {"open": [(0, ErrorCode.NONE, 0)], "closed": [(0, TOPIC_FAILED, -1)],
                     "unknown": [(0, TOPIC_FAILED, -1)]}
    assert ctx.broker.log_manager.partition("closed", 0).high_watermark == 0


async def test_an_unanswered_produce_that_is_refused_closes_the_connection(ctx):
    with pytest.raises(CloseConnection):
        await call(ctx, PRODUCE, 9, produce_body("closed", acks=0))


async def test_fetch_by_topic_id_is_refused_per_topic_and_answered_at_once(ctx):
    grant(ctx, Res.TOPIC, "open", Op.READ)
    ids = {name: ctx.broker.log_manager.topic(name).topic_id for name in ("open", "closed")}

    def body(*names: str) -> dict:
        return {"max_wait_ms": 60_000, "min_bytes": 1, "max_bytes": 1 << 20, "session_epoch": -1,
                "topics": [{"topic_id": ids[n], "partitions": [{"partition": 0, "fetch_offset": 0,
                                                               "partition_max_bytes": 1 << 20}]} for n in names]}

    refused = await call(ctx, FETCH, 13, body("closed"))  # would long-poll a minute if the handler ran
    assert refused.error_code == ErrorCode.NONE
    assert [(t.topic_id, [p.error_code for p in t.partitions]) for t in refused.responses] == [
        (ids["closed"], [TOPIC_FAILED])]
    assert refused.responses[0].partitions[0].records is not None  # empty, never null


async def test_offset_commit_needs_group_read_then_topic_read(ctx):
    body = {"group_id": "g", "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": -1,
            "topics": [{"name": t, "partitions": [{"partition_index": 0, "committed_offset": 1,
                                                   "committed_metadata": ""}]} for t in ("open", "closed")]}

    def codes(answer) -> dict:
        return {t.name: [p.error_code for p in t.partitions] for t in answer.topics}

    assert codes(await call(ctx, OFFSET_COMMIT, 8, body)) == {
        "open": [ErrorCode.GROUP_AUTHORIZATION_FAILED], "closed": [ErrorCode.GROUP_AUTHORIZATION_FAILED]}
    grant(ctx, Res.GROUP, "g", Op.READ)
    grant(ctx, Res.TOPIC, "open", Op.READ)
    assert codes(await call(ctx, OFFSET_COMMIT, 8, body)) == {"open": [ErrorCode.NONE], "closed": [TOPIC_FAILED]}


async def test_describe_configs_answers_each_resource_with_its_own_error(ctx):
    grant(ctx, Res.TOPIC, "op", Op.ALTER_CONFIGS, pattern=Pat.PREFIXED)  # implies DESCRIBE_CONFIGS
    body = {"include_synonyms": False, "include_documentation": False, "resources": [
        {"resource_type": 2, "resource_name": "open", "configuration_keys": ["retention.ms"]},
        {"resource_type": 2, "resource_name": "closed", "configuration_keys": None},
        {"resource_type": 4, "resource_name": "1", "configuration_keys": None}]}
    answer = await call(ctx, DESCRIBE_CONFIGS, 4, body)
    assert {(r.resource_type, r.resource_name): r.error_code for r in answer.results} == {
        (2, "open"): ErrorCode.NONE, (2, "closed"): TOPIC_FAILED, (4, "1"): ErrorCode.CLUSTER_AUTHORIZATION_FAILED}
    assert [c.name for r in answer.results if r.resource_name == "open" for c in r.configs] == ["retention.ms"]


async def test_create_topics_needs_create_on_the_cluster_or_the_topic(ctx):
    def body(*names: str) -> dict:
        return {"timeout_ms": 1000, "validate_only": True, "topics": [
            {"name": n, "num_partitions": 1, "replication_factor": 1, "assignments": [], "configs": []}
            for n in names]}

    grant(ctx, Res.TOPIC, "new-", Op.CREATE, pattern=Pat.PREFIXED)
    answer = await call(ctx, CREATE_TOPICS, 5, body("new-a", "other"))
    assert {t.name: t.error_code for t in answer.topics} == {"new-a": ErrorCode.NONE, "other": TOPIC_FAILED}
    grant(ctx, Res.CLUSTER, "kafka-cluster", Op.CREATE)
    answer = await call(ctx, CREATE_TOPICS, 5, body("other"))
    assert {t.name: t.error_code for t in answer.topics} == {"other": ErrorCode.NONE}


async def test_an_idempotent_producer_needs_idempotent_write_or_write_on_some_topic(ctx):
    body = {"transactional_id": None, "transaction_timeout_ms": 60_000, "producer_id": -1, "producer_epoch": -1}
    assert (await call(ctx, INIT_PRODUCER_ID, 4, body)).error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    grant(ctx, Res.TOPIC, "closed", Op.WRITE)
    assert (await call(ctx, INIT_PRODUCER_ID, 4, body)).error_code == ErrorCode.NONE


async def test_the_acl_apis_need_their_cluster_operations(ctx):
    body = {"resource_type_filter": 1, "resource_name_filter": None, "pattern_type_filter": 1,
            "principal_filter": None, "host_filter": None, "operation": 1, "permission_type": 1}
    assert (await call(ctx, DESCRIBE_ACLS, 3, body)).error_code == ErrorCode.CLUSTER_AUTHORIZATION_FAILED
    grant(ctx, Res.CLUSTER, "kafka-cluster", Op.ALTER)  # implies DESCRIBE
    answer = await call(ctx, DESCRIBE_ACLS, 3, body)
    assert answer.error_code == ErrorCode.NONE
    assert [(r.resource_type, r.resource_name, [a.operation for a in r.acls]) for r in answer.resources] == [
        (Res.CLUSTER, "kafka-cluster", [Op.ALTER])]


async def test_metadata_lists_what_may_be_described_with_the_operations_allowed(ctx):
    grant(ctx, Res.TOPIC, "open", Op.READ)
    grant(ctx, Res.CLUSTER, "kafka-cluster", Op.DESCRIBE)
    body = {"topics": None, "allow_auto_topic_creation": False, "include_cluster_authorized_operations": True,
            "include_topic_authorized_operations": True}
    answer = await call(ctx, 3, 9, body)
    assert [(t.name, t.error_code, t.topic_authorized_operations) for t in answer.topics] == [
        ("open", ErrorCode.NONE, 1 << Op.READ | 1 << Op.DESCRIBE)]
    assert answer.cluster_authorized_operations == 1 << Op.DESCRIBE
    named = await call(ctx, 3, 9, {**body, "topics": [{"name": "closed"}, {"name": "absent"}]})
    assert [(t.name, t.error_code) for t in named.topics] == [("closed", TOPIC_FAILED), ("absent", TOPIC_FAILED)]


async def test_offset_fetch_leaves_out_or_refuses_topics_the_caller_may_not_describe(ctx):
    grant(ctx, Res.GROUP, "g", Op.READ)
    grant(ctx, Res.TOPIC, "open", Op.READ)
    ctx.broker.authorizer.super_users = frozenset({ME})
    commit = {"group_id": "g", "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": -1,
              "topics": [{"name": t, "partitions": [{"partition_index": 0, "committed_offset": 5,
                                                     "committed_metadata": "m"}]} for t in ("open", "closed")]}
    await call(ctx, OFFSET_COMMIT, 8, commit)
    ctx.broker.authorizer.super_users = frozenset()

    def fetched(topics) -> dict:
        return {"groups": [{"group_id": "g", "member_id": None, "member_epoch": -1, "topics": topics}],
                "require_stable": False}

    listing = await call(ctx, 9, 8, fetched(None))
    assert [(t.name, [p.committed_offset for p in t.partitions]) for t in listing.groups[0].topics] == [("open", [5])]
    named = await call(ctx, 9, 8, fetched([{"name": "closed", "partition_indexes": [0]}]))
    assert [(t.name, [(p.committed_offset, p.error_code) for p in t.partitions]) for t in named.groups[0].topics] == [
        ("closed", [(-1, TOPIC_FAILED)])]
    unauthorized_group = await call(ctx, 9, 8, {"groups": [{"group_id": "other", "member_id": None,
                                                            "member_epoch": -1, "topics": None}],
                                                "require_stable": False})
    assert [(g.group_id, g.error_code) for g in unauthorized_group.groups] == [
        ("other", ErrorCode.GROUP_AUTHORIZATION_FAILED)]


@pytest.mark.parametrize("api_key", [CONSUMER_GROUP_HEARTBEAT, SHARE_GROUP_HEARTBEAT])
async def test_a_group_heartbeat_is_refused_when_it_subscribes_to_a_topic_it_may_not_describe(ctx, api_key):
    grant(ctx, Res.GROUP, "g", Op.READ)
    grant(ctx, Res.TOPIC, "open", Op.READ)  # implies DESCRIBE
    version, extra, group = {CONSUMER_GROUP_HEARTBEAT: (0, {"rebalance_timeout_ms": 30_000, "topic_partitions": []},
                                                        ctx.broker.groups.consumer_group),
                             SHARE_GROUP_HEARTBEAT: (1, {}, ctx.broker.share_groups.group)}[api_key]

    async def heartbeat(*topics: str):
        return await call(ctx, api_key, version, {"group_id": "g", "member_id": "m" * 22, "member_epoch": 0,
                                                  "subscribed_topic_names": list(topics), **extra})

    refused = await heartbeat("open", "closed")
    assert (refused.error_code, refused.member_epoch) == (TOPIC_FAILED, 0)
    assert group("g") is None  # refused before the coordinator saw it
    joined = await heartbeat("open")
    assert joined.error_code == ErrorCode.NONE and joined.member_epoch > 0


# (heartbeat key, version, extra join fields, describe key, version): a consumer group (KIP-848), a share group
_DESCRIBED_GROUPS = {
    "consumer": (CONSUMER_GROUP_HEARTBEAT, 0, {"rebalance_timeout_ms": 30_000, "topic_partitions": []},
                 CONSUMER_GROUP_DESCRIBE, 0),
    "share": (SHARE_GROUP_HEARTBEAT, 1, {}, 77, 1),
}


@pytest.mark.parametrize("kind", sorted(_DESCRIBED_GROUPS))
async def test_group_describe_hides_a_group_assigned_a_topic_the_caller_may_not_describe(ctx, kind):
    heartbeat, heartbeat_version, extra, describe_key, describe_version = _DESCRIBED_GROUPS[kind]
    grant(ctx, Res.GROUP, "g", Op.READ)
    grant(ctx, Res.TOPIC, "*", Op.DESCRIBE)
    joined = await call(ctx, heartbeat, heartbeat_version, {
        "group_id": "g", "member_id": "m" * 22, "member_epoch": 0, "subscribed_topic_names": ["open", "closed"],
        **extra})
    assert joined.error_code == ErrorCode.NONE
    if kind == "share":  # assigned once its topics' share state is initialized, just after the join
        ctx.broker.share_groups.tick(ctx.broker.clock())
        again = await call(ctx, heartbeat, heartbeat_version, {
            "group_id": "g", "member_id": "m" * 22, "member_epoch": joined.member_epoch,
            "subscribed_topic_names": None})
        assert again.error_code == ErrorCode.NONE and again.assignment.topic_partitions

    async def describe():
        (group,) = (await call(ctx, describe_key, describe_version, {"group_ids": ["g"]})).groups
        return group

    shown = await describe()
    assert (shown.error_code, shown.group_state, len(shown.members)) == (ErrorCode.NONE, "Stable", 1)
    ctx.broker.authorizer.store.add([AclBinding(Res.TOPIC, "closed", Pat.LITERAL, ME, "*", Op.DESCRIBE,
                                                Perm.DENY)])
    hidden = await describe()
    assert (hidden.error_code, hidden.members) == (TOPIC_FAILED, [])
    assert hidden.error_message == "The group has described topic(s) that the client is not authorized to describe."


async def test_describe_share_group_offsets_leaves_out_or_refuses_topics_the_caller_may_not_describe(ctx):
    describe_share_group_offsets = 90
    grant(ctx, Res.GROUP, "s", Op.DESCRIBE)
    grant(ctx, Res.TOPIC, "open", Op.DESCRIBE)
    for name in ("open", "closed"):
        ctx.broker.share_groups.alter_start_offset("s", ctx.broker.log_manager.topic(name).topic_id, 0, 0)

    async def describe(topics):
        (group,) = (await call(ctx, describe_share_group_offsets, 1, {"groups": [
            {"group_id": "s", "topics": topics}]})).groups
        return {t.topic_name: [(p.error_code, p.start_offset, p.lag) for p in t.partitions] for t in group.topics}

    assert await describe(None) == {"open": [(ErrorCode.NONE, 0, 0)]}
    assert await describe([{"topic_name": n, "partitions": [0]} for n in ("open", "closed")]) == {
        "open": [(ErrorCode.NONE, 0, 0)], "closed": [(TOPIC_FAILED, -1, -1)]}
