"""Progress lines and result output."""

from __future__ import annotations

import io
import json

from kafkacompat.perf import report
from kafkacompat.perf.report import Progress, emit, format_result


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_on_a_pipe_writes_whole_lines_at_the_log_interval(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(report.time, "perf_counter", lambda: now[0])
    out = io.StringIO()
    line = Progress("produce t", 1000, stream=out)
    line.update(10, 1000)
    assert out.getvalue() == ""  # nothing before the first interval
    now[0] += report.LOG_INTERVAL_S
    line.update(500, 50 * 1024 * 1024)
    text = out.getvalue()
    assert text.endswith("\n") and "\r" not in text
    assert "produce t: 500/1000 records, 100 rec/s now, 10.00 MB/s avg" in text
    line.finish()
    assert out.getvalue() == text


def test_progress_on_a_terminal_is_a_bar_redrawn_in_place_and_cleared_at_the_end():
    out = FakeTty()
    line = Progress("consume t", 10, stream=out)
    line._next = 0.0  # due now
    line.update(5, 500)
    drawn = out.getvalue()
    assert "consume t" in drawn and " 5/10" in drawn and "rec/s now" in drawn
    assert "\n" not in drawn  # redrawn on one line (carriage return, erase line)
    assert "\r\x1b[2K" in drawn
    line.finish()
    assert out.getvalue().endswith("\x1b[2K")  # transient: the bar is erased


def test_disabled_progress_writes_nothing():
    out = FakeTty()
    line = Progress("x", 10, stream=out, enabled=False)
    line._next = 0.0
    line.update(5, 5)
    line.finish()
    assert out.getvalue() == ""


RESULT = {
    "workload": "produce t (1 partition(s), acks=all)", "records": 1000, "bytes": 100_000, "seconds": 0.5,
    "records_per_s": 2000.0, "mb_per_s": 0.19,
    "latency": {"avg_ms": 1.5, "p50_ms": 1.0, "p99_ms": 4.0, "p99_9_ms": 5.0, "max_ms": 6.0},
    "errors": 0,
}


def test_a_result_line_has_throughput_and_latency():
    text = format_result(RESULT)
    assert text.startswith("produce t (1 partition(s), acks=all): 1000 records in 0.50 s, 2,000 rec/s, 0.19 MB/s;")
    assert "p50 1.00 ms, p99 4.00 ms, p99.9 5.00 ms" in text and "errors" not in text
    assert format_result({**RESULT, "errors": 3}).endswith("; 3 errors")


def test_json_output_is_one_object_for_one_result_and_a_list_for_more():
    out = io.StringIO()
    emit([RESULT], as_json=True, out=out)
    assert json.loads(out.getvalue()) == RESULT
    out = io.StringIO()
    emit([RESULT, RESULT], as_json=True, out=out)
    assert json.loads(out.getvalue()) == [RESULT, RESULT]
    out = io.StringIO()
    emit([RESULT], as_json=False, out=out)
    assert out.getvalue() == format_result(RESULT) + "\n"
