"""Group, offset and coordinator handlers through dispatch, with real frames and a real broker object."""

from __future__ import annotations

import struct

import pytest
import trio
import trio.testing

from kafkacompat.broker import Broker
from kafkacompat.config import BrokerConfig
from kafkacompat.handlers.dispatch import dispatch
from kafkacompat.handlers.registry import RequestContext
from kafkacompat.protocol import decode_response, encode_request, encode_request_frame, parse_response_frame
from kafkacompat.protocol.errors import ErrorCode

E = ErrorCode
(OFFSET_COMMIT, OFFSET_FETCH, FIND_COORDINATOR, JOIN_GROUP, HEARTBEAT, LEAVE_GROUP, SYNC_GROUP,
 DESCRIBE_GROUPS, LIST_GROUPS, DELETE_GROUPS, OFFSET_DELETE) = 8, 9, 10, 11, 12, 13, 14, 15, 16, 42, 47


@pytest.fixture
def ctx(tmp_path):
    broker = Broker(BrokerConfig({"log.dirs": str(tmp_path), "group.min.session.timeout.ms": "6000",
                                  "group.initial.rebalance.delay.ms": "0"}))
    broker.log_manager.create_topic("t", 2)
    yield RequestContext(broker=broker, client_host="127.0.0.1")
    broker.close()


async def call(ctx, api_key: int, version: int, body: dict, client_id: str = "tester"):
    frame = encode_request_frame(api_key, version, 7, client_id, encode_request(api_key, version, body))[4:]
    raw = await dispatch(frame, ctx)
    correlation_id, payload = parse_response_frame(api_key, version, raw[4:])
    assert correlation_id == 7
    return decode_response(api_key, version, payload)


def subscription(*topics: str) -> bytes:
    body = struct.pack(">hi", 0, len(topics))
    for topic in topics:
        body += struct.pack(">h", len(topic)) + topic.encode()
    return body + struct.pack(">i", -1)


def join_body(member_id: str = "", instance: str | None = None) -> dict:
    return {"group_id": "g", "session_timeout_ms": 10_000, "rebalance_timeout_ms": 20_000,
            "member_id": member_id, "group_instance_id": instance, "protocol_type": "consumer",
            "protocols": [{"name": "range", "metadata": subscription("t")}], "reason": None}


async def test_find_coordinator_every_version(ctx):
    broker = ctx.broker
    for version in range(4):
        answer = await call(ctx, FIND_COORDINATOR, version, {"key": "g", "key_type": 0})
        assert (answer.error_code, answer.node_id, answer.host, answer.port) == (
            E.NONE, broker.node_id, broker.advertised_host, broker.advertised_port)
    answer = await call(ctx, FIND_COORDINATOR, 6, {"key_type": 0, "coordinator_keys": ["a", "b"]})
    assert [(c.key, c.node_id, c.error_code) for c in answer.coordinators] == [
        ("a", broker.node_id, E.NONE), ("b", broker.node_id, E.NONE)]
    txn = await call(ctx, FIND_COORDINATOR, 4, {"key_type": 1, "coordinator_keys": ["tx"]})
    assert (txn.coordinators[0].error_code, txn.coordinators[0].node_id) == (E.NONE, broker.node_id)
    old_txn = await call(ctx, FIND_COORDINATOR, 2, {"key": "tx", "key_type": 1})
    assert (old_txn.error_code, old_txn.port) == (E.NONE, broker.advertised_port)


async def test_member_id_required_then_join_sync_heartbeat_v9(ctx):
    first = await call(ctx, JOIN_GROUP, 9, join_body(), client_id="app")
    assert first.error_code == E.MEMBER_ID_REQUIRED and first.member_id.startswith("app-")
    assert first.protocol_name is None
    member = first.member_id
    joined = await call(ctx, JOIN_GROUP, 9, join_body(member), client_id="app")
    assert (joined.error_code, joined.generation_id, joined.leader) == (E.NONE, 1, member)
    assert (joined.protocol_type, joined.protocol_name, joined.skip_assignment) == ("consumer", "range", False)
    assert [(m.member_id, m.metadata) for m in joined.members] == [(member, subscription("t"))]
    synced = await call(ctx, SYNC_GROUP, 5, {
        "group_id": "g", "generation_id": 1, "member_id": member, "group_instance_id": None,
        "protocol_type": "consumer", "protocol_name": "range",
        "assignments": [{"member_id": member, "assignment": b"mine"}]})
    assert (synced.error_code, synced.assignment, synced.protocol_name) == (E.NONE, b"mine", "range")
    beat = await call(ctx, HEARTBEAT, 4, {"group_id": "g", "generation_id": 1, "member_id": member,
                                          "group_instance_id": None})
    assert beat.error_code == E.NONE
    stale = await call(ctx, HEARTBEAT, 0, {"group_id": "g", "generation_id": 0, "member_id": member})
    assert stale.error_code == E.ILLEGAL_GENERATION


