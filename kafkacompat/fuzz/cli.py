"""``kafkacompat fuzz``: a long hostile-input campaign against any running broker.

Only argparse lives here; the campaign is imported when the command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_subcommands(sub: argparse._SubParsersAction) -> None:
    fuzz = sub.add_parser("fuzz", help="throw generated, mutated and random frames at a broker")
    fuzz.add_argument("--bootstrap-server", default="127.0.0.1:9092", help="host:port of the broker")
    fuzz.add_argument("--frames", type=int, default=1_000_000, help="frames to send (default 1,000,000)")
    fuzz.add_argument("--seed", type=int, default=0, help="seed of the random sources (runs repeat per seed)")
    fuzz.add_argument("--workers", type=int, default=4, help="connections sending at once")
    fuzz.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer")
    fuzz.add_argument("--findings", type=Path, help="write every finding (with its frame in hex) to this JSON file")
    fuzz.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def _summary(report) -> dict:
    return {
        "frames": report.frames,
        "seconds": round(report.seconds, 1),
        "frames_per_second": round(report.frames_per_second, 1),
        "by_kind": dict(report.by_kind),
        "targets": len(report.targets),
        "advertised_without_spec": report.advertised_without_spec,
        "slow_by_api_key": dict(report.slow),
        "findings": len(report.findings),
        "distinct_findings": [
            {"rule": rule, "api_key": api_key, "version": version, "detail": detail, "frame_hex": finding.frame_hex}
            for (rule, api_key, version, detail), finding in report.distinct_findings().items()
        ],
    }


def _progress(done: int, report) -> None:
    print(f"fuzz: {done} frames, {len(report.findings)} findings, {sum(report.slow.values())} slow", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    from kafkacompat.fuzz.campaign import Campaign

    host, _, port = args.bootstrap_server.rpartition(":")
    campaign = Campaign((host or "127.0.0.1", int(port)), frames=args.frames, seed=args.seed,
                        workers=args.workers, timeout_s=args.timeout, progress=_progress)
    report = campaign.run()
    summary = _summary(report)
    if args.findings is not None:
        args.findings.write_text(json.dumps([finding.__dict__ for finding in report.findings], indent=1))
    if args.json:
        print(json.dumps(summary, indent=1))
    else:
        print(f"{report.frames} frames in {report.seconds:.0f} s ({report.frames_per_second:.0f}/s) over "
              f"{len(report.targets)} (API key, version) pairs; slow by API key {dict(report.slow)}; "
              f"{len(report.findings)} findings, {len(summary['distinct_findings'])} distinct")
        for finding in summary["distinct_findings"]:
            print(f"  {finding['rule']}: API {finding['api_key']} v{finding['version']}: {finding['detail']}")
    return 1 if report.findings else 0
