"""The broker object: one log engine, one group coordinator, one transaction coordinator, one identity.

Handlers reach everything through ``ctx.broker``. This is the only place that
knows how the engines are wired together; it owns their lifetimes (open at
start, flush and close at shutdown), the Trio signal that wakes Fetch
long-polls when data is appended, the group commit that fsyncs appends before
they are acknowledged, the background log maintenance task, and the
transaction marker writer.
"""

from __future__ import annotations

import base64
import dataclasses
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NamedTuple

import trio

from kafkacompat.cluster.faults import FaultEngine
from kafkacompat.cluster.controller import BrokerInfo
from kafkacompat.cluster.view import SingleBroker
from kafkacompat.config import BrokerConfig, ConfigError
from kafkacompat.features import FinalizedFeatures
from kafkacompat.group.consumer.membership import LogTopics
from kafkacompat.group.coordinator import GroupCoordinator
from kafkacompat.group.share.coordinator import ShareCoordinator, ShareSettings
from kafkacompat.handlers.fetch_session import FetchSessionCache
from kafkacompat.log.dir_lock import DataDirLock
from kafkacompat.log.flush import sync_tickets, syncs_filesystem
from kafkacompat.log.log_manager import LogManager
from kafkacompat.log.partition_log import PartitionLog
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.security.authorizer import STANDARD_AUTHORIZER
from kafkacompat.security.quotas import QuotaManager
from kafkacompat.security.stores import SecurityStores
from kafkacompat.telemetry.client_metrics import ClientMetricsManager
from kafkacompat.txn.coordinator import Completion, TransactionCoordinator
from kafkacompat.txn.markers import marker_targets, write_markers

if TYPE_CHECKING:
    from kafkacompat.listeners import Endpoint
    from kafkacompat.cluster.member import Member
    from kafkacompat.web.metrics import BrokerMetrics

log = logging.getLogger("kafkacompat.broker")

META_PROPERTIES = "meta.properties"
# Tests only: with this set to 1 the marker writer writes nothing, so a test can
# kill the broker between EndTxn and the markers. Not a KAFKACOMPAT_* name, because
# those are read as broker configs.
HOLD_TXN_MARKERS_ENV = "KCOMPAT_TEST_HOLD_TXN_MARKERS"
# How long markers may wait for the ISR (Kafka's coordinator uses request.timeout.ms), and the pause
# before a failed round of markers (no leader, a leader that moved) is tried again.
MARKER_REPLICATION_TIMEOUT_MS = 30_000
MARKER_RETRY_BACKOFF_S = 0.5


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class AppendSignal:
    """Wakes every waiting Fetch when any partition grows.

    Waiters re-check their own partitions after waking, so one broadcast per
    append is enough and nothing is missed between check and wait.
    """

    def __init__(self) -> None:
        self._event = trio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = trio.Event()

    async def wait(self, timeout_s: float) -> None:
        with trio.move_on_after(max(timeout_s, 0.0)):
            await self._event.wait()


class _FlushRound:
    def __init__(self) -> None:
        self.done = trio.Event()
        self.failed: set[PartitionLog] = set()


class Enlisted(NamedTuple):
    """A caller's place in a flush round: the round, and the partitions it waits for there."""

    round: _FlushRound
    partitions: set[PartitionLog]


