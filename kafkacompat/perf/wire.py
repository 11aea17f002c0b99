"""Raw-socket probes: startup time, a Metadata of every partition, many idle connections.

These measure the broker alone, with no client library in between: one
request frame built by our codec, timed from the first byte sent to the last
byte received. Responses are checked after the clock stops.
"""

from __future__ import annotations

import resource
import socket
import struct
import subprocess
import time
from typing import Any

from kafkacompat.protocol import decode_response, encode_request, encode_request_frame, parse_response_frame

METADATA, API_VERSIONS = 3, 18
# Flexible, topic ids, no authorized-operations flag: both kafkacompat and Tansu 0.6 serve it.
METADATA_VERSION = 9
API_VERSIONS_VERSION = 3
_SIZE = struct.Struct(">i")
CONNECT_RETRY_S = 0.002


class ProbeError(RuntimeError):
    """The broker did not answer a probe as a Kafka broker should."""


def _metadata_frame(correlation_id: int) -> bytes:
    body = encode_request(METADATA, METADATA_VERSION, {
        "topics": None,  # every topic
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
    bootstrap: str, spawned_at: float, process: subprocess.Popen, timeout_s: float = 30.0
) -> float:
    """Milliseconds from ``spawned_at`` (a perf_counter reading) to an answered Metadata request.

    Connects as soon as the port accepts, retrying every 2 ms, the way a
    client started alongside the broker would.
    """
    address = _split(bootstrap)
    deadline = spawned_at + timeout_s
    while True:
        if process.poll() is not None:
            raise ProbeError(f"broker exited with status {process.returncode} before answering Metadata")
        try:
            with socket.create_connection(address, timeout=timeout_s) as sock:
                response = _round_trip(sock, _metadata_frame(1))
                elapsed_ms = (time.perf_counter() - spawned_at) * 1000
                _decode(METADATA, METADATA_VERSION, response, 1)
                return elapsed_ms
        except (ConnectionRefusedError, ConnectionResetError, ProbeError):
            if time.perf_counter() > deadline:
                raise ProbeError(f"no Metadata answer within {timeout_s:.0f} s") from None
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
