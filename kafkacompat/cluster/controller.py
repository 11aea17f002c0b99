"""The controller: cluster metadata and the elections that change it.

Theory of operation
-------------------
One :class:`Controller` holds what a KRaft controller's metadata log holds
for the brokers of one ``kafkacompat serve --brokers N`` process: the
brokers (id, address, rack, alive or not), and for every partition its
replicas (the first is the preferred leader), its leader, its in-sync
replica set (ISR) and its leader epoch.  Every change goes through a method
here, is persisted (``cluster.json`` in the cluster's data directory,
replaced atomically) and is returned as the set of partitions whose
leadership moved, so the runtime can tell the replicas' logs.

Leadership rules, as Kafka's:

- A leader change always bumps the leader epoch; an ISR change alone does not
  (Kafka bumps the partition epoch, which clients never see).
- A broker that stops (cleanly or not) leaves every ISR it was in, unless it
  is the last member: Kafka keeps the last ISR member, so that only it may
  lead again without an unclean election.  Partitions it led elect the first
  live replica (in replica order) that is in the ISR.
- With none such, the partition is offline (leader -1) unless
  ``unclean.leader.election.enable`` lets any live replica lead; that
  replica becomes the whole ISR and records may be lost, as in Kafka.
- A broker that starts again takes an offline partition's leadership when it
  is in the ISR (or, unclean, any replica); otherwise it rejoins as a
  follower and enters the ISR only once caught up (replication.py asks).
- A reassignment (AlterPartitionReassignments) makes the replicas the target
  followed by the replicas being removed; the added ones replicate like any
  follower, and once every one of them is in the ISR the removed ones go
  (and a removed leader hands over to the first in-sync target replica).
- Preferred election moves leadership to the first replica when it is alive
  and in the ISR (ElectLeaders type 0, ``auto.leader.rebalance.enable``).
- Group coordinators are placed by the partition of ``__consumer_offsets``
  a group id hashes to (Java's ``String.hashCode``, as Kafka does), led like
  any other partition; transaction coordinators the same way by
  ``__transaction_state`` (``coordinator(key, TRANSACTION_TOPIC)``). These
  internal topics have no log here (see runtime.py).

Plain object: no sockets, no Trio, no clock.  Not safe for concurrent use:
the runtime calls it from the event loop only.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kafkacompat.log.durable import write_json_atomically

CLUSTER_FILE = "cluster.json"
OFFSETS_TOPIC = "__consumer_offsets"
TRANSACTION_TOPIC = "__transaction_state"
# Placement only: leaders and ISRs, no log (group and transaction state live elsewhere).
INTERNAL_TOPICS = (OFFSETS_TOPIC, TRANSACTION_TOPIC)
NO_LEADER = -1

TopicPartition = tuple[str, int]


@dataclass
class BrokerInfo:
    node_id: int
    host: str
    port: int
    rack: str | None = None
    alive: bool = False
    # Where each of its listeners is advertised, by listener name (host and port above: the first).
    endpoints: dict[str, tuple[str, int]] = field(default_factory=dict)


@dataclass
class PartitionState:
    replicas: list[int]
    leader: int
    leader_epoch: int
    isr: list[int]
    # Replicas being added or removed by a reassignment (AlterPartitionReassignments).
    adding: list[int] = field(default_factory=list)
    removing: list[int] = field(default_factory=list)

    @property
    def offline(self) -> bool:
        return self.leader == NO_LEADER


def java_string_hash(text: str) -> int:
    """Java's String.hashCode as a signed 32-bit int (Kafka's group placement)."""
    units = text.encode("utf-16-be")
    value = 0
    for high, low in zip(units[::2], units[1::2]):
        value = (31 * value + (high << 8 | low)) & 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def default_assignment(node_ids: list[int], partitions: int, replication_factor: int,
                       first_partition: int = 0) -> list[list[int]]:
    """Kafka's round-robin layout: partition p starts at broker p mod N, its followers the next ones."""
    count = len(node_ids)
    return [[node_ids[(p + i) % count] for i in range(replication_factor)]
            for p in range(first_partition, first_partition + partitions)]


