"""The transaction state machine: one transactional id's metadata and the moves it may make.

Theory of operation (Kafka's TransactionState, KIP-98).  A transactional id
holds one producer id and epoch at a time.  InitProducerId bumps the epoch
(fencing older producers) and leaves the id Empty.  Adding partitions or a
group's offsets starts a transaction (Ongoing).  EndTxn moves it to
PrepareCommit or PrepareAbort, which is durable before the client is
answered: from then on the outcome is decided and survives a crash.  The
coordinator then writes a marker into every partition of the transaction and
moves it to CompleteCommit or CompleteAbort, where the next transaction may
begin.  A transaction that outlives its timeout, or whose producer is
re-initialised while it is open, is fenced: PrepareEpochFence bumps the epoch
(so the old producer's requests fail) and the transaction is then aborted.
An id idle past transactional.id.expiration.ms goes Dead and is forgotten.

Transactions v2 (KIP-890 part 2, the client speaks EndTxn v5): EndTxn bumps
the epoch as it prepares, the markers carry the bumped epoch (so a partition
fences the old one) and the client goes on with it; an epoch that would
overflow instead names the next producer id, which takes over at epoch 0 when
the transaction completes.  The partition leader (Produce v12) and the group
(TxnOffsetCommit v5) add themselves to the transaction, so the client sends
no AddPartitionsToTxn or AddOffsetsToTxn.  A v2 client may abort with nothing
open: Empty or Complete* then goes to PrepareAbort with no partitions.

What each state answers (see coordinator.py for the error codes):

- Empty: InitProducerId bumps the epoch; AddPartitions/AddOffsets begin a
  transaction; EndTxn is INVALID_TXN_STATE (v2: an abort bumps the epoch).
- Ongoing: AddPartitions/AddOffsets/TxnOffsetCommit extend it; EndTxn
  prepares; InitProducerId fences it (PrepareEpochFence) and answers
  CONCURRENT_TRANSACTIONS so the client retries once the abort completes.
- PrepareCommit / PrepareAbort: markers are being written; every request but a
  retried EndTxn with the same outcome gets CONCURRENT_TRANSACTIONS.
- CompleteCommit / CompleteAbort: like Empty, and a retried EndTxn with the
  same outcome succeeds again (v2: a retry names the epoch before the bump).
- PrepareEpochFence: the epoch is bumped, the abort follows at once.
- Dead: the id is gone; nothing leaves this state.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from kafkacompat.group.offsets import CommittedOffset, TopicPartition

NO_PRODUCER_ID = -1
NO_PRODUCER_EPOCH = -1
MAX_EPOCH = 32767  # Short.MaxValue: an epoch this high (or one below) cannot be bumped again


class TxnState(enum.Enum):
    EMPTY = "Empty"
    ONGOING = "Ongoing"
    PREPARE_COMMIT = "PrepareCommit"
    PREPARE_ABORT = "PrepareAbort"
    COMPLETE_COMMIT = "CompleteCommit"
    COMPLETE_ABORT = "CompleteAbort"
    PREPARE_EPOCH_FENCE = "PrepareEpochFence"
    DEAD = "Dead"

    @property
    def is_completing(self) -> bool:
        return self in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT, TxnState.PREPARE_EPOCH_FENCE)

    @property
    def is_idle(self) -> bool:
        """No transaction open or completing: a new one may begin."""
        return self in (TxnState.EMPTY, TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)


_S = TxnState
# The states each state may move to (Kafka's validPreviousStates, read the other way).
TRANSITIONS: dict[TxnState, frozenset[TxnState]] = {
    _S.EMPTY: frozenset({_S.EMPTY, _S.ONGOING, _S.PREPARE_ABORT, _S.DEAD}),
    _S.ONGOING: frozenset({_S.ONGOING, _S.PREPARE_COMMIT, _S.PREPARE_ABORT, _S.PREPARE_EPOCH_FENCE}),
    _S.PREPARE_COMMIT: frozenset({_S.COMPLETE_COMMIT}),
    _S.PREPARE_ABORT: frozenset({_S.COMPLETE_ABORT}),
    _S.COMPLETE_COMMIT: frozenset({_S.EMPTY, _S.ONGOING, _S.PREPARE_ABORT, _S.DEAD}),
    _S.COMPLETE_ABORT: frozenset({_S.EMPTY, _S.ONGOING, _S.PREPARE_ABORT, _S.DEAD}),
    _S.PREPARE_EPOCH_FENCE: frozenset({_S.PREPARE_ABORT}),
    _S.DEAD: frozenset(),
}


class IllegalTransition(Exception):
    """A move the table does not allow: a bug in the coordinator, never a client error."""


def epoch_exhausted(epoch: int) -> bool:
    """Kafka keeps the last epoch for fencing: an id at MAX_EPOCH - 1 gets a new producer id instead."""
    return epoch >= MAX_EPOCH - 1


@dataclass
class TransactionMetadata:
    """One transactional id: its producer, its open transaction and where it stands."""

    transactional_id: str
    producer_id: int
    producer_epoch: int
    timeout_ms: int
    state: TxnState = TxnState.EMPTY
    last_producer_epoch: int = NO_PRODUCER_EPOCH  # the epoch before the last bump: a retried request's
    previous_producer_id: int = NO_PRODUCER_ID  # before a new id replaced an exhausted one
    # Transactions v2: the id that replaces this exhausted one when the transaction completes.
    next_producer_id: int = NO_PRODUCER_ID
    partitions: set[tuple[str, int]] = field(default_factory=set)
    # Group offsets staged by TxnOffsetCommit, committed with the transaction.
    pending_offsets: dict[str, dict[TopicPartition, CommittedOffset]] = field(default_factory=dict)
    start_ms: int = -1  # when the open transaction began
    last_update_ms: int = -1

    def transition(self, target: TxnState, now_ms: int) -> None:
        if target not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"{self.transactional_id}: {self.state.value} -> {target.value}")
        if target is TxnState.ONGOING and self.state is not TxnState.ONGOING:
            self.start_ms = now_ms
        self.state = target
        self.last_update_ms = now_ms

    def bump_epoch(self, new_producer_id: int | None = None) -> None:
        """Fence the current producer: the next epoch, or epoch 0 of `new_producer_id` when exhausted."""
        self.last_producer_epoch = self.producer_epoch
        if new_producer_id is not None:
            self.previous_producer_id, self.producer_id, self.producer_epoch = self.producer_id, new_producer_id, 0
            self.last_producer_epoch = NO_PRODUCER_EPOCH
        else:
            self.producer_epoch = min(self.producer_epoch + 1, MAX_EPOCH)

    def bump_for_end(self, next_producer_id: int) -> None:
        """Transactions v2's EndTxn: the next epoch now, and `next_producer_id` (or none) at completion."""
        self.last_producer_epoch = self.producer_epoch
        self.producer_epoch += 1
        self.next_producer_id = next_producer_id

    def clear(self) -> None:
        """What a completed transaction leaves behind: nothing, and the next producer id takes over."""
        self.partitions = set()
        self.pending_offsets = {}
        self.start_ms = -1
        if self.next_producer_id != NO_PRODUCER_ID:
            # The client saw MAX_EPOCH - 1 and then epoch 0 of the new id (last_producer_epoch keeps the former).
            self.previous_producer_id, self.producer_id = self.producer_id, self.next_producer_id
            self.producer_epoch, self.next_producer_id = 0, NO_PRODUCER_ID
