"""``kafkacompat produce TOPIC``: one record per stdin line, like kafka-console-producer.sh.

Records are batched per partition into RecordBatch v2 (encoded here, with
the chosen codec) and sent in one Produce request per leader broker. Input
is read as it arrives, so a piped file goes out in full batches while typed
lines go out one by one. Partitions are chosen as Kafka's producer chooses
them (:mod:`kafkacompat.tools.partitioner`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Iterator

from kafkacompat.client import ApiKey, ClientError, Cluster, check
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.protocol.records import Compression, encode_batch
from kafkacompat.tools import output
from kafkacompat.tools.partitioner import StickyPartitioner

ACKS = {"0": 0, "1": 1, "all": -1, "-1": -1}
BATCH_BYTES = 64 * 1024
READ_BYTES = 64 * 1024
PRODUCE_TIMEOUT_MS = 30_000
RETRIES = 5
RETRIABLE = {ErrorCode.NOT_LEADER_OR_FOLLOWER, ErrorCode.LEADER_NOT_AVAILABLE, ErrorCode.REQUEST_TIMED_OUT,
             ErrorCode.NOT_ENOUGH_REPLICAS, ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND}
Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]


def header_pair(text: str) -> tuple[str, bytes]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value.encode()


def acks(text: str) -> int:
    if text not in ACKS:
        raise argparse.ArgumentTypeError(f"acks must be 0, 1 or all, got {text!r}")
    return ACKS[text]


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from kafkacompat.tools import common_options

    parser = sub.add_parser("produce", help="send stdin lines to a topic, one record per line")
    parser.add_argument("topic")
    parser.add_argument("--key-separator", metavar="SEP",
                        help="each line is KEY SEP VALUE (without it, lines are values with no key)")
    parser.add_argument("--header", type=header_pair, action="append", default=[], metavar="NAME=VALUE",
                        help="a header on every record (repeatable)")
    parser.add_argument("--partition", type=int, help="every record to this partition (default: by key)")
    parser.add_argument("--compression", choices=[c.name.lower() for c in Compression], default="none")
    parser.add_argument("--acks", type=acks, default=-1, help="0, 1 or all (default all)")
    common_options(parser, leaf=False)
    return parser


class Producer:
    """Pending records per partition of one topic; ``flush`` sends them, one Produce request per leader.

    One batch per partition per request, at most about ``BATCH_BYTES`` of
    record data. Not thread-safe.
    """

    def __init__(self, cluster: Cluster, topic: str, *, acks: int, compression: Compression,
                 partition: int | None = None) -> None:
        self.cluster = cluster
        self.topic = topic
        self.acks = acks
        self.compression = compression
        self._refresh_leaders()
        if partition is not None and partition not in self.leaders:
            raise ClientError(f"topic {topic!r} has no partition {partition} (it has {len(self.leaders)})")
        self.fixed_partition = partition
        self.partitioner = StickyPartitioner(len(self.leaders))
        self.pending: dict[int, list[Record]] = {}
        self.pending_bytes: dict[int, int] = {}
        self.sent = 0

    def _refresh_leaders(self) -> None:
        described = self.cluster.topic(self.topic, auto_create=True)
        self.leaders = {p.partition_index: p.leader_id for p in described.partitions}

    def add(self, record: Record) -> None:
        key, value, headers = record
        partition = self.fixed_partition if self.fixed_partition is not None else self.partitioner.partition(key)
        self.pending.setdefault(partition, []).append(record)
        size = self.pending_bytes.get(partition, 0) + len(key or b"") + len(value or b"") + 16
        self.pending_bytes[partition] = size
        if size >= BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        batches = {p: encode_batch(records, int(time.time() * 1000), self.compression)
                   for p, records in self.pending.items()}
        for attempt in range(RETRIES + 1):
            batches = self._send(batches)
            if not batches:
                break
            if attempt == RETRIES:
                raise ClientError(f"gave up on partitions {sorted(batches)} of {self.topic!r} after {RETRIES} retries")
            time.sleep(0.1 * (attempt + 1))
            self._refresh_leaders()
        self.sent += sum(len(r) for r in self.pending.values())
        self.pending.clear()
        self.pending_bytes.clear()
        self.partitioner.batch_done()

    def _send(self, batches: dict[int, bytes]) -> dict[int, bytes]:
        """Send each batch to its leader; the batches to retry after a retriable error."""
        by_leader: dict[int, list[int]] = {}
        for partition in sorted(batches):
            by_leader.setdefault(self.leaders[partition], []).append(partition)
        retry = {}
        for leader, partitions in by_leader.items():
            body = {"transactional_id": None, "acks": self.acks, "timeout_ms": PRODUCE_TIMEOUT_MS,
                    "topic_data": [{"name": self.topic, "partition_data": [
                        {"index": p, "records": batches[p]} for p in partitions]}]}
            answer = self.cluster.node(leader).send(ApiKey.PRODUCE, body, lowest=3, expect_response=self.acks != 0)
            if answer is None:
                continue
            for topic in answer.responses:
                for result in topic.partition_responses:
                    if result.error_code in RETRIABLE:
                        retry[result.index] = batches[result.index]
                    else:
                        check(result.error_code, f"produce to {self.topic}-{result.index}", result.error_message)
        return retry


def read_lines(fd: int) -> Iterator[list[bytes]]:
    """Complete lines (without their end of line) as they arrive on ``fd``, a read's worth at a time."""
    rest = b""
    while chunk := os.read(fd, READ_BYTES):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield [line[:-1] if line.endswith(b"\r") else line for line in lines]
    if rest:
        yield [rest]


def parse_line(line: bytes, number: int, separator: bytes | None, headers: list[tuple[str, bytes | None]]) -> Record:
    if separator is None:
        return None, line, headers
    key, sep, value = line.partition(separator)
    if not sep:
        raise ClientError(f"no key separator {separator.decode()!r} on line {number}")
    return key, value, headers


def run(args: argparse.Namespace, cluster: Cluster) -> int:
    producer = Producer(cluster, args.topic, acks=args.acks, compression=Compression[args.compression.upper()],
                        partition=args.partition)
    separator = None if args.key_separator is None else args.key_separator.encode()
    headers: list[tuple[str, bytes | None]] = list(args.header)
    number = 0
    with output.counter(f"producing to {args.topic}", enabled=not sys.stdin.isatty()) as shown:
        for lines in read_lines(sys.stdin.fileno()):
            for line in lines:
                number += 1
                producer.add(parse_line(line, number, separator, headers))
            producer.flush()
            shown(producer.sent)
    summary: dict[str, Any] = {"topic": args.topic, "records": producer.sent}
    output.report(args.json, summary, "")
    return 0
