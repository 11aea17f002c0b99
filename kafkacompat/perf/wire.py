"""Raw-socket probes: startup time, a Metadata of every partition, many idle connections, fetch capacity.

These measure the broker alone, with no client library in between: request
frames built by our codec, timed from the first byte sent to the last byte
received. Responses are checked after the clock stops, except the fetch
probe's, which it must read to know where to fetch next.
"""

from __future__ import annotations

import resource
import socket
import struct
import subprocess
import time
import uuid
from typing import Any

from kafkacompat.perf.stats import Throughput
from kafkacompat.protocol import decode_response, encode_request, encode_request_frame, parse_response_frame
from kafkacompat.protocol.records import BATCH_OVERHEAD, read_header

FETCH, METADATA, API_VERSIONS = 1, 3, 18
# Flexible, topic ids, no authorized-operations flag: both kafkacompat and Tansu 0.6 serve it.
METADATA_VERSION = 9
API_VERSIONS_VERSION = 3
# Flexible and still naming topics (v13 switched to ids): both brokers serve it.
FETCH_VERSION = 12
# What librdkafka asks for by default: fetch.max.bytes, max.partition.fetch.bytes, fetch.wait.max.ms.
FETCH_MAX_BYTES = 52_428_800
FETCH_PARTITION_MAX_BYTES = 1_048_576
FETCH_MAX_WAIT_MS = 500
FETCH_STALL_S = 30.0
_SIZE = struct.Struct(">i")
CONNECT_RETRY_S = 0.002


class ProbeError(RuntimeError):
    """The broker did not answer a probe as a Kafka broker should."""


def _metadata_frame(correlation_id: int, topic: str | None = None) -> bytes:
    body = encode_request(METADATA, METADATA_VERSION, {
        "topics": None if topic is None else [{"name": topic, "topic_id": uuid.UUID(int=0)}],
        "allow_auto_topic_creation": False,
        "include_topic_authorized_operations": False,
    })
    return encode_request_frame(METADATA, METADATA_VERSION, correlation_id, "kafkacompat-perf", body)


def _api_versions_frame(correlation_id: int) -> bytes:
    body = encode_request(API_VERSIONS, API_VERSIONS_VERSION, {
        "client_software_name": "kafkacompat-perf", "client_software_version": "1",
    })
    return encode_request_frame(API_VERSIONS, API_VERSIONS_VERSION, correlation_id, "kafkacompat-perf", body)


def _receive_exactly(sock: socket.socket, count: int) -> bytearray:
    buffer = bytearray(count)
    view = memoryview(buffer)
    filled = 0
    while filled < count:
        received = sock.recv_into(view[filled:])
        if not received:
            raise ProbeError("the broker closed the connection")
        filled += received
    return buffer


def _round_trip(sock: socket.socket, frame: bytes) -> bytearray:
    """Send one request frame; return the response frame without its size prefix."""
    sock.sendall(frame)
    (size,) = _SIZE.unpack(_receive_exactly(sock, _SIZE.size))
    return _receive_exactly(sock, size)


def _decode(api_key: int, version: int, response: bytearray, correlation_id: int) -> Any:
    got, body = parse_response_frame(api_key, version, response)
    if got != correlation_id:
        raise ProbeError(f"correlation id {got}, expected {correlation_id}")
    return decode_response(api_key, version, body)


