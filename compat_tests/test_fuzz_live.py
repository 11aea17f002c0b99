"""Random and mutated frames thrown at a live broker process.

Each example goes over its own TCP connection; afterwards the broker must
still answer a well-formed request, must never have logged an unexpected
error (a handler crashing on input that decoded), and must not have died.
The budget is small for CI; raise it with ``KAFKACOMPAT_FUZZ_EXAMPLES=50000``.
A short run of the spec-driven campaign (``kafkacompat fuzz``) goes with
it; the long campaign is that command against any broker (see README).
"""

from __future__ import annotations

import os
import socket
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compat_helpers import wait_until

from kafkacompat.fuzz.campaign import Campaign
from kafkacompat.handlers.dispatch import REGISTRY
from kafkacompat.protocol import encode_request, encode_request_frame, load_specs
from tests.protocol.protocol_bodies import BodyMaker

EXAMPLES = int(os.environ.get("KAFKACOMPAT_FUZZ_EXAMPLES", "250"))
CAMPAIGN_FRAMES = int(os.environ.get("KAFKACOMPAT_FUZZ_CAMPAIGN_FRAMES", "3000"))
READ_TIMEOUT_S = 2.0


def _seed_frames() -> list[bytes]:
    """Well-formed requests for every advertised (api, version): all defaults, and every field set."""
    specs = load_specs()
    frames = []
    for api_key, handler in sorted(REGISTRY.items()):
        for version in range(handler.min_version, handler.max_version + 1):
            populated = BodyMaker(version).body(specs[api_key].request)
            for body in ({}, populated):
                encoded = encode_request(api_key, version, body)
                frames.append(encode_request_frame(api_key, version, 1, "fuzz", encoded))
    return frames


SEEDS = _seed_frames()


@st.composite
def hostile_frames(draw) -> bytes:
    kind = draw(st.sampled_from(["mutated", "random", "lying-size"]))
    if kind == "random":
        payload = draw(st.binary(min_size=0, max_size=512))
        return struct.pack(">i", len(payload)) + payload
    frame = bytearray(draw(st.sampled_from(SEEDS)))
    if kind == "lying-size":
        claimed = draw(st.integers(min_value=-(2**31), max_value=2**31 - 1))
        return struct.pack(">i", claimed) + bytes(frame[4:])
    for _ in range(draw(st.integers(min_value=1, max_value=8))):
        position = draw(st.integers(min_value=4, max_value=max(4, len(frame) - 1)))
        action = draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip" and position < len(frame):
            frame[position] = draw(st.integers(0, 255))
        elif action == "insert":
            frame[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif position < len(frame):
            del frame[position]
    # Keep the size prefix honest so the broker parses the mutated body.
    return struct.pack(">i", len(frame) - 4) + bytes(frame[4:])


def _send_and_drain(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT_S) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            while sock.recv(65536):
                pass
        except (ConnectionError, TimeoutError, socket.timeout):
            # A closed connection or no answer are both acceptable outcomes.
            pass


def _api_versions_works_on(sock: socket.socket) -> bool:
    sock.sendall(encode_request_frame(18, 0, 42, "probe", encode_request(18, 0, {})))
    prefix = sock.recv(4, socket.MSG_WAITALL)
    if len(prefix) < 4:
        return False
    answer = sock.recv(struct.unpack(">i", prefix)[0], socket.MSG_WAITALL)
    correlation_id, error_code = struct.unpack_from(">ih", answer)
    return correlation_id == 42 and error_code == 0


def _api_versions_works(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            return _api_versions_works_on(sock)
    except ConnectionError:
        return False


def test_broker_survives_hostile_frames(broker):
    # Every handler first sees each well-formed seed, with every field set.
    for frame in SEEDS:
        _send_and_drain(broker.port, frame)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck), database=None)
    @given(frame=hostile_frames())
    def throw(frame: bytes) -> None:
        _send_and_drain(broker.port, frame)
        assert broker.running, f"broker died:\n{broker.log_text()[-4000:]}"

    throw()
    assert _api_versions_works(broker.port)
    log = broker.log_text()
    assert "unexpected error" not in log, log[log.index("unexpected error") - 200:][:4000]


def test_spec_driven_campaign_finds_nothing(broker):
    report = Campaign(("127.0.0.1", broker.port), frames=CAMPAIGN_FRAMES, seed=7, workers=4, timeout_s=10).run()
    assert report.frames == CAMPAIGN_FRAMES
    assert {key for key, _ in report.targets} == set(REGISTRY), "every advertised API key is a target"
    assert report.by_kind["generated"] > CAMPAIGN_FRAMES // 3 and report.by_kind["random"] > 0
    assert not report.findings, "\n".join(f"{f.rule}: API {f.api_key} v{f.version}: {f.detail}"
                                          for f in report.distinct_findings().values())
    log = broker.log_text()
    assert "unexpected error" not in log, log[log.index("unexpected error") - 200:][:4000]


def test_connections_past_max_connections_are_closed_and_others_keep_working(broker_factory):
    limited = broker_factory({"max.connections": "5"})
    held: list[socket.socket] = []

    def hold_one_more() -> bool:
        # The fixture's own readiness probe may still count for a moment; retry until served.
        sock = socket.create_connection(("127.0.0.1", limited.port), timeout=5)
        try:
            if _api_versions_works_on(sock):
                held.append(sock)
                return True
        except ConnectionError:
            pass
        sock.close()
        return False

    try:
        for _ in range(5):
            wait_until(hold_one_more, 10, "a connection under max.connections")
        with socket.create_connection(("127.0.0.1", limited.port), timeout=5) as extra:
            assert extra.recv(1) == b"", "a connection past max.connections must be closed"
        assert _api_versions_works_on(held[0])
    finally:
        for sock in held:
            sock.close()
    # Once the held connections are gone, new ones are served again.
    wait_until(lambda: _api_versions_works(limited.port), 10, "a fresh connection after the flood")
    assert "refusing connection" in limited.log_text()


def test_idle_connections_are_closed(broker_factory):
    limited = broker_factory({"connections.max.idle.ms": "300"})
    with socket.create_connection(("127.0.0.1", limited.port), timeout=5) as idle:
        assert _api_versions_works_on(idle)
        assert idle.recv(1) == b""
    assert "idle longer than connections.max.idle.ms" in limited.log_text()
