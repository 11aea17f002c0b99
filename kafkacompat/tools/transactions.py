"""``kafkacompat transactions list|describe``, after kafka-transactions.sh.

``list`` asks every broker (each coordinates its own transactional ids) with
ListTransactions and its filters; ``describe`` finds the id's coordinator
and asks it with DescribeTransactions.
"""

from __future__ import annotations

import argparse
from typing import Any

from kafkacompat.client import ApiKey, Cluster, check
from kafkacompat.tools import output

TRANSACTION_KEY_TYPE = 1


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from kafkacompat.tools import common_options

    parser = sub.add_parser("transactions", help="list and describe transactions")
    common_options(parser, leaf=False)
    actions = parser.add_subparsers(dest="transactions_command", required=True)
    listed = actions.add_parser("list", help="transactional ids, their producer and state")
    listed.add_argument("--state", action="append", default=[], metavar="STATE",
                        help="only this state, e.g. Ongoing (repeatable)")
    listed.add_argument("--producer-id", type=int, action="append", default=[], metavar="ID",
                        help="only this producer id (repeatable)")
    listed.add_argument("--duration-ms", type=int, default=-1, metavar="MS",
                        help="only transactions open at least this long")
    describe = actions.add_parser("describe", help="one transactional id's producer, state and partitions")
    describe.add_argument("--transactional-id", required=True)
    for action in (listed, describe):
        common_options(action)
    return parser


def list_transactions(cluster: Cluster, states: list[str], producer_ids: list[int],
                      duration_ms: int) -> list[dict[str, Any]]:
    cluster.metadata([])
    listed = []
    for node_id in sorted(cluster.brokers):
        answer = cluster.node(node_id).send(ApiKey.LIST_TRANSACTIONS, {
            "state_filters": states, "producer_id_filters": producer_ids, "duration_filter": duration_ms})
        check(answer.error_code, f"ListTransactions on broker {node_id}")
        listed += [{"transactional_id": t.transactional_id, "coordinator": node_id, "producer_id": t.producer_id,
                    "state": t.transaction_state} for t in answer.transaction_states]
    return sorted(listed, key=lambda t: t["transactional_id"])


def describe_transaction(cluster: Cluster, transactional_id: str) -> dict[str, Any]:
    answer = cluster.coordinator(transactional_id, TRANSACTION_KEY_TYPE).send(
        ApiKey.DESCRIBE_TRANSACTIONS, {"transactional_ids": [transactional_id]})
    (state,) = answer.transaction_states
    check(state.error_code, f"transactional id {transactional_id!r}")
    return {"transactional_id": state.transactional_id, "producer_id": state.producer_id,
            "producer_epoch": state.producer_epoch, "state": state.transaction_state,
            "timeout_ms": state.transaction_timeout_ms, "start_time_ms": state.transaction_start_time_ms,
            "partitions": [f"{t.topic}-{p}" for t in state.topics for p in t.partitions]}


def run(args: argparse.Namespace, cluster: Cluster) -> int:
    if args.transactions_command == "list":
        listed = list_transactions(cluster, args.state, args.producer_id, args.duration_ms)
        if args.json:
            output.emit_json(listed)
        else:
            output.table(None, ["TRANSACTIONAL ID", "COORDINATOR", "PRODUCER ID", "STATE"], (
                [t["transactional_id"], t["coordinator"], t["producer_id"], t["state"]] for t in listed))
        return 0
    described = describe_transaction(cluster, args.transactional_id)
    if args.json:
        output.emit_json(described)
    else:
        output.table(None, ["TRANSACTIONAL ID", "PRODUCER ID", "EPOCH", "STATE", "TIMEOUT MS", "START MS",
                            "PARTITIONS"], [[
            described["transactional_id"], described["producer_id"], described["producer_epoch"],
            described["state"], described["timeout_ms"], described["start_time_ms"],
            ",".join(described["partitions"]) or "-"]])
    return 0
