"""Valid-but-odd requests, generated from the message specs.

Each body decodes under our own codec, yet probes the edges a handler must
survive: null wherever a field is nullable, empty and large arrays, extreme
integers, empty, overlong and ill-formed names, topic ids no broker knows,
record sets that are empty, garbage or real batches with and without keys,
and (in flexible versions) unknown tagged fields, which Kafka skips.

Topic and group names come from a small fixed pool, so that a long campaign
keeps hitting the same resources (creating, filling, deleting them) instead
of growing the broker's state without bound. Integer fields whose Kafka name
says they are a wait (``*timeout_ms``, ``*wait_ms``) stay short, so that a
long-poll or a rebalance does not hold a connection for days.
"""

from __future__ import annotations

import random
import struct
import uuid
from typing import Any

from kafkacompat.protocol import encode_request, encode_request_frame
from kafkacompat.protocol.primitives import encode_uvarint
from kafkacompat.protocol.records import BatchHeader, rebuild_batch
from kafkacompat.protocol.specs import ApiSpec, FieldSpec

NAME_POOL = tuple(f"fuzz-{n}" for n in range(8))
ODD_STRINGS = ("", ".", "..", "a" * 250, "bad name!", "\u00e9\u0000\u2603", "__consumer_offsets")
ODD_INTS = {
    "int8": (-128, -1, 127),
    "int16": (-32768, -1, 32767),
    "int32": (-(2**31), -1, 2**31 - 1),
    "int64": (-(2**63), -1, 2**63 - 1),
    "uint16": (0, 65535),
}
SHORT_WAITS_MS = (-1, 0, 1, 50, 6000)
LARGE_ARRAY = 1000
# Tags far above any Kafka assigns, so they are unknown in every version.
UNKNOWN_TAGS = (90, 10_000)


def _zigzag(value: int) -> bytes:
    return encode_uvarint((value << 1) ^ (value >> 63))


def _record(offset_delta: int, key: bytes | None, value: bytes | None, timestamp_delta: int = 0) -> bytes:
    def nullable(data: bytes | None) -> bytes:
        return _zigzag(-1) if data is None else _zigzag(len(data)) + data

    body = b"\x00" + _zigzag(timestamp_delta) + _zigzag(offset_delta) + nullable(key) + nullable(value) + _zigzag(0)
    return _zigzag(len(body)) + body


def record_batch(keys: list[bytes | None], *, base_timestamp: int, producer_id: int = -1) -> bytes:
    """An uncompressed magic-2 batch with a valid CRC, one record per key."""
    records = b"".join(_record(delta, key, b"v%d" % delta) for delta, key in enumerate(keys))
    header = BatchHeader(0, 0, 0, -1, 2, 0, 0, len(keys) - 1, base_timestamp, base_timestamp,
                         producer_id, -1 if producer_id < 0 else 0, -1 if producer_id < 0 else 0, len(keys))
    return rebuild_batch(header, records, len(keys), base_timestamp)


def with_unknown_tagged_fields(body: bytes, rng: random.Random) -> bytes:
    """A flexible body whose top-level tagged section (its last byte: empty) carries unknown tags instead."""
    tags = sorted(rng.sample(UNKNOWN_TAGS, rng.randint(1, len(UNKNOWN_TAGS))))
    section = encode_uvarint(len(tags))
    for tag in tags:
        payload = rng.randbytes(rng.randint(0, 8))
        section += encode_uvarint(tag) + encode_uvarint(len(payload)) + payload
    return body[:-1] + section


