"""Serve the web app with Hypercorn's Trio worker inside the broker's nursery."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from kafkacompat.broker import Broker

log = logging.getLogger("kafkacompat.web")


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
    from kafkacompat.web.metrics import BrokerMetrics

    host, port = parse_http_listener(listener)
    metrics = BrokerMetrics(broker, connection_count)
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = log
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(functools.partial(serve, build_app(broker, metrics), config,
                                                      shutdown_trigger=until))
        bound_port = int(binds[0].rpartition(":")[2])
        broker.metrics = metrics
        log.info("HTTP admin API and metrics on http://%s:%d", host, bound_port)
        task_status.started(bound_port)
