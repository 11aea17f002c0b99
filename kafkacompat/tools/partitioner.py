"""Kafka's default partitioning, so records land where a Java producer would put them.

Keyed records: ``toPositive(murmur2(key)) % partitions`` with Kafka's
murmur2 (seed 0x9747b28c). Keyless records: sticky, as in KIP-480 — all of
one batch go to one partition, and the next batch picks another at random.
"""

from __future__ import annotations

import random

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's ``Utils.murmur2``: a signed 32-bit hash of ``data``."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    tail = length - length % 4
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = length % 4
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for_key(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class StickyPartitioner:
    """Picks partitions for one topic: by key hash, or the sticky partition for keyless records."""

    def __init__(self, partitions: int, rng: random.Random | None = None) -> None:
        self.partitions = partitions
        self._rng = rng or random.Random()
        self._sticky = self._rng.randrange(partitions)

    def partition(self, key: bytes | None) -> int:
        return self._sticky if key is None else partition_for_key(key, self.partitions)

    def batch_done(self) -> None:
        """A batch was sent: keyless records move to another partition (when there is one)."""
        if self.partitions > 1:
            self._sticky = (self._sticky + self._rng.randrange(1, self.partitions)) % self.partitions