class Controller:
    """Brokers and partition states of one cluster; see the module docstring for the rules."""

    def __init__(self, data_dir: Path | None, brokers: list[BrokerInfo], *,
                 offsets_partitions: int = 50, offsets_replication_factor: int = 3,
                 transaction_partitions: int | None = None, transaction_replication_factor: int | None = None,
                 unclean_leader_election: bool = False) -> None:
        """The internal topics' layouts (offsets.topic.*, transaction.state.log.*; the latter default to
        the former) apply when the cluster is first created, as in Kafka."""
        self._path = None if data_dir is None else Path(data_dir) / CLUSTER_FILE
        self.brokers = {broker.node_id: broker for broker in brokers}
        self.unclean_leader_election = unclean_leader_election
        self.partitions: dict[TopicPartition, PartitionState] = {}
        self._load()
        ids = self.node_ids
        layouts = {OFFSETS_TOPIC: (offsets_partitions, offsets_replication_factor),
                   TRANSACTION_TOPIC: (transaction_partitions or offsets_partitions,
                                       transaction_replication_factor or offsets_replication_factor)}
        for internal, (count, replication_factor) in layouts.items():
            if (internal, 0) not in self.partitions:
                for index, replicas in enumerate(default_assignment(ids, count, min(replication_factor, len(ids)))):
                    self.partitions[internal, index] = PartitionState(replicas, replicas[0], 0, list(replicas))
                self._save()

    # -- persistence -----------------------------------------------------------

    def _load(self) -> None:
        if self._path is None or not self._path.exists():
            return
        document = json.loads(self._path.read_text())
        for key, state in document["partitions"].items():
            topic, _, index = key.rpartition("/")
            self.partitions[topic, int(index)] = PartitionState(**state)

    def _save(self) -> None:
        if self._path is not None:
            write_json_atomically(self._path, {"partitions": {
                f"{topic}/{index}": asdict(state) for (topic, index), state in self.partitions.items()}})

    # -- lookups ---------------------------------------------------------------

    @property
    def node_ids(self) -> list[int]:
        return sorted(self.brokers)

    @property
    def live_node_ids(self) -> list[int]:
        return [node for node in self.node_ids if self.brokers[node].alive]

    @property
    def controller_id(self) -> int:
        """The lowest live broker acts as the controller (Kafka's combined mode has one active controller)."""
        live = self.live_node_ids
        return live[0] if live else NO_LEADER

    def partition(self, topic: str, index: int) -> PartitionState | None:
        return self.partitions.get((topic, index))

    def topic_partitions(self, topic: str) -> list[PartitionState]:
        found = []
        while (state := self.partitions.get((topic, len(found)))) is not None:
            found.append(state)
        return found

    def leader_of(self, topic: str, index: int) -> int:
        """The partition's leader; NO_LEADER for one that is offline or unknown."""
        state = self.partitions.get((topic, index))
        return NO_LEADER if state is None else state.leader

    def coordinator(self, key: str, internal_topic: str = OFFSETS_TOPIC) -> int:
        """The node coordinating a group (or, with TRANSACTION_TOPIC, a transactional id):
        the leader of the internal topic's partition the key hashes to."""
        count = len(self.topic_partitions(internal_topic))
        state = self.partitions[internal_topic, (java_string_hash(key) & 0x7FFFFFFF) % count]
        return state.leader

    def followed_by(self, node_id: int) -> list[TopicPartition]:
        """Partitions with a log (not the internal placement topic) that `node_id` replicates but does not lead."""
        return [tp for tp, state in self.partitions.items()
                if tp[0] not in INTERNAL_TOPICS and node_id in state.replicas and state.leader != node_id]

    # -- topics ----------------------------------------------------------------

    def add_partitions(self, topic: str, assignments: list[list[int]]) -> list[TopicPartition]:
        """New partitions, each led by its first live replica; returns them."""
        first = len(self.topic_partitions(topic))
        added = []
        for offset, replicas in enumerate(assignments):
            live = [node for node in replicas if self.brokers[node].alive]
            leader = live[0] if live else NO_LEADER
            self.partitions[topic, first + offset] = PartitionState(list(replicas), leader, 0, live or list(replicas[:1]))
            added.append((topic, first + offset))
        self._save()
        return added

    def remove_topic(self, topic: str) -> None:
        for tp in [tp for tp in self.partitions if tp[0] == topic]:
            del self.partitions[tp]
        self._save()

    # -- broker lifecycle -------------------------------------------------------

    def broker_started(self, node_id: int) -> set[TopicPartition]:
        """A broker is back: offline partitions it may lead elect it; returns partitions whose leader changed."""
        self.brokers[node_id].alive = True
        moved = set()
        for tp, state in self.partitions.items():
            if state.offline and node_id in state.replicas:
                if node_id in state.isr or self.unclean_leader_election:
                    self._set_leader(state, node_id, isr=state.isr if node_id in state.isr else [node_id])
                    moved.add(tp)
        self._save()
        return moved

    def broker_stopped(self, node_id: int) -> set[TopicPartition]:
        """A broker is gone: it leaves the ISRs and its leaderships move; returns partitions whose leader changed."""
        self.brokers[node_id].alive = False
        moved = set()
        for tp, state in self.partitions.items():
            if node_id in state.isr and len(state.isr) > 1:
                state.isr = [node for node in state.isr if node != node_id]
            if state.leader == node_id:
                self._elect(state, exclude=node_id)
                moved.add(tp)
        self._save()
        return moved

    def _elect(self, state: PartitionState, exclude: int) -> None:
        live = [node for node in state.replicas if node != exclude and self.brokers[node].alive]
        in_sync = [node for node in live if node in state.isr]
        if in_sync:
            self._set_leader(state, in_sync[0], isr=state.isr)
        elif live and self.unclean_leader_election:
            self._set_leader(state, live[0], isr=[live[0]])
        else:
            self._set_leader(state, NO_LEADER, isr=state.isr)

    @staticmethod
    def _set_leader(state: PartitionState, leader: int, isr: list[int]) -> None:
        state.leader = leader
        state.leader_epoch += 1
        state.isr = list(isr)

    # -- ISR ----------------------------------------------------------------------

    def shrink_isr(self, tp: TopicPartition, node_id: int) -> bool:
        """A follower fell behind (replica.lag.time.max.ms): out of the ISR, never below the leader alone."""
        state = self.partitions.get(tp)
        if state is None or node_id not in state.isr or node_id == state.leader:
            return False
        state.isr = [node for node in state.isr if node != node_id]
        self._save()
        return True

    def expand_isr(self, tp: TopicPartition, node_id: int) -> bool:
        """A follower caught up with the high watermark: back in the ISR."""
        state = self.partitions.get(tp)
        if state is None or node_id in state.isr or node_id not in state.replicas:
            return False
        state.isr = [node for node in state.replicas if node in state.isr or node == node_id]
        self._save()
        return True

    # -- elections -------------------------------------------------------------

    def elect_preferred(self, tp: TopicPartition) -> str | None:
        """Make the first replica lead; None when done, else why not (Kafka's error names)."""
        state = self.partitions.get(tp)
        if state is None:
            return "UNKNOWN_TOPIC_OR_PARTITION"
        preferred = state.replicas[0]
        if state.leader == preferred:
            return "ELECTION_NOT_NEEDED"
        if not self.brokers[preferred].alive or preferred not in state.isr:
            return "PREFERRED_LEADER_NOT_AVAILABLE"
        self._set_leader(state, preferred, isr=state.isr)
        self._save()
        return None

    def elect_unclean(self, tp: TopicPartition) -> str | None:
        """ElectLeaders type 1: an offline partition takes any live replica."""
        state = self.partitions.get(tp)
        if state is None:
            return "UNKNOWN_TOPIC_OR_PARTITION"
        if not state.offline:
            return "ELECTION_NOT_NEEDED"
        live = [node for node in state.replicas if self.brokers[node].alive]
        if not live:
            return "ELIGIBLE_LEADERS_NOT_AVAILABLE"
        self._set_leader(state, live[0], isr=[live[0]])
        self._save()
        return None

    # -- reassignments ------------------------------------------------------------

    def reassign(self, tp: TopicPartition, target: list[int] | None) -> str | None:
        """Start moving a partition to `target` (None cancels a pending move); None when done, else why not."""
        state = self.partitions.get(tp)
        if state is None:
            return "UNKNOWN_TOPIC_OR_PARTITION"
        original = [node for node in state.replicas if node not in state.adding]
        if target is None:
            if not state.adding and not state.removing:
                return "NO_REASSIGNMENT_IN_PROGRESS"
            target = original
        elif not target or len(set(target)) != len(target) or any(node not in self.brokers for node in target):
            return "INVALID_REPLICA_ASSIGNMENT"
        state.adding = [node for node in target if node not in original]
        state.removing = [node for node in original if node not in target]
        state.replicas = [*target, *state.removing]
        state.isr = [node for node in state.replicas if node in state.isr]
        self.complete_reassignment(tp)
        self._save()
        return None

    def complete_reassignment(self, tp: TopicPartition) -> bool:
        """Finish a move whose added replicas are all in sync; True when the leader changed or replicas went."""
        state = self.partitions[tp]
        if any(node not in state.isr for node in state.adding):
            return False
        if not state.removing and not state.adding:
            return False
        target = [node for node in state.replicas if node not in state.removing]
        state.replicas, state.adding, state.removing = target, [], []
        state.isr = [node for node in target if node in state.isr]
        if state.leader not in target:
            self._elect(state, exclude=state.leader)
        self._save()
        return True

    def reassignments(self) -> list[TopicPartition]:
        return [tp for tp, state in self.partitions.items() if state.adding or state.removing]

    def imbalanced(self) -> list[TopicPartition]:
        """Partitions led by another than their preferred replica while it could lead."""
        return [tp for tp, state in self.partitions.items()
                if state.leader != state.replicas[0] and self.brokers[state.replicas[0]].alive
                and state.replicas[0] in state.isr]
