"""DeleteRecords through dispatch, with the real codec, a real broker object and a log on a temp dir."""

from __future__ import annotations

import pytest

from kafkacompat.broker import Broker
from kafkacompat.config import BrokerConfig
from kafkacompat.handlers.dispatch import dispatch
from kafkacompat.handlers.registry import RequestContext
from kafkacompat.protocol import decode_response, encode_request, encode_request_frame, parse_response_frame
from kafkacompat.protocol.errors import ErrorCode
from tests.log.batch_builder import RecordSpec, build_batch, values

PRODUCE, FETCH, LIST_OFFSETS, DELETE_RECORDS = 0, 1, 2, 21


@pytest.fixture
def ctx(tmp_path):
    broker = Broker(BrokerConfig({"log.dirs": str(tmp_path), "log.segment.bytes": "300"}))
    broker.log_manager.create_topic("t", 2)
    broker.log_manager.create_topic("kept", 1, {"cleanup.policy": "compact"})
    yield RequestContext(broker=broker, client_host="127.0.0.1")
    broker.close()


async def call(ctx, api_key: int, version: int, body: dict):
    frame = encode_request_frame(api_key, version, 3, "test", encode_request(api_key, version, body))[4:]
    raw = await dispatch(frame, ctx)
    correlation_id, payload = parse_response_frame(api_key, version, raw[4:])
    assert correlation_id == 3
    return decode_response(api_key, version, payload)


async def produce(ctx, topic: str, records: bytes) -> None:
    body = {"acks": -1, "timeout_ms": 1000,
            "topic_data": [{"name": topic, "partition_data": [{"index": 0, "records": records}]}]}
    answer = await call(ctx, PRODUCE, 9, body)
    assert answer.responses[0].partition_responses[0].error_code == ErrorCode.NONE


async def delete(ctx, version: int, wanted: dict[str, list[tuple[int, int]]]):
    body = {"timeout_ms": 1000, "topics": [
        {"name": name, "partitions": [{"partition_index": index, "offset": offset} for index, offset in parts]}
        for name, parts in wanted.items()]}
    answer = await call(ctx, DELETE_RECORDS, version, body)
    return {(topic.name, p.partition_index): (p.error_code, p.low_watermark)
            for topic in answer.topics for p in topic.partitions}


async def fetch_error(ctx, offset: int) -> ErrorCode:
    body = {"max_wait_ms": 0, "min_bytes": 1, "max_bytes": 1 << 20, "session_epoch": -1,
            "topics": [{"topic": "t", "partitions": [
                {"partition": 0, "fetch_offset": offset, "partition_max_bytes": 1 << 20}]}]}
    answer = await call(ctx, FETCH, 12, body)
    return answer.responses[0].partitions[0].error_code


@pytest.mark.parametrize("version", [0, 1, 2])
async def test_delete_records_moves_the_low_watermark_and_fetches_below_it_fail(ctx, version):
    for _ in range(4):
        await produce(ctx, "t", build_batch(values(3, 40)))
    results = await delete(ctx, version, {"t": [(0, 7), (1, 0)]})
    assert results == {("t", 0): (ErrorCode.NONE, 7), ("t", 1): (ErrorCode.NONE, 0)}
    assert await fetch_error(ctx, 6) == ErrorCode.OFFSET_OUT_OF_RANGE
    assert await fetch_error(ctx, 7) == ErrorCode.NONE
    earliest = await call(ctx, LIST_OFFSETS, 7, {"replica_id": -1, "isolation_level": 0, "topics": [
        {"name": "t", "partitions": [{"partition_index": 0, "current_leader_epoch": -1, "timestamp": -2}]}]})
    assert earliest.topics[0].partitions[0].offset == 7
    partition = ctx.broker.log_manager.partition("t", 0)
    assert partition.segment_base_offsets[0] > 0  # whole segments below the new start are gone


async def test_minus_one_means_the_high_watermark(ctx):
    await produce(ctx, "t", build_batch(values(5)))
    assert await delete(ctx, 2, {"t": [(0, -1)]}) == {("t", 0): (ErrorCode.NONE, 5)}


async def test_errors_per_partition(ctx):
    await produce(ctx, "t", build_batch(values(2)))
    await produce(ctx, "kept", build_batch([RecordSpec(b"v", key=b"k")]))
    results = await delete(ctx, 1, {"t": [(0, 3), (9, 0)], "missing": [(0, 0)], "kept": [(0, 1)]})
    assert results == {
        ("t", 0): (ErrorCode.OFFSET_OUT_OF_RANGE, -1),
        ("t", 9): (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1),
        ("missing", 0): (ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, -1),
        ("kept", 0): (ErrorCode.POLICY_VIOLATION, -1),
    }
