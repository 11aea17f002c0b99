"""``kafkacompat cluster info``: brokers, controller, cluster id and the API versions a broker serves.

Beside each range is the version this client negotiates (the newest both
sides know), or nothing where it has no spec for the API.
"""

from __future__ import annotations

import argparse
from typing import Any

from kafkacompat.client import Cluster
from kafkacompat.protocol.specs import api_spec
from kafkacompat.tools import cluster_control, output


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from kafkacompat.tools import common_options

    parser = sub.add_parser("cluster", help="what the cluster is made of")
    common_options(parser, leaf=False)
    actions = parser.add_subparsers(dest="cluster_command", required=True)
    common_options(actions.add_parser("info", help="brokers, controller, cluster id, API versions"))
    cluster_control.add_actions(actions)
    return parser


def cluster_info(cluster: Cluster) -> dict[str, Any]:
    answer = cluster.metadata([])
    bootstrap = cluster.bootstrap
    apis = []
    for key, (low, high) in sorted(bootstrap.api_versions().items()):
        spec = api_spec(key)
        shared = spec is not None and max(low, spec.min_version) <= min(high, spec.max_version)
        apis.append({"api_key": key, "name": spec.name if spec else None, "min_version": low, "max_version": high,
                     "negotiated_version": bootstrap.version(key) if shared else None})
    return {
        "cluster_id": answer.cluster_id,
        "controller_id": answer.controller_id,
        "bootstrap": bootstrap.address,
        "brokers": [{"node_id": b.node_id, "host": b.host, "port": b.port, "rack": b.rack}
                    for b in sorted(answer.brokers, key=lambda b: b.node_id)],
        "api_versions": apis,
    }


def run(args: argparse.Namespace, cluster: Cluster) -> int:
    info = cluster_info(cluster)
    if args.json:
        output.emit_json(info)
        return 0
    output.line(f"Cluster id: {info['cluster_id'] or '-'}  Controller: {info['controller_id']}")
    output.table("Brokers", ["ID", "HOST", "PORT", "RACK", "CONTROLLER"], (
        [b["node_id"], b["host"], b["port"], b["rack"], "yes" if b["node_id"] == info["controller_id"] else ""]
        for b in info["brokers"]
    ))
    output.table(f"API versions of {info['bootstrap']}", ["KEY", "NAME", "VERSIONS", "NEGOTIATED"], (
        [a["api_key"], a["name"], f"{a['min_version']}-{a['max_version']}", a["negotiated_version"]]
        for a in info["api_versions"]
    ))
    return 0
