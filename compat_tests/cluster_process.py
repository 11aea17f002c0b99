"""A ``kafkacompat serve --brokers N`` child process, controlled through its HTTP admin API."""

from __future__ import annotations

import re
from pathlib import Path

from confluent_kafka.admin import AdminClient, NewTopic

from compat_helpers import BrokerProcess, free_port, wait_until
from kafkacompat.tools.cluster_control import ClusterClient
from kafkacompat.tools.faults import FaultsApiError

_MEMBER = re.compile(r"HTTP admin API and metrics on (http://\S+)\n.*kafkacompat listening on \S+ .*broker-(\d+)\n")


class ClusterProcess(BrokerProcess):
    """N brokers in one process, each with its own port and admin API; ``act`` goes through another broker's."""

    def __init__(self, workdir: Path, brokers: int = 3, overrides: dict[str, str] | None = None) -> None:
        ports = [free_port() for _ in range(brokers)]
        super().__init__(workdir, {"group.initial.rebalance.delay.ms": "0", "cluster.brokers": str(brokers),
                                   "cluster.ports": ",".join(map(str, ports)),
                                   "http.listeners": "http://127.0.0.1:0", **(overrides or {})})
        self.port = ports[0]
        self.bootstrap = ",".join(f"127.0.0.1:{port}" for port in ports)
        self.brokers = brokers

    def http_urls(self) -> dict[int, str]:
        return {int(node): url for url, node in _MEMBER.findall(self.log_text())}

    def start(self) -> None:
        super().start()
        wait_until(lambda: len(self.http_urls()) == self.brokers and "kafkacompat cluster of" in self.log_text(),
                   20, "every broker's admin API")

    def client(self, avoiding: int | None = None) -> ClusterClient:
        """The admin API of a running broker other than `avoiding`."""
        alive = {b["node_id"] for b in ClusterClient(self._any_url()).state()["brokers"] if b["alive"]}
        node = min(n for n in alive if n != avoiding)
        return ClusterClient(self.http_urls()[node])

    def _any_url(self) -> str:
        for url in self.http_urls().values():
            try:
                ClusterClient(url, timeout_s=2).state()
                return url
            except FaultsApiError:  # a stopped broker's admin API: try the next
                continue
        raise AssertionError("no broker's admin API answers")

    def live_bootstrap(self) -> str:
        """The running brokers only, for clients that report a refused connection as an error."""
        addresses = self.bootstrap.split(",")
        return ",".join(addresses[b["node_id"] - 1] for b in self.state()["brokers"] if b["alive"])

    def act(self, node_id: int, action: str) -> None:
        self.client(avoiding=node_id).act(node_id, action)

    def state(self) -> dict:
        return ClusterClient(self._any_url()).state()

    def partition(self, topic: str, index: int) -> dict:
        return next(p for p in self.state()["partitions"] if p["topic"] == topic and p["partition"] == index)

    def leader(self, topic: str, index: int) -> int:
        return self.partition(topic, index)["leader"]


def create(bootstrap: str, topic: str, partitions: int = 3, replication_factor: int = 3,
           **configs: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    future = admin.create_topics([NewTopic(topic, partitions, replication_factor, config=configs)])[topic]
    future.result(timeout=30)
