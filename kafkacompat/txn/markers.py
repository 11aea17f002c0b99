"""Writing a decided transaction's markers through the log.

The broker's marker writer (Broker.run_transaction_markers) takes each
Completion from the coordinator, appends a commit or abort control batch to
every partition of the transaction at that partition's leader here (in a
cluster the leader may be another broker of the process: Kafka's
WriteTxnMarkers), waits for them to be durable and held by the ISR, commits
the transaction's staged group offsets (on commit), and only then tells the
coordinator the transaction is complete.  A partition without a leader
fails the round before anything is written, and the writer retries it until
one is elected, as Kafka's coordinator retries its marker requests.  Writing
a marker again after a crash or a failed round is harmless: a partition with
no open transaction of the producer just gains a marker that closes nothing,
as in Kafka after a coordinator failover.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kafkacompat.protocol.errors import KafkaError
from kafkacompat.txn.coordinator import Completion

if TYPE_CHECKING:
    from kafkacompat.log.partition_log import PartitionLog

log = logging.getLogger("kafkacompat.txn")


def marker_targets(cluster: Any, completion: Completion) -> dict[Any, list[PartitionLog]]:
    """Each partition's log at its leader, by leading broker; raises KafkaError while one has no leader.

    ``cluster`` is the coordinator's broker.cluster (kafkacompat.cluster.view); a
    deleted partition has nothing left to mark and is left out.
    """
    targets: dict[Any, list[PartitionLog]] = {}
    for topic, index in sorted(completion.partitions):
        found = cluster.partition_leader(topic, index)
        if found is not None:
            leader, partition = found
            targets.setdefault(leader, []).append(partition)
    return targets


def write_markers(partitions: Iterable[PartitionLog], completion: Completion, coordinator_epoch: int,
                  now_ms: int) -> dict[PartitionLog, int]:
    """Append the markers; each partition's end offset to flush and replicate. Raises KafkaError when one fails."""
    owed: dict[PartitionLog, int] = {}
    for partition in partitions:
        try:
            offset = partition.append_marker(completion.producer_id, completion.producer_epoch, completion.commit,
                                             coordinator_epoch, now_ms=now_ms)
        except KafkaError as exc:
            log.error("cannot write the %s marker of %r to %s-%d: %s", "commit" if completion.commit else "abort",
                      completion.transactional_id, partition.topic, partition.index, exc)
            raise
        owed[partition] = offset + 1
    return owed
