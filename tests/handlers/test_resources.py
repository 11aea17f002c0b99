"""The resources a request names, found by field name, and requests split around some of them."""

from __future__ import annotations

import uuid

from construct import Container

from kafkacompat.handlers.error_response import error_response
from kafkacompat.handlers.resources import Resources, merge_responses, request_resources, split_request
from kafkacompat.protocol import decode_request, decode_response, encode_request, encode_response_parts, join_parts

PRODUCE, FETCH, OFFSET_COMMIT, FIND_COORDINATOR, DESCRIBE_GROUPS, DELETE_TOPICS = 0, 1, 8, 10, 15, 20
CONSUMER_GROUP_HEARTBEAT, CONSUMER_GROUP_DESCRIBE = 68, 69


def decoded(api_key: int, version: int, body: dict) -> Container:
    return decode_request(api_key, version, encode_request(api_key, version, body))


def produce_request() -> Container:
    return decoded(PRODUCE, 9, {"transactional_id": "tx", "acks": -1, "timeout_ms": 100, "topic_data": [
        {"name": "a", "partition_data": [{"index": 0, "records": None}, {"index": 1, "records": None}]},
        {"name": "b", "partition_data": [{"index": 0, "records": None}]},
    ]})


def test_produce_names_its_topics_partitions_and_transactional_id():
    found = request_resources(produce_request())
    assert found.topics == {"a", "b"}
    assert found.partitions == {("a", 0), ("a", 1), ("b", 0)}
    assert found.transactional_ids == {"tx"} and found.groups == set()


def test_fetch_names_partitions_under_topic_field():
    found = request_resources(decoded(FETCH, 11, {"topics": [
        {"topic": "t", "partitions": [{"partition": 3}, {"partition": 5}]}]}))
    assert found.partitions == {("t", 3), ("t", 5)}


def test_groups_by_id_by_list_and_coordinator_keys():
    commit = decoded(OFFSET_COMMIT, 8, {"group_id": "g", "topics": [{"name": "t", "partitions": [
        {"partition_index": 2}]}]})
    assert (request_resources(commit).groups, request_resources(commit).partitions) == ({"g"}, {("t", 2)})
    assert request_resources(decoded(DESCRIBE_GROUPS, 5, {"groups": ["g1", "g2"]})).groups == {"g1", "g2"}
    assert request_resources(decoded(FIND_COORDINATOR, 3, {"key": "g", "key_type": 0})).groups == {"g"}
    assert request_resources(decoded(FIND_COORDINATOR, 3, {"key": "tx", "key_type": 1})).transactional_ids == {"tx"}
    assert request_resources(decoded(FIND_COORDINATOR, 4, {"coordinator_keys": ["g3"]})).groups == {"g3"}
    assert request_resources(decoded(DELETE_TOPICS, 5, {"topic_names": ["x", "y"]})).topics == {"x", "y"}


def test_kip848_requests_name_their_group_and_subscribed_topics():
    heartbeat = decoded(CONSUMER_GROUP_HEARTBEAT, 1, {
        "group_id": "g", "member_id": "m", "member_epoch": 3, "subscribed_topic_names": ["a", "b"],
        "subscribed_topic_regex": "c.*", "topic_partitions": [{"topic_id": uuid.UUID(int=1), "partitions": [0]}]})
    found = request_resources(heartbeat)
    assert (found.groups, found.topics, found.partitions) == ({"g"}, {"a", "b"}, set())
    described = decoded(CONSUMER_GROUP_DESCRIBE, 0, {"group_ids": ["g1", "g2"], "include_authorized_operations": False})
    assert request_resources(described).groups == {"g1", "g2"}


def test_transaction_apis_name_their_transactional_ids_groups_and_partitions():
    v3 = decoded(24, 3, {"v3_and_below_transactional_id": "tx", "v3_and_below_topics": [
        {"name": "t", "partitions": [0, 2]}]})
    assert (request_resources(v3).transactional_ids, request_resources(v3).partitions) == ({"tx"}, {("t", 0), ("t", 2)})
    batched = decoded(24, 5, {"transactions": [{"transactional_id": "a", "topics": [{"name": "t", "partitions": [1]}]},
                                               {"transactional_id": "b", "topics": []}]})
    assert (request_resources(batched).transactional_ids, request_resources(batched).partitions) == (
        {"a", "b"}, {("t", 1)})
    offsets = decoded(28, 4, {"transactional_id": "tx", "group_id": "g", "topics": [
        {"name": "t", "partitions": [{"partition_index": 3}]}]})
    assert (request_resources(offsets).groups, request_resources(offsets).partitions) == ({"g"}, {("t", 3)})
    assert request_resources(decoded(25, 4, {"transactional_id": "tx", "group_id": "g"})).groups == {"g"}
    assert request_resources(decoded(65, 0, {"transactional_ids": ["x", "y"]})).transactional_ids == {"x", "y"}


