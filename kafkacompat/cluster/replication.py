"""Followers copy their leaders' logs; leaders track them to move the high watermark and the ISR.

Theory of operation
-------------------
Every broker of a multi-broker process runs one :func:`follow` task. On each
wake-up it goes over the partitions it replicates without leading them and,
for each, reads from the leader's log through the same read path a client
fetch uses (``PartitionLog.read`` up to the log end instead of the high
watermark) and appends the bytes as they came (``append_replica``: per batch,
the headers parsed, producer state replayed, epochs recorded). It then
reports its new log end offset to the leader's :class:`ReplicaTracker` entry,
as a follower's next Fetch does in Kafka, and takes the leader's high
watermark as its own.

Before its first read in a leader epoch, a follower finds where its log
diverges from the leader's (Kafka's OffsetForLeaderEpoch truncation, KIP-101):
it asks the leader where its own latest epoch ends and truncates what lies
beyond, repeating with older epochs until both agree. A killed leader's
unreplicated tail goes this way when it returns.

The leader side (:class:`ReplicaTracker`): per partition and leader epoch,
each follower's log end offset and when it last reached the leader's log
end. The high watermark is the minimum log end offset of the ISR (the leader
included), so acks=all waiters are woken by it; a follower whose log end
reaches the high watermark rejoins the ISR; one that has not reached the
leader's log end for ``replica.lag.time.max.ms`` leaves it (:meth:`check_lag`).

Followers read up to MAX_FETCH_BYTES per partition per round; a round that
copied anything is fsynced (sharing the broker's flush rounds) and followed
at once by the next, otherwise the task sleeps on the cluster's append
signal. No record is looked at.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from kafkacompat.cluster.controller import Controller, TopicPartition
from kafkacompat.log.leader_epochs import UNDEFINED_EPOCH
from kafkacompat.log.partition_log import PartitionLog
from kafkacompat.protocol.errors import KafkaError

if TYPE_CHECKING:
    from kafkacompat.cluster.member import Member
    from kafkacompat.cluster.runtime import ClusterRuntime

log = logging.getLogger("kafkacompat.replication")

MAX_FETCH_BYTES = 1 << 20
IDLE_WAIT_S = 0.25


@dataclass
class FollowerProgress:
    log_end_offset: int
    caught_up_ms: int


class ReplicaTracker:
    """What each leader knows of its followers; moves high watermarks and asks the controller to change ISRs."""

    def __init__(self, controller: Controller, clock: Callable[[], int], lag_time_max_ms: int) -> None:
        self._controller = controller
        self._clock = clock
        self.lag_time_max_ms = lag_time_max_ms
        # Per partition: the leader epoch it is known for, when the tracker first saw that leadership
        # (a follower not heard from since is late from then on), and each follower's progress.
        self._progress: dict[TopicPartition, tuple[int, int, dict[int, FollowerProgress]]] = {}

    def _leadership(self, tp: TopicPartition) -> tuple[int, int, dict[int, FollowerProgress]]:
        epoch = self._controller.partitions[tp].leader_epoch
        known = self._progress.get(tp)
        if known is None or known[0] != epoch:
            known = self._progress[tp] = (epoch, self._clock(), {})
        return known

    def _followers(self, tp: TopicPartition) -> dict[int, FollowerProgress]:
        return self._leadership(tp)[2]

    def forget_topic(self, name: str) -> None:
        """A deleted topic's progress goes: one created again under its name starts at epoch 0 again."""
        for tp in [tp for tp in self._progress if tp[0] == name]:
            del self._progress[tp]

    def fetched(self, tp: TopicPartition, node_id: int, log_end_offset: int, leader_log: PartitionLog) -> bool:
        """A follower is at `log_end_offset`; True when the ISR changed."""
        now = self._clock()
        followers = self._followers(tp)
        progress = followers.get(node_id)
        if progress is None:
            progress = followers[node_id] = FollowerProgress(log_end_offset, now)
        progress.log_end_offset = log_end_offset
        if log_end_offset >= leader_log.log_end_offset:
            progress.caught_up_ms = now
        changed = False
        state = self._controller.partitions[tp]
        if node_id not in state.isr and log_end_offset >= leader_log.high_watermark:
            changed = self._controller.expand_isr(tp, node_id)
            if changed:
                log.info("%s-%d: broker %d caught up, back in the ISR %s", *tp, node_id, state.isr)
        self.update_high_watermark(tp, leader_log)
        return changed

    def update_high_watermark(self, tp: TopicPartition, leader_log: PartitionLog) -> None:
        """The minimum log end offset of the ISR; never lowered by a follower not heard from yet."""
        state = self._controller.partitions[tp]
        if len(state.replicas) == 1:
            leader_log.set_replicated_end(None)
            return
        followers = self._followers(tp)
        ends = [leader_log.log_end_offset]
        for node in state.isr:
            if node != state.leader:
                progress = followers.get(node)
                ends.append(leader_log.high_watermark if progress is None else progress.log_end_offset)
        leader_log.set_replicated_end(min(ends))

    def check_lag(self, tp: TopicPartition, leader_log: PartitionLog) -> bool:
        """Drop ISR followers that have not caught up for replica.lag.time.max.ms; True when the ISR changed.

        A follower not heard from under this leadership counts from its start
        (a new partition's followers have not fetched when its first records come).
        """
        state = self._controller.partitions[tp]
        now = self._clock()
        _, since_ms, followers = self._leadership(tp)
        changed = False
        for node in [n for n in state.isr if n != state.leader]:
            progress = followers.get(node)
            caught_up = since_ms if progress is None else progress.caught_up_ms
            if leader_log.log_end_offset > (progress.log_end_offset if progress else -1) and \
                    now - caught_up > self.lag_time_max_ms:
                if self._controller.shrink_isr(tp, node):
                    changed = True
                    log.info("%s-%d: broker %d fell behind, out of the ISR %s", *tp, node, state.isr)
        if changed:
            self.update_high_watermark(tp, leader_log)
        return changed


