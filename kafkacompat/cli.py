"""Command line: ``kafkacompat serve`` runs a broker; the everyday tools live in :mod:`kafkacompat.tools`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import trio

from kafkacompat import tools
from kafkacompat.fuzz import cli as fuzz_cli
from kafkacompat.perf import cli as perf_cli
from kafkacompat.tools import certs as certs_cli, faults as faults_cli, scenario as scenario_cli
from kafkacompat.config import BrokerConfig, ConfigError
from kafkacompat.listeners import replace_address


def _override(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name.strip(), value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kafkacompat", description="A Kafka-compatible broker in Python.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run a broker")
    serve.add_argument("--host", help="listen address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="listen port (default 9092; 0 picks a free one)")
    serve.add_argument("--data-dir", type=Path, help="where topics and offsets live (default ./kafkacompat-data)")
    serve.add_argument("--config", type=Path, help="broker configs by Kafka's names: YAML, or a Java .properties file such as server.properties")
    serve.add_argument("--http-port", type=int,
                       help="serve the admin API and Prometheus /metrics on 127.0.0.1:PORT (http.listeners)")
    serve.add_argument("--advertised-host", help="host handed to clients in Metadata")
    serve.add_argument("--advertised-port", type=int, help="port handed to clients in Metadata")
    serve.add_argument(
        "-o", "--override", type=_override, action="append", default=[], metavar="NAME=VALUE",
        help="set any broker config by its Kafka name, e.g. -o num.partitions=3",
    )
    serve.add_argument("--brokers", type=int,
                       help="run N brokers in this process, replicating to each other (cluster.brokers)")
    serve.add_argument("--log-level", default="INFO", help="logging level (default INFO)")
    tools.add_subcommands(sub)
    perf_cli.add_subcommands(sub)
    fuzz_cli.add_subcommands(sub)
    faults_cli.add_parser(sub)
    scenario_cli.add_parser(sub)
    certs_cli.add_parser(sub)
    return parser


def _serve_config(args: argparse.Namespace) -> BrokerConfig:
    overrides: dict[str, object] = dict(args.override)
    base = BrokerConfig.load(args.config, overrides)
    if args.host is not None or args.port is not None:
        overrides["listeners"] = replace_address(base.get("listeners"), args.host, args.port)
    if args.advertised_host is not None or args.advertised_port is not None:
        advertised = base.get("advertised.listeners") or overrides.get("listeners") or base.get("listeners")
        overrides["advertised.listeners"] = replace_address(str(advertised).split(",")[0], args.advertised_host,
                                                            args.advertised_port)
    if args.data_dir is not None:
        overrides["log.dirs"] = str(args.data_dir)
    if args.http_port is not None:
        overrides["http.listeners"] = f"http://127.0.0.1:{args.http_port}"
    if args.brokers is not None:
        overrides["cluster.brokers"] = args.brokers
    return BrokerConfig.load(args.config, overrides)


def serve(args: argparse.Namespace) -> int:
    from kafkacompat.log.dir_lock import DataDirLocked
    from kafkacompat.protocol.specs import SpecError
    from kafkacompat.server.listener import run

    try:
        config = _serve_config(args)
        trio.run(run, config)
    except DataDirLocked as exc:
        print(f"kafkacompat: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, SpecError, OSError) as exc:
        print(f"kafkacompat: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "serve":
        return serve(args)
    if args.command == "perf":
        return perf_cli.run(args)
    if args.command == "fuzz":
        return fuzz_cli.run(args)
    if args.command == "faults":
        return faults_cli.run(args)
    if args.command == "scenario":
        return scenario_cli.run(args)
    if args.command == "certs":
        return certs_cli.run(args)
    if args.command == "cluster" and args.cluster_command != "info":
        from kafkacompat.tools import cluster_control

        return cluster_control.run(args)
    return tools.run(args)


if __name__ == "__main__":
    sys.exit(main())
