"""Serve the web app with Hypercorn's Trio worker inside the broker's nursery."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
import time
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from kafkacompat.broker import Broker

log = logging.getLogger("kafkacompat.web")

SAMPLE_INTERVAL_S = 2.0
HISTORY_SAMPLES = 150  # five minutes of samples


async def _sample(broker: Broker, metrics: Any, history: Any, until: Callable[[], Awaitable[None]]) -> None:
    """Feed the history every SAMPLE_INTERVAL_S until the server stops."""
    from kafkacompat.web.history import Sample
    from kafkacompat.web.state import group_lags, high_watermarks, records_in_by_topic

    async def tick() -> None:
        while True:
            history.add(Sample(time.monotonic(), records_in_by_topic(broker), metrics.bytes_out_total(),
                               group_lags(broker, high_watermarks(broker))))
            await trio.sleep(SAMPLE_INTERVAL_S)

    async with trio.open_nursery() as inner:
        inner.start_soon(tick)
        await until()
        inner.cancel_scope.cancel()


def parse_http_listener(text: str) -> tuple[str, int]:
    """``http://HOST:PORT`` (or ``HOST:PORT``) -> (host, port); ValueError otherwise."""
    address = text.removeprefix("http://")
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected http://HOST:PORT, got {text!r}")
    return host or "127.0.0.1", int(port)


async def serve_http(
    broker: Broker,
    connection_count: Callable[[], int],
    listener: str,
    until: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve metrics and the admin API on ``listener`` until ``until()`` returns; reports the bound port."""
    from hypercorn.config import Config
    from hypercorn.trio import serve

    from kafkacompat.web.app import build_app
    from kafkacompat.web.history import History
    from kafkacompat.web.metrics import BrokerMetrics

    host, port = parse_http_listener(listener)
    metrics = BrokerMetrics(broker, connection_count)
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = log
    history = History(keep=HISTORY_SAMPLES)
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(functools.partial(serve, build_app(broker, metrics, history), config,
                                                      shutdown_trigger=until))
        nursery.start_soon(_sample, broker, metrics, history, until)
        bound_port = int(binds[0].rpartition(":")[2])
        broker.metrics = metrics
        log.info("HTTP admin API and metrics on http://%s:%d", host, bound_port)
        task_status.started(bound_port)
