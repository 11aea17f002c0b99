"""``kafkacompat consume TOPIC``: print records, like kafka-console-consumer.sh.

Without ``--group`` it reads every partition (or ``--partition``) from the
log end, the log start (``--from-beginning``) or ``--offset``; with
``--group`` it is a real classic group member (:mod:`.group_member`) that
starts from the group's committed offsets and commits what it has printed.
Fetches go to each partition's leader; control batches (transaction
markers) are skipped. It stops after ``--max-messages`` records, after
``--timeout-ms`` without a new record, or on Ctrl-C.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from typing import Any, Callable

from kafkacompat.client import ApiKey, ClientError, Cluster, check
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.protocol.records import decode_records, scan_valid_batches
from kafkacompat.tools.formatting import DEFAULT_FORMAT, ConsumedRecord, json_line, parse_format
from kafkacompat.tools.group_member import GroupMember

LATEST, EARLIEST = -1, -2
MAX_WAIT_MS = 500
PARTITION_MAX_BYTES = 1024 * 1024
FETCH_MAX_BYTES = 50 * 1024 * 1024
REFRESH_METADATA = {ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.LEADER_NOT_AVAILABLE, ErrorCode.UNKNOWN_LEADER_EPOCH,
                    ErrorCode.FENCED_LEADER_EPOCH, ErrorCode.KAFKA_STORAGE_ERROR}


def start_offset(text: str) -> int:
    named = {"earliest": EARLIEST, "latest": LATEST}
    if text in named:
        return named[text]
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected an offset, earliest or latest, got {text!r}")
    return int(text)


def record_format(text: str) -> Callable[[ConsumedRecord], str]:
    try:
        return parse_format(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from kafkacompat.tools import common_options

    parser = sub.add_parser("consume", help="print a topic's records")
    parser.add_argument("topic")
    parser.add_argument("--from-beginning", action="store_true",
                        help="start at the log start (with --group: where the group has no committed offset)")
    parser.add_argument("--group", help="consume as a member of this consumer group, committing offsets")
    parser.add_argument("--partition", type=int, help="read only this partition")
    parser.add_argument("--offset", type=start_offset, help="with --partition: an offset, earliest or latest")
    parser.add_argument("--max-messages", type=int, help="stop after this many records")
    parser.add_argument("--timeout-ms", type=int, help="stop when no record arrives for this long")
    parser.add_argument("--format", type=record_format, default=parse_format(DEFAULT_FORMAT), metavar="TEMPLATE",
                        help="e.g. '{partition}:{offset} {key}={value} [{headers}] @{timestamp}' (default {value})")
    common_options(parser, leaf=False)
    return parser


class Fetcher:
    """Positions of one topic's partitions and the Fetch requests that advance them. Not thread-safe."""

    def __init__(self, cluster: Cluster, topic: str, reset_to: int) -> None:
        self.cluster = cluster
        self.topic = topic
        self.reset_to = reset_to
        self.positions: dict[int, int] = {}
        self.refresh()

    def refresh(self) -> None:
        described = self.cluster.topic(self.topic)
        self.topic_id: uuid.UUID = described.topic_id
        self.leaders = {p.partition_index: p.leader_id for p in described.partitions}

    def assign(self, positions: dict[int, int]) -> None:
        """Read these partitions from these offsets (EARLIEST/LATEST resolved at the leaders)."""
        unknown = sorted(set(positions) - set(self.leaders))
        if unknown:
            raise ClientError(f"topic {self.topic!r} has no partition {unknown[0]} (it has {len(self.leaders)})")
        self.positions = dict(positions)
        for special in (EARLIEST, LATEST):
            named = [p for p, o in positions.items() if o == special]
            if named:
                offsets = self.cluster.list_offsets([(self.topic, p) for p in named], special)
                self.positions.update({p: offsets[self.topic, p] for p in named})

    def fetch(self) -> list[ConsumedRecord]:
        """One Fetch per leader (each waiting up to MAX_WAIT_MS for data); the records past the positions."""
        by_leader: dict[int, list[int]] = {}
        for partition in sorted(self.positions):
            by_leader.setdefault(self.leaders[partition], []).append(partition)
        records: list[ConsumedRecord] = []
        for leader, partitions in by_leader.items():
            answer = self.cluster.node(leader).send(ApiKey.FETCH, {
                "replica_id": -1, "max_wait_ms": MAX_WAIT_MS, "min_bytes": 1, "max_bytes": FETCH_MAX_BYTES,
                "isolation_level": 0, "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [],
                "rack_id": "", "topics": [{"topic": self.topic, "topic_id": self.topic_id, "partitions": [
                    {"partition": p, "fetch_offset": self.positions[p], "partition_max_bytes": PARTITION_MAX_BYTES}
                    for p in partitions]}]}, lowest=4)
            check(answer.error_code, f"Fetch from broker {leader}")
            for topic in answer.responses:
                for result in topic.partitions:
                    records.extend(self._take(result))
        return records

    def _take(self, result: Any) -> list[ConsumedRecord]:
        partition, code = result.partition_index, result.error_code
        if code == ErrorCode.OFFSET_OUT_OF_RANGE:
            self.assign({**self.positions, partition: self.reset_to})
            return []
        if code in REFRESH_METADATA:
            self.refresh()
            return []
        check(code, f"Fetch {self.topic}-{partition}")
        position = self.positions[partition]
        taken = []
        data = memoryview(result.records or b"")
        for header in scan_valid_batches(data):
            if header.last_offset < position:
                continue
            if not header.is_control:
                taken.extend(
                    ConsumedRecord(self.topic, partition, r.offset, r.timestamp, r.key, r.value, r.headers)
                    for r in decode_records(data[header.position : header.end]) if r.offset >= position)
            position = header.last_offset + 1
        self.positions[partition] = position
        return taken


