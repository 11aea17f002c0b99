"""Record-level refusals (KIP-467): which records of a batch fail, and what Produce reports for them."""

from __future__ import annotations

import pytest

from kafkacompat.protocol.errors import ErrorCode, RecordValidationError
from tests.log.batch_builder import DEFAULT_TIMESTAMP as T0
from tests.log.batch_builder import GZIP, NONE, ZSTD, RecordSpec, build_batch

HOUR_MS = 3_600_000
NO_KEY = "Compacted topic cannot accept message without key in topic partition t-0"


def refusal(log, batch) -> RecordValidationError:
    with pytest.raises(RecordValidationError) as info:
        log.append(batch)
    assert log.log_end_offset == 0 and log.size_in_bytes == 0
    return info.value


@pytest.mark.parametrize("codec", [NONE, GZIP, ZSTD], ids=["none", "gzip", "zstd"])
def test_keyless_records_on_a_compacted_topic_are_named_one_by_one(open_log, codec):
    log = open_log(cleanup_policy="compact")
    specs = [RecordSpec(b"a", key=b"k"), RecordSpec(b"b"), RecordSpec(b"c", key=b"k"), RecordSpec(b"d"),
             RecordSpec(b"e"), RecordSpec(b"f")]
    error = refusal(log, build_batch(specs, compression=codec))
    assert error.code == ErrorCode.INVALID_RECORD
    assert error.record_errors == [(1, NO_KEY), (3, NO_KEY), (4, NO_KEY), (5, NO_KEY)]
    assert error.message == (
        "One or more records have been rejected due to 4 record errors in total, and only showing the first "
        f"three errors at most: [RecordError(batchIndex=1, message='{NO_KEY}'), "
        f"RecordError(batchIndex=3, message='{NO_KEY}'), RecordError(batchIndex=4, message='{NO_KEY}')]"
    )


def test_keyed_batches_pass_and_keys_are_not_walked_on_delete_topics(open_log):
    assert open_log(cleanup_policy="compact,delete").append(build_batch([RecordSpec(b"a", key=b"")])).base_offset == 0
    assert open_log(cleanup_policy="delete").append(build_batch([RecordSpec(b"no key")])).last_offset == 1


def test_records_too_far_ahead_are_named_with_invalid_timestamp(open_log, clock):
    clock.now = T0
    log = open_log()
    batch = build_batch([RecordSpec(b"ok"), RecordSpec(b"late", timestamp=T0 + HOUR_MS + 1)], base_timestamp=T0)
    error = refusal(log, batch)
    assert error.code == ErrorCode.INVALID_TIMESTAMP
    assert error.message == "One or more records have been rejected due to invalid timestamp"
    assert error.record_errors == [(1, f"Timestamp {T0 + HOUR_MS + 1} of message with offset 1 is out of range. "
                                       f"The timestamp should be within [{T0 - 2**63 + 1}, {T0 + HOUR_MS}]")]


def test_before_max_ms_refuses_old_records_and_a_key_error_comes_first(open_log, clock):
    clock.now = T0
    log = open_log(cleanup_policy="compact", message_timestamp_before_max_ms="1000")
    batch = build_batch([RecordSpec(b"old", key=b"k", timestamp=T0 - 1001), RecordSpec(b"old, no key",
                         timestamp=T0 - 5000), RecordSpec(b"fine", key=b"k", timestamp=T0 - 1000)], base_timestamp=T0)
    error = refusal(log, batch)
    assert error.code == ErrorCode.INVALID_TIMESTAMP
    assert [index for index, _ in error.record_errors] == [0, 1]
    assert error.record_errors[1] == (1, NO_KEY)


def test_log_append_time_topics_do_not_check_producer_timestamps(open_log, clock):
    clock.now = T0
    log = open_log(message_timestamp_type="LogAppendTime", message_timestamp_before_max_ms="0")
    assert log.append(build_batch([RecordSpec(b"x", timestamp=1)], base_timestamp=1)).base_offset == 0


def test_a_producer_may_not_stamp_log_append_time_on_a_log_append_time_topic(open_log, clock):
    clock.now = T0
    log = open_log(message_timestamp_type="LogAppendTime")
    error = refusal(log, build_batch([RecordSpec(b"v", key=b"k")], base_timestamp=T0, log_append_time=True))
    assert error.code == ErrorCode.INVALID_TIMESTAMP
    assert error.record_errors == [(0, f"Invalid timestamp type in message DefaultRecord(offset=0, timestamp={T0}, "
                                       "key=1 bytes, value=1 bytes). Producer should not set timestamp type to "
                                       "LogAppendTime.")]
