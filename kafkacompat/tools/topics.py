"""``kafkacompat topics list|describe|create|delete|alter-config``, after kafka-topics.sh and kafka-configs.sh.

Reads go to the bootstrap broker; creations, deletions and config changes go
to the controller Metadata names, as Kafka's admin client sends them.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from typing import Any

from kafkacompat.client import ApiKey, ClientError, Cluster, check
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.tools import output

TOPIC_RESOURCE = 2
SET, DELETE = 0, 1
ADMIN_TIMEOUT_MS = 30_000
# Kafka's ConfigEntry.ConfigSource, by its wire id.
CONFIG_SOURCES = {
    0: "UNKNOWN", 1: "DYNAMIC_TOPIC_CONFIG", 2: "DYNAMIC_BROKER_CONFIG", 3: "DYNAMIC_DEFAULT_BROKER_CONFIG",
    4: "STATIC_BROKER_CONFIG", 5: "DEFAULT_CONFIG", 6: "DYNAMIC_BROKER_LOGGER_CONFIG",
    7: "CLIENT_METRICS_CONFIG", 8: "GROUP_CONFIG",
}
DEFAULT_CONFIG = 5


def config_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from kafkacompat.tools import common_options

    parser = sub.add_parser("topics", help="list, describe, create, delete topics and change their configs")
    common_options(parser, leaf=False)
    actions = parser.add_subparsers(dest="topics_command", required=True)
    listed = actions.add_parser("list", help="topic names, one a line")
    listed.add_argument("--exclude-internal", action="store_true", help="leave out internal topics")
    describe = actions.add_parser("describe", help="partitions, leaders, replicas, ISR, producers and configs")
    describe.add_argument("topics", nargs="*", metavar="TOPIC", help="default: every topic")
    describe.add_argument("--all-configs", action="store_true", help="every config, not only those set")
    create = actions.add_parser("create", help="create a topic")
    create.add_argument("topic")
    create.add_argument("--partitions", type=int, default=-1, help="default: the broker's num.partitions")
    create.add_argument("--replication-factor", type=int, default=-1,
                        help="default: the broker's default.replication.factor")
    create.add_argument("--config", type=config_pair, action="append", default=[], metavar="NAME=VALUE")
    create.add_argument("--if-not-exists", action="store_true", help="no error when the topic exists")
    delete = actions.add_parser("delete", help="delete topics")
    delete.add_argument("topics", nargs="+", metavar="TOPIC")
    alter = actions.add_parser("alter-config", help="set or delete topic configs (IncrementalAlterConfigs)")
    alter.add_argument("topic")
    alter.add_argument("--set", type=config_pair, action="append", default=[], metavar="NAME=VALUE",
                       help="set a config (repeatable)")
    alter.add_argument("--delete", action="append", default=[], metavar="NAME",
                       help="remove an override, back to the default (repeatable)")
    for action in (listed, describe, create, delete, alter):
        common_options(action)
    return parser


def list_topics(cluster: Cluster, exclude_internal: bool) -> list[str]:
    answer = cluster.metadata(None)
    return sorted(t.name for t in answer.topics if not (exclude_internal and t.is_internal))


def describe_configs(cluster: Cluster, topics: list[str]) -> dict[str, list[dict[str, Any]]]:
    answer = cluster.bootstrap.send(ApiKey.DESCRIBE_CONFIGS, {
        "resources": [{"resource_type": TOPIC_RESOURCE, "resource_name": t, "configuration_keys": None}
                      for t in topics],
        "include_synonyms": False,
    }, lowest=1)
    configs = {}
    for result in answer.results:
        check(result.error_code, f"DescribeConfigs {result.resource_name}", result.error_message)
        configs[result.resource_name] = [
            {"name": c.name, "value": c.value, "source": CONFIG_SOURCES.get(c.config_source, str(c.config_source)),
             "default": c.config_source == DEFAULT_CONFIG, "read_only": c.read_only, "sensitive": c.is_sensitive}
            for c in sorted(result.configs, key=lambda c: c.name)
        ]
    return configs


def describe_topics(cluster: Cluster, topics: list[str]) -> list[dict[str, Any]]:
    answer = cluster.metadata(topics or None)
    described = []
    for topic in sorted(answer.topics, key=lambda t: t.name):
        if topic.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
            raise ClientError(f"unknown topic {topic.name!r}")
        check(topic.error_code, f"topic {topic.name!r}")
        partitions = sorted(topic.partitions, key=lambda p: p.partition_index)
        described.append({
            "name": topic.name,
            "topic_id": str(topic.topic_id),
            "internal": topic.is_internal,
            "replication_factor": len(partitions[0].replica_nodes) if partitions else 0,
            "partitions": [
                {"partition": p.partition_index, "leader": p.leader_id, "replicas": list(p.replica_nodes),
                 "isr": list(p.isr_nodes), "offline": list(p.offline_replicas)}
                for p in partitions
            ],
        })
    configs = describe_configs(cluster, [t["name"] for t in described]) if described else {}
    for topic in described:
        topic["configs"] = configs.get(topic["name"], [])
        topic["producers"] = describe_producers(cluster, topic)
    return described


def describe_producers(cluster: Cluster, topic: dict[str, Any]) -> list[dict[str, Any]]:
    """DescribeProducers at each partition's leader: the producers it remembers, with any open transaction."""
    by_leader: dict[int, list[int]] = {}
    for p in topic["partitions"]:
        by_leader.setdefault(p["leader"], []).append(p["partition"])
    producers = []
    for leader, indexes in sorted(by_leader.items()):
        node = cluster.node(leader) if leader >= 0 else None
        if node is None or ApiKey.DESCRIBE_PRODUCERS not in node.api_versions():  # Kafka before 2.8 has none
            continue
        answer = node.send(ApiKey.DESCRIBE_PRODUCERS, {
            "topics": [{"name": topic["name"], "partition_indexes": indexes}]})
        for partition in answer.topics[0].partitions:
            check(partition.error_code, f"producers of {topic['name']}-{partition.partition_index}",
                  partition.error_message)
            producers += [{"partition": partition.partition_index, "producer_id": p.producer_id,
                           "producer_epoch": p.producer_epoch, "last_sequence": p.last_sequence,
                           "last_timestamp": p.last_timestamp,
                           "current_txn_start_offset": p.current_txn_start_offset}
                          for p in partition.active_producers]
    return producers