def run(args: argparse.Namespace, cluster: Cluster) -> int:
    if args.offset is not None and args.partition is None:
        raise ClientError("--offset needs --partition")
    if args.group and args.partition is not None:
        raise ClientError("--group and --partition do not go together: the group assigns partitions")
    reset_to = EARLIEST if args.from_beginning else LATEST
    fetcher = Fetcher(cluster, args.topic, reset_to)
    member = GroupMember(cluster, args.group, args.topic) if args.group else None
    render = json_line if args.json else args.format
    printed = 0
    try:
        if member is None:
            partitions = [args.partition] if args.partition is not None else sorted(fetcher.leaders)
            start = args.offset if args.offset is not None else reset_to
            fetcher.assign({p: start for p in partitions})
        else:
            _join(member, fetcher)
        last_record = time.monotonic()
        while args.max_messages is None or printed < args.max_messages:
            if member is not None and not member.heartbeat():
                _join(member, fetcher)
            records = fetcher.fetch() if fetcher.positions else _idle()
            if records:
                last_record = time.monotonic()
            elif args.timeout_ms is not None and (time.monotonic() - last_record) * 1000 >= args.timeout_ms:
                break
            shown = records[: None if args.max_messages is None else args.max_messages - printed]
            sys.stdout.writelines(render(record) + "\n" for record in shown)
            sys.stdout.flush()
            printed += len(shown)
            for record in reversed(records[len(shown):]):  # not printed: read (and commit) them next time
                fetcher.positions[record.partition] = record.offset
            if member is not None and records:
                member.commit(fetcher.positions)
    except KeyboardInterrupt:
        pass
    finally:
        if member is not None and member.generation_id >= 0:
            member.commit(fetcher.positions)
            member.leave()
    print(f"Processed a total of {printed} messages", file=sys.stderr)
    return 0


def _join(member: GroupMember, fetcher: Fetcher) -> None:
    """(Re)join and start each assigned partition at its committed offset, else where the reset points."""
    assigned = member.join()
    committed = member.committed(assigned)
    fetcher.assign({p: committed.get(p, fetcher.reset_to) for p in assigned})


def _idle() -> list[ConsumedRecord]:
    """A member with no partitions waits as a fetch would."""
    time.sleep(MAX_WAIT_MS / 1000)
    return []
