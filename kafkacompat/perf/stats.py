"""Latency histograms and throughput figures for the perf tools.

Latencies arrive once per record (delivery callbacks, consumed records), so
recording must be cheap and memory must not grow with the run: a log-linear
histogram in microseconds, exact below 128 us and within 1/64 (about 1.6 %)
above, the same trade HdrHistogram makes with two significant digits.
"""

from __future__ import annotations

from dataclasses import dataclass

# Values below 2**_EXACT_BITS us get a bucket each; above, each power of two is
# split into 2**(_EXACT_BITS - 1) buckets.
_EXACT_BITS = 7
_EXACT_LIMIT = 1 << _EXACT_BITS
_HALF = _EXACT_LIMIT >> 1
MIB = 1024 * 1024


def bucket_of(value_us: int) -> int:
    """Index of the bucket holding ``value_us`` (a non-negative integer)."""
    if value_us < _EXACT_LIMIT:
        return value_us
    shift = value_us.bit_length() - _EXACT_BITS
    return _HALF * shift + (value_us >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """Smallest and largest microsecond value that fall in bucket ``index``."""
    if index < _EXACT_LIMIT:
        return index, index
    shift, offset = divmod(index - _EXACT_LIMIT, _HALF)
    shift += 1
    low = (_HALF + offset) << shift
    return low, low + (1 << shift) - 1


class LatencyHistogram:
    """Counts of latencies by bucket; percentiles by nearest rank.

    Not thread-safe: each histogram is fed by one thread (librdkafka serves
    delivery callbacks on the thread that polls).
    """

    def __init__(self) -> None:
        self._counts: list[int] = []
        self.count = 0
        self._total_us = 0
        self.max_us = 0

    def record_us(self, value_us: int) -> None:
        if value_us < 0:
            value_us = 0  # clocks of two processes may disagree by a hair
        index = bucket_of(value_us)
        counts = self._counts
        if index >= len(counts):
            counts.extend([0] * (index + 1 - len(counts)))
        counts[index] += 1
        self.count += 1
        self._total_us += value_us
        if value_us > self.max_us:
            self.max_us = value_us

    def record_seconds(self, value_s: float) -> None:
        self.record_us(round(value_s * 1_000_000))

    def percentile_us(self, percent: float) -> int:
        """Nearest rank: the smallest bucket value with at least ``percent`` % of samples at or below it.

        A bucket is represented by its upper bound (capped at the largest value
        seen), so a reported percentile never understates the latency.
        """
        if not 0 < percent <= 100:
            raise ValueError(f"percentile must be in (0, 100], got {percent}")
        if self.count == 0:
            return 0
        # Integer arithmetic for the rank, so 99.9 % of 1000 is exactly 999.
        rank = -(-round(percent * 1000) * self.count // 100_000)
        seen = 0
        for index, bucket_count in enumerate(self._counts):
            seen += bucket_count
            if seen >= rank:
                return min(bucket_bounds(index)[1], self.max_us)
        return self.max_us

    @property
    def mean_us(self) -> float:
        return self._total_us / self.count if self.count else 0.0

    def summary_ms(self) -> dict[str, float]:
        """The figures the reports print: avg, p50, p99, p99.9 and max, in milliseconds."""
        return {
            "avg_ms": round(self.mean_us / 1000, 3),
            "p50_ms": self.percentile_us(50) / 1000,
            "p99_ms": self.percentile_us(99) / 1000,
            "p99_9_ms": self.percentile_us(99.9) / 1000,
            "max_ms": self.max_us / 1000,
        }


@dataclass(frozen=True)
class Throughput:
    """Records and payload bytes moved in ``seconds``; MB means MiB, as Kafka's perf tools use."""

    records: int
    bytes: int
    seconds: float

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / MIB / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, float]:
        return {
            "records": self.records,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "records_per_s": round(self.records_per_s, 1),
            "mb_per_s": round(self.mb_per_s, 3),
        }
