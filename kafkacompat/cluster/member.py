"""One broker slot of an in-process cluster (runtime.py): its config, its Broker while it runs, and the
cluster view its handlers ask (the interface of view.SingleBroker).

``member_configs`` gives each broker its node id, listeners, data directory
and rack from the cluster's config; ``RunningMemberTopics`` is the topic
registry the shared engines read through whichever member is running.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Mapping

import trio

from kafkacompat.broker import Broker
from kafkacompat.cluster.controller import TRANSACTION_TOPIC, BrokerInfo, PartitionState
from kafkacompat.cluster.replication import follow
from kafkacompat.cluster.view import check_replica_list
from kafkacompat.config import BrokerConfig
from kafkacompat.listeners import with_ports
from kafkacompat.log.log_manager import Topic
from kafkacompat.log.partition_log import PartitionLog
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.web.server import parse_http_listener

if TYPE_CHECKING:
    from kafkacompat.cluster.runtime import ClusterRuntime

log = logging.getLogger("kafkacompat.cluster")


def member_configs(config: BrokerConfig) -> list[BrokerConfig]:
    """One config per broker: node ids 1..N, DATA/broker-N, racks in order, and every listener of
    ``listeners`` on each broker: the first on consecutive ports (or ``cluster.ports``), the others
    on their own port plus the broker's position (0 stays 0)."""
    count = config.get_int("cluster.brokers")
    listeners = config.get("listeners")
    port = config.listener[1]
    ports = [int(p) for p in config.get("cluster.ports").split(",") if p.strip()] or [
        port + i if port else 0 for i in range(count)]
    racks = [rack.strip() for rack in config.get("broker.rack").split(",")]
    explicit = {name: value for name, value, default in config.items()
                if not default and name not in ("advertised.listeners", "broker.rack")}
    http = config.get("http.listeners")
    configs = []
    for i in range(count):
        node = i + 1
        own = with_ports(listeners, lambda position, _, base, i=i: ports[i] if position == 0 else
                         base + i if base else 0)
        overrides = {**explicit, "node.id": node, "listeners": own,
                     "log.dirs": str(config.data_dir / f"broker-{node}"),
                     "broker.rack": racks[i] if i < len(racks) else ""}
        if http:  # one admin API per broker, on consecutive ports too
            http_host, http_port = parse_http_listener(http)
            overrides["http.listeners"] = f"http://{http_host}:{http_port + i if http_port else 0}"
        configs.append(BrokerConfig(overrides, config.faults))
    return configs


