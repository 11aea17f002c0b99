"""The record-level checks of Kafka's LogValidator, for the batches where they can fail.

Walking records means decompressing the batch, so it is done only where a
record can be refused: every batch of a compacted topic (records need a
key), CreateTime batches whose timestamps may be out of range -- the
batch's max timestamp is past ``message.timestamp.after.max.ms``, or the
topic sets a finite ``message.timestamp.before.max.ms`` -- and batches a
producer stamped LogAppendTime on a LogAppendTime topic (only the broker may).
Per record the key is checked first, then the timestamp, and every bad
record is reported, so Produce can answer with Kafka's ``record_errors``.
"""

from __future__ import annotations

from kafkacompat.log.topic_config import LONG_MAX, LogConfig
from kafkacompat.protocol.errors import ErrorCode, RecordValidationError
from kafkacompat.protocol.records import NO_TIMESTAMP, BatchHeader, batch_body, iter_raw_records

SHOWN_RECORD_ERRORS = 3


def needs_record_walk(header: BatchHeader, config: LogConfig, now: int) -> bool:
    """Whether any record of this batch could fail a record-level check (decided from the header alone)."""
    if "compact" in config.cleanup_policy:
        return True
    if config.log_append_time:
        return header.is_log_append_time
    return (header.max_timestamp - now > config.message_timestamp_after_max_ms
            or config.message_timestamp_before_max_ms != LONG_MAX)


def check_records(batch: memoryview, config: LogConfig, now: int, topic_partition: str) -> None:
    """Raise RecordValidationError naming every refused record of the one whole batch ``batch``."""
    header, body = batch_body(batch)
    key_required = "compact" in config.cleanup_policy
    check_timestamps = not config.log_append_time
    earliest = now - config.message_timestamp_before_max_ms
    latest = now + config.message_timestamp_after_max_ms
    invalid: list[tuple[ErrorCode, int, str]] = []
    for index, record in enumerate(iter_raw_records(header, body)):
        # A batch stamped LogAppendTime gives every record its max timestamp.
        timestamp = header.max_timestamp if header.is_log_append_time else header.base_timestamp + record.timestamp_delta
        offset = header.base_offset + record.offset_delta
        if key_required and record.key is None:
            invalid.append((ErrorCode.INVALID_RECORD, index, "Compacted topic cannot accept message without key "
                            f"in topic partition {topic_partition}"))
        elif check_timestamps and timestamp != NO_TIMESTAMP:
            if not earliest <= timestamp <= latest:
                invalid.append((ErrorCode.INVALID_TIMESTAMP, index,
                                f"Timestamp {timestamp} of message with offset {offset} is out of range. "
                                f"The timestamp should be within [{earliest}, {latest}]"))
        elif header.is_log_append_time:
            described = (f"DefaultRecord(offset={offset}, timestamp={timestamp}, key={len(record.key or b'')} bytes, "
                         f"value={len(record.value or b'')} bytes)")
            invalid.append((ErrorCode.INVALID_TIMESTAMP, index, f"Invalid timestamp type in message {described}. "
                            "Producer should not set timestamp type to LogAppendTime."))
    if not invalid:
        return
    record_errors = [(index, message) for _, index, message in invalid]
    if any(code == ErrorCode.INVALID_TIMESTAMP for code, _, _ in invalid):
        raise RecordValidationError(ErrorCode.INVALID_TIMESTAMP,
                                    "One or more records have been rejected due to invalid timestamp", record_errors)
    shown = ", ".join(f"RecordError(batchIndex={index}, message='{message}')"
                      for index, message in record_errors[:SHOWN_RECORD_ERRORS])
    raise RecordValidationError(
        ErrorCode.INVALID_RECORD,
        f"One or more records have been rejected due to {len(record_errors)} record errors in total, "
        f"and only showing the first three errors at most: [{shown}]",
        record_errors,
    )
