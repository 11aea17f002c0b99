"""Malformed and hostile bytes on raw sockets, while ordinary clients keep working next to them.

Every frame here is built by hand in `raw_wire` (not by our own encoder).
Each case runs inside `steady_traffic`: a confluent-kafka producer and
consumer on their own connections must make progress before and after the
bad input and lose nothing.
"""

from __future__ import annotations

import struct
import time

import pytest
from confluent_kafka import TopicPartition

from compat_helpers import ReadRecord, unique_topic
from confluent_clients import ClientErrors, assigned_consumer, consume_records, create_topic, steady_traffic
from raw_wire import (RawConnection, Reader, api_versions_body, metadata_v4_body, produce_v9_body, read_api_versions_v0,
                      read_api_versions_v3, read_produce_v9, record_batch, request_header,
                      size_prefixed, uvarint)

API_VERSIONS, PRODUCE, FETCH, METADATA = 18, 0, 1, 3
CORRUPT_MESSAGE, UNSUPPORTED_VERSION = 2, 35
SOCKET_REQUEST_MAX_BYTES = 104857600  # Kafka's default socket.request.max.bytes

pytestmark = pytest.mark.timeout(60)


def assert_dropped(broker, data: bytes) -> None:
    """One connection sends `data` and the broker hangs up on it; ordinary clients notice nothing."""
    with steady_traffic(broker.bootstrap), RawConnection(broker.port) as connection:
        connection.send(data)
        connection.assert_closed_by_broker()


def test_frame_above_socket_request_max_bytes_is_dropped(broker):
    assert_dropped(broker, struct.pack(">i", SOCKET_REQUEST_MAX_BYTES + 1) + request_header(API_VERSIONS, 0, 1, False))


def test_negative_frame_size_is_dropped(broker):
    assert_dropped(broker, struct.pack(">i", -1) + request_header(API_VERSIONS, 0, 1, False))


@pytest.mark.parametrize("payload", [b"", b"\x00\x12\x00", struct.pack(">hhib", METADATA, 1, 7, 0)],
                         ids=["empty", "3-bytes", "no-client-id-length"])
def test_frame_too_short_for_a_request_header_is_dropped(broker, payload):
    assert_dropped(broker, size_prefixed(payload))


def test_unknown_api_key_is_dropped(broker):
    assert_dropped(broker, size_prefixed(request_header(9999, 0, 1, False)))


@pytest.mark.parametrize("api_key, api_version, body, flexible", [
    # a topic array claiming 2^31-1 names, followed by three stray bytes
    (METADATA, 1, struct.pack(">i", 0x7FFFFFFF) + b"abc", False),
    # null transactional id, acks, timeout, one topic whose name claims 200 bytes but has 3
    (PRODUCE, 9, uvarint(0) + struct.pack(">hi", -1, 1000) + uvarint(2) + uvarint(201) + b"abc", True),
], ids=["metadata-v1", "produce-v9"])
def test_garbage_body_for_a_known_api_is_dropped(broker, api_key, api_version, body, flexible):
    assert_dropped(broker, size_prefixed(request_header(api_key, api_version, 1, flexible) + body))


def test_half_a_frame_then_hang_up_leaves_the_broker_unaffected(broker):
    with steady_traffic(broker.bootstrap) as traffic:
        frame = size_prefixed(request_header(API_VERSIONS, 0, 1, False))
        with RawConnection(broker.port) as stalled, RawConnection(broker.port) as abandoned:
            stalled.send(frame[:7])
            abandoned.send(struct.pack(">i", 100) + b"\x00" * 20)
            abandoned.sock.close()
            traffic.wait_for_progress()  # a connection stuck mid-frame must not hold anyone else up
            with RawConnection(broker.port) as fresh:
                error_code, ranges = read_api_versions_v0(fresh.request(API_VERSIONS, 0, b"", flexible=False))
            assert error_code == 0 and API_VERSIONS in ranges


def test_unsupported_api_versions_version_gets_a_v0_answer(broker):
    with steady_traffic(broker.bootstrap):
        with RawConnection(broker.port) as connection:
            # Header v2 (ApiVersions v3+ is flexible) but the response header stays v0: correlation id only.
            answer = connection.request(API_VERSIONS, 99, api_versions_body(99), flexible=True,
                                        response_header_flexible=False)
            error_code, ranges = read_api_versions_v0(answer)
            assert error_code == UNSUPPORTED_VERSION
            low, high = ranges[API_VERSIONS]
            assert low == 0 and high >= 3
            assert {PRODUCE, FETCH, METADATA} <= ranges.keys()

            # The client retries on the same connection with a version it now knows is supported.
            retry = connection.request(API_VERSIONS, 3, api_versions_body(3), flexible=True,
                                       response_header_flexible=False)
            assert read_api_versions_v3(retry) == (0, ranges)
            assert read_api_versions_v0(connection.request(API_VERSIONS, 0, b"", flexible=False)) == (0, ranges)