def _split(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.rpartition(":")
    return host or "127.0.0.1", int(port)


def time_to_first_metadata(
    bootstrap: str, spawned_at: float, process: subprocess.Popen, timeout_s: float = 30.0, min_brokers: int = 1
) -> float:
    """Milliseconds from ``spawned_at`` (a perf_counter reading) to an answered Metadata request
    listing at least ``min_brokers`` brokers (a cluster counts once all its brokers are up).

    Connects as soon as the port accepts, retrying every 2 ms, the way a
    client started alongside the broker would.
    """
    address = _split(bootstrap)
    deadline = spawned_at + timeout_s
    while True:
        if process.poll() is not None:
            raise ProbeError(f"broker exited with status {process.returncode} before answering Metadata")
        try:
            with socket.create_connection(address, timeout=max(deadline - time.perf_counter(), 0.01)) as sock:
                response = _round_trip(sock, _metadata_frame(1))
                elapsed_ms = (time.perf_counter() - spawned_at) * 1000
                if len(_decode(METADATA, METADATA_VERSION, response, 1).brokers) >= min_brokers:
                    return elapsed_ms
        except (OSError, ProbeError):  # not listening yet, or no answer before the deadline
            pass
        if time.perf_counter() > deadline:
            raise ProbeError(f"no Metadata answer listing {min_brokers} broker(s) within {timeout_s:.0f} s")
        time.sleep(CONNECT_RETRY_S)


def metadata_all_topics(bootstrap: str, repeats: int = 5) -> dict[str, Any]:
    """Time Metadata for every topic on one warm connection, ``repeats`` times."""
    timings = []
    with socket.create_connection(_split(bootstrap), timeout=60) as sock:
        for correlation_id in range(1, repeats + 1):
            frame = _metadata_frame(correlation_id)
            started = time.perf_counter()
            response = _round_trip(sock, frame)
            timings.append((time.perf_counter() - started) * 1000)
    decoded = _decode(METADATA, METADATA_VERSION, response, repeats)
    return {
        "partitions": sum(len(t.partitions) for t in decoded.topics),
        "response_bytes": len(response),
        "min_ms": round(min(timings), 2),
        "median_ms": round(sorted(timings)[len(timings) // 2], 2),
        "max_ms": round(max(timings), 2),
    }


def raise_open_file_limit(wanted: int) -> int:
    """Lift this process's soft descriptor limit towards ``wanted`` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def idle_connections(bootstrap: str, count: int) -> dict[str, Any]:
    """Open ``count`` connections, each answered once (ApiVersions), and hold them idle.

    With all of them open, a Metadata round trip on one more connection shows
    whether idle connections cost the broker anything.
    """
    raise_open_file_limit(count + 256)
    address = _split(bootstrap)
    sockets: list[socket.socket] = []
    try:
        started = time.perf_counter()
        for correlation_id in range(1, count + 1):
            sock = socket.create_connection(address, timeout=30)
            sockets.append(sock)
            sock.sendall(_api_versions_frame(correlation_id))
        for correlation_id, sock in enumerate(sockets, start=1):
            (size,) = _SIZE.unpack(_receive_exactly(sock, _SIZE.size))
            response = _receive_exactly(sock, size)
            if _decode(API_VERSIONS, API_VERSIONS_VERSION, response, correlation_id).error_code != 0:
                raise ProbeError(f"ApiVersions on connection {correlation_id} failed")
        all_answered_s = time.perf_counter() - started
        probe = metadata_all_topics(bootstrap, repeats=5)
    finally:
        for sock in sockets:
            sock.close()
    return {
        "connections": count,
        "open_and_answer_all_s": round(all_answered_s, 3),
        "metadata_while_idle_median_ms": probe["median_ms"],
    }


def _fetch_frame(correlation_id: int, topic: str, offsets: dict[int, int]) -> bytes:
    """A consumer's full fetch (no session) of ``topic`` from ``offsets``, with librdkafka's default sizes."""
    body = encode_request(FETCH, FETCH_VERSION, {
        "replica_id": -1, "max_wait_ms": FETCH_MAX_WAIT_MS, "min_bytes": 1, "max_bytes": FETCH_MAX_BYTES,
        "isolation_level": 0, "session_id": 0, "session_epoch": -1,
        "topics": [{"topic": topic, "partitions": [
            {"partition": partition, "current_leader_epoch": -1, "fetch_offset": offset,
             "last_fetched_epoch": -1, "log_start_offset": -1, "partition_max_bytes": FETCH_PARTITION_MAX_BYTES}
            for partition, offset in offsets.items()]}],
        "forgotten_topics_data": [], "rack_id": "",
    })
    return encode_request_frame(FETCH, FETCH_VERSION, correlation_id, "kafkacompat-perf", body)


def _topic_partitions(sock: socket.socket, topic: str) -> list[int]:
    """The partition indexes of ``topic``, from one Metadata request on ``sock``."""
    decoded = _decode(METADATA, METADATA_VERSION, _round_trip(sock, _metadata_frame(0, topic)), 0)
    for described in decoded.topics:
        if described.name == topic and described.error_code == 0 and described.partitions:
            return sorted(p.partition_index for p in described.partitions)
    raise ProbeError(f"topic {topic} is not in the broker's Metadata")


def next_fetch_offset(records: bytes | bytearray | memoryview, offset: int) -> int:
    """The offset after the last whole batch in ``records``; ``offset`` when there is none.

    Reads batch headers only: a broker may end a response with part of a
    batch, which the next fetch asks for again.
    """
    position, total = 0, len(records)
    while total - position >= BATCH_OVERHEAD:
        header = read_header(records, position)
        if header.end > total:
            break
        offset = header.last_offset + 1
        position = header.end
    return offset


def fetch_capacity(bootstrap: str, topic: str, num_records: int, passes: int = 1) -> dict[str, Any]:
    """The broker's fetch rate: ``num_records`` of ``topic`` read from offset 0, ``passes`` times, with raw Fetches.

    One connection, one request at a time, as one consumer fetches from one
    broker; the sizes are librdkafka's defaults. Only batch headers are read
    (no CRC, no record parsing), so the client costs little per byte and the
    broker's speed at serving byte ranges is what the rate shows. Passes
    over the same records make a run long enough to time well.
    """
    records = response_bytes = requests = 0
    with socket.create_connection(_split(bootstrap), timeout=60) as sock:
        partitions = _topic_partitions(sock, topic)
        started = last_progress = time.perf_counter()
        for _ in range(passes):
            offsets = dict.fromkeys(partitions, 0)
            pass_records = 0
            while pass_records < num_records:
                requests += 1
                got, size = _fetch_once(sock, topic, offsets, requests)
                response_bytes += size
                pass_records += got
                now = time.perf_counter()
                if got:
                    last_progress = now
                elif now - last_progress > FETCH_STALL_S:
                    raise ProbeError(f"fetched {pass_records}/{num_records} records of {topic}, then nothing for "
                                     f"{FETCH_STALL_S:.0f} s")
            records += pass_records
        elapsed = time.perf_counter() - started
    return {
        "workload": f"raw fetch {topic} ({len(partitions)} partition(s), {passes} pass(es))",
        **Throughput(records, response_bytes, elapsed).as_dict(),
        "requests": requests,
    }


def _fetch_once(sock: socket.socket, topic: str, offsets: dict[int, int], correlation_id: int) -> tuple[int, int]:
    """One Fetch from ``offsets``, which move past what came; (records, response bytes)."""
    response = _round_trip(sock, _fetch_frame(correlation_id, topic, offsets))
    decoded = _decode(FETCH, FETCH_VERSION, response, correlation_id)
    if decoded.error_code:
        raise ProbeError(f"Fetch failed with error code {decoded.error_code}")
    records = 0
    for partition in (p for t in decoded.responses for p in t.partitions):
        if partition.error_code:
            raise ProbeError(f"Fetch of {topic}-{partition.partition_index} failed with error code "
                             f"{partition.error_code}")
        fetched = offsets[partition.partition_index]
        offsets[partition.partition_index] = next_fetch_offset(partition.records or b"", fetched)
        records += offsets[partition.partition_index] - fetched
    return records, len(response)
