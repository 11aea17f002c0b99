"""What the HTTP side changes, done as a Kafka client of this same broker.

Producing a record, altering a topic config and resetting a group's offsets
go through the Kafka protocol from a worker thread with the command-line
tools' client, so they take exactly the path a client's request takes:
validation, durability and Kafka's error codes. Each returns '' on success
or the failure's one line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

from kafkacompat.client import ClientError, Cluster
from kafkacompat.protocol.records import Compression

if TYPE_CHECKING:
    from kafkacompat.broker import Broker

Headers = list[tuple[str, bytes | None]]


async def as_client(broker: Broker, work: Callable[[Cluster], object]) -> str:
    """Run ``work(cluster)`` in a thread against this broker's advertised address."""
    address = f"{broker.advertised_host}:{broker.advertised_port}"

    def run() -> str:
        try:
            with Cluster(address, client_id="kafkacompat-console") as cluster:
                work(cluster)
            return ""
        except ClientError as exc:
            return str(exc)

    return await trio.to_thread.run_sync(run)


async def produce_record(broker: Broker, topic: str, partition: int, key: bytes | None, value: bytes | None,
                         headers: Headers) -> str:
    from kafkacompat.tools.produce import Producer

    def send(cluster: Cluster) -> None:
        producer = Producer(cluster, topic, acks=-1, compression=Compression.NONE, partition=partition)
        producer.add((key, value, headers))
        producer.flush()

    return await as_client(broker, send)


async def alter_topic_config(broker: Broker, topic: str, name: str, value: str | None) -> str:
    """Set a topic config, or remove its override when ``value`` is None."""
    from kafkacompat.tools.topics import alter_configs

    changes = ([], [name]) if value is None else ([(name, value)], [])
    return await as_client(broker, lambda cluster: alter_configs(cluster, topic, *changes))


async def reset_group_offsets(broker: Broker, group_id: str, topic: str, target: str, value: str = "") -> str:
    from kafkacompat.tools.groups import reset_offsets

    return await as_client(broker, lambda cluster: reset_offsets(cluster, group_id, topic, target, value))
