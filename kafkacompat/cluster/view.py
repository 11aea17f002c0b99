"""What a handler asks about the cluster, answered the same way for one broker or many.

``broker.cluster`` is a :class:`SingleBroker` for a plain ``kafkacompat
serve`` (this node is every partition's only replica, leader and ISR) and a
member.Member in a multi-broker process, where the controller answers.
Handlers ask only this interface, so neither mode branches in a handler:
who leads a partition, who coordinates a group or a transactional id, which brokers exist, and the
topic changes that every replica must see (create, delete, grow, configs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from kafkacompat.cluster.controller import BrokerInfo, PartitionState
from kafkacompat.log.partition_log import PartitionLog
from kafkacompat.protocol.errors import ErrorCode, KafkaError

if TYPE_CHECKING:
    from kafkacompat.broker import Broker
    from kafkacompat.log.log_manager import Topic


class SingleBroker:
    """The cluster of one: this broker leads everything, with itself as the only replica."""

    replicated = False

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    @property
    def node_id(self) -> int:
        return self._broker.node_id

    @property
    def controller_id(self) -> int:
        return self._broker.node_id

    def brokers(self) -> list[BrokerInfo]:
        broker = self._broker
        return [BrokerInfo(broker.node_id, broker.advertised_host, broker.advertised_port,
                           broker.config.get("broker.rack") or None, True)]

    def broker_info(self, node_id: int) -> BrokerInfo | None:
        return next((info for info in self.brokers() if info.node_id == node_id), None)

    def partition_state(self, log: PartitionLog) -> PartitionState:
        node = self._broker.node_id
        return PartitionState([node], node, log.leader_epoch, [node])

    def coordinator(self, group_id: str) -> int:
        return self._broker.node_id

    def transaction_coordinator(self, transactional_id: str) -> int:
        return self._broker.node_id

    def partition_leader(self, topic: str, index: int) -> tuple[Broker, PartitionLog] | None:
        """The broker leading a partition and its log there (for transaction markers); None when unknown."""
        log = self._broker.log_manager.partition(topic, index)
        return None if log is None else (self._broker, log)

    def reassign(self, topic: str, index: int, replicas: list[int] | None) -> ErrorCode:
        """AlterPartitionReassignments for one existing partition: only this broker can hold it."""
        if replicas is None:
            return ErrorCode.NO_REASSIGNMENT_IN_PROGRESS
        return ErrorCode.NONE if replicas == [self._broker.node_id] else ErrorCode.INVALID_REPLICA_ASSIGNMENT

    def reassignments(self) -> list[tuple[str, int, PartitionState]]:
        return []

    def elect(self, topic: str, index: int, election_type: int) -> ErrorCode:
        """ElectLeaders for one existing partition: its only replica leads already."""
        return ErrorCode.ELECTION_NOT_NEEDED

    def allocate_producer_id(self) -> int:
        return self._broker.log_manager.allocate_producer_id()

    # -- topic changes -----------------------------------------------------------

    def check_assignment(self, replicas: list[int]) -> None:
        check_replica_list(replicas, [self._broker.node_id])

    def max_replication_factor(self) -> int:
        return 1

    def create_topic(self, name: str, partitions: int, configs: Mapping[str, str | None],
                     assignments: list[list[int]] | None = None, replication_factor: int = 1) -> Topic:
        return self._broker.log_manager.create_topic(name, partitions, configs)

    def delete_topic(self, name: str) -> None:
        self._broker.log_manager.delete_topic(name)

    def create_partitions(self, name: str, total: int, assignments: list[list[int]] | None = None) -> None:
        self._broker.log_manager.create_partitions(name, total)

    def alter_topic_configs(self, name: str, to_set: Mapping[str, str | None], to_delete: Any,
                            validate_only: bool) -> None:
        self._broker.log_manager.alter_topic_configs(name, to_set, to_delete, validate_only=validate_only)

    # -- leadership checks: this broker leads, and it is the whole ISR -----------------

    def leader_error(self, log: PartitionLog) -> ErrorCode | None:
        return None

    def check_produce(self, log: PartitionLog, acks: int) -> None:
        """Nothing to check."""

    async def wait_replicated(self, log: PartitionLog, end_offset: int, timeout_ms: int) -> ErrorCode:
        return ErrorCode.NONE

    def fetch_error(self, log: PartitionLog, version: int) -> ErrorCode | None:
        return None

    def preferred_read_replica(self, log: PartitionLog, rack_id: str | None) -> int:
        return -1


def check_replica_list(replicas: list[int], known: list[int]) -> None:
    """Kafka's checks of one manual replica list: not empty, registered brokers, each once."""
    if not replicas:
        raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                         "The manual partition assignment includes an empty replica list.")
    for node in replicas:
        if node not in known:
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                             f"The manual partition assignment includes broker {node}, but no such broker is registered.")
    for node in replicas:
        if replicas.count(node) > 1:
            raise KafkaError(ErrorCode.INVALID_REPLICA_ASSIGNMENT,
                             f"The manual partition assignment includes the broker {node} more than once.")
