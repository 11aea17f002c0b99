"""Dispatch and the data-path handlers, driven with real frames and a real broker object.

Only the sockets are absent: frames go through ``dispatch`` exactly as the
connection task hands them over, into a real log on a temp dir.
"""

from __future__ import annotations

import struct

import pytest
import trio
import trio.testing

from kafkacompat.broker import Broker
from kafkacompat.config import BrokerConfig
from kafkacompat.handlers import fetch
from kafkacompat.handlers.dispatch import REGISTRY, CloseConnection, begin, dispatch
from kafkacompat.handlers.registry import RequestContext
from kafkacompat.log.dir_lock import DataDirLocked
from kafkacompat.log.file_slice import FileSlice
from kafkacompat.protocol import (
    decode_response,
    encode_request,
    encode_request_frame,
    join_parts,
    parse_response_frame,
)
from kafkacompat.protocol.errors import ErrorCode
from tests.log.batch_builder import ZSTD, RecordSpec, build_batch

PRODUCE, FETCH, LIST_OFFSETS, METADATA, API_VERSIONS, INIT_PRODUCER_ID = 0, 1, 2, 3, 18, 22


@pytest.fixture
def ctx(tmp_path):
    broker = Broker(BrokerConfig({"log.dirs": str(tmp_path), "num.partitions": "2"}))
    yield RequestContext(broker=broker, client_host="127.0.0.1")
    broker.close()


@pytest.fixture
def patient_clock():
    """Virtual time that jumps only once tasks sit idle for a real 50 ms.

    Produce waits for its fsync in a worker thread; a clock that jumps at once
    would race past the long-poll deadline while that thread runs.
    """
    return trio.testing.MockClock(autojump_threshold=0.05)


def frame(api_key: int, version: int, body: dict, correlation_id: int = 7) -> bytes:
    # dispatch receives frames without their size prefix.
    return encode_request_frame(api_key, version, correlation_id, "test", encode_request(api_key, version, body))[4:]


async def call(ctx, api_key: int, version: int, body: dict):
    raw = await dispatch(frame(api_key, version, body), ctx)
    correlation_id, payload = parse_response_frame(api_key, version, raw[4:])
    assert correlation_id == 7
    return decode_response(api_key, version, payload)


def produce_body(topic: str, partition: int, records: bytes, acks: int = -1) -> dict:
    return {"acks": acks, "timeout_ms": 1000,
            "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": records}]}]}


def fetch_body(topic: str, offset: int, max_wait_ms: int = 0, min_bytes: int = 1) -> dict:
    return {"max_wait_ms": max_wait_ms, "min_bytes": min_bytes, "max_bytes": 1 << 20, "session_epoch": -1,
            "topics": [{"topic": topic, "partitions": [
                {"partition": 0, "fetch_offset": offset, "partition_max_bytes": 1 << 20}]}]}


async def test_api_versions_lists_the_registry(ctx):
    response = await call(ctx, API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"})
    advertised = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
    assert advertised == {key: (h.min_version, h.max_version) for key, h in REGISTRY.items()}
    assert advertised[PRODUCE] == (0, 12) and advertised[FETCH] == (0, 17)


async def test_api_versions_too_new_gets_v0_answer_with_unsupported_version(ctx):
    raw = await dispatch(struct.pack(">hhih", API_VERSIONS, 99, 7, 1) + b"x" + b"\x00", ctx)
    correlation_id, payload = parse_response_frame(API_VERSIONS, 0, raw[4:])
    response = decode_response(API_VERSIONS, 0, payload)
    assert correlation_id == 7
    assert response.error_code == ErrorCode.UNSUPPORTED_VERSION
    assert any(k.api_key == API_VERSIONS and k.max_version == 4 for k in response.api_keys)


async def test_unknown_api_key_and_unsupported_version_close_the_connection(ctx):
    with pytest.raises(CloseConnection, match="unknown API key 9999"):
        await dispatch(struct.pack(">hhih", 9999, 0, 1, -1), ctx)
    fetch_v18 = struct.pack(">hh", FETCH, 18) + frame(FETCH, 17, fetch_body("t", 0))[4:]
    with pytest.raises(CloseConnection, match="unsupported version 18 of API key 1"):
        await dispatch(fetch_v18, ctx)


def _as_stored(batch: bytes, base_offset: int = 0) -> bytes:
    """What the log hands back for a produced batch: offsets assigned, stamped with leader epoch 0."""
    return struct.pack(">q", base_offset) + batch[8:12] + struct.pack(">i", 0) + batch[16:]


async def test_produce_then_fetch_returns_the_same_bytes_with_assigned_offsets(ctx):
    await call(ctx, METADATA, 12, {"topics": [{"name": "orders"}], "allow_auto_topic_creation": True})
    batch = build_batch([RecordSpec(b"v1", key=b"k1"), RecordSpec(b"v2", key=b"k2")])
    for expected_base in (0, 2):
        produced = await call(ctx, PRODUCE, 9, produce_body("orders", 0, batch))
        answer = produced.responses[0].partition_responses[0]
        assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, expected_base)
    fetched = await call(ctx, FETCH, 12, fetch_body("orders", 0))
    part = fetched.responses[0].partitions[0]
    assert part.high_watermark == 4 and part.log_start_offset == 0
    assert bytes(part.records) == _as_stored(batch, 0) + _as_stored(batch, 2)


