"""``kafkacompat faults add|list|clear --http URL``: a running broker's fault rules, over its HTTP admin API.

The rules live in the broker (kafkacompat.cluster.faults); this client speaks
the JSON API of ``http.listeners`` (``GET/POST/DELETE /api/faults``), so the
CLI, the scenario runner and a process-isolated EmbeddedBroker share one way in.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from typing import Any

import yaml


class FaultsApiError(Exception):
    """The HTTP admin API refused a call or could not be reached."""


class AdminApiClient:
    """JSON calls to one resource of a broker's HTTP admin API (``http://HOST:PORT`` + ``resource``)."""

    def __init__(self, url: str, resource: str, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/") + resource
        self.timeout_s = timeout_s

    def _call(self, method: str, path: str = "", payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                reason = json.loads(exc.read()).get("error", exc.reason)
            except ValueError:
                reason = exc.reason
            raise FaultsApiError(f"{method} {self.url + path}: {reason}") from None
        except OSError as exc:
            raise FaultsApiError(f"cannot reach {self.url}: {exc}") from None


class FaultsClient(AdminApiClient):
    """The fault rules of the broker whose HTTP side is at ``url`` (``http://HOST:PORT``)."""

    def __init__(self, url: str, timeout_s: float = 10.0) -> None:
        super().__init__(url, "/api/faults", timeout_s)

    def add(self, rule: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Add one rule (a mapping, keyword fields or both); returns it with its id and counts."""
        return self._call("POST", payload={**(rule or {}), **fields})

    def list(self) -> list[dict[str, Any]]:
        return self._call("GET")

    def remove(self, rule_id: int) -> None:
        self._call("DELETE", f"/{int(rule_id)}")

    def clear(self) -> int:
        return self._call("DELETE")["cleared"]


def _rule_value(text: str) -> Any:
    """A field value from the command line, read as YAML: 5 is a number, [a, b] a list, names stay text."""
    return yaml.safe_load(text)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = sub.add_parser("faults", help="add, list or clear injected faults of a running broker")
    actions = parser.add_subparsers(dest="faults_action", required=True)
    for name, text in (("add", "add a fault rule"), ("list", "the rules with their counts"),
                       ("clear", "remove every rule, or one with --id")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--http", required=True, metavar="URL",
                            help="the broker's HTTP admin API (http.listeners), e.g. http://127.0.0.1:8080")
        action.add_argument("--json", action="store_true", help="machine output: JSON on stdout")
        if name == "add":
            action.add_argument("fields", nargs="*", metavar="FIELD=VALUE",
                                help="rule fields, e.g. api=Produce action=error error=REQUEST_TIMED_OUT first=3")
            action.add_argument("--rule", help="the whole rule as JSON or YAML")
        if name == "clear":
            action.add_argument("--id", type=int, help="remove only this rule")
    return parser


def run(args: argparse.Namespace) -> int:
    client = FaultsClient(args.http)
    try:
        if args.faults_action == "add":
            rule = dict(yaml.safe_load(args.rule) or {}) if args.rule else {}
            for text in args.fields:
                name, sep, value = text.partition("=")
                if not sep:
                    raise FaultsApiError(f"expected FIELD=VALUE, got {text!r}")
                rule[name] = _rule_value(value)
            added = client.add(rule)
            print(json.dumps(added) if args.json else f"added fault rule {added['id']}")
        elif args.faults_action == "list":
            rules = client.list()
            if args.json:
                print(json.dumps(rules))
            for rule in [] if args.json else rules:
                fields = " ".join(f"{k}={v}" for k, v in rule.items() if k not in ("id", "matched", "injected"))
                print(f"{rule['id']:>4}  matched {rule['matched']:>6}  injected {rule['injected']:>6}  {fields}")
        elif args.id is not None:
            client.remove(args.id)
            print(f"removed fault rule {args.id}")
        else:
            print(f"cleared {client.clear()} fault rule(s)")
    except (FaultsApiError, yaml.YAMLError, TypeError, ValueError) as exc:
        print(f"kafkacompat faults: {exc}", file=sys.stderr)
        return 1
    return 0
