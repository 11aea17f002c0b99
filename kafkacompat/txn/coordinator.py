"""The transaction coordinator: InitProducerId, AddPartitions/AddOffsets, TxnOffsetCommit and EndTxn
as methods on plain state, beside the group coordinator on the Broker.

Every change is journaled (journal.py) before its caller answers.  The
coordinator never touches the log: a transaction that reaches PrepareCommit
or PrepareAbort is a `Completion` the broker's marker writer takes
(`completions()`), writes as markers into the partitions, and hands back
(`complete()`).  Time comes from the injected clock only; `tick()` aborts
transactions past their timeout and forgets expired transactional ids.
Error codes follow Kafka's TransactionCoordinator: a stale epoch is
PRODUCER_FENCED here (the partitions answer INVALID_PRODUCER_EPOCH for
produces), an unknown or mismatched producer id INVALID_PRODUCER_ID_MAPPING.
Not safe for concurrent use: the broker calls it from its one thread.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from kafkacompat.group.offsets import CommittedOffset, TopicPartition
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.txn.journal import TransactionLog
from kafkacompat.txn.state import (
    MAX_EPOCH,
    NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID,
    TransactionMetadata,
    TxnState,
    epoch_exhausted,
)

if TYPE_CHECKING:
    from kafkacompat.config import BrokerConfig

log = logging.getLogger("kafkacompat.txn")

TRANSACTIONS_DIR = "transactions"
DEFAULT_MAX_TIMEOUT_MS = 900_000
DEFAULT_ID_EXPIRATION_MS = 604_800_000


class ProducerIdAndEpoch(NamedTuple):
    error_code: ErrorCode
    producer_id: int = NO_PRODUCER_ID
    producer_epoch: int = NO_PRODUCER_EPOCH


@dataclass(frozen=True)
class Completion:
    """A decided transaction whose markers are owed: write them, then call `complete`."""

    transactional_id: str
    producer_id: int
    producer_epoch: int  # the epoch the markers carry
    commit: bool
    partitions: frozenset[tuple[str, int]]
    offsets: Mapping[str, Mapping[TopicPartition, CommittedOffset]]


class TransactionCoordinator:
    """All transactional ids of a broker, or of a cluster's brokers (each answers for those placed on it)."""

    def __init__(self, data_dir: Path, clock: Callable[[], int], allocate_producer_id: Callable[[], int], *,
                 max_timeout_ms: int = DEFAULT_MAX_TIMEOUT_MS,
                 id_expiration_ms: int = DEFAULT_ID_EXPIRATION_MS, sync_journal: bool = True) -> None:
        self._clock = clock
        self._allocate = allocate_producer_id
        self.max_timeout_ms = max_timeout_ms
        self.id_expiration_ms = id_expiration_ms
        self._log = TransactionLog(data_dir / TRANSACTIONS_DIR, sync=sync_journal)
        self._txns: dict[str, TransactionMetadata] = self._log.loaded
        self.coordinator_epoch = 0  # one coordinator for the broker's lifetime; markers carry it

    @classmethod
    def from_config(cls, data_dir: Path, clock: Callable[[], int], allocate_producer_id: Callable[[], int],
                    config: BrokerConfig) -> TransactionCoordinator:
        """The coordinator a broker (or a cluster's brokers) runs, with its journal in ``data_dir``."""
        return cls(data_dir, clock, allocate_producer_id,
                   max_timeout_ms=config.get_int("transaction.max.timeout.ms"),
                   id_expiration_ms=config.get_int("transactional.id.expiration.ms"),
                   sync_journal=config.get_bool("log.flush.on.ack"))

    def close(self) -> None:
        self._log.close()

    # -- reads -------------------------------------------------------------------

    def get(self, transactional_id: str) -> TransactionMetadata | None:
        return self._txns.get(transactional_id)

    def transactions(self) -> list[TransactionMetadata]:
        return sorted(self._txns.values(), key=lambda meta: meta.transactional_id)

    def has_pending_offsets(self, group_id: str, tp: TopicPartition) -> bool:
        """KIP-447: a transaction has staged an offset for this partition and not yet completed."""
        return any(tp in meta.pending_offsets.get(group_id, ()) for meta in self._txns.values())

    def completions(self) -> list[Completion]:
        """Every decided transaction whose markers are not yet written, oldest change first."""
        pending = [meta for meta in self._txns.values()
                   if meta.state in (TxnState.PREPARE_COMMIT, TxnState.PREPARE_ABORT)]
        return [Completion(meta.transactional_id, meta.producer_id, meta.producer_epoch,
                           meta.state is TxnState.PREPARE_COMMIT, frozenset(meta.partitions),
                           {group: dict(offsets) for group, offsets in meta.pending_offsets.items()})
                for meta in sorted(pending, key=lambda meta: meta.last_update_ms)]

    # -- requests ----------------------------------------------------------------

    def init_producer_id(self, transactional_id: str, timeout_ms: int,
                         expected_producer_id: int = NO_PRODUCER_ID,
                         expected_epoch: int = NO_PRODUCER_EPOCH) -> ProducerIdAndEpoch:
        """InitProducerId with a transactional id: a new epoch, or KIP-360's bump of a known one."""
        if not 0 < timeout_ms <= self.max_timeout_ms:
            return ProducerIdAndEpoch(ErrorCode.INVALID_TRANSACTION_TIMEOUT)
        now = self._clock()
        meta = self._txns.get(transactional_id)
        if meta is None:
            meta = TransactionMetadata(transactional_id, self._allocate(), NO_PRODUCER_EPOCH, timeout_ms,
                                       last_update_ms=now)
            self._txns[transactional_id] = meta
        elif not self._expected_producer(meta, expected_producer_id, expected_epoch):
            return ProducerIdAndEpoch(ErrorCode.PRODUCER_FENCED)
        if meta.state.is_completing:
            return ProducerIdAndEpoch(ErrorCode.CONCURRENT_TRANSACTIONS)
        if meta.state is TxnState.ONGOING:
            # Abort the open transaction with a fenced epoch first; the client retries and bumps again.
            self._fence_and_abort(meta, now)
            return ProducerIdAndEpoch(ErrorCode.CONCURRENT_TRANSACTIONS)
        if expected_producer_id == meta.producer_id and expected_epoch == meta.last_producer_epoch >= 0:
            return ProducerIdAndEpoch(ErrorCode.NONE, meta.producer_id, meta.producer_epoch)  # a retried init
        meta.bump_epoch(self._allocate() if epoch_exhausted(meta.producer_epoch) else None)
        meta.timeout_ms = timeout_ms
        meta.transition(TxnState.EMPTY, now)
        self._write(meta)
        return ProducerIdAndEpoch(ErrorCode.NONE, meta.producer_id, meta.producer_epoch)

    @staticmethod
    def _expected_producer(meta: TransactionMetadata, producer_id: int, epoch: int) -> bool:
        """KIP-360: a producer naming its id and epoch must be this id's current (or just-replaced) one."""
        if producer_id < 0 or meta.producer_epoch == NO_PRODUCER_EPOCH:
            return True
        if producer_id == meta.producer_id:
            return epoch in (meta.producer_epoch, meta.last_producer_epoch)
        return producer_id == meta.previous_producer_id and epoch_exhausted(epoch)

    def _check_producer(self, meta: TransactionMetadata | None, producer_id: int, epoch: int) -> ErrorCode | None:
        if meta is None or meta.producer_id != producer_id:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if meta.producer_epoch != epoch:
            return ErrorCode.PRODUCER_FENCED
        if meta.state.is_completing:
            return ErrorCode.CONCURRENT_TRANSACTIONS
        return None

    def add_partitions(self, transactional_id: str, producer_id: int, epoch: int,
                       partitions: Iterable[tuple[str, int]]) -> ErrorCode:
        """AddPartitionsToTxn: the partitions join the open transaction (which begins if none is)."""
        meta = self._txns.get(transactional_id)
        error = self._check_producer(meta, producer_id, epoch)
        if error is not None:
            return error
        wanted = set(partitions)
        if meta.state is TxnState.ONGOING and wanted <= meta.partitions:
            return ErrorCode.NONE  # nothing new: no write
        meta.partitions |= wanted
        meta.transition(TxnState.ONGOING, self._clock())
        self._write(meta)
        return ErrorCode.NONE

    def verify_partitions(self, transactional_id: str, producer_id: int, epoch: int,
                          partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], ErrorCode]:
        """AddPartitionsToTxn verify_only (KIP-890): is each partition in the open transaction?"""
        meta = self._txns.get(transactional_id)
        error = self._check_producer(meta, producer_id, epoch)
        return {tp: error if error is not None else
                ErrorCode.NONE if meta.state is TxnState.ONGOING and tp in meta.partitions
                else ErrorCode.INVALID_TXN_STATE for tp in partitions}

    def verify_produce(self, transactional_id: str, producer_id: int, epoch: int,
                       tp: tuple[str, int]) -> ErrorCode | None:
        """KIP-890 part 1: a transactional produce belongs to the open transaction holding the partition."""
        meta = self._txns.get(transactional_id)
        if meta is None or meta.producer_id != producer_id:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if epoch < meta.producer_epoch:
            return ErrorCode.INVALID_PRODUCER_EPOCH
        if epoch != meta.producer_epoch or meta.state is not TxnState.ONGOING or tp not in meta.partitions:
            return ErrorCode.INVALID_TXN_STATE
        return None

    def add_offsets(self, transactional_id: str, producer_id: int, epoch: int, group_id: str) -> ErrorCode:
        """AddOffsetsToTxn: the group's offset commits join the transaction (Kafka adds its offsets partition)."""
        meta = self._txns.get(transactional_id)
        error = self._check_producer(meta, producer_id, epoch)
        if error is not None:
            return error
        if meta.state is not TxnState.ONGOING or group_id not in meta.pending_offsets:
            meta.pending_offsets.setdefault(group_id, {})
            meta.transition(TxnState.ONGOING, self._clock())
            self._write(meta)
        return ErrorCode.NONE

    def stage_offsets(self, transactional_id: str, producer_id: int, epoch: int, group_id: str,
                      offsets: Mapping[TopicPartition, CommittedOffset]) -> ErrorCode:
        """TxnOffsetCommit: keep the offsets with the transaction until its marker."""
        meta = self._txns.get(transactional_id)
        if meta is None or meta.producer_id != producer_id:
            return ErrorCode.INVALID_PRODUCER_ID_MAPPING
        if epoch < meta.producer_epoch:
            return ErrorCode.INVALID_PRODUCER_EPOCH
        error = self._check_producer(meta, producer_id, epoch)
        if error is not None:
            return error
        if meta.state is not TxnState.ONGOING or group_id not in meta.pending_offsets:
            return ErrorCode.INVALID_TXN_STATE
        meta.pending_offsets[group_id].update(offsets)
        meta.last_update_ms = self._clock()
        self._write(meta)
        return ErrorCode.NONE

    def end_txn(self, transactional_id: str, producer_id: int, epoch: int, commit: bool, *,
                transactions_v2: bool = False) -> ProducerIdAndEpoch:
        """EndTxn: decide the transaction (durably) and leave its markers to the marker writer.

        `transactions_v2` (EndTxn v5, as Kafka's transactionVersionForEndTxn
        reads the request version): the rules of `_end_txn_v2`.
        """
        meta = self._txns.get(transactional_id)
        if meta is None:
            return ProducerIdAndEpoch(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        if transactions_v2:
            return self._end_txn_v2(meta, producer_id, epoch, commit)
        if meta.producer_id != producer_id:
            return ProducerIdAndEpoch(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        if meta.producer_epoch != epoch:
            return ProducerIdAndEpoch(ErrorCode.PRODUCER_FENCED)
        state = meta.state
        if state is TxnState.ONGOING:
            meta.transition(TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT, self._clock())
            self._write(meta)
            return ProducerIdAndEpoch(ErrorCode.NONE, meta.producer_id, meta.producer_epoch)
        if state.is_completing:
            return ProducerIdAndEpoch(ErrorCode.CONCURRENT_TRANSACTIONS if self._decided(meta) == commit
                                      else ErrorCode.INVALID_TXN_STATE)
        if state in (TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT) and self._decided(meta) == commit:
            return ProducerIdAndEpoch(ErrorCode.NONE, meta.producer_id, meta.producer_epoch)  # a retry
        return ProducerIdAndEpoch(ErrorCode.INVALID_TXN_STATE)

    def _end_txn_v2(self, meta: TransactionMetadata, producer_id: int, epoch: int,
                    commit: bool) -> ProducerIdAndEpoch:
        """Transactions v2 (Kafka's TransactionCoordinator.endTransaction at TV_2).

        Every EndTxn that decides bumps the epoch, so the request's epoch tells
        a retry (one below ours, or MAX_EPOCH - 1 of the id an exhausted one
        handed over to) from the next transaction's EndTxn (ours).  An abort
        with nothing open is allowed, and bumps the epoch too.  While markers
        are written the client waits, even at the new epoch (KAFKA-18464: an
        empty abort right after a commit must not fence its own producer).
        """
        retry_on_overflow = (meta.previous_producer_id == producer_id and epoch == MAX_EPOCH - 1
                             and meta.producer_epoch == 0)
        if meta.producer_id != producer_id and not retry_on_overflow:
            return ProducerIdAndEpoch(ErrorCode.INVALID_PRODUCER_ID_MAPPING)
        retry = retry_on_overflow or meta.producer_epoch == epoch + 1
        state = meta.state
        completed = state in (TxnState.COMPLETE_COMMIT, TxnState.COMPLETE_ABORT)
        if not (epoch == meta.producer_epoch or (retry and (completed or state.is_completing))):
            return ProducerIdAndEpoch(ErrorCode.PRODUCER_FENCED)
        if state.is_completing:
            return ProducerIdAndEpoch(ErrorCode.INVALID_TXN_STATE if retry and self._decided(meta) != commit
                                      else ErrorCode.CONCURRENT_TRANSACTIONS)
        if retry:  # completed: the same outcome again, or a change of mind
            return (ProducerIdAndEpoch(ErrorCode.NONE, meta.producer_id, meta.producer_epoch)
                    if self._decided(meta) == commit else ProducerIdAndEpoch(ErrorCode.INVALID_TXN_STATE))
        if state is not TxnState.ONGOING and commit:
            return ProducerIdAndEpoch(ErrorCode.INVALID_TXN_STATE)
        now = self._clock()
        if state is not TxnState.ONGOING:
            meta.start_ms = now  # an empty abort: a transaction of no partitions, begun and ended now
        meta.bump_for_end(self._allocate() if epoch_exhausted(meta.producer_epoch) else NO_PRODUCER_ID)
        meta.transition(TxnState.PREPARE_COMMIT if commit else TxnState.PREPARE_ABORT, now)
        self._write(meta)
        if meta.next_producer_id != NO_PRODUCER_ID:
            return ProducerIdAndEpoch(ErrorCode.NONE, meta.next_producer_id, 0)
        return ProducerIdAndEpoch(ErrorCode.NONE, meta.producer_id, meta.producer_epoch)

    @staticmethod
    def _decided(meta: TransactionMetadata) -> bool:
        """Whether the transaction being completed, or last completed, commits."""
        return meta.state in (TxnState.PREPARE_COMMIT, TxnState.COMPLETE_COMMIT)

    # -- completion and time -------------------------------------------------------

    def complete(self, completion: Completion) -> None:
        """The markers of `completion` are written (and durable): the transaction is over."""
        meta = self._txns.get(completion.transactional_id)
        if meta is None or meta.producer_id != completion.producer_id or not meta.state.is_completing:
            return
        meta.transition(TxnState.COMPLETE_COMMIT if completion.commit else TxnState.COMPLETE_ABORT, self._clock())
        meta.clear()
        self._log.write(meta, sync=False)  # the markers are durable: losing this record only repeats them

    def tick(self, now_ms: int) -> bool:
        """Abort transactions past their timeout (fencing their producer) and forget expired ids.

        True when an abort was started, so the marker writer has work.
        """
        aborted = False
        for meta in list(self._txns.values()):
            if meta.state is TxnState.ONGOING and now_ms - meta.start_ms > meta.timeout_ms:
                log.info("aborting transaction %r of producer %d: open for more than %d ms",
                         meta.transactional_id, meta.producer_id, meta.timeout_ms)
                self._fence_and_abort(meta, now_ms)
                aborted = True
            elif meta.state.is_idle and now_ms - meta.last_update_ms > self.id_expiration_ms:
                meta.transition(TxnState.DEAD, now_ms)
                del self._txns[meta.transactional_id]
                self._log.forget(meta.transactional_id)
        if self._log.needs_compaction(len(self._txns)):
            self._log.compact(list(self._txns.values()))
        return aborted

    def _fence_and_abort(self, meta: TransactionMetadata, now_ms: int) -> None:
        """PrepareEpochFence then PrepareAbort: the bumped epoch fences the producer, its markers carry it."""
        meta.transition(TxnState.PREPARE_EPOCH_FENCE, now_ms)
        meta.bump_epoch()
        meta.transition(TxnState.PREPARE_ABORT, now_ms)
        self._write(meta)

    def _write(self, meta: TransactionMetadata) -> None:
        self._log.write(meta)