async def test_large_fetched_ranges_are_file_slices_up_to_a_limit_per_response(ctx, monkeypatch):
    monkeypatch.setattr(fetch, "MAX_SLICES_PER_RESPONSE", 1)
    await call(ctx, METADATA, 12, {"topics": [{"name": "big"}], "allow_auto_topic_creation": True})
    batches = [build_batch([RecordSpec(bytes([p]) * 40_000)]) for p in range(2)]
    for partition, batch in enumerate(batches):
        await call(ctx, PRODUCE, 9, produce_body("big", partition, batch))
    body = fetch_body("big", 0)
    body["topics"][0]["partitions"].append({**body["topics"][0]["partitions"][0], "partition": 1})
    answer = await begin(frame(FETCH, 12, body), ctx)
    parts = await answer.frame_parts()
    assert sum(isinstance(part, FileSlice) for part in parts) == 1  # the second range was read
    _, payload = parse_response_frame(FETCH, 12, join_parts(parts)[4:])
    fetched = decode_response(FETCH, 12, payload).responses[0].partitions
    assert [bytes(p.records) for p in fetched] == [_as_stored(batch) for batch in batches]


async def test_produce_v2_is_refused_and_acks_zero_gets_no_answer(ctx):
    await call(ctx, METADATA, 1, {"topics": [{"name": "t"}]})
    batch = build_batch([RecordSpec(b"v")])
    old = await call(ctx, PRODUCE, 2, produce_body("t", 0, batch))
    assert old.responses[0].partition_responses[0].error_code == ErrorCode.UNSUPPORTED_VERSION
    assert await dispatch(frame(PRODUCE, 9, produce_body("t", 0, batch, acks=0)), ctx) is None
    assert ctx.broker.log_manager.partition("t", 0).log_end_offset == 1


async def test_bad_crc_is_corrupt_message_and_nothing_is_written(ctx):
    await call(ctx, METADATA, 1, {"topics": [{"name": "t"}]})
    batch = bytearray(build_batch([RecordSpec(b"value")]))
    batch[-1] ^= 0xFF
    produced = await call(ctx, PRODUCE, 9, produce_body("t", 0, bytes(batch)))
    assert produced.responses[0].partition_responses[0].error_code == ErrorCode.CORRUPT_MESSAGE
    assert ctx.broker.log_manager.partition("t", 0).log_end_offset == 0


async def produce_error(ctx, version: int, records: bytes) -> int:
    produced = await call(ctx, PRODUCE, version, produce_body("t", 0, records))
    return produced.responses[0].partition_responses[0].error_code


async def test_produce_request_rules_refuse_what_kafka_refuses_and_write_nothing(ctx):
    await call(ctx, METADATA, 1, {"topics": [{"name": "t"}]})
    batch = build_batch([RecordSpec(b"value")])
    old_format = bytearray(batch)
    old_format[16] = 1  # the magic byte of a v1 message set
    assert await produce_error(ctx, 9, batch + batch) == ErrorCode.INVALID_RECORD
    assert await produce_error(ctx, 9, bytes(old_format)) == ErrorCode.INVALID_RECORD
    assert await produce_error(ctx, 9, b"") == ErrorCode.INVALID_RECORD
    zstd = build_batch([RecordSpec(b"value")], compression=ZSTD)
    assert await produce_error(ctx, 6, zstd) == ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
    assert ctx.broker.log_manager.partition("t", 0).log_end_offset == 0
    # A truncated second batch is damage, not a second batch.
    assert await produce_error(ctx, 9, batch + batch[:30]) == ErrorCode.CORRUPT_MESSAGE
    assert await produce_error(ctx, 7, zstd) == ErrorCode.NONE
    assert ctx.broker.log_manager.partition("t", 0).log_end_offset == 1


