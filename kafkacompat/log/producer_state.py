"""Idempotent-producer state of one partition: Kafka's sequence and epoch rules.

Theory of operation.  Every batch written by an idempotent producer carries
(producer_id, producer_epoch, base_sequence); its records take the sequences
base_sequence .. base_sequence + last_offset_delta (wrapping from INT32_MAX to
0).  For each producer id the partition remembers the current epoch and the
last five batches appended in it.  An incoming batch, in the order below:

1. same epoch, same (first, last) sequence as a remembered batch -> duplicate:
   nothing is written and the original offsets are returned;
2. older epoch -> INVALID_PRODUCER_EPOCH;
3. newer epoch, or a producer id never seen -> its first sequence must be 0;
4. same epoch -> its first sequence must follow the last one appended;
   otherwise OUT_OF_ORDER_SEQUENCE_NUMBER.

Batches with producer_id -1 are not idempotent and skip all of this.

Transactions.  A producer's first transactional batch in a partition opens
its transaction there: `ongoing` keeps where that batch lies until the
coordinator's marker (`end_transaction`) closes it.  A marker with a newer
epoch (an abort that fenced the producer, or transactions v2's per-transaction
bump) moves the producer to that epoch with no batches remembered, so its next
batch starts at sequence 0.  A producer with an open transaction never expires.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from kafkacompat.log.durable import read_json, write_json_atomically
from kafkacompat.log.flush import LogPosition
from kafkacompat.log.segment import segment_name
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.records import INT32_MAX, BatchHeader

BATCHES_TO_RETAIN = 5
SNAPSHOT_SUFFIX = ".snapshot"
SNAPSHOTS_TO_KEEP = 2
_SNAPSHOT_NAME = re.compile(r"([0-9]{20})\.snapshot")
_SNAPSHOT_VERSION = 1


class BatchMetadata(NamedTuple):
    first_sequence: int
    last_sequence: int
    base_offset: int
    last_offset: int
    timestamp: int  # the batch's max timestamp as stored (the append time for LogAppendTime)


@dataclass(frozen=True)
class ProducerEntry:
    producer_id: int
    producer_epoch: int
    batches: tuple[BatchMetadata, ...]  # oldest first, at most BATCHES_TO_RETAIN
    last_append_ms: int  # broker clock; drives expiry of idle producers

    @property
    def last_sequence(self) -> int:
        return self.batches[-1].last_sequence if self.batches else -1

    def find_duplicate(self, epoch: int, first_sequence: int, last_sequence: int) -> BatchMetadata | None:
        if epoch != self.producer_epoch:
            return None
        for batch in self.batches:
            if batch.first_sequence == first_sequence and batch.last_sequence == last_sequence:
                return batch
        return None

    def with_batch(self, epoch: int, batch: BatchMetadata, now_ms: int) -> ProducerEntry:
        kept = self.batches if epoch == self.producer_epoch else ()
        return ProducerEntry(self.producer_id, epoch, (*kept, batch)[-BATCHES_TO_RETAIN:], now_ms)


class ProducerAppend(NamedTuple):
    """The outcome of checking one append: either a duplicate or the entries to commit after writing."""

    duplicate: BatchMetadata | None
    updates: dict[int, ProducerEntry]


class ProducerStateManager:
    """Owns the producer entries of one partition and their snapshots.

    On disk: `<20-digit offset>.snapshot` files in the partition directory, each
    a JSON document holding the state after every batch below that offset
    (this project's format, not Kafka's binary one).  Written atomically on
    segment roll and on close; on open the newest usable snapshot is loaded
    and the batch headers after it are replayed (`replay`).

    Not safe for concurrent use: the owning PartitionLog serialises calls.
    """

    def __init__(self, directory: Path, expiration_ms: int) -> None:
        self.directory = directory
        self.expiration_ms = expiration_ms
        self.producers: dict[int, ProducerEntry] = {}
        self.ongoing: dict[int, LogPosition] = {}  # producer id -> first batch of its open transaction
        self._snapshot_offset: int | None = None  # of the newest snapshot on disk, once loaded or taken

    # -- the append path ---------------------------------------------------------

    def prepare(
        self, headers: Sequence[BatchHeader], base_offsets: Sequence[int], timestamps: Sequence[int], now_ms: int
    ) -> ProducerAppend:
        """Check an append's batches against the rules; mutate nothing.

        `base_offsets` and `timestamps` are what each batch will be stored with.
        Raises KafkaError(INVALID_PRODUCER_EPOCH | OUT_OF_ORDER_SEQUENCE_NUMBER).
        """
        updates: dict[int, ProducerEntry] = {}
        for header, base_offset, timestamp in zip(headers, base_offsets, timestamps):
            if not header.has_producer_id:
                continue
            producer_id = header.producer_id
            epoch, first, last = header.producer_epoch, header.base_sequence, header.last_sequence
            entry = updates.get(producer_id) or self.producers.get(producer_id)
            if entry is not None:
                duplicate = entry.find_duplicate(epoch, first, last)
                if duplicate is not None:
                    return ProducerAppend(duplicate, {})
                if epoch < entry.producer_epoch:
                    raise KafkaError(
                        ErrorCode.INVALID_PRODUCER_EPOCH,
                        f"producer {producer_id} epoch {epoch} is older than {entry.producer_epoch}",
                    )
            if entry is None or epoch != entry.producer_epoch:
                if first != 0:
                    raise KafkaError(
                        ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                        f"producer {producer_id} epoch {epoch} must start at sequence 0, got {first}",
                    )
                entry = entry or ProducerEntry(producer_id, epoch, (), now_ms)
            elif not _in_sequence(entry.last_sequence, first):
                raise KafkaError(
                    ErrorCode.OUT_OF_ORDER_SEQUENCE_NUMBER,
                    f"producer {producer_id} sent sequence {first} after {entry.last_sequence}",
                )
            batch = BatchMetadata(first, last, base_offset, base_offset + header.last_offset_delta, timestamp)
            updates[producer_id] = entry.with_batch(epoch, batch, now_ms)
        return ProducerAppend(None, updates)

    def commit(self, pending: ProducerAppend) -> None:
        self.producers.update(pending.updates)

    def begin_transaction(self, header: BatchHeader, segment_base: int, position: int) -> None:
        """Note a transactional data batch written at `position` of the segment at `segment_base`."""
        if header.producer_id not in self.ongoing:
            self.ongoing[header.producer_id] = LogPosition(header.base_offset, segment_base, position)

    def end_transaction(self, producer_id: int, producer_epoch: int, now_ms: int) -> LogPosition | None:
        """Close the producer's open transaction (a marker was written); where it began, if it had data here."""
        entry = self.producers.get(producer_id)
        if entry is None or producer_epoch > entry.producer_epoch:
            self.producers[producer_id] = ProducerEntry(producer_id, producer_epoch, (), now_ms)
        return self.ongoing.pop(producer_id, None)

    def first_unstable(self) -> LogPosition | None:
        """The earliest first batch of an open transaction: the LSO's position."""
        return min(self.ongoing.values()) if self.ongoing else None

    def replay(self, header: BatchHeader, now_ms: int, segment_base: int) -> None:
        """Re-apply a data batch already in the log (no checks): rebuilding state on open."""
        if not header.has_producer_id:
            return
        if header.is_transactional:
            self.begin_transaction(header, segment_base, header.position)
        batch = BatchMetadata(
            header.base_sequence, header.last_sequence, header.base_offset, header.last_offset, header.max_timestamp
        )
        entry = self.producers.get(header.producer_id) or ProducerEntry(
            header.producer_id, header.producer_epoch, (), now_ms
        )
        self.producers[header.producer_id] = entry.with_batch(header.producer_epoch, batch, now_ms)

    def remove_expired(self, now_ms: int) -> None:
        """Forget producers idle for producer.id.expiration.ms, as Kafka does."""
        self.producers = {
            producer_id: entry
            for producer_id, entry in self.producers.items()
            if now_ms - entry.last_append_ms < self.expiration_ms or producer_id in self.ongoing
        }

    # -- snapshots -------------------------------------------------------------

    def take_snapshot(self, offset: int) -> None:
        """Persist the state as of `offset` (the log end offset) and prune old snapshots.

        Nothing is written when the newest snapshot is already at `offset`:
        the state changes only with appends.
        """
        if offset == self._snapshot_offset:
            return
        write_json_atomically(self._snapshot_path(offset), self.document())
        self._snapshot_offset = offset
        for stale in self._snapshot_offsets()[:-SNAPSHOTS_TO_KEEP]:
            self._snapshot_path(stale).unlink(missing_ok=True)

    def document(self) -> dict:
        """The state as a snapshot file holds it (also carried by the clean-shutdown state)."""
        return {
            "version": _SNAPSHOT_VERSION,
            "producers": [
                {
                    "producer_id": entry.producer_id,
                    "producer_epoch": entry.producer_epoch,
                    "last_append_ms": entry.last_append_ms,
                    "batches": [list(batch) for batch in entry.batches],
                }
                for entry in self.producers.values()
            ],
            "ongoing": [[producer_id, *position] for producer_id, position in self.ongoing.items()],
        }

    def restore(self, document: object) -> bool:
        """Take the state from `document()`'s output; False (and nothing changed) if it is unreadable."""
        parsed = self._parse(document)
        if parsed is None:
            return False
        self.producers, self.ongoing = parsed
        return True

    def load(self, log_end_offset: int) -> int | None:
        """Load the newest readable snapshot at or below `log_end_offset`.

        Returns its offset (replay the log from there), or None when there is
        none (replay the whole log).  Snapshots beyond the log end, left by a log
        whose tail was cut in recovery, and unreadable ones are deleted.
        """
        for offset in reversed(self._snapshot_offsets()):
            path = self._snapshot_path(offset)
            parsed = self._parse(read_json(path)) if offset <= log_end_offset else None
            if parsed is not None:
                self.producers, self.ongoing = parsed
                self._snapshot_offset = offset
                return offset
            path.unlink()
        self.producers, self.ongoing = {}, {}
        return None

    @staticmethod
    def _parse(document: object) -> tuple[dict[int, ProducerEntry], dict[int, LogPosition]] | None:
        if not isinstance(document, dict) or document.get("version") != _SNAPSHOT_VERSION:
            return None
        try:
            entries = [
                ProducerEntry(
                    int(item["producer_id"]),
                    int(item["producer_epoch"]),
                    tuple(BatchMetadata(*map(int, batch)) for batch in item["batches"]),
                    int(item["last_append_ms"]),
                )
                for item in document["producers"]
            ]
            ongoing = {int(item[0]): LogPosition(*map(int, item[1:])) for item in document.get("ongoing", ())}
        except (KeyError, TypeError, ValueError):
            return None
        return {entry.producer_id: entry for entry in entries}, ongoing

    def _snapshot_path(self, offset: int) -> Path:
        return self.directory / f"{segment_name(offset)}{SNAPSHOT_SUFFIX}"

    def _snapshot_offsets(self) -> list[int]:
        return sorted(
            int(match.group(1))
            for path in self.directory.iterdir()
            if (match := _SNAPSHOT_NAME.fullmatch(path.name))
        )


def _in_sequence(last_sequence: int, first_sequence: int) -> bool:
    return first_sequence == last_sequence + 1 or (first_sequence == 0 and last_sequence == INT32_MAX)
