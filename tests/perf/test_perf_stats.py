"""The latency histogram's buckets and percentiles, and throughput figures."""

from __future__ import annotations

import pytest

from kafkacompat.perf.stats import LatencyHistogram, Throughput, bucket_bounds, bucket_of


def test_buckets_are_exact_below_128_us():
    for value in range(128):
        assert bucket_of(value) == value
        assert bucket_bounds(value) == (value, value)


def test_buckets_tile_the_integers_without_gaps_or_overlaps():
    previous_high = -1
    for index in range(128 * 20):
        low, high = bucket_bounds(index)
        assert low == previous_high + 1
        assert bucket_of(low) == index and bucket_of(high) == index
        previous_high = high


@pytest.mark.parametrize("value", [128, 129, 255, 256, 1000, 12_345, 999_999, 123_456_789])
def test_a_bucket_is_at_most_one_64th_of_its_values_wide(value):
    low, high = bucket_bounds(bucket_of(value))
    assert low <= value <= high
    assert high - low + 1 <= max(1, low // 64)


def test_percentiles_are_nearest_rank():
    histogram = LatencyHistogram()
    for value in range(1, 101):
        histogram.record_us(value)
    assert histogram.percentile_us(50) == 50
    assert histogram.percentile_us(99) == 99
    assert histogram.percentile_us(99.9) == 100
    assert histogram.percentile_us(100) == 100
    assert histogram.percentile_us(1) == 1


def test_p99_9_of_a_thousand_samples_is_the_999th():
    histogram = LatencyHistogram()
    for value in range(1, 1001):
        histogram.record_us(value * 10)  # 10 us .. 10 ms
    reported = histogram.percentile_us(99.9)
    # The 999th sample is 9,990 us; its bucket's upper bound is reported.
    assert 9_990 <= reported <= 9_990 * (1 + 1 / 64)
    assert histogram.percentile_us(100) == 10_000


def test_a_percentile_never_exceeds_the_largest_sample():
    histogram = LatencyHistogram()
    histogram.record_us(1_000)
    assert histogram.percentile_us(50) == 1_000
    assert histogram.max_us == 1_000


def test_seconds_negative_values_and_the_summary():
    histogram = LatencyHistogram()
    histogram.record_seconds(0.002)
    histogram.record_seconds(0.004)
    histogram.record_us(-5)  # two clocks a hair apart: counted as zero
    assert histogram.count == 3
    assert histogram.mean_us == pytest.approx(2_000)
    summary = histogram.summary_ms()
    assert set(summary) == {"avg_ms", "p50_ms", "p99_ms", "p99_9_ms", "max_ms"}
    assert summary["avg_ms"] == 2.0
    # 2,000 us lies in the bucket 2,000..2,015; its upper bound is reported.
    assert summary["p50_ms"] == 2.015
    assert summary["p99_ms"] == summary["p99_9_ms"] == summary["max_ms"] == 4.0


def test_an_empty_histogram_reports_zeros_and_rejects_bad_percentiles():
    histogram = LatencyHistogram()
    assert histogram.percentile_us(99) == 0
    assert histogram.mean_us == 0.0
    with pytest.raises(ValueError):
        histogram.percentile_us(0)
    with pytest.raises(ValueError):
        histogram.percentile_us(100.1)


def test_throughput_rates_in_records_and_mebibytes():
    figures = Throughput(records=200_000, bytes=20 * 1024 * 1024, seconds=2.0)
    assert figures.records_per_s == 100_000
    assert figures.mb_per_s == 10.0
    assert figures.as_dict() == {
        "records": 200_000, "bytes": 20 * 1024 * 1024, "seconds": 2.0,
        "records_per_s": 100_000.0, "mb_per_s": 10.0,
    }
    assert Throughput(5, 5, 0.0).records_per_s == 0.0
