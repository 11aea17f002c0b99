"""The broker object: one log engine, one group coordinator, one identity.

Handlers reach everything through ``ctx.broker``. This is the only place that
knows how the engines are wired together; it owns their lifetimes (open at
start, flush and close at shutdown) and the Trio signal that wakes Fetch
long-polls when data is appended.
"""

from __future__ import annotations

import base64
import logging
import time
import uuid
from pathlib import Path
from typing import Callable

import trio

from kafkacompat.config import BrokerConfig
from kafkacompat.group.coordinator import GroupCoordinator
from kafkacompat.log.log_manager import LogManager

log = logging.getLogger("kafkacompat.broker")

META_PROPERTIES = "meta.properties"


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class AppendSignal:
    """Wakes every waiting Fetch when any partition grows.

    Waiters re-check their own partitions after waking, so one broadcast per
    append is enough and nothing is missed between check and wait.
    """

    def __init__(self) -> None:
        self._event = trio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def wait(self, timeout_s: float) -> None:
        with trio.move_on_after(max(timeout_s, 0.0)):
            await self._event.wait()


def _read_or_create_cluster_id(data_dir: Path, node_id: int) -> str:
    """Kafka keeps the cluster id in ``meta.properties``; so do we."""
    path = data_dir / META_PROPERTIES
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id" and value.strip():
                return value.strip()
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"version=1\ncluster.id={cluster_id}\nnode.id={node_id}\n")
    tmp.replace(path)
    return cluster_id


class Broker:
    """Everything a request handler may touch, for one broker process."""

    def __init__(self, config: BrokerConfig, clock: Callable[[], int] = wall_clock_ms) -> None:
        self.config = config
        self.clock = clock
        self.node_id = config.get_int("node.id")
        self.advertised_host, self.advertised_port = config.advertised_listener
        self.data_dir = config.data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cluster_id = _read_or_create_cluster_id(self.data_dir, self.node_id)
        self.log_manager = LogManager(self.data_dir, config.topic_defaults(), clock)
        self.groups = GroupCoordinator(
            self.data_dir,
            clock,
            initial_rebalance_delay_ms=config.get_int("group.initial.rebalance.delay.ms"),
            min_session_timeout_ms=config.get_int("group.min.session.timeout.ms"),
            max_session_timeout_ms=config.get_int("group.max.session.timeout.ms"),
            offsets_retention_ms=config.get_int("offsets.retention.minutes") * 60_000,
            offsets_retention_check_interval_ms=config.get_int("offsets.retention.check.interval.ms"),
        )
        self.appended = AppendSignal()

    def set_advertised(self, host: str, port: int) -> None:
        """Called once the listener is bound (port 0 picks a free port)."""
        self.advertised_host, self.advertised_port = host, port

    async def run_group_timers(self) -> None:
        """Drive the coordinator's session and rebalance timers."""
        while True:
            self.groups.tick(self.clock())
            deadline = self.groups.next_deadline_ms()
            wait_ms = 100 if deadline is None else min(max(deadline - self.clock(), 1), 100)
            await trio.sleep(wait_ms / 1000)

    def close(self) -> None:
        self.log_manager.close()
        self.groups.close()
