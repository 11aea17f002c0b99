"""Property: cutting the active segment at any byte, then reopening, keeps exactly the whole batches before the cut."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from kafkacompat.log.partition_log import PartitionLog
from kafkacompat.log.topic_config import LogConfig, default_configs
from tests.log.batch_builder import build_batch, stored_batch, values

CONFIG = LogConfig.from_strings({**default_configs(), "index.interval.bytes": "64"})


def _clock() -> int:
    return 1_700_000_000_000


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=15),
    cut_fraction=st.floats(min_value=0.0, max_value=1.0),
    index_cut=st.integers(min_value=0, max_value=40),
)
def test_reopen_after_a_cut_keeps_the_whole_batches_before_it(counts, cut_fraction, index_cut):
    directory = Path(tempfile.mkdtemp()) / "t-0"
    try:
        log = PartitionLog("t", 0, directory, CONFIG, _clock)
        stored = []
        for count in counts:
            result = log.append(build_batch(values(count, 17)))
            stored.append((result.base_offset, result.last_offset, stored_batch(values(count, 17), base_offset=result.base_offset)))
        segment = directory / "00000000000000000000.log"
        index = directory / "00000000000000000000.index"
        total = segment.stat().st_size
        cut = int(total * cut_fraction)
        with open(segment, "r+b") as f:
            f.truncate(cut)
        with open(index, "r+b") as f:  # the index may have lost entries or kept some past the cut
            f.truncate(min(index.stat().st_size, index_cut * 4))

        reopened = PartitionLog("t", 0, directory, CONFIG, _clock)
        kept, end = [], 0
        for base, last, data in stored:
            if end + len(data) > cut:
                break
            kept.append((base, last, data))
            end += len(data)
        expected_end = kept[-1][1] + 1 if kept else 0
        assert reopened.log_end_offset == expected_end
        assert segment.stat().st_size == end
        assert reopened.read(0, 1 << 20) == b"".join(data for _, _, data in kept)
        for base, last, data in kept:
            assert reopened.read(last, 1) == data
        assert reopened.append(build_batch([b"after"])).base_offset == expected_end
        reopened.close()
    finally:
        shutil.rmtree(directory.parent)


@settings(max_examples=40, deadline=None)
@given(
    batches=st.lists(
        st.lists(st.integers(min_value=0, max_value=500), min_size=1, max_size=6), min_size=1, max_size=25
    ),
    probes=st.lists(st.integers(min_value=-1, max_value=502), min_size=1, max_size=10),
    reopen=st.booleans(),
)
def test_timestamp_lookups_match_a_brute_force_scan(batches, probes, reopen):
    """Out-of-order timestamps, several segments, a dense time index: lookups stay exact."""
    from tests.log.batch_builder import RecordSpec

    config = LogConfig.from_strings({**default_configs(), "index.interval.bytes": "50", "segment.bytes": "400"})
    directory = Path(tempfile.mkdtemp()) / "t-0"
    try:
        log = PartitionLog("t", 0, directory, config, _clock)
        records = []  # (offset, timestamp)
        base_time = 1_700_000_000_000
        for stamps in batches:
            specs = [RecordSpec(b"x", timestamp=base_time + t) for t in stamps]
            result = log.append(build_batch(specs, base_timestamp=base_time + stamps[0]))
            records += [(result.base_offset + i, base_time + t) for i, t in enumerate(stamps)]
        if reopen:
            log.close()
            log = PartitionLog("t", 0, directory, config, _clock)
        for probe in probes:
            target = base_time + probe
            expected = next(((o, t) for o, t in records if t >= target), None)
            assert log.offset_for_timestamp(target) == expected
        top = max(t for _, t in records)
        assert log.max_timestamp_offset() == next((o, t) for o, t in records if t == top)
        log.close()
    finally:
        shutil.rmtree(directory.parent)
