"""The transaction coordinator's durable state (our ``__transaction_state``).

Each record is one transactional id's whole metadata after a change, as
JSON, in the checksummed frames of group/journal.py (a transactions v2
EndTxn's bumped epoch and, for an exhausted epoch, the next producer id
among them, so a restart completes it as it began); the last record of an
id wins and a record with ``"dead": true`` forgets it.  Records are fsynced
as the log's appends are: with ``log.flush.on.ack`` (the default) a state
change is durable once `write` returns, before any client hears of it;
without it they are written at once and left to the OS to sync, as Kafka
leaves ``__transaction_state``, which survives a SIGKILL but not a power cut.
Either way a
transaction prepared before a crash is found PrepareCommit/PrepareAbort on
open and its markers are written again.  Only the record of a completed
transaction is left to the next fsync: losing it repeats the markers.  The file is rewritten with only the
live records once the dead ones outnumber them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kafkacompat.group.journal import Journal
from kafkacompat.group.offsets import CommittedOffset
from kafkacompat.group.results import TopicPartition
from kafkacompat.txn.state import NO_PRODUCER_ID, TransactionMetadata, TxnState

JOURNAL_NAME = "transactions.journal"
COMPACT_MIN_GARBAGE = 1_000


def encode(meta: TransactionMetadata) -> bytes:
    return json.dumps({
        "id": meta.transactional_id, "pid": meta.producer_id, "epoch": meta.producer_epoch,
        "last_epoch": meta.last_producer_epoch, "previous_pid": meta.previous_producer_id,
        "next_pid": meta.next_producer_id,
        "timeout_ms": meta.timeout_ms, "state": meta.state.value, "partitions": sorted(meta.partitions),
        "offsets": {group: [[tp.topic, tp.partition, o.offset, o.leader_epoch, o.metadata]
                            for tp, o in offsets.items()] for group, offsets in meta.pending_offsets.items()},
        "start_ms": meta.start_ms, "last_update_ms": meta.last_update_ms,
    }, separators=(",", ":")).encode()


def decode(document: dict[str, Any]) -> TransactionMetadata:
    return TransactionMetadata(
        transactional_id=document["id"], producer_id=document["pid"], producer_epoch=document["epoch"],
        timeout_ms=document["timeout_ms"], state=TxnState(document["state"]),
        last_producer_epoch=document["last_epoch"], previous_producer_id=document["previous_pid"],
        next_producer_id=document.get("next_pid", NO_PRODUCER_ID),  # absent before transactions v2
        partitions={(topic, partition) for topic, partition in document["partitions"]},
        pending_offsets={group: {TopicPartition(topic, partition): CommittedOffset(offset, epoch, metadata)
                                 for topic, partition, offset, epoch, metadata in offsets}
                         for group, offsets in document["offsets"].items()},
        start_ms=document["start_ms"], last_update_ms=document["last_update_ms"],
    )


class TransactionLog:
    """Transaction metadata on disk: `<data_dir>/transactions/transactions.journal`.

    Not safe for concurrent use: the coordinator serialises calls (the broker's one thread).
    """

    def __init__(self, directory: Path, *, sync: bool = True) -> None:
        self.path = directory / JOURNAL_NAME
        self._sync = sync  # False follows log.flush.on.ack=false: written at once, synced by the OS
        self.loaded: dict[str, TransactionMetadata] = {}
        records = 0
        for payload in Journal.read(self.path):
            document = json.loads(payload)
            records += 1
            if document.get("dead"):
                self.loaded.pop(document["id"], None)
            else:
                self.loaded[document["id"]] = decode(document)
        self._journal = Journal(self.path)
        self._records = records

    def write(self, meta: TransactionMetadata, *, sync: bool = True) -> None:
        """Make `meta` durable (fsynced) before anyone hears of the change.

        `sync=False` is for a record whose loss only repeats work: a completed
        transaction found prepared again after a crash gets its markers again.
        """
        self._append(encode(meta), sync=sync and self._sync)

    def forget(self, transactional_id: str) -> None:
        self._append(json.dumps({"id": transactional_id, "dead": True}).encode(), sync=self._sync)

    def compact(self, live: list[TransactionMetadata]) -> None:
        self._journal.rewrite([encode(meta) for meta in live])
        self._records = len(live)

    def needs_compaction(self, live: int) -> bool:
        """Whether the records no longer live outnumber the live ones (and COMPACT_MIN_GARBAGE)."""
        return self._records - live > max(COMPACT_MIN_GARBAGE, live)

    def _append(self, payload: bytes, *, sync: bool = True) -> None:
        self._journal.append([payload], sync=sync)
        self._records += 1

    def close(self) -> None:
        self._journal.close()