class GroupCommit:
    """Shares fsyncs among concurrent produce requests and keeps them off the event loop.

    A caller enlists the partitions it appended to in the next flush round at
    once, as part of its request, and later waits for that round: requests
    begun while a round runs share the one after it.  Rounds run one at a
    time; a waiter that finds none running leads the next one itself, so
    flushing needs no background task and keeps working while connections
    drain at shutdown.  A round takes a flush ticket from every partition waited on
    (on the event loop, so later appends wait for the next round), fsyncs them
    all in one worker thread (one syncfs when there are many), completes them -- which, with log.flush.on.ack,
    moves the high watermark -- and wakes the fetches waiting for records.
    Only the event-loop thread calls it.
    """

    def __init__(self, clock: Callable[[], int], appended: AppendSignal, data_dir: Path) -> None:
        self._clock = clock
        self._data_dir = data_dir
        self._appended = appended
        self._waiting: set[PartitionLog] = set()
        self._next = _FlushRound()
        self._running: _FlushRound | None = None
        # Called with each round's fsync time in ms when something listens (the metrics).
        self.on_round_synced: Callable[[float], None] | None = None

    def enlist(self, owed: Mapping[PartitionLog, int | None]) -> Enlisted | None:
        """Put the partitions whose flush policy wants an fsync now in the next round; None when none does.

        ``owed`` maps each partition to the end offset of the appends its
        caller acknowledges (see PartitionLog.needs_flush), or to None.
        """
        now = self._clock()
        wanted = {partition for partition, acking_below in owed.items() if partition.needs_flush(now, acking_below)}
        if not wanted:
            return None
        self._waiting |= wanted
        return Enlisted(self._next, wanted)

    async def wait(self, enlisted: Enlisted | None) -> set[PartitionLog]:
        """Return once the enlisted partitions are fsynced; the ones whose fsync failed (offline from then on)."""
        if enlisted is None:
            return set()
        mine = enlisted.round
        while not mine.done.is_set():
            if self._running is None:
                await self._run_round()
            else:
                await self._running.done.wait()
        return enlisted.partitions & mine.failed

    async def flush(self, owed: Mapping[PartitionLog, int | None]) -> set[PartitionLog]:
        """Enlist and wait in one step."""
        return await self.wait(self.enlist(owed))

    async def _run_round(self) -> None:
        round_, self._next = self._next, _FlushRound()
        partitions, self._waiting = self._waiting, set()
        self._running = round_
        round_.failed = set(partitions)  # until proven otherwise
        try:
            whole_filesystem = syncs_filesystem(len(partitions))
            tickets = [(partition, ticket) for partition in partitions
                       if (ticket := partition.begin_flush(whole_filesystem=whole_filesystem))]
            started = time.perf_counter()
            with trio.CancelScope(shield=True):  # the tickets own descriptors: always finish the round
                await trio.to_thread.run_sync(sync_tickets, [ticket for _, ticket in tickets], self._data_dir)
            if self.on_round_synced is not None:
                self.on_round_synced((time.perf_counter() - started) * 1000)
            round_.failed = {partition for partition, ticket in tickets if not partition.complete_flush(ticket)}
        finally:
            self._running = None
            round_.done.set()
            self._appended.notify()


def read_or_create_cluster_id(data_dir: Path, node_id: int) -> str:
    """Kafka keeps the cluster id in ``meta.properties``; so do we."""
    path = data_dir / META_PROPERTIES
    if path.exists():
        for line in path.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "cluster.id" and value.strip():
                return value.strip()
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(f"version=1\ncluster.id={cluster_id}\nnode.id={node_id}\n")
    tmp.replace(path)
    return cluster_id