async def test_old_join_errors_use_empty_protocol_name(ctx):
    answer = await call(ctx, JOIN_GROUP, 0, {**join_body("nobody"), "session_timeout_ms": 6000})
    assert answer.error_code == E.UNKNOWN_MEMBER_ID and answer.protocol_name == ""
    too_short = await call(ctx, JOIN_GROUP, 1, {**join_body(), "session_timeout_ms": 10})
    assert too_short.error_code == E.INVALID_SESSION_TIMEOUT


async def test_second_member_join_waits_for_the_first_to_rejoin(ctx):
    first = await call(ctx, JOIN_GROUP, 3, join_body())  # v3: no MEMBER_ID_REQUIRED round trip
    a = first.member_id
    answers = {}

    async def join_as(name: str, member_id: str) -> None:
        answers[name] = await call(ctx, JOIN_GROUP, 3, join_body(member_id))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(join_as, "b", "")
        await trio.testing.wait_all_tasks_blocked()
        assert "b" not in answers  # held until every member has rejoined
        beat = await call(ctx, HEARTBEAT, 2, {"group_id": "g", "generation_id": 1, "member_id": a})
        assert beat.error_code == E.REBALANCE_IN_PROGRESS
        nursery.start_soon(join_as, "a", a)
    assert answers["a"].generation_id == answers["b"].generation_id == 2
    assert answers["a"].leader == a and len(answers["a"].members) == 2 and answers["b"].members == []

    b = answers["b"].member_id
    synced = {}

    async def sync_as(member_id: str, assignments: list) -> None:
        synced[member_id] = await call(ctx, SYNC_GROUP, 3, {
            "group_id": "g", "generation_id": 2, "member_id": member_id, "group_instance_id": None,
            "assignments": assignments})

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sync_as, b, [])
        await trio.testing.wait_all_tasks_blocked()
        assert b not in synced
        nursery.start_soon(sync_as, a, [{"member_id": a, "assignment": b"A"}, {"member_id": b, "assignment": b"B"}])
    assert synced[a].assignment == b"A" and synced[b].assignment == b"B"


async def test_leave_group_v0_and_v3_shapes(ctx):
    a = (await call(ctx, JOIN_GROUP, 3, join_body())).member_id
    old = await call(ctx, LEAVE_GROUP, 0, {"group_id": "g", "member_id": "stranger"})
    assert old.error_code == E.UNKNOWN_MEMBER_ID
    batch = await call(ctx, LEAVE_GROUP, 5, {"group_id": "g", "members": [
        {"member_id": a, "group_instance_id": None, "reason": "bye"},
        {"member_id": "stranger", "group_instance_id": None, "reason": None}]})
    assert batch.error_code == E.NONE
    assert [(m.member_id, m.error_code) for m in batch.members] == [(a, E.NONE), ("stranger", E.UNKNOWN_MEMBER_ID)]


async def test_commit_and_fetch_across_versions(ctx):
    commit = await call(ctx, OFFSET_COMMIT, 2, {
        "group_id": "g", "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": -1,
        "topics": [{"name": "t", "partitions": [
            {"partition_index": 0, "committed_offset": 5, "committed_metadata": "m"},
            {"partition_index": 9, "committed_offset": 1, "committed_metadata": None}]},
            {"name": "missing", "partitions": [{"partition_index": 0, "committed_offset": 1,
                                                "committed_metadata": None}]}]})
    assert [(t.name, [(p.partition_index, p.error_code) for p in t.partitions]) for t in commit.topics] == [
        ("t", [(0, E.NONE), (9, E.UNKNOWN_TOPIC_OR_PARTITION)]), ("missing", [(0, E.UNKNOWN_TOPIC_OR_PARTITION)])]
    await call(ctx, OFFSET_COMMIT, 9, {
        "group_id": "g", "generation_id_or_member_epoch": -1, "member_id": "", "group_instance_id": None,
        "topics": [{"name": "t", "partitions": [
            {"partition_index": 1, "committed_offset": 8, "committed_leader_epoch": 2, "committed_metadata": ""}]}]})

    v1 = await call(ctx, OFFSET_FETCH, 1, {"group_id": "g", "topics": [{"name": "t", "partition_indexes": [0, 1]}]})
    assert [(p.partition_index, p.committed_offset, p.metadata) for p in v1.topics[0].partitions] == [
        (0, 5, "m"), (1, 8, "")]
    v7_all = await call(ctx, OFFSET_FETCH, 7, {"group_id": "g", "topics": None, "require_stable": False})
    assert v7_all.error_code == E.NONE
    assert [(p.partition_index, p.committed_offset, p.committed_leader_epoch)
            for p in v7_all.topics[0].partitions] == [(0, 5, -1), (1, 8, 2)]
    v8 = await call(ctx, OFFSET_FETCH, 8, {"groups": [
        {"group_id": "g", "topics": [{"name": "t", "partition_indexes": [1]}]},
        {"group_id": "other", "topics": None}], "require_stable": True})
    assert [(g.group_id, g.error_code) for g in v8.groups] == [("g", E.NONE), ("other", E.NONE)]
    assert v8.groups[0].topics[0].partitions[0].committed_offset == 8 and v8.groups[1].topics == []
    never = await call(ctx, OFFSET_FETCH, 5, {"group_id": "fresh", "topics": [{"name": "t", "partition_indexes": [0]}]})
    assert never.topics[0].partitions[0].committed_offset == -1


