"""N brokers in one process: ``kafkacompat serve --brokers N`` (``cluster.brokers``).

Each :class:`~kafkacompat.cluster.member.Member` is a whole broker (kafkacompat.broker.Broker) with its own
node id, listener, data directory ``DATA/broker-N`` and optional rack; they
share one :class:`~kafkacompat.cluster.controller.Controller`, one
replica tracker and one append signal (replication.py), the group
coordinator, and the ACLs, SCRAM credentials and quota values
(security/stores.py), kept in ``DATA/`` as Kafka keeps them in its metadata. A member is also the ``broker.cluster`` its handlers ask (the
interface of view.SingleBroker), so handlers read the same in both modes.

Group state is shared, with placement enforced: one GroupCoordinator (its
journal in ``DATA/``) serves every member, but only the broker leading a
group's ``__consumer_offsets`` partition answers for it; the others say
NOT_COORDINATOR, and when that leader stops, the group moves with the
partition's leadership to a live replica, its state intact. This stands for
Kafka's replicated offsets topic, whose log this harness does not keep per
broker. Transactions are shared the same way: one TransactionCoordinator
(journal in ``DATA/transactions/``), each transactional id answered by the
leader of its ``__transaction_state`` partition, whose marker writer writes
the markers into each partition at its current leader. When that leadership
moves, every member's marker writer is woken, so the new coordinator
completes the transactions the old one had decided (PrepareCommit,
PrepareAbort). Share groups are shared the same way: one ShareCoordinator
(``DATA/__share_group_state/``), its groups placed like consumer groups,
reading each share partition's records at the partition's current leader;
when a partition's leadership moves, its acquired records go back to
available with their delivery counts and what was acknowledged stays, as
Kafka's new leader reloads the persisted share-partition state.

Topic changes (create, delete, new partitions, configs) are applied to every
running member at once with the same topic id; a member that was stopped
copies the registry of a running one when it starts again.

Control, all on the event loop: ``start``, ``stop`` (clean), ``kill`` (no
clean shutdown: what was not fsynced is lost, as on a power cut), ``pause``
(connections accepted, nothing answered, no replication), ``isolate``
(clients still served, no replication to or from the others, and no
markers sent to them). A paused or isolated broker that cannot reach the
controller for ``broker.session.timeout.ms`` is fenced, as KRaft fences a broker whose
heartbeats stop: the controller takes it out of the ISRs and moves its
leaderships (and coordinators), so its produces get NOT_LEADER_OR_FOLLOWER;
``resume`` or ``heal`` unfences it, and it rejoins as a follower, truncating what it took
alone.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import trio

from kafkacompat.broker import AppendSignal, read_or_create_cluster_id, wall_clock_ms
from kafkacompat.cluster.controller import (
    INTERNAL_TOPICS,
    TRANSACTION_TOPIC,
    BrokerInfo,
    Controller,
    TopicPartition,
)
from kafkacompat.cluster.controller import default_assignment
from kafkacompat.cluster.member import Member, RunningMemberTopics, member_configs
from kafkacompat.cluster.replication import ReplicaTracker
from kafkacompat.config import BrokerConfig
from kafkacompat.group.consumer.membership import LogTopics
from kafkacompat.group.coordinator import GroupCoordinator
from kafkacompat.group.share.coordinator import ShareCoordinator, ShareSettings
from kafkacompat.log.durable import read_json, write_json_atomically
from kafkacompat.log.log_manager import Topic
from kafkacompat.log.partition_log import PartitionLog
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.security.stores import SecurityStores
from kafkacompat.txn.coordinator import TransactionCoordinator

log = logging.getLogger("kafkacompat.cluster")

PRODUCER_IDS_FILE = "producer-ids.json"
PRODUCER_ID_BLOCK = 1000
LAG_CHECK_INTERVAL_S = 0.1
# What pause adds to a broker's fault rules: every request waits forever.
PAUSE_RULE = {"action": "no_response"}


class ClusterRuntime:
    """The members, their controller and what they share; runs them all in one nursery."""

    def __init__(self, config: BrokerConfig, clock: Any = wall_clock_ms) -> None:
        self.config = config
        self.clock = clock
        self.data_dir = config.data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.cluster_id = read_or_create_cluster_id(self.data_dir, 0)
        self.members = {m.get_int("node.id"): Member(self, m) for m in member_configs(config)}
        infos = [BrokerInfo(node, *m.config.listener, m.config.get("broker.rack") or None)
                 for node, m in self.members.items()]
        self.controller = Controller(
            self.data_dir, infos, offsets_partitions=config.get_int("offsets.topic.num.partitions"),
            offsets_replication_factor=config.get_int("offsets.topic.replication.factor"),
            transaction_partitions=config.get_int("transaction.state.log.num.partitions"),
            transaction_replication_factor=config.get_int("transaction.state.log.replication.factor"),
            unclean_leader_election=config.get_bool("unclean.leader.election.enable"))
        self.tracker = ReplicaTracker(self.controller, clock, config.get_int("replica.lag.time.max.ms"))
        self.appended = AppendSignal()
        self.rack_aware = config.get("replica.selector.class").endswith("RackAwareReplicaSelector")
        self.groups = GroupCoordinator.from_config(self.data_dir, clock, LogTopics(RunningMemberTopics(self)), config)
        self.security = SecurityStores.open(config, self.data_dir)
        stored = read_json(self.data_dir / PRODUCER_IDS_FILE)
        self._next_producer_id = self._producer_id_block_end = stored.get("block_end", 0) if stored else 0
        self._nursery: trio.Nursery | None = None
        self.transactions = TransactionCoordinator.from_config(self.data_dir, clock, self.allocate_producer_id,
                                                                config)
        self.completing: set[str] = set()  # the transactional ids whose markers a member is writing
        self.share_groups = ShareCoordinator(self.data_dir, clock, RunningMemberTopics(self),
                                             ShareSettings.from_config(config), leader_log=self.leader_log,
                                             leader_node=self.controller.leader_of)

    # -- running ------------------------------------------------------------------

    async def run(self, until: Any, task_status: trio.TaskStatus[ClusterRuntime] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for node in self.members:
                    await self.start(node)
                nursery.start_soon(self._watch_replicas)
                log.info("kafkacompat cluster of %d brokers: %s", len(self.members), self.bootstrap_servers)
                task_status.started(self)
                await until()
                for node, member in self.members.items():
                    if member.running:
                        await self.stop(node)
                nursery.cancel_scope.cancel()
        finally:
            self.transactions.close()
            self.groups.close()
            self.share_groups.close()
            self.security.close()

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{info.host}:{info.port}" for info in self.controller.brokers.values())

    def member(self, node_id: int) -> Member:
        member = self.members.get(node_id)
        if member is None:
            raise KeyError(f"no broker {node_id} in this cluster (brokers {sorted(self.members)})")
        return member

    async def start(self, node_id: int) -> None:
        member = self.member(node_id)
        if member.running:
            return
        assert self._nursery is not None
        await self._nursery.start(member.serve)
        self.controller.broker_started(node_id)
        self.apply_leadership(set(self.controller.partitions))
        log.info("broker %d started", node_id)

    async def stop(self, node_id: int, *, crash: bool = False) -> None:
        member = self.member(node_id)
        if not member.running:
            return
        self._unpause(member)
        moved = self.controller.broker_stopped(node_id)
        await member.halt(crash=crash)
        self.apply_leadership(moved)
        self._refresh_high_watermarks()
        log.info("broker %d %s", node_id, "killed" if crash else "stopped")

    async def kill(self, node_id: int) -> None:
        await self.stop(node_id, crash=True)

    def pause(self, node_id: int) -> None:
        member = self.member(node_id)
        if member.running and not member.paused:
            self._note_cut_off(member)
            member.paused = True
            member._pause_rule = member.broker.faults.add(dict(PAUSE_RULE)).id

    def resume(self, node_id: int) -> None:
        member = self.member(node_id)
        self._unpause(member)
        self._maybe_unfence(member)

    def _unpause(self, member: Member) -> None:
        if member.paused and member.broker is not None and member._pause_rule is not None:
            member.broker.faults.remove(member._pause_rule)
        member.paused, member._pause_rule = False, None

    def isolate(self, node_id: int, isolated: bool = True) -> None:
        """Cut a broker off from the others (or heal it: a broker fenced meanwhile is unfenced)."""
        member = self.member(node_id)
        if isolated:
            self._note_cut_off(member)
        member.isolated = isolated
        self._maybe_unfence(member)

    def _note_cut_off(self, member: Member) -> None:
        """A paused or isolated broker's heartbeats stop reaching the controller from now on."""
        if not member.cut_off:
            member.unheard_since_ms = self.clock()

    def _maybe_unfence(self, member: Member) -> None:
        """A broker heard again after being fenced registers again, as a follower of what it held."""
        node_id = member.node_id
        if not member.cut_off and member.running and not self.controller.brokers[node_id].alive:
            self.controller.broker_started(node_id)
            self.apply_leadership(set(self.controller.partitions))
            log.info("broker %d unfenced", node_id)

    def _fence_unheard(self) -> None:
        """KRaft fences a broker whose heartbeats have not reached the controller for broker.session.timeout.ms:
        an isolated one, or a paused one (a stalled JVM)."""
        timeout_ms = self.config.get_int("broker.session.timeout.ms")
        now = self.clock()
        for node, member in self.members.items():
            if member.cut_off and member.running and self.controller.brokers[node].alive \
                    and now - member.unheard_since_ms >= timeout_ms:
                self.apply_leadership(self.controller.broker_stopped(node))
                self._refresh_high_watermarks()
                log.info("broker %d fenced: unheard for %d ms", node, now - member.unheard_since_ms)

    def control(self, node_id: int, action: str) -> None:
        """Run one control action (stop, kill, start, pause, resume, isolate, heal) in the cluster's nursery."""
        assert self._nursery is not None
        actions = {"stop": self.stop, "kill": self.kill, "start": self.start}
        if action in actions:
            self._nursery.start_soon(actions[action], node_id)
        elif action in ("pause", "resume"):
            (self.pause if action == "pause" else self.resume)(node_id)
        else:
            self.isolate(node_id, action == "isolate")

    def reachable(self, leader: int, from_node: int) -> Member | None:
        """The leader's member when `from_node` may replicate from it now."""
        member = self.members.get(leader)
        asking = self.members[from_node]
        if member is None or not member.running or member.cut_off:
            return None
        return None if asking.cut_off else member

    def leader(self, topic: str, partition: int) -> int:
        state = self.controller.partition(topic, partition)
        if state is None:
            raise KeyError(f"no partition {topic}-{partition}")
        return state.leader

    def leader_log(self, topic: str, index: int) -> PartitionLog:
        """The partition's log at its running leader (share groups read records there)."""
        state = self.controller.partition(topic, index)
        member = self.members.get(state.leader) if state is not None else None
        log = member.broker.log_manager.partition(topic, index) if member is not None and member.running else None
        if log is None or log.closed:
            raise KafkaError(ErrorCode.LEADER_NOT_AVAILABLE, f"{topic}-{index} has no running leader")
        return log

    # -- leadership -----------------------------------------------------------------

    def apply_leadership(self, partitions: set[TopicPartition]) -> None:
        """Tell every running replica's log its role and the partition's epoch; wake the marker writers
        when transaction coordinators moved (the new one completes what the old one decided)."""
        if any(topic == TRANSACTION_TOPIC for topic, _ in partitions):
            for member in self.members.values():
                if member.broker is not None:
                    member.broker.markers_due()
        for tp in partitions:
            if tp[0] in INTERNAL_TOPICS:
                continue
            state = self.controller.partitions.get(tp)
            if state is None:
                continue
            for node in state.replicas:
                member = self.members[node]
                partition = member.broker.log_manager.partition(*tp) if member.running else None
                if partition is None or partition.closed:
                    continue
                if node == state.leader:
                    if partition.leader_epoch != state.leader_epoch:
                        partition.become_leader(state.leader_epoch)
                        self.share_groups.leadership_moved(*tp)
                    self.tracker.update_high_watermark(tp, partition)
                else:
                    partition.become_follower(state.leader_epoch)
        self.appended.notify()

    def _refresh_high_watermarks(self) -> None:
        for tp, state in self.controller.partitions.items():
            member = self.members.get(state.leader)
            if tp[0] not in INTERNAL_TOPICS and member is not None and member.running:
                partition = member.broker.log_manager.partition(*tp)
                if partition is not None and not partition.closed:
                    self.tracker.update_high_watermark(tp, partition)
        self.appended.notify()

    async def _watch_replicas(self) -> None:
        """ISR shrinks after replica.lag.time.max.ms; reassignments whose new replicas caught up finish;
        preferred leaders return (auto.leader.rebalance.enable)."""
        rebalance = self.config.get_bool("auto.leader.rebalance.enable")
        interval_ms = self.config.get_int("leader.imbalance.check.interval.seconds") * 1000
        next_rebalance = self.clock() + interval_ms
        while True:
            await trio.sleep(LAG_CHECK_INTERVAL_S)
            self._fence_unheard()
            changed = False
            for tp, state in list(self.controller.partitions.items()):
                member = self.members.get(state.leader)
                if tp[0] in INTERNAL_TOPICS or member is None or not member.running:
                    continue
                partition = member.broker.log_manager.partition(*tp)
                if partition is not None and not partition.closed:
                    changed |= self.tracker.check_lag(tp, partition)
            finished = [tp for tp in self.controller.reassignments() if self.controller.complete_reassignment(tp)]
            if finished:
                self.apply_leadership(set(finished))
            if changed:
                self.appended.notify()
            if rebalance and self.clock() >= next_rebalance:
                next_rebalance = self.clock() + interval_ms
                self.elect_preferred(self.controller.imbalanced())

    def elect_preferred(self, partitions: list[TopicPartition]) -> dict[TopicPartition, str | None]:
        results = {tp: self.controller.elect_preferred(tp) for tp in partitions}
        self.apply_leadership({tp for tp, error in results.items() if error is None})
        return results

    def elect_unclean(self, partitions: list[TopicPartition]) -> dict[TopicPartition, str | None]:
        results = {tp: self.controller.elect_unclean(tp) for tp in partitions}
        self.apply_leadership({tp for tp, error in results.items() if error is None})
        return results

    # -- topics -----------------------------------------------------------------------

    def on_every_member(self, change: Any, first: Member) -> Any:
        """Apply a topic change to `first` (whose errors the caller answers with), then to the other running ones."""
        result = change(first.broker.log_manager)
        for member in self.members.values():
            if member is not first and member.running:
                change(member.broker.log_manager)
        return result

    def create_topic(self, origin: Member, name: str, partitions: int, configs: Mapping[str, str | None],
                     assignments: list[list[int]] | None, replication_factor: int) -> Topic:
        if replication_factor > len(self.members):
            raise KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR,
                             f"Unable to replicate the partition {replication_factor} time(s): "
                             f"the cluster has {len(self.members)} brokers.")
        topic = origin.broker.log_manager.create_topic(name, partitions, configs)
        for member in self.members.values():
            if member is not origin and member.running:
                member.broker.log_manager.create_topic(name, partitions, configs, topic_id=topic.topic_id)
        layout = assignments or default_assignment(self.controller.node_ids, partitions, replication_factor)
        self.apply_leadership(set(self.controller.add_partitions(name, layout)))
        return topic

    def create_partitions(self, origin: Member, name: str, total: int, assignments: list[list[int]] | None) -> None:
        current = len(self.controller.topic_partitions(name))
        self.on_every_member(lambda manager: manager.create_partitions(name, total), first=origin)
        rf = len(self.controller.partitions[name, 0].replicas) if current else 1
        layout = assignments or default_assignment(self.controller.node_ids, total - current, rf, current)
        self.apply_leadership(set(self.controller.add_partitions(name, layout)))

    def reconcile_topics(self, member: Member) -> None:
        """A starting member copies the topic registry of a running one (same ids, partitions and configs)."""
        peer = next((m for m in self.members.values() if m is not member and m.running), None)
        if peer is None:
            return
        mine, theirs = member.broker.log_manager, peer.broker.log_manager
        wanted = {topic.name: topic for topic in theirs.topics()}
        for topic in mine.topics():
            source = wanted.get(topic.name)
            if source is None or source.topic_id != topic.topic_id:
                mine.delete_topic(topic.name)
        for name, source in wanted.items():
            topic = mine.topic(name)
            if topic is None:
                mine.create_topic(name, len(source.partitions), source.configs, topic_id=source.topic_id)
            else:
                if len(topic.partitions) < len(source.partitions):
                    mine.create_partitions(name, len(source.partitions))
                if topic.configs != source.configs:
                    mine.alter_topic_configs(name, source.configs, set(topic.configs) - set(source.configs))

    def allocate_producer_id(self) -> int:
        """Producer ids unique across the cluster, reserved durably a block at a time in ``DATA/``."""
        if self._next_producer_id >= self._producer_id_block_end:
            self._producer_id_block_end = self._next_producer_id + PRODUCER_ID_BLOCK
            write_json_atomically(self.data_dir / PRODUCER_IDS_FILE, {"block_end": self._producer_id_block_end})
        self._next_producer_id += 1
        return self._next_producer_id - 1
