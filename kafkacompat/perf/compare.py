"""``perf compare``: the same workloads against kafkacompat, Tansu and the produce ceiling, in one run.

All brokers run at once, each in its own process, and every workload visits
them in turn before the next begins, so background load on a shared machine
falls on all of them alike; the ratios are what to read, not the absolute
numbers. The ceiling is kafkacompat with the benchmark-only discard switch:
Produce answered without storing, which is as fast as the client and our
request path can go.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from typing import Any, Callable, NamedTuple, TextIO

from confluent_kafka import KafkaException

from kafkacompat.perf.brokers import BrokerProcess
from kafkacompat.perf.cli import BROKERS, WORKLOADS
from kafkacompat.perf.wire import ProbeError, fetch_capacity, idle_connections, metadata_all_topics
from kafkacompat.perf.workloads import (
    E2E_RATE,
    ConsumeSettings,
    ProduceSettings,
    WorkloadError,
    ensure_topic,
    run_consume,
    run_end_to_end,
    run_produce,
)

KAFKACOMPAT, TANSU, CEILING, CLUSTER = BROKERS
_FAILURES = (WorkloadError, ProbeError, KafkaException, OSError)
# A raw fetch of a million records takes well under 0.1 s: ten passes make a run worth timing.
RAW_FETCH_PASSES = 10
RECORDS_PER_TRANSACTION = 1_000


@dataclass(frozen=True)
class CompareSettings:
    num_records: int = 1_000_000
    repeat: int = 3  # runs of each throughput workload per broker; the median is reported
    record_size: int = 100
    acks: str = "all"
    compression: str = "none"
    linger_ms: float = 5.0
    e2e_seconds: float = 10.0
    metadata_partitions: int = 10_000
    idle_connections: int = 1000
    startup_runs: int = 3
    brokers: tuple[str, ...] = BROKERS
    workloads: tuple[str, ...] = WORKLOADS
    overrides: tuple[str, ...] = ()  # NAME=VALUE broker configs for the kafkacompat brokers
    tansu_bin: str | None = None
    progress: bool = True


def _start(name: str, settings: CompareSettings) -> BrokerProcess:
    if name == TANSU:
        return BrokerProcess(name, "tansu", tansu_bin=settings.tansu_bin).start()
    return BrokerProcess(name, "kafkacompat", overrides=settings.overrides, discard_produce=name == CEILING,
                         brokers=3 if name == CLUSTER else 1).start()


def _attempt(broker: BrokerProcess, workload: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """Run one workload, adding the broker CPU it cost; a failure becomes an ``error`` entry."""
    cpu_before = broker.cpu_seconds()
    try:
        result = workload(broker.bootstrap)
    except _FAILURES as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    cpu_after = broker.cpu_seconds()
    if cpu_before is not None and cpu_after is not None:
        result["broker_cpu_s"] = round(cpu_after - cpu_before, 2)
        if result.get("records"):
            result["broker_cpu_us_per_record"] = round((cpu_after - cpu_before) * 1e6 / result["records"], 3)
    return result


def _startup_runs(name: str, settings: CompareSettings, first_ms: float) -> dict[str, Any]:
    """The first start may compile bytecode; the median is over the starts after it."""
    timings = [first_ms]
    for _ in range(settings.startup_runs):
        broker = _start(name, settings)
        timings.append(broker.startup_ms)
        broker.stop()
    return {
        "first_ms": round(first_ms, 1),
        "runs_ms": [round(t, 1) for t in timings[1:]],
        "median_ms": round(statistics.median(timings[1:]), 1),
    }


def _produce(bootstrap: str, topic: str, partitions: int, count: int, settings: CompareSettings,
             records_per_transaction: int = 0) -> dict[str, Any]:
    return run_produce(ProduceSettings(
        bootstrap, topic, count, settings.record_size, partitions, settings.acks, settings.compression,
        settings.linger_ms, records_per_transaction=records_per_transaction,
    ), progress=settings.progress)


def _end_to_end(bootstrap: str, settings: CompareSettings) -> dict[str, Any]:
    count = int(E2E_RATE * settings.e2e_seconds)
    produce = ProduceSettings(bootstrap, "perf-e2e", count, settings.record_size, 1, "1",
                              settings.compression, 0.0, E2E_RATE)
    return run_end_to_end(produce, ConsumeSettings(bootstrap, "perf-e2e", count), progress=settings.progress)


def _metadata(bootstrap: str, settings: CompareSettings) -> dict[str, Any]:
    ensure_topic(bootstrap, "perf-metadata", settings.metadata_partitions, timeout_s=300)
    return metadata_all_topics(bootstrap)


class Step(NamedTuple):
    key: str  # where the result goes
    brokers: tuple[str, ...]  # which brokers it applies to
    workload: Callable[[str], dict[str, Any]]  # run on a bootstrap address
    repeated: bool  # a throughput run, repeated ``settings.repeat`` times


def _plan(settings: CompareSettings) -> list[Step]:
    """The workloads to run, in running order."""
    n = settings.num_records
    steps: list[Step] = []
    data_brokers = (KAFKACOMPAT, TANSU)
    if "produce" in settings.workloads or "consume" in settings.workloads:
        for partitions in (1, 3):
            topic = f"perf-p{partitions}"
            steps.append(Step(f"produce_p{partitions}", BROKERS,
                              lambda b, t=topic, p=partitions: _produce(b, t, p, n, settings), True))
    if "txn" in settings.workloads:  # compared with this broker's own produce_p1; the ceiling keeps nothing
        steps.append(Step("produce_txn_p1", (KAFKACOMPAT, CLUSTER),
                          lambda b: _produce(b, "perf-txn-p1", 1, n, settings, RECORDS_PER_TRANSACTION), True))
    if "consume" in settings.workloads:
        for partitions in (1, 3):
            topic = f"perf-p{partitions}"
            steps.append(Step(f"consume_p{partitions}", data_brokers,
                              lambda b, t=topic: run_consume(ConsumeSettings(b, t, n), progress=settings.progress),
                              True))
        for partitions in (1, 3):
            steps.append(Step(f"fetch_raw_p{partitions}", data_brokers,
                              lambda b, t=f"perf-p{partitions}": fetch_capacity(b, t, n, RAW_FETCH_PASSES), True))
    if "e2e" in settings.workloads:
        steps.append(Step("e2e", data_brokers, lambda b: _end_to_end(b, settings), False))
    if "metadata" in settings.workloads:
        steps.append(Step("metadata", data_brokers, lambda b: _metadata(b, settings), False))
    if "idle" in settings.workloads:
        steps.append(Step("idle", data_brokers, lambda b: idle_connections(b, settings.idle_connections), False))
    return steps


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median rate, listing every run's rate; the first failure if any failed."""
    failed = [run for run in runs if "error" in run]
    if failed:
        return failed[0]
    ordered = sorted(runs, key=lambda run: run["records_per_s"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    if len(runs) > 1:
        chosen["runs_records_per_s"] = [run["records_per_s"] for run in runs]
    return chosen


def run_compare(settings: CompareSettings, log: TextIO) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {name: {} for name in settings.brokers}
    running: dict[str, BrokerProcess] = {}
    try:
        for name in settings.brokers:
            log.write(f"starting {name}\n")
            running[name] = _start(name, settings)
            if "startup" in settings.workloads:
                results[name]["startup"] = _startup_runs(name, settings, running[name].startup_ms)
        for step in _plan(settings):
            runs: dict[str, list[dict[str, Any]]] = {name: [] for name in settings.brokers if name in step.brokers}
            for _ in range(settings.repeat if step.repeated else 1):
                for name, attempts in runs.items():
                    log.write(f"{step.key} on {name}\n")
                    attempts.append(_attempt(running[name], step.workload))
            for name, attempts in runs.items():
                results[name][step.key] = median_run(attempts) if step.repeated else attempts[0]
        for name, broker in running.items():
            results[name]["memory"] = broker.memory()
    finally:
        for broker in running.values():
            broker.stop()
    return {"settings": asdict(settings), "results": results, "ratios": ratios(results)}


# -- the summary table --------------------------------------------------------

@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    path: tuple[str, ...]
    higher_is_better: bool
    target: float | None = None  # a bound kafkacompat's value must stay under, when the issue names one
    # (other broker, least kafkacompat/other ratio), when the issue names one
    ratio_targets: tuple[tuple[str, float], ...] = ()


# The throughput goals: at least Tansu's produce rate and 90% of the ceiling's, 3x Tansu's fetch rate.
_PRODUCE_GOALS = ((TANSU, 1.0), (CEILING, 0.9))
_FETCH_GOALS = ((TANSU, 3.0),)


METRICS = (
    Metric("startup", "start to first Metadata, ms", ("startup", "median_ms"), False, 300),
    Metric("produce_p1", "produce 1 partition, rec/s", ("produce_p1", "records_per_s"), True,
           ratio_targets=_PRODUCE_GOALS),
    Metric("produce_p1_p99", "produce 1 partition, p99 ms", ("produce_p1", "latency", "p99_ms"), False),
    Metric("produce_p3", "produce 3 partitions, rec/s", ("produce_p3", "records_per_s"), True,
           ratio_targets=_PRODUCE_GOALS),
    Metric("produce_p3_p99", "produce 3 partitions, p99 ms", ("produce_p3", "latency", "p99_ms"), False),
    Metric("produce_txn_p1", "produce 1 partition, 1,000-record txns, rec/s", ("produce_txn_p1", "records_per_s"),
           True),
    Metric("produce_txn_p1_cpu", "txn produce 1 partition, broker us/rec",
           ("produce_txn_p1", "broker_cpu_us_per_record"), False),
    Metric("produce_p1_cpu", "produce 1 partition, broker us/rec", ("produce_p1", "broker_cpu_us_per_record"), False),
    Metric("produce_p3_cpu", "produce 3 partitions, broker us/rec", ("produce_p3", "broker_cpu_us_per_record"), False),
    Metric("consume_p1", "fetch 1 partition, rec/s", ("consume_p1", "records_per_s"), True,
           ratio_targets=_FETCH_GOALS),
    Metric("consume_p3", "fetch 3 partitions, rec/s", ("consume_p3", "records_per_s"), True,
           ratio_targets=_FETCH_GOALS),
    Metric("consume_p1_cpu", "fetch 1 partition, broker us/rec", ("consume_p1", "broker_cpu_us_per_record"), False),
    Metric("consume_p3_cpu", "fetch 3 partitions, broker us/rec", ("consume_p3", "broker_cpu_us_per_record"), False),
    Metric("fetch_raw_p1", "raw fetch 1 partition, rec/s", ("fetch_raw_p1", "records_per_s"), True),
    Metric("fetch_raw_p3", "raw fetch 3 partitions, rec/s", ("fetch_raw_p3", "records_per_s"), True),
    Metric("fetch_raw_p1_cpu", "raw fetch 1 partition, broker us/rec",
           ("fetch_raw_p1", "broker_cpu_us_per_record"), False),
    Metric("fetch_raw_p3_cpu", "raw fetch 3 partitions, broker us/rec",
           ("fetch_raw_p3", "broker_cpu_us_per_record"), False),
    Metric("e2e_p50", "end-to-end p50 at 1000 rec/s, ms", ("e2e", "latency", "p50_ms"), False),
    Metric("e2e_p99", "end-to-end p99 at 1000 rec/s, ms", ("e2e", "latency", "p99_ms"), False, 10),
    Metric("metadata", "Metadata of all partitions, ms", ("metadata", "median_ms"), False, 200),
    Metric("idle", "Metadata with idle conns open, ms", ("idle", "metadata_while_idle_median_ms"), False),
    Metric("rss", "RSS at the end, MB", ("memory", "rss_mb"), False),
    Metric("peak_rss", "peak RSS, MB", ("memory", "peak_rss_mb"), False),
)


def metric_value(result: dict[str, Any], path: tuple[str, ...]) -> float | None:
    value: Any = result
    for step in path:
        if not isinstance(value, dict) or step not in value:
            return None
        value = value[step]
    return float(value) if isinstance(value, (int, float)) else None


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """kafkacompat's value over each other broker's, per metric (> 1 means a larger number)."""
    ours = results.get(KAFKACOMPAT, {})
    out: dict[str, dict[str, float]] = {}
    for metric in METRICS:
        mine = metric_value(ours, metric.path)
        for other in (TANSU, CEILING, CLUSTER):
            theirs = metric_value(results.get(other, {}), metric.path)
            if mine is not None and theirs:
                out.setdefault(metric.key, {})[f"{KAFKACOMPAT}/{other}"] = round(mine / theirs, 3)
    return out


def format_table(report: dict[str, Any]) -> str:
    results, table_ratios = report["results"], report["ratios"]
    brokers = list(results)
    ratio_columns = [f"{KAFKACOMPAT}/{other}" for other in (TANSU, CEILING, CLUSTER) if other in brokers]
    header = f"{'metric':<36}" + "".join(f"{b:>13}" for b in brokers) + "".join(
        f"{c.replace(KAFKACOMPAT, 'kc'):>14}" for c in ratio_columns) + "  target"
    lines = [header, "-" * len(header)]
    for metric in METRICS:
        values = [metric_value(results[b], metric.path) for b in brokers]
        if all(v is None for v in values):
            continue
        row = f"{metric.label:<36}" + "".join(f"{_number(v):>13}" for v in values)
        row += "".join(f"{_number(table_ratios.get(metric.key, {}).get(c)):>14}" for c in ratio_columns)
        goals = _goal_verdicts(metric, results.get(KAFKACOMPAT, {}), table_ratios.get(metric.key, {}))
        if goals:
            row += "  " + ", ".join(goals)
        lines.append(row)
    for broker, entries in results.items():
        for key, value in entries.items():
            if isinstance(value, dict) and "error" in value:
                lines.append(f"! {key} on {broker}: {value['error']}")
    return "\n".join(lines)


def _goal_verdicts(metric: Metric, ours: dict[str, Any], metric_ratios: dict[str, float]) -> list[str]:
    """``<300 met``, ``>=1x tansu MISSED``, ...: each of the metric's goals against this run."""
    verdicts = []
    if metric.target is not None:
        mine = metric_value(ours, metric.path)
        verdict = "-" if mine is None else ("met" if mine < metric.target else "MISSED")
        verdicts.append(f"<{metric.target:g} {verdict}")
    for other, least in metric.ratio_targets:
        ratio = metric_ratios.get(f"{KAFKACOMPAT}/{other}")
        verdict = "-" if ratio is None else ("met" if ratio >= least else "MISSED")
        verdicts.append(f">={least:g}x {other} {verdict}")
    return verdicts


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}"