async def test_unknown_topic_without_auto_create(tmp_path):
    broker = Broker(BrokerConfig({"log.dirs": str(tmp_path), "auto.create.topics.enable": "false"}))
    ctx = RequestContext(broker=broker, client_host="127.0.0.1")
    try:
        meta = await call(ctx, METADATA, 12, {"topics": [{"name": "nope"}], "allow_auto_topic_creation": True})
        assert meta.topics[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        produced = await call(ctx, PRODUCE, 9, produce_body("nope", 0, build_batch([RecordSpec(b"v")])))
        assert produced.responses[0].partition_responses[0].error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        assert broker.log_manager.topic("nope") is None
    finally:
        broker.close()


async def test_fetch_long_polls_until_data_arrives(ctx, patient_clock):
    await call(ctx, METADATA, 12, {"topics": [{"name": "t"}], "allow_auto_topic_creation": True})
    results = {}

    async def fetcher():
        started = trio.current_time()
        results["response"] = await call(ctx, FETCH, 12, fetch_body("t", 0, max_wait_ms=5000))
        results["waited"] = trio.current_time() - started

    async with trio.open_nursery() as nursery:
        nursery.start_soon(fetcher)
        await trio.sleep(1.5)
        assert "response" not in results
        await call(ctx, PRODUCE, 9, produce_body("t", 0, build_batch([RecordSpec(b"late")])))
    assert 1.5 <= results["waited"] < 2.0
    assert results["response"].responses[0].partitions[0].high_watermark == 1


async def test_fetch_with_no_data_waits_max_wait_ms(ctx, autojump_clock):
    await call(ctx, METADATA, 12, {"topics": [{"name": "t"}], "allow_auto_topic_creation": True})
    started = trio.current_time()
    response = await call(ctx, FETCH, 12, fetch_body("t", 0, max_wait_ms=500))
    assert trio.current_time() - started == pytest.approx(0.5)
    assert response.responses[0].partitions[0].records in (b"", None)


async def test_fetch_offset_out_of_range(ctx):
    await call(ctx, METADATA, 12, {"topics": [{"name": "t"}], "allow_auto_topic_creation": True})
    response = await call(ctx, FETCH, 12, fetch_body("t", 5, max_wait_ms=1000))
    assert response.responses[0].partitions[0].error_code == ErrorCode.OFFSET_OUT_OF_RANGE


async def test_list_offsets_earliest_latest_and_by_time(ctx):
    await call(ctx, METADATA, 12, {"topics": [{"name": "t"}], "allow_auto_topic_creation": True})
    batch = build_batch([RecordSpec(b"a", timestamp=1000), RecordSpec(b"b", timestamp=2000),
                         RecordSpec(b"c", timestamp=3000)], base_timestamp=1000)
    await call(ctx, PRODUCE, 9, produce_body("t", 0, batch))

    async def lookup(timestamp):
        response = await call(ctx, LIST_OFFSETS, 7, {"replica_id": -1, "topics": [
            {"name": "t", "partitions": [{"partition_index": 0, "timestamp": timestamp}]}]})
        p = response.topics[0].partitions[0]
        return p.offset, p.timestamp

    assert await lookup(-2) == (0, -1)
    assert await lookup(-1) == (3, -1)
    assert await lookup(1500) == (1, 2000)
    assert await lookup(-3) == (2, 3000)
    assert await lookup(9999) == (-1, -1)


async def test_init_producer_id_allocates_and_bumps(ctx):
    first = await call(ctx, INIT_PRODUCER_ID, 4, {"transactional_id": None, "transaction_timeout_ms": 60000,
                                                  "producer_id": -1, "producer_epoch": -1})
    second = await call(ctx, INIT_PRODUCER_ID, 4, {"transactional_id": None, "transaction_timeout_ms": 60000,
                                                   "producer_id": -1, "producer_epoch": -1})
    assert first.error_code == second.error_code == ErrorCode.NONE
    assert second.producer_id != first.producer_id and first.producer_epoch == 0
    bumped = await call(ctx, INIT_PRODUCER_ID, 4, {"transactional_id": None, "transaction_timeout_ms": 60000,
                                                   "producer_id": first.producer_id, "producer_epoch": 0})
    assert (bumped.producer_id, bumped.producer_epoch) == (first.producer_id, 1)


def test_a_second_broker_on_the_data_dir_is_refused_until_the_first_has_closed(tmp_path):
    config = BrokerConfig({"log.dirs": str(tmp_path)})
    first = Broker(config)
    with pytest.raises(DataDirLocked, match="another process or thread is using this directory"):
        Broker(config)
    first.close()
    Broker(config).close()
