"""``kafkacompat scenario run FILE``: timed fault steps against a running broker, for reproducible chaos in CI.

A scenario is YAML::

    http: http://127.0.0.1:8080        # the broker's HTTP admin API (or --http)
    steps:
      - {at: 5, add: {api: Produce, action: error, error: REQUEST_TIMED_OUT}}
      - {at: 15, clear: true}                       # every rule (or clear: ID)
      - {between: [20, 30], add: {api: Fetch, action: delay, delay_ms: 500}}

      - {at: 40, kill: 2}                           # a broker of a ``serve --brokers N`` cluster
      - {at: 50, start: 2}

Times are seconds from the start. Broker steps (stop, kill, start, pause,
resume, isolate, heal, each naming a node id) go to the cluster routes of
the same admin API, so ``http`` must name a broker the scenario keeps running.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml

from kafkacompat.tools.cluster_control import ACTIONS as BROKER_ACTIONS
from kafkacompat.tools.cluster_control import ClusterClient
from kafkacompat.tools.faults import FaultsApiError, FaultsClient


class ScenarioError(ValueError):
    """A scenario file that cannot be run, with the reason."""


@dataclass(frozen=True)
class Step:
    at_s: float
    what: str  # add | remove | clear | broker (rule: {"action", "node_id"})
    rule: dict[str, Any] | None = None
    rule_key: int | None = None  # which added rule a remove undoes (the index of its add)


def parse_scenario(text: str) -> tuple[str | None, list[Step]]:
    """The HTTP address (if given) and the steps in time order; ScenarioError for anything unusable."""
    loaded = yaml.safe_load(text) or {}
    if not isinstance(loaded, dict) or not isinstance(loaded.get("steps"), list):
        raise ScenarioError("a scenario is a mapping with a list of steps")
    steps: list[Step] = []
    for number, raw in enumerate(loaded["steps"], 1):
        if not isinstance(raw, dict):
            raise ScenarioError(f"step {number}: expected a mapping")
        broker_actions = [name for name in BROKER_ACTIONS if name in raw]
        if broker_actions:
            action = broker_actions[0]
            if not isinstance(raw[action], int) or isinstance(raw[action], bool):
                raise ScenarioError(f"step {number}: {action} takes a broker's node id")
            steps.append(Step(_seconds(raw.get("at", 0), number), "broker",
                              {"action": action, "node_id": raw[action]}))
        elif "between" in raw:
            start, end = _times(raw["between"], number)
            steps += [Step(start, "add", _rule(raw, number), number), Step(end, "remove", rule_key=number)]
        elif "add" in raw:
            steps.append(Step(_seconds(raw.get("at", 0), number), "add", _rule(raw, number), number))
        elif "clear" in raw:
            clear = raw["clear"]
            steps.append(Step(_seconds(raw.get("at", 0), number), "clear",
                              rule={} if clear is True else {"id": int(clear)}))
        else:
            raise ScenarioError(f"step {number}: expected add, clear, between or a broker action "
                                f"({', '.join(BROKER_ACTIONS)})")
    return loaded.get("http"), sorted(steps, key=lambda step: step.at_s)


def _rule(raw: dict[str, Any], number: int) -> dict[str, Any]:
    if not isinstance(raw.get("add"), dict):
        raise ScenarioError(f"step {number}: add takes a fault rule (a mapping)")
    return raw["add"]


def _seconds(value: Any, number: int) -> float:
    try:
        seconds = float(str(value).removesuffix("s"))
    except ValueError:
        raise ScenarioError(f"step {number}: {value!r} is not a time in seconds") from None
    if seconds < 0:
        raise ScenarioError(f"step {number}: times are seconds from the start, not negative")
    return seconds


def _times(value: Any, number: int) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ScenarioError(f"step {number}: between takes [start, end]")
    start, end = _seconds(value[0], number), _seconds(value[1], number)
    if end <= start:
        raise ScenarioError(f"step {number}: between ends before it starts")
    return start, end


def run_steps(client: FaultsClient, steps: list[Step], *, sleep: Callable[[float], None] = time.sleep,
              clock: Callable[[], float] = time.monotonic, say: Callable[[str], None] = print,
              cluster: ClusterClient | None = None) -> None:
    """Carry out the steps at their times (the clock, sleep and clients are injectable for tests)."""
    started = clock()
    added: dict[int, int] = {}
    for step in steps:
        wait = started + step.at_s - clock()
        if wait > 0:
            sleep(wait)
        if step.what == "broker":
            assert step.rule is not None and cluster is not None
            cluster.act(step.rule["node_id"], step.rule["action"])
            say(f"{step.at_s:8.2f} s  broker {step.rule['node_id']}: {step.rule['action']} done")
        elif step.what == "add":
            assert step.rule is not None and step.rule_key is not None
            rule = client.add(step.rule)
            added[step.rule_key] = rule["id"]
            say(f"{step.at_s:8.2f} s  added fault rule {rule['id']}: {step.rule}")
        elif step.what == "remove":
            assert step.rule_key is not None
            client.remove(added.pop(step.rule_key))
            say(f"{step.at_s:8.2f} s  removed the fault rule of step {step.rule_key}")
        elif step.rule:
            client.remove(step.rule["id"])
            say(f"{step.at_s:8.2f} s  removed fault rule {step.rule['id']}")
        else:
            say(f"{step.at_s:8.2f} s  cleared {client.clear()} fault rule(s)")


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("scenario", help="run a YAML file of timed fault steps against a running broker")
    actions = parser.add_subparsers(dest="scenario_action", required=True)
    run_parser = actions.add_parser("run", help="run the steps of FILE at their times")
    run_parser.add_argument("file", type=Path, metavar="FILE")
    run_parser.add_argument("--http", metavar="URL", help="the broker's HTTP admin API (overrides the file's http)")
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        http, steps = parse_scenario(args.file.read_text())
        url = args.http or http
        if not url:
            raise ScenarioError("no HTTP admin API address: give http: in the file or --http")
        run_steps(FaultsClient(url), steps, cluster=ClusterClient(url))
    except (ScenarioError, FaultsApiError, OSError, yaml.YAMLError) as exc:
        print(f"kafkacompat scenario: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