class Broker:
    """Everything a request handler may touch, for one broker.

    ``member``: this broker's place in a multi-broker process (cluster/runtime.py),
    which supplies the cluster id, the group coordinator, the security stores
    (ACLs, SCRAM credentials, quota values) and the append signal the members
    share, and answers ``cluster`` questions; None for a broker alone.
    """

    def __init__(self, config: BrokerConfig, clock: Callable[[], int] = wall_clock_ms,
                 member: Member | None = None) -> None:
        self.config = config
        self.clock = clock
        authorizer_class = config.get("authorizer.class.name")
        if authorizer_class and authorizer_class != STANDARD_AUTHORIZER:
            raise ConfigError(f"authorizer.class.name {authorizer_class!r} is not supported; "
                              f"use {STANDARD_AUTHORIZER}")
        self.node_id = config.get_int("node.id")
        self.advertised_host, self.advertised_port = config.advertised_listener
        self.advertised_endpoints: dict[str, Endpoint] = {}
        self.data_dir = config.data_dir
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = DataDirLock(self.data_dir)  # before anything in the directory is read or written
        self._member = member
        self.cluster_id = (member.runtime.cluster_id if member is not None
                           else read_or_create_cluster_id(self.data_dir, self.node_id))
        self.features = FinalizedFeatures(self.data_dir, self.node_id)
        self.log_manager = LogManager(
            self.data_dir, config.topic_defaults(), clock, flush_on_ack=config.get_bool("log.flush.on.ack"),
            recovery_threads=config.get_int("num.recovery.threads.per.data.dir"),
        )
        self.groups = member.runtime.groups if member is not None else GroupCoordinator.from_config(
            self.data_dir, clock, LogTopics(self.log_manager), config)
        # A cluster's brokers share one share coordinator too; sessions stay with the broker they live on.
        self.share_groups = member.runtime.share_groups if member is not None else ShareCoordinator(
            self.data_dir, clock, self.log_manager, ShareSettings.from_config(config))
        # A cluster's brokers share one transaction coordinator too, each answering for its own ids.
        self.transactions = member.runtime.transactions if member is not None else TransactionCoordinator.from_config(
            self.data_dir, clock, lambda: self.cluster.allocate_producer_id(), config)
        self._markers_due = trio.Event()
        # Transactional ids whose markers are being written; one set for a cluster's brokers, so that a
        # coordinator taking over an id does not write its markers while the previous one still is.
        self._completing: set[str] = member.runtime.completing if member is not None else set()
        self._hold_markers = os.environ.get(HOLD_TXN_MARKERS_ENV) == "1"
        self.fetch_sessions = FetchSessionCache(config.get_int("max.incremental.fetch.session.cache.slots"), clock)
        self.client_metrics = ClientMetricsManager(self.data_dir, clock, config.get_int("telemetry.max.bytes"))
        self.appended = member.runtime.appended if member is not None else AppendSignal()
        self.faults = FaultEngine(self.node_id, clock)
        self.faults.add_all(config.faults)
        self._security = member.runtime.security if member is not None else SecurityStores.open(config, self.data_dir)
        self.quotas = QuotaManager(self._security.quota_values, clock, config.get_int("quota.window.num"),
                                   config.get_int("quota.window.size.seconds"))
        self.authorizer = self._security.authorizer
        self.scram_credentials = self._security.scram_credentials
        self.flusher = GroupCommit(clock, self.appended, self.data_dir)
        # Set by the HTTP side when http.listeners is configured (kafkacompat.web).
        self.metrics: BrokerMetrics | None = None
        self.http_port: int | None = None
        self.cluster: SingleBroker | Member = SingleBroker(self) if member is None else member
        if member is not None:
            member.attach(self)

    def set_advertised(self, endpoints: list["Endpoint"]) -> None:
        """Called once the listeners are bound (port 0 picks a free port); the first is the broker's address."""
        self.advertised_endpoints = {endpoint.name: endpoint for endpoint in endpoints}
        self.advertised_host, self.advertised_port = endpoints[0].host, endpoints[0].port

    def address_for(self, listener_name: str) -> tuple[str, int]:
        """The host and port handed to a client that connected on ``listener_name``, as Kafka does."""
        endpoint = self.advertised_endpoints.get(listener_name)
        return (self.advertised_host, self.advertised_port) if endpoint is None else (endpoint.host, endpoint.port)

    def brokers_for(self, listener_name: str) -> list[BrokerInfo]:
        """The live brokers as a client on ``listener_name`` dials them: each at that listener's address
        (a broker without the listener is left out, as Kafka's Metadata does)."""
        found = []
        for info in self.cluster.brokers():
            if info.node_id == self.node_id:
                host, port = self.address_for(listener_name)
            elif listener_name in info.endpoints:
                host, port = info.endpoints[listener_name]
            else:
                continue
            found.append(dataclasses.replace(info, host=host, port=port))
        return found

    async def run_group_timers(self) -> None:
        """Drive the coordinators' session, rebalance and acquisition-lock timers."""
        while True:
            self.groups.tick(self.clock())
            if self.share_groups.tick(self.clock()):
                self.appended.notify()  # released records: waiting share fetches may acquire them
            deadline = min((d for d in (self.groups.next_deadline_ms(), self.share_groups.next_deadline_ms())
                            if d is not None), default=None)
            wait_ms = 100 if deadline is None else min(max(deadline - self.clock(), 1), 100)
            await trio.sleep(wait_ms / 1000)

    def markers_due(self) -> None:
        """A transaction was decided: wake the marker writer."""
        self._markers_due.set()

    async def complete_transactions(self, transactional_id: str | None = None) -> None:
        """Write the markers of the decided transactions (or of one id's) now.

        EndTxn calls this for its own transaction before answering, so the
        producer's next transaction need not wait out CONCURRENT_TRANSACTIONS
        retries; the marker writer calls it for the rest. Each id's markers are
        written by one caller at a time, and only by its coordinator (in a
        cluster, the broker leading its ``__transaction_state`` partition).
        """
        if self._hold_markers:
            return
        for completion in self.transactions.completions():
            key = completion.transactional_id
            if key in self._completing or transactional_id not in (None, key) \
                    or self.cluster.transaction_coordinator(key) != self.node_id:
                continue
            self._completing.add(key)
            try:
                await self._complete_transaction(completion)
            except (OSError, KafkaError) as exc:
                log.warning("completing transaction %r failed, retrying: %s", key, exc)
                self.markers_due()
                await trio.sleep(MARKER_RETRY_BACKOFF_S)
            finally:
                self._completing.discard(key)

    async def run_transaction_markers(self) -> None:
        """Write the markers of decided transactions (those found prepared at start first), and abort
        transactions past their timeout every transaction.abort.timed.out.transaction.cleanup.interval.ms."""
        interval = self.config.get_int("transaction.abort.timed.out.transaction.cleanup.interval.ms")
        next_check = self.clock() + interval
        while True:
            self._markers_due = trio.Event()
            await self.complete_transactions()
            now = self.clock()
            if now >= next_check:
                next_check = now + interval
                if self.transactions.tick(now):
                    continue
            with trio.move_on_after(max(next_check - now, 1) / 1000):
                await self._markers_due.wait()

    async def _complete_transaction(self, completion: Completion) -> None:
        """Markers at every partition's leader, durable and held by its ISR, then the staged offsets."""
        targets = marker_targets(self.cluster, completion)
        now = self.clock()
        owed = {leader: write_markers(partitions, completion, self.transactions.coordinator_epoch, now)
                for leader, partitions in targets.items()}
        for leader, ends in owed.items():
            if await leader.flusher.flush(ends):
                raise KafkaError(ErrorCode.KAFKA_STORAGE_ERROR, "a marker could not be synced")
            leader.appended.notify()
            for partition, end in ends.items():
                code = await leader.cluster.wait_replicated(partition, end, MARKER_REPLICATION_TIMEOUT_MS)
                if code not in (ErrorCode.NONE, ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND):
                    raise KafkaError(code, f"the marker in {partition.topic}-{partition.index} is not replicated")
        if completion.commit:
            for group_id, offsets in completion.offsets.items():
                code = self.groups.commit_transactional_offsets(group_id, offsets)
                if code != ErrorCode.NONE:
                    raise KafkaError(code, f"the offsets of group {group_id!r} could not be stored")
        self.transactions.complete(completion)
        self.appended.notify()  # the LSO moved: read_committed fetches may return now

    async def run_log_maintenance(self) -> None:
        """Kafka's background log work, each job on its own interval.

        retention every log.retention.check.interval.ms,
        compaction every log.cleaner.backoff.ms, recovery-point checkpoints
        every log.flush.offset.checkpoint.interval.ms, and on every wake-up the
        flushes nobody is waiting for (flush.ms, segments sealed by a roll).
        A job failing on storage is logged and retried at its next interval.
        """
        config = self.config
        jobs: list[tuple[int, Callable[[int], Awaitable[None]]]] = [
            (config.get_int("log.retention.check.interval.ms"), self._apply_retention),
            (config.get_int("log.flush.offset.checkpoint.interval.ms"), self._checkpoint_recovery_points),
        ]
        if config.get_bool("log.cleaner.enable"):
            jobs.append((config.get_int("log.cleaner.backoff.ms"), self._clean_logs))
        next_due = [self.clock() + interval for interval, _ in jobs]
        while True:
            for slot, (interval, job) in enumerate(jobs):
                now = self.clock()
                if now >= next_due[slot]:
                    try:
                        await job(now)
                    except (OSError, KafkaError) as exc:
                        log.error("log maintenance (%s) failed: %s", job.__name__.strip("_"), exc)
                    next_due[slot] = now + interval
            await self.flusher.flush(dict.fromkeys(self.log_manager.partitions_needing_flush(self.clock())))
            await trio.sleep(max(min(next_due) - self.clock(), 1) / 1000)

    async def _apply_retention(self, now: int) -> None:
        deleted = self.log_manager.apply_retention(now)
        if deleted:
            log.info("retention deleted %d segment(s)", deleted)

    async def _checkpoint_recovery_points(self, now: int) -> None:
        """Taken on the event loop (a consistent view), written in a thread; skipped when nothing moved."""
        document = self.log_manager.recovery_checkpoint()
        if document is not None:
            await trio.to_thread.run_sync(self.log_manager.write_recovery_checkpoint, document)

    async def _clean_logs(self, now: int) -> None:
        """Run each due cleaning in bounded steps, yielding to requests between them; fsyncs in a thread."""
        dedupe_buffer_bytes = self.config.get_int("log.cleaner.dedupe.buffer.size")
        for job in self.log_manager.cleaning_jobs(now, dedupe_buffer_bytes):
            name = f"{job.partition.topic}-{job.partition.index}"
            with contextlib.closing(job.run()) as steps:
                try:
                    for ticket in steps:
                        if ticket is None:
                            await trio.sleep(0)
                        else:
                            await trio.to_thread.run_sync(ticket.sync)
                except (OSError, KafkaError) as exc:
                    log.error("cleaning %s stopped: %s", name, exc)
                    continue
            log.info("cleaned %s: %d segment group(s) rewritten", name, job.groups_swapped)

    def close(self) -> None:
        """Close the engines, then let another broker have the directory.

        A killed cluster member closes as a crash would leave it: unflushed
        appends lost, no clean-shutdown marker (LogManager.abandon).
        """
        member = self._member
        if member is not None and member.crashed:
            self.log_manager.abandon()
        else:
            self.log_manager.close()
        if member is None:
            self.groups.close()
            self._security.close()
            self.transactions.close()
            self.share_groups.close()
        self._lock.release()
