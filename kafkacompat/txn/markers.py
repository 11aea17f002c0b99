"""Writing a decided transaction's markers through the log.

The broker's marker writer (Broker.run_transaction_markers) takes each
Completion from the coordinator, appends a commit or abort control batch to
every partition of the transaction here, waits for them to be durable, commits
the transaction's staged group offsets (on commit), and only then tells the
coordinator the transaction is complete.  Writing a marker again after a crash
is harmless: a partition with no open transaction of the producer just gains
a marker that closes nothing, as in Kafka after a coordinator failover.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from kafkacompat.protocol.errors import KafkaError
from kafkacompat.txn.coordinator import Completion

if TYPE_CHECKING:
    from kafkacompat.log.log_manager import LogManager
    from kafkacompat.log.partition_log import PartitionLog

log = logging.getLogger("kafkacompat.txn")


def write_markers(log_manager: LogManager, completion: Completion, coordinator_epoch: int,
                  now_ms: int) -> dict[PartitionLog, int] | None:
    """Append the markers; each partition's end offset to flush, or None if one could not be written."""
    owed: dict[PartitionLog, int] = {}
    for topic, index in sorted(completion.partitions):
        partition = log_manager.partition(topic, index)
        if partition is None:  # deleted with its topic: nothing left to mark
            continue
        try:
            offset = partition.append_marker(completion.producer_id, completion.producer_epoch, completion.commit,
                                             coordinator_epoch, now_ms=now_ms)
        except KafkaError as exc:
            log.error("cannot write the %s marker of %r to %s-%d: %s", "commit" if completion.commit else "abort",
                      completion.transactional_id, topic, index, exc)
            return None
        owed[partition] = offset + 1
    return owed
