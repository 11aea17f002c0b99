"""Kafka's default partitioner: murmur2 against Kafka's own test vectors, sticky keyless batches."""

from __future__ import annotations

import random

import pytest
from kafka.partitioner.default import murmur2 as kafka_python_murmur2

from kafkacompat.tools.partitioner import StickyPartitioner, murmur2, partition_for_key

# The expectations of Kafka's UtilsTest.testMurmur2 (clients/src/test/.../utils/UtilsTest.java).
KAFKA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize("data,expected", KAFKA_MURMUR2.items())
def test_murmur2_gives_kafkas_values(data, expected):
    assert murmur2(data) == expected


def test_keyed_partitions_agree_with_kafka_pythons_murmur2():
    rng = random.Random(7)
    keys = [rng.randbytes(rng.randrange(0, 40)) for _ in range(500)]
    for partitions in (1, 3, 7, 64):
        theirs = [(kafka_python_murmur2(k) & 0x7FFFFFFF) % partitions for k in keys]
        assert [partition_for_key(k, partitions) for k in keys] == theirs


def test_keyless_records_stick_to_one_partition_until_a_batch_is_sent():
    partitioner = StickyPartitioner(5, random.Random(1))
    seen = []
    for _ in range(50):
        batch = {partitioner.partition(None) for _ in range(10)}
        assert len(batch) == 1
        seen.append(batch.pop())
        partitioner.batch_done()
    assert all(a != b for a, b in zip(seen, seen[1:]))  # each batch moves on
    assert set(seen) == set(range(5))


def test_keyed_records_ignore_the_sticky_partition_and_one_partition_stays_put():
    partitioner = StickyPartitioner(4, random.Random(2))
    assert partitioner.partition(b"foobar") == (-790332482 & 0x7FFFFFFF) % 4
    single = StickyPartitioner(1)
    single.batch_done()
    assert single.partition(None) == 0