class OddRequests:
    """Builds odd request bodies and frames for any (API key, version) in ``specs``; deterministic per seed."""

    def __init__(self, specs: dict[int, ApiSpec], rng: random.Random, *, now_ms: int = 0) -> None:
        self.specs = specs
        self.rng = rng
        self.now_ms = now_ms

    def body(self, api_key: int, version: int) -> dict[str, Any]:
        return self._struct(self.specs[api_key].request, version, depth=0)

    def frame(self, api_key: int, version: int, correlation_id: int) -> tuple[bytes, dict[str, Any]]:
        """A complete request frame and the body it carries."""
        spec = self.specs[api_key]
        body = self.body(api_key, version)
        unknown_tags = spec.is_flexible(version) and self.rng.random() < 0.3
        if unknown_tags:
            # Known top-level tags give way, so the body ends with an empty tagged section to replace.
            body = {name: value for name, value in body.items()
                    if not next(f for f in spec.request if f.name == name).tagged_in(version)}
        encoded = encode_request(api_key, version, body)
        if unknown_tags:
            encoded = with_unknown_tagged_fields(encoded, self.rng)
        client_id = self.rng.choice(("fuzz", None, ""))
        return encode_request_frame(api_key, version, correlation_id, client_id, encoded), body

    def _struct(self, fields: tuple[FieldSpec, ...], version: int, depth: int) -> dict[str, Any]:
        return {field.name: self._field(field, version, depth) for field in fields if field.present_in(version)}

    def _field(self, field: FieldSpec, version: int, depth: int) -> Any:
        rng = self.rng
        if field.nullable_in(version) and rng.random() < 0.25:
            return None
        if not field.is_array:
            return self._element(field, version, depth)
        roll = rng.random()
        if roll < 0.25:
            count = 0
        elif roll < 0.27 and depth == 0:
            count = LARGE_ARRAY
        else:
            count = rng.randint(1, 3)
        if count == LARGE_ARRAY and field.is_struct:
            # One odd element repeated: large arrays test counts and loops, not variety.
            element = self._element(field, version, depth + 1)
            return [element] * count
        return [self._element(field, version, depth + 1) for _ in range(count)]

    def _element(self, field: FieldSpec, version: int, depth: int) -> Any:
        if field.is_struct:
            return self._struct(field.fields, version, depth + 1)
        return self._scalar(field.element_type, field.name)

    def _scalar(self, type_: str, name: str) -> Any:
        rng = self.rng
        if type_ in ODD_INTS:
            if name.endswith(("timeout_ms", "wait_ms")):
                return rng.choice(SHORT_WAITS_MS)
            return rng.choice(ODD_INTS[type_]) if rng.random() < 0.3 else rng.randint(0, 3)
        if type_ == "bool":
            return rng.random() < 0.5
        if type_ == "float64":
            return rng.choice((0.0, -1.0, 0.5, 1e308))
        if type_ == "string":
            return rng.choice(NAME_POOL) if rng.random() < 0.7 else rng.choice(ODD_STRINGS)
        if type_ == "bytes":
            return rng.randbytes(rng.randint(0, 16))
        if type_ == "uuid":
            return uuid.UUID(int=0) if rng.random() < 0.3 else uuid.UUID(int=rng.getrandbits(128))
        if type_ == "records":
            return self._records()
        raise ValueError(f"no odd values for type {type_}")

    def _records(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.15:
            return b""
        if roll < 0.3:
            return rng.randbytes(rng.randint(1, 80))
        keys = [rng.choice((None, b"k", b"")) for _ in range(rng.randint(1, 4))]
        timestamp = self.now_ms + rng.choice((0, 0, -1, 10**12, -(10**12)))
        batch = record_batch(keys, base_timestamp=timestamp, producer_id=rng.choice((-1, -1, 7)))
        return batch + batch if rng.random() < 0.1 else batch


def mutate(frame: bytes, rng: random.Random) -> bytes:
    """Flip, insert and delete a few bytes after the size prefix, then make the prefix honest again."""
    data = bytearray(frame)
    for _ in range(rng.randint(1, 8)):
        position = rng.randint(4, max(4, len(data) - 1))
        action = rng.random()
        if action < 0.5 and position < len(data):
            data[position] = rng.randrange(256)
        elif action < 0.75:
            data[position:position] = rng.randbytes(rng.randint(1, 16))
        elif position < len(data):
            del data[position]
    return struct.pack(">i", len(data) - 4) + bytes(data[4:])


def random_frame(rng: random.Random) -> bytes:
    """Random bytes, with an honest size prefix or (one time in four) a lying one."""
    payload = rng.randbytes(rng.randint(0, 512))
    if rng.random() < 0.25:
        return struct.pack(">i", rng.randint(-(2**31), 2**31 - 1)) + payload
    return struct.pack(">i", len(payload)) + payload