def test_split_keeps_the_rest_for_the_handler_and_the_targets_for_the_error():
    rest, only = split_request(produce_request(), Resources(partitions={("a", 1)}, topics={"b"}))
    assert [(t.name, [p.index for p in t.partition_data]) for t in rest.topic_data] == [("a", [0])]
    assert [(t["name"], [p["index"] for p in t["partition_data"]]) for t in only.topic_data] == [("a", [1]), ("b", [0])]
    assert rest.acks == only.acks == -1  # still Containers: handlers read attributes


def test_merge_joins_partitions_of_one_topic_into_one_entry():
    answered = {"responses": [{"name": "a", "partition_responses": [{"index": 0, "error_code": 0}]}]}
    refused = {"responses": [{"name": "a", "partition_responses": [{"index": 1, "error_code": 6}]},
                             {"name": "b", "partition_responses": [{"index": 0, "error_code": 6}]}]}
    merged = merge_responses(answered, refused)
    assert [(t["name"], [(p["index"], p["error_code"]) for p in t["partition_responses"]])
            for t in merged["responses"]] == [("a", [(0, 0), (1, 6)]), ("b", [(0, 6)])]


def _round_trip(api_key: int, version: int, body: dict) -> dict:
    return decode_response(api_key, version, join_parts(encode_response_parts(api_key, version, body)))


def test_error_response_mirrors_topics_and_partitions_with_the_code():
    answer = _round_trip(PRODUCE, 9, error_response(PRODUCE, 9, produce_request(), 7, "late"))
    assert [(t.name, [(p.index, p.error_code, p.error_message) for p in t.partition_responses])
            for t in answer.responses] == [("a", [(0, 7, "late"), (1, 7, "late")]), ("b", [(0, 7, "late")])]


def test_error_response_names_plain_value_arrays_and_sets_top_level_codes():
    answer = _round_trip(DESCRIBE_GROUPS, 5, error_response(
        DESCRIBE_GROUPS, 5, decoded(DESCRIBE_GROUPS, 5, {"groups": ["g1", "g2"]}), 16))
    assert [(g.group_id, g.error_code) for g in answer.groups] == [("g1", 16), ("g2", 16)]
    found = _round_trip(FIND_COORDINATOR, 3, error_response(
        FIND_COORDINATOR, 3, decoded(FIND_COORDINATOR, 3, {"key": "g"}), 15, "away"))
    assert (found.error_code, found.error_message) == (15, "away")


def test_share_group_requests_name_groups_and_topics_by_id():
    import uuid

    topic_id = uuid.UUID(int=7)
    names = {topic_id: "t"}
    fetch = decoded(78, 1, {"group_id": "sg", "member_id": "m", "share_session_epoch": 0, "max_wait_ms": 0,
                            "min_bytes": 1, "max_bytes": 1, "max_records": 1, "batch_size": 1, "topics": [
                                {"topic_id": topic_id, "partitions": [{"partition_index": 2,
                                                                       "acknowledgement_batches": []}]}],
                            "forgotten_topics_data": [{"topic_id": topic_id, "partitions": [4]}]})
    found = request_resources(fetch, names.get)
    assert (found.groups, found.topics, found.partitions) == ({"sg"}, {"t"}, {("t", 2), ("t", 4)})
    assert request_resources(fetch).topics == set()  # without a way to look ids up
    rest, only = split_request(fetch, Resources(topics={"t"}), names.get)
    assert (rest.topics, [t["topic_id"] for t in only.topics]) == ([], [topic_id])
    assert request_resources(decoded(77, 1, {"group_ids": ["a", "b"]})).groups == {"a", "b"}
    offsets = decoded(90, 0, {"groups": [{"group_id": "sg", "topics": [{"topic_name": "t", "partitions": [1]}]}]})
    assert (request_resources(offsets).groups, request_resources(offsets).partitions) == ({"sg"}, {("t", 1)})
