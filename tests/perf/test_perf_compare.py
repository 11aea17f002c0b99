"""What ``perf compare`` runs where, its ratios and its table (no broker started)."""

from __future__ import annotations

from kafkacompat.perf.compare import CompareSettings, _plan, format_table, median_run, metric_value, ratios


def results() -> dict:
    return {
        "kafkacompat": {
            "startup": {"median_ms": 250.0},
            "produce_p1": {"records_per_s": 300_000.0, "latency": {"p99_ms": 12.0}},
            "e2e": {"latency": {"p50_ms": 1.0, "p99_ms": 12.5}},
            "metadata": {"median_ms": 80.0},
            "consume_p1": {"error": "WorkloadError: stalled"},
        },
        "tansu": {
            "startup": {"median_ms": 10.0},
            "produce_p1": {"records_per_s": 400_000.0, "latency": {"p99_ms": 6.0}},
            "e2e": {"latency": {"p50_ms": 100.0, "p99_ms": 480.0}},
            "metadata": {"median_ms": 20.0},
        },
        "ceiling": {"produce_p1": {"records_per_s": 500_000.0, "latency": {"p99_ms": 3.0}}},
    }


def test_metric_values_follow_nested_paths_and_skip_what_is_missing():
    data = results()["kafkacompat"]
    assert metric_value(data, ("produce_p1", "latency", "p99_ms")) == 12.0
    assert metric_value(data, ("produce_p3", "records_per_s")) is None
    assert metric_value(data, ("consume_p1", "records_per_s")) is None
    assert metric_value({"x": "text"}, ("x",)) is None


def test_ratios_are_kafkacompat_over_each_other_broker():
    table = ratios(results())
    assert table["produce_p1"] == {"kafkacompat/tansu": 0.75, "kafkacompat/ceiling": 0.6}
    assert table["startup"] == {"kafkacompat/tansu": 25.0}
    assert table["e2e_p99"] == {"kafkacompat/tansu": round(12.5 / 480, 3)}
    assert "consume_p1" not in table


def test_the_table_shows_values_ratios_targets_and_failures():
    report = {"results": results(), "ratios": ratios(results())}
    lines = format_table(report).splitlines()
    assert lines[0].split()[:4] == ["metric", "kafkacompat", "tansu", "ceiling"]
    produce = next(line for line in lines if line.startswith("produce 1 partition, rec/s"))
    assert "300,000" in produce and "400,000" in produce and "500,000" in produce and "0.75" in produce
    assert "<300 met" in next(line for line in lines if line.startswith("start to first Metadata"))
    assert "<10 MISSED" in next(line for line in lines if line.startswith("end-to-end p99"))
    assert "<200 met" in next(line for line in lines if line.startswith("Metadata of all partitions"))
    assert produce.endswith(">=1x tansu MISSED, >=0.9x ceiling MISSED")
    assert not any(line.startswith("fetch 3 partitions") for line in lines)  # nobody measured it
    assert "! consume_p1 on kafkacompat: WorkloadError: stalled" in lines


def test_the_plan_runs_produce_everywhere_and_the_rest_on_real_brokers():
    steps = {step.key: step for step in _plan(CompareSettings())}
    assert list(steps) == [
        "produce_p1", "produce_p3", "produce_txn_p1", "consume_p1", "consume_p3", "fetch_raw_p1", "fetch_raw_p3",
        "e2e", "metadata", "idle",
    ]
    assert steps["produce_txn_p1"].brokers == ("kafkacompat", "cluster3")
    assert steps["produce_p1"].brokers == ("kafkacompat", "tansu", "ceiling", "cluster3")
    assert all(steps[key].brokers == ("kafkacompat", "tansu") for key in ("consume_p3", "e2e", "metadata", "idle"))
    assert steps["fetch_raw_p1"].brokers == ("kafkacompat", "tansu")
    assert [key for key, step in steps.items() if step.repeated] == [
        "produce_p1", "produce_p3", "produce_txn_p1", "consume_p1", "consume_p3", "fetch_raw_p1", "fetch_raw_p3",
    ]


def test_consuming_needs_the_produced_topics():
    only_consume = [step.key for step in _plan(CompareSettings(workloads=("consume",)))]
    assert only_consume == ["produce_p1", "produce_p3", "consume_p1", "consume_p3", "fetch_raw_p1", "fetch_raw_p3"]
    assert [step.key for step in _plan(CompareSettings(workloads=("startup", "e2e")))] == ["e2e"]


def test_the_median_run_is_reported_with_every_rate():
    runs = [{"records_per_s": rate, "records": 10} for rate in (300.0, 100.0, 200.0, 400.0)]
    assert median_run(runs) == {"records_per_s": 200.0, "records": 10,
                                "runs_records_per_s": [300.0, 100.0, 200.0, 400.0]}
    assert median_run(runs[:1]) == runs[0]
    assert median_run([runs[0], {"error": "boom"}, {"error": "later"}]) == {"error": "boom"}


def test_ratio_goals_are_judged_from_the_ratios():
    measured = {"kafkacompat": {"consume_p3": {"records_per_s": 900_000.0}},
                "tansu": {"consume_p3": {"records_per_s": 300_000.0}}}
    lines = format_table({"results": measured, "ratios": ratios(measured)}).splitlines()
    assert next(line for line in lines if line.startswith("fetch 3 partitions, rec/s")).endswith(">=3x tansu met")
    measured["tansu"]["consume_p3"]["records_per_s"] = 310_000.0
    lines = format_table({"results": measured, "ratios": ratios(measured)}).splitlines()
    assert next(line for line in lines if line.startswith("fetch 3 partitions, rec/s")).endswith(">=3x tansu MISSED")