def truncate_divergent_tail(follower: PartitionLog, leader: PartitionLog) -> None:
    """Cut the follower's log where it stops agreeing with the leader's epoch history (KIP-101, KIP-279).

    The leader says where the follower's latest epoch ends in its log; when it
    never had that epoch it names the newest one below it, and the follower
    keeps no more than it has of that one.
    """
    epoch = follower.latest_epoch
    if epoch == UNDEFINED_EPOCH:
        return
    leader_epoch, leader_end = leader.end_offset_for_epoch(epoch)
    if leader_epoch == UNDEFINED_EPOCH:
        target = follower.high_watermark
    elif leader_epoch == epoch:
        target = leader_end
    else:
        target = min(leader_end, follower.end_offset_for_epoch(leader_epoch)[1])
    if target < follower.log_end_offset:
        follower.truncate_to(target)


async def follow(member: Member, runtime: ClusterRuntime) -> None:
    """One broker's replica fetcher: runs while the broker does."""
    controller = runtime.controller
    reconciled: dict[TopicPartition, int] = {}
    while True:
        copied: dict[PartitionLog, int] = {}
        for tp in controller.followed_by(member.node_id):
            state = controller.partitions.get(tp)
            if state is None or state.leader == member.node_id:  # moved while this round ran
                continue
            leader = runtime.reachable(state.leader, member.node_id)
            if leader is None:
                continue
            own = member.broker.log_manager.partition(*tp)
            lead = leader.broker.log_manager.partition(*tp)
            if own is None or lead is None or own.closed or lead.closed:
                continue
            try:
                if reconciled.get(tp) != state.leader_epoch:
                    own.become_follower(state.leader_epoch)
                    truncate_divergent_tail(own, lead)
                    reconciled[tp] = state.leader_epoch
                data = lead.read(own.log_end_offset, MAX_FETCH_BYTES, to_log_end=True)
                if data:
                    copied[own] = own.append_replica(data)
            except KafkaError as exc:
                log.warning("replicating %s-%d from broker %d: %s", *tp, state.leader, exc)
                continue
            runtime.tracker.fetched(tp, member.node_id, own.log_end_offset, lead)
            own.set_replicated_end(lead.high_watermark)
        if copied:
            runtime.appended.notify()
            # Durable on the follower too, as on the leader (log.flush.on.ack), so that a follower
            # elected leader shows the acknowledged records at once; the leader's high watermark
            # moved already, so acks=all does not wait for this fsync.
            await member.broker.flusher.flush(copied)
        else:
            await runtime.appended.wait(IDLE_WAIT_S)
