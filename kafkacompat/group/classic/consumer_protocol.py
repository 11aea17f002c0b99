"""What the broker reads inside opaque consumer-protocol bytes: subscribed and assigned partitions.

Member metadata and assignments are client-defined bytes the broker relays
unchanged. For groups of protocol type ``consumer`` Kafka still peeks at the
subscription (ConsumerProtocolSubscription) to know which topics a live group
reads, so that OffsetDelete refuses those (GROUP_SUBSCRIBED_TO_TOPIC) and
retention spares them. Every version (0-3) starts with an int16 version and
the topic list (int32 count, int16-length strings), which is all we read.
Assignments are decoded only to show them (the groups tool, the console).
A KIP-848 group with classic members reads their whole subscription
(topics, owned partitions, rack) and writes their assignments.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from kafkacompat.protocol import DecodeError, decode_data, encode_data

CONSUMER_PROTOCOL_TYPE = "consumer"

_COUNT = struct.Struct(">i")
_LENGTH = struct.Struct(">h")


def subscribed_topics(metadata: bytes) -> frozenset[str] | None:
    """The topics of one ConsumerProtocolSubscription, or None when it does not parse."""
    try:
        pos = 2
        (count,) = _COUNT.unpack_from(metadata, pos)
        pos += _COUNT.size
        if count < 0:
            return None
        topics = []
        for _ in range(count):
            (length,) = _LENGTH.unpack_from(metadata, pos)
            pos += _LENGTH.size
            name = metadata[pos : pos + length]
            if length < 0 or len(name) < length:
                return None
            topics.append(name.decode())
            pos += length
    except (struct.error, UnicodeDecodeError):
        return None
    return frozenset(topics)


def assigned_partitions(assignment: bytes) -> list[tuple[str, int]]:
    """A ConsumerProtocolAssignment's (topic, partition)s; [] when it is not one (another protocol's bytes)."""
    if len(assignment) < 2:
        return []
    (version,) = struct.unpack_from(">h", assignment)
    try:
        decoded = decode_data("consumer_protocol_assignment", min(max(version, 0), 3), assignment[2:])
    except (DecodeError, ValueError):
        return []
    return [(t.topic, p) for t in decoded.assigned_partitions for p in t.partitions]


class Subscription(NamedTuple):
    """A ConsumerProtocolSubscription as the coordinator of a KIP-848 group reads a classic member's."""

    version: int
    topics: tuple[str, ...]
    owned: tuple[tuple[str, tuple[int, ...]], ...]
    rack_id: str | None


def decode_subscription(metadata: bytes) -> Subscription | None:
    """The whole subscription (topics, owned partitions, rack), or None when it does not parse."""
    if len(metadata) < 2:
        return None
    (version,) = struct.unpack_from(">h", metadata)
    if version < 0:
        return None
    try:
        decoded = decode_data("consumer_protocol_subscription", version, metadata[2:])
    except (DecodeError, ValueError):
        return None
    owned = tuple((t.topic, tuple(t.partitions)) for t in decoded.get("owned_partitions") or ())
    return Subscription(version, tuple(decoded.topics), owned, decoded.get("rack_id"))


def encode_subscription(topics: list[str], owned: list[tuple[str, list[int]]], rack_id: str | None) -> bytes:
    """A version-3 ConsumerProtocolSubscription: how Kafka shows a KIP-848 member in DescribeGroups."""
    body = encode_data("consumer_protocol_subscription", 3, {
        "topics": topics, "user_data": None, "generation_id": -1, "rack_id": rack_id,
        "owned_partitions": [{"topic": t, "partitions": p} for t, p in owned],
    })
    return struct.pack(">h", 3) + body


def encode_assignment(assigned: list[tuple[str, list[int]]], version: int = 3) -> bytes:
    """A ConsumerProtocolAssignment of these partitions (every version 0-3 has the same layout)."""
    version = min(max(version, 0), 3)
    body = encode_data("consumer_protocol_assignment", version, {
        "assigned_partitions": [{"topic": t, "partitions": p} for t, p in assigned], "user_data": None,
    })
    return struct.pack(">h", version) + body
