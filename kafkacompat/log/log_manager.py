"""The broker's storage root: topics, their partitions, configs and producer ids."""

from __future__ import annotations

import base64
import functools
import logging
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafkacompat.log.clean_shutdown import CLEAN_SHUTDOWN_FILE, PartitionState, read_marker, state_key, write_marker
from kafkacompat.log.cleaner import CleaningJob, cleaning_jobs
from kafkacompat.log.durable import (
    CAN_SYNC_FILESYSTEM,
    fsync_directory,
    read_json,
    sync_filesystem,
    write_json_atomically,
)
from kafkacompat.log.partition_log import DEFAULT_PRODUCER_ID_EXPIRATION_MS, PartitionLog
from kafkacompat.log.recovery import RecoveryStats
from kafkacompat.log.topic_config import TOPIC_CONFIGS, LogConfig, default_configs, validate_topic_configs
from kafkacompat.protocol.errors import ErrorCode, KafkaError

log = logging.getLogger("kafkacompat.log")

REGISTRY_FILE = "topics.json"
PRODUCER_IDS_FILE = "producer-ids.json"
RECOVERY_POINTS_FILE = "recovery-point-offset-checkpoint"
PRODUCER_ID_BLOCK_SIZE = 1000
MAX_TOPIC_NAME_LENGTH = 249
DELETED_DIR_SUFFIX = "-delete"
_LEGAL_TOPIC_NAME = re.compile(r"[a-zA-Z0-9._-]+")
_REGISTRY_VERSION = 1


@dataclass(eq=False)
class Topic:
    name: str
    topic_id: uuid.UUID
    partitions: list[PartitionLog]
    configs: dict[str, str]  # per-topic overrides only; see LogManager.effective_config


def validate_topic_name(name: str) -> None:
    """Kafka's topic name rules; raises KafkaError(INVALID_TOPIC_EXCEPTION)."""
    if not name:
        problem = "it can't be empty"
    elif name in (".", ".."):
        problem = "it can't be '.' or '..'"
    elif len(name) > MAX_TOPIC_NAME_LENGTH:
        problem = f"it can't be longer than {MAX_TOPIC_NAME_LENGTH} characters"
    elif not _LEGAL_TOPIC_NAME.fullmatch(name):
        problem = "it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
    else:
        return
    raise KafkaError(ErrorCode.INVALID_TOPIC_EXCEPTION, f"topic name {name!r} is illegal: {problem}")


def _new_topic_id() -> uuid.UUID:
    """A random id that Kafka would also hand out: its base64 form must not start with '-'."""
    while True:
        topic_id = uuid.uuid4()
        if not base64.urlsafe_b64encode(topic_id.bytes).startswith(b"-"):
            return topic_id