def create_topic(cluster: Cluster, name: str, partitions: int = -1, replication_factor: int = -1,
                 configs: Iterable[tuple[str, str]] = (), *, if_not_exists: bool = False) -> bool:
    """True if created; False if it existed and ``if_not_exists``. -1 counts take the broker's defaults."""
    answer = cluster.controller().send(ApiKey.CREATE_TOPICS, {
        "topics": [{"name": name, "num_partitions": partitions,
                    "replication_factor": replication_factor, "assignments": [],
                    "configs": [{"name": n, "value": v} for n, v in configs]}],
        "timeout_ms": ADMIN_TIMEOUT_MS,
    }, lowest=4)
    result = answer.topics[0]
    if result.error_code == ErrorCode.TOPIC_ALREADY_EXISTS and if_not_exists:
        return False
    check(result.error_code, f"cannot create topic {name!r}", result.error_message)
    return True


def delete_topics(cluster: Cluster, topics: list[str]) -> None:
    answer = cluster.controller().send(ApiKey.DELETE_TOPICS, {
        "topics": [{"name": t} for t in topics], "topic_names": topics, "timeout_ms": ADMIN_TIMEOUT_MS,
    })
    for result in answer.responses:
        code = result.error_code
        if code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
            raise ClientError(f"unknown topic {result.name!r}", code)
        check(code, f"cannot delete topic {result.name!r}", result.error_message)


def alter_configs(cluster: Cluster, topic: str, set_: list[tuple[str, str]], delete: list[str]) -> None:
    if not set_ and not delete:
        raise ClientError("nothing to change: give --set NAME=VALUE or --delete NAME")
    answer = cluster.controller().send(ApiKey.INCREMENTAL_ALTER_CONFIGS, {
        "resources": [{
            "resource_type": TOPIC_RESOURCE, "resource_name": topic,
            "configs": [{"name": n, "config_operation": SET, "value": v} for n, v in set_]
                       + [{"name": n, "config_operation": DELETE, "value": None} for n in delete],
        }],
        "validate_only": False,
    })
    result = answer.responses[0]
    if result.error_code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
        raise ClientError(f"unknown topic {topic!r}")
    check(result.error_code, f"cannot change configs of {topic!r}", result.error_message)


def _print_topic(topic: dict[str, Any], all_configs: bool) -> None:
    output.line(f"Topic: {topic['name']}  TopicId: {topic['topic_id']}  "
                f"PartitionCount: {len(topic['partitions'])}  ReplicationFactor: {topic['replication_factor']}"
                + ("  Internal: true" if topic["internal"] else ""))
    output.table(None, ["PARTITION", "LEADER", "REPLICAS", "ISR", "OFFLINE"], (
        [p["partition"], p["leader"], ",".join(map(str, p["replicas"])), ",".join(map(str, p["isr"])),
         ",".join(map(str, p["offline"]))]
        for p in topic["partitions"]
    ))
    if topic["producers"]:
        output.table(None, ["PARTITION", "PRODUCER ID", "EPOCH", "LAST SEQUENCE", "LAST TIMESTAMP", "TXN START"], (
            [p["partition"], p["producer_id"], p["producer_epoch"], p["last_sequence"], p["last_timestamp"],
             p["current_txn_start_offset"] if p["current_txn_start_offset"] >= 0 else "-"]
            for p in topic["producers"]
        ))
    shown = [c for c in topic["configs"] if all_configs or not c["default"]]
    if shown:
        output.table(None, ["CONFIG", "VALUE", "SOURCE"], (
            [c["name"], "(sensitive)" if c["sensitive"] else c["value"], c["source"]] for c in shown
        ))


def run(args: argparse.Namespace, cluster: Cluster) -> int:
    command = args.topics_command
    if command == "list":
        names = list_topics(cluster, args.exclude_internal)
        output.report(args.json, names, "\n".join(names))
    elif command == "describe":
        described = describe_topics(cluster, args.topics)
        if args.json:
            output.emit_json(described)
        else:
            for topic in described:
                _print_topic(topic, args.all_configs)
    elif command == "create":
        created = create_topic(cluster, args.topic, args.partitions, args.replication_factor, args.config,
                               if_not_exists=args.if_not_exists)
        output.report(args.json, {"topic": args.topic, "created": created},
                f"Created topic {args.topic}." if created else f"Topic {args.topic} already exists.")
    elif command == "delete":
        delete_topics(cluster, args.topics)
        output.report(args.json, {"deleted": args.topics}, "\n".join(f"Deleted topic {t}." for t in args.topics))
    else:
        alter_configs(cluster, args.topic, args.set, args.delete)
        output.report(args.json, {"topic": args.topic, "set": dict(args.set), "deleted": args.delete},
                f"Updated configs of topic {args.topic}.")
    return 0