def test_pipelined_requests_are_answered_in_order(broker):
    with steady_traffic(broker.bootstrap):
        requests = [(API_VERSIONS, 0, b"", False), (METADATA, 4, metadata_v4_body(None, False), False),
                    (API_VERSIONS, 3, api_versions_body(3), True)]
        with RawConnection(broker.port) as connection:
            connection.send(b"".join(size_prefixed(request_header(key, version, 100 + n, flexible) + body)
                                     for n, (key, version, body, flexible) in enumerate(requests)))
            answers = [connection.read_frame() for _ in requests]
        assert [struct.unpack_from(">i", a)[0] for a in answers] == [100, 101, 102]


def test_pipelined_produces_are_answered_in_order_before_a_fatal_request_closes(broker):
    """Produces waiting for their fsync, a Metadata in between, then an unknown API key: every
    request before the bad one is answered, in order, with offsets in the order sent; then the close."""
    with steady_traffic(broker.bootstrap):
        topic = unique_topic("pipelined")
        create_topic(broker.bootstrap, topic, partitions=1)
        now_ms = int(time.time() * 1000)
        batches = [record_batch([(b"k%d" % n, b"v" * n)] * (n + 1), now_ms) for n in range(6)]
        requests = [(PRODUCE, 9, produce_v9_body(topic, 0, batch), True) for batch in batches]
        requests.insert(3, (METADATA, 4, metadata_v4_body([topic], False), False))
        frames = [request_header(key, version, 200 + n, flexible) + body
                  for n, (key, version, body, flexible) in enumerate(requests)]
        with RawConnection(broker.port) as connection:
            connection.send(b"".join(map(size_prefixed, frames))
                            + size_prefixed(request_header(9999, 0, 999, False)))
            answers = [Reader(connection.read_frame()) for _ in requests]
            connection.assert_closed_by_broker()
        assert [answer.int32() for answer in answers] == list(range(200, 200 + len(requests)))
        del answers[3]  # the Metadata answer
        offsets = []
        for answer in answers:
            assert answer.uvarint() == 0
            (error_code, base_offset), = read_produce_v9(answer).values()
            assert error_code == 0
            offsets.append(base_offset)
        assert offsets == [n * (n + 1) // 2 for n in range(6)]  # batch n holds n + 1 records
        assert watermarks(broker, topic) == (0, 21)


def watermarks(broker, topic: str) -> tuple[int, int]:
    errors = ClientErrors()
    consumer = assigned_consumer(broker.bootstrap, errors, topic, [0])
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
    finally:
        consumer.close()
        errors.assert_none("watermark consumer")


def test_batch_with_bad_crc_is_rejected_and_not_written(broker):
    with steady_traffic(broker.bootstrap):
        topic = unique_topic("crc")
        create_topic(broker.bootstrap, topic, partitions=1)
        key_values = [(b"k0", b"first"), (b"k1", b"second")]
        timestamp_ms = int(time.time() * 1000) - 60_000
        with RawConnection(broker.port) as connection:
            supported = read_api_versions_v0(connection.request(API_VERSIONS, 0, b"", flexible=False))[1]
            low, high = supported[PRODUCE]
            assert low <= 9 <= high, f"Produce v9 not advertised: {supported[PRODUCE]}"

            corrupt = record_batch(key_values, timestamp_ms, corrupt_crc=True)
            answer = connection.request(PRODUCE, 9, produce_v9_body(topic, 0, corrupt), flexible=True)
            assert read_produce_v9(answer)[(topic, 0)][0] == CORRUPT_MESSAGE
            assert watermarks(broker, topic) == (0, 0)

            # The same batch with its CRC intact is accepted: the rejection was about the CRC alone.
            intact = record_batch(key_values, timestamp_ms)
            answer = connection.request(PRODUCE, 9, produce_v9_body(topic, 0, intact), flexible=True)
            assert read_produce_v9(answer) == {(topic, 0): (0, 0)}
        assert watermarks(broker, topic) == (0, 2)
        assert consume_records(broker.bootstrap, topic, [0], 2) == {
            (0, 0): ReadRecord(b"k0", b"first", [], "CreateTime", timestamp_ms),
            (0, 1): ReadRecord(b"k1", b"second", [], "CreateTime", timestamp_ms + 1),
        }
