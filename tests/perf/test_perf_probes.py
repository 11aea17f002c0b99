"""The raw-socket probes and process readings, against a scripted socket peer."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid

import pytest

from kafkacompat.perf.brokers import process_cpu_seconds, process_memory_mb
from kafkacompat.perf.wire import (
    ProbeError,
    metadata_all_topics,
    raise_open_file_limit,
    time_to_first_metadata,
)
from kafkacompat.protocol import encode_response, encode_response_frame, parse_request

METADATA = 3


def metadata_answer(frame: bytes, partitions: int) -> bytes:
    header, _ = parse_request(frame)
    body = {
        "throttle_time_ms": 0, "brokers": [{"node_id": 1, "host": "127.0.0.1", "port": 1, "rack": None}],
        "cluster_id": "c", "controller_id": 1,
        "topics": [{"error_code": 0, "name": "t", "topic_id": uuid.UUID(int=1), "is_internal": False,
                    "partitions": [{"error_code": 0, "partition_index": i, "leader_id": 1, "leader_epoch": 0,
                                    "replica_nodes": [1], "isr_nodes": [1], "offline_replicas": []}
                                   for i in range(partitions)]}],
    }
    return encode_response_frame(header, encode_response(METADATA, header.api_version, body))


def serve_metadata(listener: socket.socket, partitions: int) -> None:
    """Answer Metadata requests on one connection until the peer closes it."""
    conn, _ = listener.accept()
    with conn:
        while True:
            prefix = conn.recv(4, socket.MSG_WAITALL)
            if len(prefix) < 4:
                return
            (size,) = struct.unpack(">i", prefix)
            conn.sendall(metadata_answer(conn.recv(size, socket.MSG_WAITALL), partitions))


@pytest.fixture
def listener():
    sock = socket.create_server(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_metadata_probe_times_round_trips_and_counts_partitions(listener):
    threading.Thread(target=serve_metadata, args=(listener, 25), daemon=True).start()
    result = metadata_all_topics(f"127.0.0.1:{listener.getsockname()[1]}", repeats=3)
    assert result["partitions"] == 25
    assert 0 < result["min_ms"] <= result["median_ms"] <= result["max_ms"]
    assert result["response_bytes"] > 25 * 10


def test_startup_probe_retries_until_the_port_answers():
    port_holder = socket.socket()
    port_holder.bind(("127.0.0.1", 0))
    port = port_holder.getsockname()[1]
    port_holder.close()  # nothing listens yet: the probe must retry
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        def open_late() -> None:
            time.sleep(0.2)
            with socket.create_server(("127.0.0.1", port)) as late:
                serve_metadata(late, 1)

        threading.Thread(target=open_late, daemon=True).start()
        started = time.perf_counter()
        elapsed_ms = time_to_first_metadata(f"127.0.0.1:{port}", started, sleeper, timeout_s=10)
        assert 200 <= elapsed_ms < 5000
    finally:
        sleeper.kill()
        sleeper.wait()


def test_startup_probe_of_a_cluster_waits_for_metadata_listing_all_its_brokers(listener):
    threading.Thread(target=serve_metadata, args=(listener, 1), daemon=True).start()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(ProbeError, match="listing 3 broker"):
            time_to_first_metadata(f"127.0.0.1:{listener.getsockname()[1]}", time.perf_counter(), sleeper,
                                   timeout_s=0.5, min_brokers=3)
    finally:
        sleeper.kill()
        sleeper.wait()


def test_startup_probe_reports_a_broker_that_exits():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    with pytest.raises(ProbeError, match="exited"):
        time_to_first_metadata("127.0.0.1:1", time.perf_counter(), gone, timeout_s=5)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads Linux /proc")
def test_own_process_readings():
    memory = process_memory_mb(os.getpid())
    assert 0 < memory["rss_mb"] <= memory["peak_rss_mb"]
    before = process_cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass
    assert process_cpu_seconds(os.getpid()) >= before + 0.05
    assert process_memory_mb(2**22 + 12345) == {} and process_cpu_seconds(2**22 + 12345) is None


def test_the_descriptor_limit_only_goes_up():
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert raise_open_file_limit(16) == soft
    assert raise_open_file_limit(soft + 1) >= soft


def test_the_fetch_probe_moves_past_whole_batches_only():
    from kafkacompat.perf.wire import next_fetch_offset
    from tests.log.batch_builder import build_batch

    first, second = build_batch([b"a", b"b"], base_offset=10), build_batch([b"c"] * 3, base_offset=12)
    assert next_fetch_offset(first + second, 10) == 15
    assert next_fetch_offset(first + second[:-1], 10) == 12  # a cut-off batch is fetched again
    assert next_fetch_offset(first + second[:20], 11) == 12  # even its header cut short
    assert next_fetch_offset(b"", 7) == 7