async def test_member_commit_needs_generation(ctx):
    a = (await call(ctx, JOIN_GROUP, 3, join_body())).member_id
    body = {"group_id": "g", "generation_id_or_member_epoch": 7, "member_id": a, "group_instance_id": None,
            "topics": [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 1,
                                                     "committed_leader_epoch": -1, "committed_metadata": None}]}]}
    answer = await call(ctx, OFFSET_COMMIT, 8, body)
    assert answer.topics[0].partitions[0].error_code == E.ILLEGAL_GENERATION


async def test_describe_list_delete_and_offset_delete(ctx):
    a = (await call(ctx, JOIN_GROUP, 5, join_body(instance="i1"), client_id="app")).member_id
    await call(ctx, SYNC_GROUP, 3, {"group_id": "g", "generation_id": 1, "member_id": a, "group_instance_id": "i1",
                                    "assignments": [{"member_id": a, "assignment": b"A"}]})
    await call(ctx, OFFSET_COMMIT, 2, {
        "group_id": "idle", "generation_id_or_member_epoch": -1, "member_id": "", "retention_time_ms": -1,
        "topics": [{"name": "t", "partitions": [{"partition_index": 0, "committed_offset": 3,
                                                 "committed_metadata": None}]}]})

    described = await call(ctx, DESCRIBE_GROUPS, 5, {"groups": ["g", "nobody"], "include_authorized_operations": True})
    g, nobody = described.groups
    assert (g.error_code, g.group_state, g.protocol_type, g.protocol_data) == (E.NONE, "Stable", "consumer", "range")
    member = g.members[0]
    assert (member.member_id, member.group_instance_id, member.client_id, member.client_host) == (
        a, "i1", "app", "/127.0.0.1")
    assert (member.member_metadata, member.member_assignment) == (subscription("t"), b"A")
    assert g.authorized_operations == (1 << 3) | (1 << 6) | (1 << 8)
    assert (nobody.error_code, nobody.group_state, nobody.members) == (E.NONE, "Dead", [])

    listed = await call(ctx, LIST_GROUPS, 5, {"states_filter": [], "types_filter": []})
    assert sorted((x.group_id, x.protocol_type, x.group_state, x.group_type) for x in listed.groups) == [
        ("g", "consumer", "Stable", "classic"), ("idle", "", "Empty", "classic")]
    stable_only = await call(ctx, LIST_GROUPS, 4, {"states_filter": ["Stable"]})
    assert [x.group_id for x in stable_only.groups] == ["g"]
    new_protocol_only = await call(ctx, LIST_GROUPS, 5, {"states_filter": [], "types_filter": ["consumer"]})
    assert new_protocol_only.groups == []

    deleted = await call(ctx, DELETE_GROUPS, 2, {"groups_names": ["g", "idle", "nobody"]})
    assert [(r.group_id, r.error_code) for r in deleted.results] == [
        ("g", E.NON_EMPTY_GROUP), ("idle", E.NONE), ("nobody", E.GROUP_ID_NOT_FOUND)]

    refused = await call(ctx, OFFSET_DELETE, 0, {"group_id": "g", "topics": [
        {"name": "t", "partitions": [{"partition_index": 0}]}, {"name": "gone", "partitions": [{"partition_index": 0}]}]})
    assert refused.error_code == E.NONE
    assert [(t.name, t.partitions[0].error_code) for t in refused.topics] == [
        ("t", E.GROUP_SUBSCRIBED_TO_TOPIC), ("gone", E.UNKNOWN_TOPIC_OR_PARTITION)]
    missing = await call(ctx, OFFSET_DELETE, 0, {"group_id": "idle", "topics": []})
    assert missing.error_code == E.GROUP_ID_NOT_FOUND
