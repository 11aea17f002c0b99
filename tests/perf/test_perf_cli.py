"""Argument parsing of ``kafkacompat perf``."""

from __future__ import annotations

import argparse
import socket

import pytest

from kafkacompat.perf import cli


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kafkacompat")
    cli.add_subcommands(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


def test_produce_defaults_follow_the_kafka_perf_tool():
    args = parse("perf", "produce")
    assert (args.perf_command, args.bootstrap_server, args.topic) == ("produce", "127.0.0.1:9092", "perf-test")
    assert (args.record_size, args.partitions, args.acks, args.compression) == (100, 1, "all", "none")
    assert (args.linger_ms, args.throughput, args.num_records) == (5.0, -1, 1_000_000)
    assert args.producer_props == [] and not args.json and not args.no_progress


def test_produce_options_and_client_properties():
    args = parse("perf", "produce", "--acks", "-1", "--compression", "zstd", "--record-size", "512",
                 "--partitions", "3", "--producer-props", "batch.size=65536", "enable.idempotence=true", "--json")
    assert args.acks == "all" and args.compression == "zstd"
    assert (args.record_size, args.partitions) == (512, 3)
    assert dict(args.producer_props) == {"batch.size": "65536", "enable.idempotence": "true"}
    assert args.json


@pytest.mark.parametrize("argv", [
    ("perf", "produce", "--acks", "2"),
    ("perf", "produce", "--record-size", "0"),
    ("perf", "produce", "--producer-props", "no-equals-sign"),
    ("perf", "produce", "--compression", "brotli"),
    ("perf", "compare", "--brokers", "kafkacompat,redpanda"),
    ("perf", "compare", "--workloads", ""),
    ("perf",),
])
def test_bad_arguments_are_refused(argv, capsys):
    with pytest.raises(SystemExit):
        parse(*argv)


def test_consume_record_count_is_left_to_the_mode_unless_given():
    assert parse("perf", "consume").num_records is None  # 1,000,000, or 10,000 with --e2e
    assert parse("perf", "consume", "--e2e", "--num-records", "7").num_records == 7


def test_consume_raw_reads_once_unless_told():
    assert (parse("perf", "consume").raw, parse("perf", "consume").passes) == (False, 1)
    args = parse("perf", "consume", "--raw", "--passes", "4")
    assert (args.raw, args.passes) == (True, 4)


def test_a_broker_that_is_not_there_is_one_line_and_status_1(capsys):
    port_holder = socket.socket()
    port_holder.bind(("127.0.0.1", 0))
    port = port_holder.getsockname()[1]
    port_holder.close()
    assert cli.run(parse("perf", "consume", "--raw", "--bootstrap-server", f"127.0.0.1:{port}")) == 1
    assert capsys.readouterr().err.startswith("kafkacompat perf: ")


def test_consume_e2e_defaults_to_acks_1_no_linger_and_1000_per_second():
    args = parse("perf", "consume", "--e2e", "--num-records", "5000", "--consumer-props", "fetch.wait.max.ms=100")
    assert args.e2e and args.num_records == 5000
    assert (args.acks, args.linger_ms, args.rate) == ("1", 0.0, 1000.0)
    assert dict(args.consumer_props) == {"fetch.wait.max.ms": "100"}


def test_compare_subsets_keep_the_canonical_order():
    args = parse("perf", "compare", "--brokers", "tansu, kafkacompat", "--workloads", "idle,produce")
    assert args.brokers == ("kafkacompat", "tansu")
    assert args.workloads == ("produce", "idle")
    defaults = parse("perf", "compare")
    assert defaults.brokers == cli.BROKERS and defaults.workloads == cli.WORKLOADS
    assert defaults.override == [] and defaults.repeat == 3 and defaults.num_records == 1_000_000


def test_compare_passes_broker_overrides():
    args = parse("perf", "compare", "-o", "log.flush.on.ack=false", "-o", "num.partitions=3")
    assert args.override == ["log.flush.on.ack=false", "num.partitions=3"]
