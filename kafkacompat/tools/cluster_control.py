"""``kafkacompat cluster stop|kill|start|pause|resume|isolate|heal NODE --http URL``: control a running cluster.

Speaks the cluster routes of the HTTP admin API (web/cluster_api.py) of any
broker of a ``kafkacompat serve --brokers N`` process, then waits until the
cluster shows the action done, so scripts can go on at once.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from kafkacompat.tools.faults import AdminApiClient, FaultsApiError

ACTIONS = ("stop", "kill", "start", "pause", "resume", "isolate", "heal")
WAIT_S = 30.0


def _done(broker: dict[str, Any], action: str) -> bool:
    return {"stop": not broker["alive"], "kill": not broker["alive"], "start": broker["alive"],
            "pause": broker["paused"], "resume": not broker["paused"],
            "isolate": broker["isolated"], "heal": not broker["isolated"]}[action]


class ClusterClient(AdminApiClient):
    """The cluster routes of one broker's HTTP admin API (``http://HOST:PORT``)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        super().__init__(url, "/api/cluster", timeout_s)

    def state(self) -> dict[str, Any]:
        return self._call("GET")

    def act(self, node_id: int, action: str, *, wait_s: float = WAIT_S) -> dict[str, Any]:
        """Ask for `action` on broker `node_id` and return its state once the cluster shows it done."""
        self._call("POST", f"/brokers/{int(node_id)}/{action}")
        deadline = time.monotonic() + wait_s
        while True:
            broker = next(b for b in self.state()["brokers"] if b["node_id"] == node_id)
            if _done(broker, action):
                return broker
            if time.monotonic() > deadline:
                raise FaultsApiError(f"broker {node_id} did not {action} within {wait_s} s")
            time.sleep(0.05)


def add_actions(actions: argparse._SubParsersAction) -> None:
    for action in ACTIONS:
        parser = actions.add_parser(action, help=f"{action} one broker of a running multi-broker process")
        parser.add_argument("node_id", type=int, metavar="NODE")
        parser.add_argument("--http", metavar="URL", required=True, help="any broker's HTTP admin API")


def run(args: argparse.Namespace) -> int:
    try:
        broker = ClusterClient(args.http).act(args.node_id, args.cluster_command)
    except FaultsApiError as exc:
        print(f"kafkacompat cluster: {exc}", file=sys.stderr)
        return 1
    state = "paused" if broker["paused"] else "isolated" if broker["isolated"] else \
        "running" if broker["alive"] else "stopped"
    print(f"broker {args.node_id}: {state}")
    return 0
