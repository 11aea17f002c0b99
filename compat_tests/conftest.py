"""Fixtures that run the real broker as a child process for stock clients to talk to.

`broker` is one broker per test module (tests share it through unique topic
names); `broker_factory` starts private brokers for tests that restart,
kill or reconfigure theirs; `cluster` starts private ``serve --brokers 3``
processes. All always stop what they started.
"""

from __future__ import annotations

import contextlib
import re
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cluster_process import ClusterProcess
from compat_helpers import BrokerProcess, wait_until

# Applied to every broker the fixtures start: tests should not sit through
# the initial rebalance delay (300 ms by default; Kafka waits 3 s).
_HTTP_LINE = re.compile(r"HTTP admin API and metrics on (http://\S+:\d+)")
DEFAULT_OVERRIDES = {"group.initial.rebalance.delay.ms": "0"}

BrokerFactory = Callable[[dict[str, str | None] | None], BrokerProcess]


def _shut_down(process: BrokerProcess) -> None:
    """Teardown still demands a clean SIGTERM exit from a broker a test left running."""
    try:
        if process.running:
            process.stop()
    finally:
        process.kill()


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[BrokerProcess]:
    """A module's broker; a module may set ``BROKER_OVERRIDES`` (Kafka config names) for its own."""
    overrides = {**DEFAULT_OVERRIDES, **getattr(request.module, "BROKER_OVERRIDES", {})}
    process = BrokerProcess(tmp_path_factory.mktemp("broker"), overrides)
    try:
        process.start()
        yield process
    finally:
        _shut_down(process)


@pytest.fixture(scope="module")
def http_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    """A module's broker with the HTTP side on an ephemeral port; its address is ``http_broker.http``."""
    process = BrokerProcess(tmp_path_factory.mktemp("http-broker"),
                            {**DEFAULT_OVERRIDES, "http.listeners": "http://127.0.0.1:0"})
    try:
        process.start()
        found = wait_until(lambda: _HTTP_LINE.search(process.log_text()), 10, "the HTTP listener's log line")
        process.http = found.group(1)
        yield process
    finally:
        _shut_down(process)


@pytest.fixture
def broker_factory(tmp_path: Path) -> Iterator[BrokerFactory]:
    """Call with Kafka config overrides, e.g. `broker_factory({"num.partitions": "4"})`; a None value
    leaves that config at the broker's own default, even one DEFAULT_OVERRIDES sets."""
    numbers = itertools.count()
    with contextlib.ExitStack() as teardown:

        def start(overrides: dict[str, str | None] | None = None) -> BrokerProcess:
            merged = {**DEFAULT_OVERRIDES, **(overrides or {})}
            process = BrokerProcess(tmp_path / f"broker{next(numbers)}",
                                    {name: value for name, value in merged.items() if value is not None})
            teardown.callback(_shut_down, process)
            process.start()
            return process

        yield start


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest):
    """A module's broker started from a secured server.properties (security_helpers), plus the module's
    ``SECURED_OVERRIDES`` if it has any; ``secured.untrusted`` is a second CA and client certificate that
    it does not trust."""
    from kafkacompat.security.certs import create_certificates
    from security_helpers import start_secured_broker

    workdir = tmp_path_factory.mktemp("secured")
    process = start_secured_broker(workdir, getattr(request.module, "SECURED_OVERRIDES", None))
    process.untrusted = create_certificates(workdir / "untrusted", clients=("stranger",))
    try:
        yield process
    finally:
        _shut_down(process)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Callable[..., ClusterProcess]]:
    """Start a 3-broker process with `cluster(**overrides)`; each is stopped (else killed) at the end."""
    started: list[ClusterProcess] = []

    def start(**overrides: str) -> ClusterProcess:
        process = ClusterProcess(tmp_path / f"cluster{len(started)}", overrides=overrides)
        started.append(process)
        process.start()
        return process

    yield start
    for process in started:
        try:
            if process.running:
                process.stop()
        finally:
            process.kill()