class LogManager:
    """Owns the data directory: every topic, its partition logs and the broker-wide log state.

    On disk, under `data_dir`:
      - `topics.json`: the topic registry (name, topic id, partition count,
        config overrides), replaced atomically on every change; it is the
        source of truth for which partition directories are live;
      - `producer-ids.json`: the end of the producer-id block handed out last;
      - `.clean-shutdown`: written last by `close()` with every partition's
        state, removed at open; its absence at open means the previous run
        stopped uncleanly (see clean_shutdown.py);
      - `recovery-point-offset-checkpoint`: per partition (by topic id), the
        offset below which everything was fsynced, written by
        `recovery_checkpoint` (the broker writes it periodically), with the
        state of each partition that was fully fsynced then; after an unclean
        stop, a partition whose files still match that state opens unread,
        the others scan the segments past their point in full (recovery.py);
      - `<topic>-<partition>/`: one PartitionLog each;
      - `<topic id hex>-<partition>-delete/`: a deleted partition being removed
        (swept again on open if a crash interrupted the removal).
    Other subsystems may keep their own files under `data_dir`; nothing else is touched.

    Not safe for concurrent use: the broker calls it from one thread.
    """

    def __init__(
        self,
        data_dir: Path,
        topic_defaults: Mapping[str, str],
        clock: Callable[[], int],
        *,
        producer_id_expiration_ms: int = DEFAULT_PRODUCER_ID_EXPIRATION_MS,
        flush_on_ack: bool = False,
        recovery_threads: int = 1,
    ) -> None:
        """`topic_defaults`: broker-level values for topic configs (Kafka's topic config names).
        `flush_on_ack`: the broker's log.flush.on.ack (see PartitionLog.flushes_on_ack).
        `recovery_threads`: Kafka's num.recovery.threads.per.data.dir, for an unclean start.

        Raises ValueError when one is unknown or invalid: that is a broker configuration error.
        Logs one line saying what recovery found and how long opening took.
        """
        try:
            self.topic_defaults = validate_topic_configs(topic_defaults)
        except KafkaError as exc:
            raise ValueError(exc.message) from None
        self.data_dir = Path(data_dir)
        self._clock = clock
        self._producer_id_expiration_ms = producer_id_expiration_ms
        self._flush_on_ack = flush_on_ack
        self._recovery_threads = max(recovery_threads, 1)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.data_dir.glob(f"*{DELETED_DIR_SUFFIX}"):
            shutil.rmtree(stale)
        self._topics: dict[str, Topic] = {}
        self._topics_by_id: dict[uuid.UUID, Topic] = {}
        # The last recovery checkpoint's entries, with the fingerprint each was built at.
        self._checkpoint_entries: dict[PartitionLog, tuple[tuple[int, int, int], list[Any]]] = {}
        started = time.monotonic()
        marker = self.data_dir / CLEAN_SHUTDOWN_FILE
        states = read_marker(self.data_dir)
        clean = states is not None or not (self.data_dir / REGISTRY_FILE).exists()  # a new directory is clean
        recovery_points = None if clean else self._read_recovery_points()
        self.recovery_stats = RecoveryStats()
        self._load_registry(recovery_points, states or {})
        if not clean and CAN_SYNC_FILESYSTEM:
            sync_filesystem(self.data_dir)  # what recovery repaired, in one go
        if marker.exists():
            marker.unlink()  # durably gone before anything new is written
            fsync_directory(self.data_dir)
        stats = self.recovery_stats
        log.info(
            "log recovery after %s shutdown: %d partitions, %d segments scanned, %d index sets rebuilt, "
            "%d bytes truncated, %d ms",
            "a clean" if clean else "an unclean",
            sum(len(topic.partitions) for topic in self._topics.values()),
            stats.segments_scanned,
            stats.indexes_rebuilt,
            stats.bytes_truncated,
            round((time.monotonic() - started) * 1000),
        )
        stored = read_json(self.data_dir / PRODUCER_IDS_FILE)
        self._producer_id_block_end = int(stored["block_end"]) if isinstance(stored, dict) else 0
        self._next_producer_id = self._producer_id_block_end

    def _read_recovery_points(self) -> dict[tuple[str, int], tuple[int, PartitionState | None]]:
        stored = read_json(self.data_dir / RECOVERY_POINTS_FILE)
        entries = stored.get("partitions", []) if isinstance(stored, dict) else []
        return {(entry[0], entry[1]): (entry[2], entry[3] if len(entry) > 3 else None) for entry in entries}

    def checkpoint_recovery_points(self) -> None:
        """Persist every partition's recovery point now, with the states of those fully fsynced."""
        self.write_recovery_checkpoint(self.recovery_checkpoint(force=True))

    def write_recovery_checkpoint(self, document: dict[str, Any]) -> None:
        """Write what `recovery_checkpoint` returned; touches nothing else, so any thread may call it."""
        write_json_atomically(self.data_dir / RECOVERY_POINTS_FILE, document)

    def recovery_checkpoint(self, *, force: bool = False) -> dict[str, Any] | None:
        """The recovery-point checkpoint to write, or None when nothing moved since the last one.

        Per partition (by topic id): the recovery point and, when everything
        appended is fsynced, `PartitionLog.checkpoint_state()`, so an unclean
        start opens it without a scan.  An entry is rebuilt only when its
        partition's recovery point, log start or segments changed, so the
        broker may ask often; an entry whose state went stale meanwhile is
        still safe, as the files no longer match it (recovery.state_matches_disk).
        """
        previous, entries = self._checkpoint_entries, {}
        changed = force
        for topic in self._topics.values():
            topic_id = str(topic.topic_id)
            for partition in topic.partitions:
                fingerprint = (partition.recovery_point, partition.log_start_offset, partition.segments_version)
                cached = previous.get(partition)
                if cached is None or cached[0] != fingerprint:
                    cached = (fingerprint, [topic_id, partition.index, partition.recovery_point,
                                            partition.checkpoint_state()])
                    changed = True
                entries[partition] = cached
        self._checkpoint_entries = entries
        if not (changed or len(entries) != len(previous)):
            return None
        return {"version": 2, "partitions": [entry for _, entry in entries.values()]}

    def _load_registry(
        self, recovery_points: dict[tuple[str, int], int] | None, states: dict[str, PartitionState]
    ) -> None:
        """Open every registered partition; `recovery_points` is None after a clean shutdown,
        `states` what it saved (see clean_shutdown.py)."""
        path = self.data_dir / REGISTRY_FILE
        document = read_json(path)
        if document is None:
            if path.exists():
                raise RuntimeError(f"{path} is unreadable; refusing to start without the topic registry")
            return
        topics = []
        for entry in document["topics"]:
            configs = dict(entry["configs"])
            topics.append((entry["name"], uuid.UUID(entry["topic_id"]), self._log_config(configs), configs,
                           range(entry["partitions"])))

        def open_one(name: str, topic_id: uuid.UUID, log_config: LogConfig, index: int) -> PartitionLog:
            point, checkpointed = (None, None) if recovery_points is None else \
                recovery_points.get((str(topic_id), index), (0, None))
            state = states.get(state_key(topic_id, index))
            return self._open_partition(name, index, log_config, recovery_point=point, state=state,
                                        checkpointed=checkpointed)

        # Recovery waits on the disk: several threads overlap those waits, as Kafka's
        # num.recovery.threads.per.data.dir do.  A clean start is pure Python work and
        # gains nothing from them.
        threads = 1 if recovery_points is None else self._recovery_threads
        pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None
        try:
            for name, topic_id, log_config, configs, indexes in topics:
                opener = functools.partial(open_one, name, topic_id, log_config)
                partitions = list(pool.map(opener, indexes) if pool else map(opener, indexes))
                for partition in partitions:
                    self.recovery_stats += partition.recovery_stats
                self._add(Topic(name, topic_id, partitions, configs))
        finally:
            if pool is not None:
                pool.shutdown()

    def _save_registry(self) -> None:
        write_json_atomically(
            self.data_dir / REGISTRY_FILE,
            {
                "version": _REGISTRY_VERSION,
                "topics": [
                    {
                        "name": topic.name,
                        "topic_id": str(topic.topic_id),
                        "partitions": len(topic.partitions),
                        "configs": topic.configs,
                    }
                    for topic in self._topics.values()
                ],
            },
        )

    def _add(self, topic: Topic) -> None:
        self._topics[topic.name] = topic
        self._topics_by_id[topic.topic_id] = topic

    def _partition_dir(self, topic: str, index: int) -> Path:
        return self.data_dir / f"{topic}-{index}"

    def _open_partition(
        self,
        topic: str,
        index: int,
        config: LogConfig,
        *,
        fresh: bool = False,
        recovery_point: int | None = None,
        state: PartitionState | None = None,
        checkpointed: PartitionState | None = None,
    ) -> PartitionLog:
        directory = self._partition_dir(topic, index)
        if fresh and directory.exists():
            shutil.rmtree(directory)  # left by a crash between creating it and registering the topic
        return PartitionLog(
            topic,
            index,
            directory,
            config,
            self._clock,
            producer_id_expiration_ms=self._producer_id_expiration_ms,
            flush_on_ack=self._flush_on_ack,
            recovery_point=recovery_point,
            state=state,
            checkpointed=checkpointed,
            sync_recovery=not CAN_SYNC_FILESYSTEM,  # the caller syncs the filesystem once
        )

    def _log_config(self, overrides: Mapping[str, str]) -> LogConfig:
        return LogConfig.from_strings({**default_configs(), **self.topic_defaults, **overrides})

    def _require(self, name: str) -> Topic:
        topic = self._topics.get(name)
        if topic is None:
            raise KafkaError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, f"unknown topic {name!r}")
        return topic

    # -- lookups -------------------------------------------------------------

    def topic(self, name: str) -> Topic | None:
        return self._topics.get(name)

    def topic_by_id(self, topic_id: uuid.UUID) -> Topic | None:
        return self._topics_by_id.get(topic_id)

    def topics(self) -> list[Topic]:
        return list(self._topics.values())

    def partitions(self) -> Iterator[PartitionLog]:
        for topic in list(self._topics.values()):
            yield from topic.partitions

    def partition(self, topic: str, index: int) -> PartitionLog | None:
        found = self._topics.get(topic)
        if found is None or not 0 <= index < len(found.partitions):
            return None
        return found.partitions[index]

    def effective_config(self, name: str) -> dict[str, str]:
        """Kafka defaults, overlaid by the broker's topic defaults, overlaid by the topic's overrides."""
        return {**default_configs(), **self.topic_defaults, **self._require(name).configs}

    # -- admin -------------------------------------------------------------------

    def validate_new_topic(self, name: str, num_partitions: int, configs: Mapping[str, str | None] = {}) -> dict[str, str]:
        """CreateTopics' checks without creating; returns the overrides that would be stored.

        Raises KafkaError: INVALID_TOPIC_EXCEPTION, TOPIC_ALREADY_EXISTS,
        INVALID_PARTITIONS, INVALID_CONFIG.
        """
        validate_topic_name(name)
        if name in self._topics:
            raise KafkaError(ErrorCode.TOPIC_ALREADY_EXISTS, f"topic {name!r} already exists")
        collision_key = name.replace(".", "_")
        for existing in self._topics:
            if existing.replace(".", "_") == collision_key:
                raise KafkaError(
                    ErrorCode.INVALID_TOPIC_EXCEPTION, f"topic {name!r} collides with existing topic {existing!r}"
                )
        if num_partitions < 1:
            raise KafkaError(ErrorCode.INVALID_PARTITIONS, f"number of partitions must be at least 1, got {num_partitions}")
        return validate_topic_configs(configs)

    def create_topic(self, name: str, num_partitions: int, configs: Mapping[str, str | None] = {},
                     *, topic_id: uuid.UUID | None = None) -> Topic:
        """`topic_id`: the id another replica's broker gave the topic (a new one otherwise)."""
        overrides = self.validate_new_topic(name, num_partitions, configs)
        log_config = self._log_config(overrides)
        partitions = [self._open_partition(name, index, log_config, fresh=True) for index in range(num_partitions)]
        topic = Topic(name, topic_id or _new_topic_id(), partitions, overrides)
        self._add(topic)
        self._save_registry()
        return topic

    def delete_topic(self, name: str) -> None:
        """Unregister the topic (durably) first, then remove its partition directories."""
        topic = self._require(name)
        del self._topics[name]
        del self._topics_by_id[topic.topic_id]
        self._save_registry()
        for partition in topic.partitions:
            partition.close()
            doomed = self.data_dir / f"{topic.topic_id.hex}-{partition.index}{DELETED_DIR_SUFFIX}"
            partition.directory.rename(doomed)
            shutil.rmtree(doomed)

    def create_partitions(self, name: str, new_total: int, *, validate_only: bool = False) -> None:
        """Grow a topic to `new_total` partitions; INVALID_PARTITIONS unless it is larger."""
        topic = self._require(name)
        current = len(topic.partitions)
        if new_total <= current:
            raise KafkaError(
                ErrorCode.INVALID_PARTITIONS,
                f"topic {name!r} has {current} partitions; the new count must be larger, got {new_total}",
            )
        if validate_only:
            return
        log_config = self._log_config(topic.configs)
        topic.partitions.extend(
            self._open_partition(name, index, log_config, fresh=True) for index in range(current, new_total)
        )
        self._save_registry()

    def alter_topic_configs(
        self,
        name: str,
        set: Mapping[str, str | None],
        delete: Iterable[str] = (),
        *,
        validate_only: bool = False,
    ) -> None:
        """Set and remove per-topic overrides, validated like create; applied to the partitions at once."""
        topic = self._require(name)
        overrides = dict(topic.configs)
        for key in delete:
            if key not in TOPIC_CONFIGS:
                raise KafkaError(ErrorCode.INVALID_CONFIG, f"unknown topic config name: {key}")
            overrides.pop(key, None)
        overrides.update(validate_topic_configs(set))
        log_config = self._log_config(overrides)
        if validate_only:
            return
        topic.configs = overrides
        for partition in topic.partitions:
            partition.config = log_config
        self._save_registry()

    # -- broker-wide state -------------------------------------------------------

    def allocate_producer_id(self) -> int:
        """A producer id never handed out before, across restarts.

        Ids are reserved durably a block at a time, so only one id in
        PRODUCER_ID_BLOCK_SIZE costs a file write; a restart skips the rest of
        the current block.
        """
        if self._next_producer_id >= self._producer_id_block_end:
            self._producer_id_block_end = self._next_producer_id + PRODUCER_ID_BLOCK_SIZE
            write_json_atomically(self.data_dir / PRODUCER_IDS_FILE, {"block_end": self._producer_id_block_end})
        producer_id = self._next_producer_id
        self._next_producer_id += 1
        return producer_id

    # -- background work (the broker's maintenance task) ---------------------------

    def apply_retention(self, now_ms: int | None = None) -> int:
        """One retention sweep over every partition; returns the number of segments deleted."""
        now = self._clock() if now_ms is None else now_ms
        return sum(partition.apply_retention(now) for partition in self.partitions())

    def partitions_needing_flush(self, now_ms: int) -> list[PartitionLog]:
        return [partition for partition in self.partitions() if partition.needs_flush(now_ms)]

    def cleaning_jobs(self, now_ms: int, dedupe_buffer_bytes: int) -> Iterator[CleaningJob]:
        """Compaction work due now, dirtiest partition first (see cleaner.py)."""
        return cleaning_jobs(self.partitions(), now_ms, dedupe_buffer_bytes)

    def flush(self) -> None:
        for partition in self.partitions():
            partition.flush()

    def abandon(self) -> None:
        """Stop as a crash would: every partition loses what was never fsynced, no clean-shutdown marker."""
        for partition in self.partitions():
            partition.abandon()
        self._topics.clear()
        self._topics_by_id.clear()

    def close(self) -> None:
        """Close every partition, checkpoint recovery points, then mark the shutdown clean with their states.

        Where the filesystem can be synced at once, the partitions are closed
        without fsyncs and one syncfs covers them all.  The marker carries
        each partition's state instead of a producer snapshot per partition.
        """
        states: dict[str, PartitionState] = {}
        for topic in self._topics.values():
            for partition in topic.partitions:
                partition.close(sync=not CAN_SYNC_FILESYSTEM, snapshot=False)
                state = partition.clean_state()
                if state is not None:
                    states[state_key(topic.topic_id, partition.index)] = state
        if CAN_SYNC_FILESYSTEM:
            sync_filesystem(self.data_dir)
        self.checkpoint_recovery_points()
        write_marker(self.data_dir, states)
        self._topics.clear()
        self._topics_by_id.clear()