class Member:
    """One broker slot: its config, its Broker while it runs, and the cluster view its handlers use."""

    replicated = True

    def __init__(self, runtime: ClusterRuntime, config: BrokerConfig) -> None:
        self.runtime = runtime
        self.config = config
        self.node_id = config.get_int("node.id")
        self.broker: Broker | None = None
        self.paused = False
        self.isolated = False
        self.unheard_since_ms = 0  # since when a paused or isolated broker has not reached the controller
        self.crashed = False
        self._stopping = trio.Event()
        self._done = trio.Event()
        self._scope: trio.CancelScope | None = None
        self._pause_rule: int | None = None

    @property
    def running(self) -> bool:
        return self.broker is not None

    @property
    def cut_off(self) -> bool:
        """Paused or isolated: reaching neither the other brokers nor the controller."""
        return self.paused or self.isolated

    # -- the view handlers ask (see view.SingleBroker) ----------------------------

    @property
    def controller_id(self) -> int:
        return self.runtime.controller.controller_id

    def brokers(self) -> list[BrokerInfo]:
        controller = self.runtime.controller
        return [controller.brokers[node] for node in controller.live_node_ids]

    def broker_info(self, node_id: int) -> BrokerInfo | None:
        info = self.runtime.controller.brokers.get(node_id)
        return info if info is not None and info.alive else None

    def partition_state(self, log: PartitionLog) -> PartitionState:
        return self.runtime.controller.partitions[log.topic, log.index]

    def coordinator(self, group_id: str) -> int:
        return self.runtime.controller.coordinator(group_id)

    def reassign(self, topic: str, index: int, replicas: list[int] | None) -> ErrorCode:
        """AlterPartitionReassignments: the added replicas catch up by replicating, then the removed ones go."""
        error = self.runtime.controller.reassign((topic, index), replicas)
        self.runtime.apply_leadership({(topic, index)})
        return ErrorCode.NONE if error is None else ErrorCode[error]

    def reassignments(self) -> list[tuple[str, int, PartitionState]]:
        controller = self.runtime.controller
        return [(topic, index, controller.partitions[topic, index]) for topic, index in controller.reassignments()]

    def transaction_coordinator(self, transactional_id: str) -> int:
        """The broker whose share of the transaction coordinator answers for this id; it moves like a group's."""
        return self.runtime.controller.coordinator(transactional_id, TRANSACTION_TOPIC)

    def partition_leader(self, topic: str, index: int) -> tuple[Broker, PartitionLog] | None:
        """The running broker leading a partition and its log there, for transaction markers; None for a
        deleted partition, LEADER_NOT_AVAILABLE while none leads (or the new leader's log is not told yet)."""
        state = self.runtime.controller.partition(topic, index)
        if state is None:
            return None
        member = self.runtime.members.get(state.leader) if state.leader == self.node_id \
            else self.runtime.reachable(state.leader, self.node_id)
        broker = member.broker if member is not None else None
        log = broker.log_manager.partition(topic, index) if broker is not None else None
        if log is None or log.closed or log.leader_epoch != state.leader_epoch:
            raise KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, f"{topic}-{index} has no leader to take a marker")
        return broker, log

    def elect(self, topic: str, index: int, election_type: int) -> ErrorCode:
        """ElectLeaders: type 0 the preferred replica, type 1 any live one for an offline partition."""
        runtime = self.runtime
        elect = runtime.elect_preferred if election_type == 0 else runtime.elect_unclean
        error = elect([(topic, index)])[topic, index]
        return ErrorCode.NONE if error is None else ErrorCode[error]

    def allocate_producer_id(self) -> int:
        return self.runtime.allocate_producer_id()

    def check_assignment(self, replicas: list[int]) -> None:
        check_replica_list(replicas, self.runtime.controller.node_ids)

    def max_replication_factor(self) -> int:
        return len(self.runtime.controller.node_ids)

    def create_topic(self, name: str, partitions: int, configs: Mapping[str, str | None],
                     assignments: list[list[int]] | None = None, replication_factor: int = 1) -> Topic:
        return self.runtime.create_topic(self, name, partitions, configs, assignments, replication_factor)

    def delete_topic(self, name: str) -> None:
        self.runtime.on_every_member(lambda manager: manager.delete_topic(name), first=self)
        self.runtime.controller.remove_topic(name)
        self.runtime.tracker.forget_topic(name)

    def create_partitions(self, name: str, total: int, assignments: list[list[int]] | None = None) -> None:
        self.runtime.create_partitions(self, name, total, assignments)

    def alter_topic_configs(self, name: str, to_set: Mapping[str, str | None], to_delete: Any,
                            validate_only: bool) -> None:
        self.runtime.on_every_member(lambda manager: manager.alter_topic_configs(
            name, to_set, to_delete, validate_only=validate_only), first=self)

    def _deleted(self, log: PartitionLog) -> bool:
        """A log the controller no longer has: its topic was deleted while a request held it."""
        return (log.topic, log.index) not in self.runtime.controller.partitions

    def leader_error(self, log: PartitionLog) -> ErrorCode | None:
        """NOT_LEADER_OR_FOLLOWER (or LEADER_NOT_AVAILABLE while offline) unless this broker leads."""
        if self._deleted(log):
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        state = self.partition_state(log)
        if state.leader == self.node_id:
            return None
        return ErrorCode.LEADER_NOT_AVAILABLE if state.offline else ErrorCode.NOT_LEADER_OR_FOLLOWER

    def check_produce(self, log: PartitionLog, acks: int) -> None:
        code = self.leader_error(log)
        if code is not None:
            raise KafkaError(code, f"broker {self.node_id} does not lead {log.topic}-{log.index}")
        state = self.partition_state(log)
        if acks == -1 and len(state.isr) < log.config.min_insync_replicas:
            raise KafkaError(ErrorCode.NOT_ENOUGH_REPLICAS,
                             f"The size of the current ISR {state.isr} is insufficient to satisfy the min.isr "
                             f"requirement of {log.config.min_insync_replicas} for partition {log.topic}-{log.index}")

    async def wait_replicated(self, log: PartitionLog, end_offset: int, timeout_ms: int) -> ErrorCode:
        """acks=all: wait until the ISR holds the appends, Kafka's delayed produce."""
        deadline = trio.current_time() + max(timeout_ms, 0) / 1000
        while log.high_watermark < end_offset:
            if self.partition_state(log).leader != self.node_id or log.closed:
                return ErrorCode.NOT_LEADER_OR_FOLLOWER
            remaining = deadline - trio.current_time()
            if remaining <= 0:
                return ErrorCode.REQUEST_TIMED_OUT
            await self.runtime.appended.wait(remaining)
        if len(self.partition_state(log).isr) < log.config.min_insync_replicas:
            return ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND
        return ErrorCode.NONE

    def fetch_error(self, log: PartitionLog, version: int) -> ErrorCode | None:
        """Leaders serve every fetch; followers serve consumers that sent client metadata (Fetch v11+, KIP-392)."""
        if self._deleted(log):
            return ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
        state = self.partition_state(log)
        if state.leader == self.node_id or (version >= 11 and self.node_id in state.replicas):
            return None
        return ErrorCode.NOT_LEADER_OR_FOLLOWER

    def preferred_read_replica(self, log: PartitionLog, rack_id: str | None) -> int:
        """Kafka's RackAwareReplicaSelector: an in-sync replica in the client's rack, else -1 (the leader)."""
        if not rack_id or not self.runtime.rack_aware:
            return -1
        state = self.partition_state(log)
        if state.leader != self.node_id:
            return -1
        controller = self.runtime.controller
        for node in state.isr:
            info = controller.brokers[node]
            if info.alive and info.rack == rack_id:
                return -1 if node == self.node_id else node
        return -1

    # -- lifecycle (the runtime calls these) -----------------------------------------

    def attach(self, broker: Broker) -> None:
        """Called by the Broker as it opens: bring its topics in line with the cluster's."""
        self.broker = broker
        self.runtime.reconcile_topics(self)

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        from kafkacompat.server.listener import serve_broker

        self._stopping, self._done = trio.Event(), trio.Event()
        self.crashed = False
        try:
            with trio.CancelScope() as self._scope:
                async with trio.open_nursery() as nursery:
                    broker = await nursery.start(serve_broker, self.config, self._stopping.wait, self)
                    info = self.runtime.controller.brokers[self.node_id]
                    info.host, info.port = broker.advertised_host, broker.advertised_port
                    info.endpoints = {name: (endpoint.host, endpoint.port)
                                      for name, endpoint in broker.advertised_endpoints.items()}
                    self._keep_ports(info.endpoints, broker.http_port)
                    nursery.start_soon(follow, self, self.runtime)
                    task_status.started()
                    await self._stopping.wait()
                    nursery.cancel_scope.cancel()  # the follower task; serve_broker drains on its own
        finally:
            self.broker = None
            self._done.set()

    def _keep_ports(self, bound: dict[str, tuple[str, int]], http_port: int | None) -> None:
        """A restart binds the ports the first start picked (port 0: any free one)."""
        overrides = {name: value for name, value, default in self.config.items() if not default}
        overrides["listeners"] = with_ports(self.config.get("listeners"), lambda _, name, port: bound[name][1])
        if http_port is not None:
            overrides["http.listeners"] = f"http://{parse_http_listener(self.config.get('http.listeners'))[0]}:{http_port}"
        self.config = BrokerConfig(overrides, self.config.faults)

    async def halt(self, *, crash: bool) -> None:
        self.crashed = crash
        if crash and self._scope is not None:
            self._scope.cancel()
        self._stopping.set()
        await self._done.wait()


class RunningMemberTopics:
    """The topic registry every member keeps a copy of (see reconcile_topics), read from a running member."""

    def __init__(self, runtime: ClusterRuntime) -> None:
        self._runtime = runtime

    def _registry(self) -> Any:
        member = next((m for m in self._runtime.members.values() if m.running), None)
        return None if member is None else member.broker.log_manager

    def topic(self, name: str) -> Topic | None:
        registry = self._registry()
        return None if registry is None else registry.topic(name)

    def topic_by_id(self, topic_id: Any) -> Topic | None:
        registry = self._registry()
        return None if registry is None else registry.topic_by_id(topic_id)

    def topics(self) -> list[Topic]:
        registry = self._registry()
        return [] if registry is None else list(registry.topics())
