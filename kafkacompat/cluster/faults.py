"""Faults on demand: rules that make chosen requests misbehave as a failing Kafka broker would.

Theory of operation
-------------------
A :class:`FaultEngine` holds an ordered list of :class:`FaultRule`. The
dispatcher asks it once per request, after decoding and before any side
effect, with the request's :class:`RequestFacts` (API key, version, broker,
client id, principal, listener) and a way to get the resources it names
(computed only when a rule asks about resources). The first rule that
matches and whose limits let it fire gives an :class:`Injection`; the
dispatcher carries it out. With no rule the dispatcher checks one attribute,
``armed``, and nothing else.

A rule fires in four steps:

1. **Match**: every condition given must hold (an absent condition matches
   anything): ``api`` (names or keys), ``versions`` (``"3-9"``, ``"4+"``),
   ``broker_id``, ``client_id``, ``principal``, ``listener``, ``topics``,
   ``partitions`` (with ``topics``), ``groups``, ``transactional_ids``.
2. **Window**: ``start_ms`` / ``end_ms``, measured from when the rule was added.
3. **Count**: each match in the window counts; ``every: K`` fires on every
   Kth match, ``first: N`` stops after N injections.
4. **Chance**: ``probability`` with the rule's own RNG, seeded by ``seed``
   (or the engine's seed and the rule's id), so a run is reproducible.

Actions (``action``):

- ``error``: answer with ``error`` (name or code) and ``message``, for the
  whole request (``scope: request``) or only the matching topics/partitions
  (``scope: resources``, the rest served as usual). ``when`` says whether
  the work is applied first: by default it is for the errors Kafka gives
  after applying the work (``AFTER_WORK_ERRORS``: REQUEST_TIMED_OUT or
  NOT_ENOUGH_REPLICAS_AFTER_APPEND on an appended Produce), not otherwise.
- ``delay``: wait ``delay_ms`` (or a random time up to ``delay_max_ms``)
  before serving the request.
- ``close``: close the connection without answering, ``when: before`` the
  work (the default) or ``after`` it.
- ``no_response``: apply nothing and never answer; later answers on the
  connection wait behind it, as they would behind a stalled broker.
- ``throttle``: serve, set ``throttle_time_ms`` to ``throttle_ms`` and mute
  the connection for that long after the answer, as Kafka's quotas do.

Every injection is logged (one line) and counted per rule. Plain object: no
sockets, no Trio; the clock and the RNGs are injected.
"""

from __future__ import annotations

import itertools
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from kafkacompat.handlers.resources import Resources
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.protocol.specs import load_specs

log = logging.getLogger("kafkacompat.faults")

ACTIONS = ("error", "delay", "close", "no_response", "throttle")
PRODUCE = 0
# Errors a Kafka broker gives after the work is done: the append happened, the answer says otherwise.
AFTER_WORK_ERRORS = {
    (PRODUCE, ErrorCode.REQUEST_TIMED_OUT),
    (PRODUCE, ErrorCode.NOT_ENOUGH_REPLICAS_AFTER_APPEND),
}
ANONYMOUS = "User:ANONYMOUS"
PLAINTEXT = "PLAINTEXT"

_CONDITIONS = ("api", "versions", "broker_id", "client_id", "principal", "listener",
               "topics", "partitions", "groups", "transactional_ids")
_PARAMETERS = ("action", "error", "message", "scope", "when", "delay_ms", "delay_max_ms", "throttle_ms",
               "first", "every", "probability", "seed", "start_ms", "end_ms", "id")


class FaultRuleError(ValueError):
    """A rule that cannot be used, with the reason."""


@dataclass(frozen=True)
class RequestFacts:
    """What every request is matched on, besides the resources it names."""

    api_key: int
    api_version: int
    broker_id: int
    client_id: str | None
    principal: str = ANONYMOUS
    listener: str = PLAINTEXT


@dataclass(frozen=True)
class Injection:
    """What the dispatcher does to one request."""

    rule: FaultRule
    action: str
    after_work: bool = False
    error_code: int = 0
    message: str | None = None
    targeted: Resources | None = None  # set for an error on the matching resources only
    delay_ms: int = 0
    throttle_ms: int = 0


def _api_keys(value: Any) -> frozenset[int]:
    by_name = {spec.name.lower(): key for key, spec in load_specs().items() if key is not None}
    keys = set()
    for item in value if isinstance(value, (list, tuple)) else [value]:
        if isinstance(item, int) or (isinstance(item, str) and item.isdigit()):
            keys.add(int(item))
        elif isinstance(item, str) and item.lower() in by_name:
            keys.add(by_name[item.lower()])
        else:
            raise FaultRuleError(f"unknown API {item!r}")
    return frozenset(keys)


def _versions(value: Any) -> tuple[int, int]:
    text = str(value).strip()
    try:
        if text.endswith("+"):
            return int(text[:-1]), 1 << 15
        low, sep, high = text.partition("-")
        return (int(low), int(high)) if sep else (int(low), int(low))
    except ValueError:
        raise FaultRuleError(f"versions must be N, N-M or N+, not {value!r}") from None


def _error_code(value: Any) -> int:
    try:
        return int(ErrorCode[value.upper()] if isinstance(value, str) and not value.lstrip("-").isdigit()
                   else ErrorCode(int(value)))
    except (KeyError, ValueError):
        raise FaultRuleError(f"unknown error {value!r}") from None


def _strings(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset(str(v) for v in (value if isinstance(value, (list, tuple)) else [value]))


@dataclass
class FaultRule:
    """One rule as given (``spec``), parsed, with its counters."""

    id: int
    spec: dict[str, Any]
    added_at_ms: int
    rng: random.Random
    action: str = "error"
    api_keys: frozenset[int] | None = None
    versions: tuple[int, int] | None = None
    topics: frozenset[str] | None = None
    partitions: frozenset[int] | None = None
    groups: frozenset[str] | None = None
    transactional_ids: frozenset[str] | None = None
    error_code: int = int(ErrorCode.UNKNOWN_SERVER_ERROR)
    matched: int = 0
    injected: int = 0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def wants_resources(self) -> bool:
        return any(v is not None for v in (self.topics, self.partitions, self.groups, self.transactional_ids)) \
            or self.params.get("scope") == "resources"

    def matches(self, facts: RequestFacts, resources: Resources | None) -> bool:
        spec = self.spec
        if self.api_keys is not None and facts.api_key not in self.api_keys:
            return False
        if self.versions is not None and not self.versions[0] <= facts.api_version <= self.versions[1]:
            return False
        for name in ("broker_id", "client_id", "principal", "listener"):
            if name in spec and str(spec[name]) != str(getattr(facts, name)):
                return False
        if resources is None:
            return True
        if self.topics is not None and self._topic_hits(resources) is None:
            return False
        if self.groups is not None and not self.groups & resources.groups:
            return False
        return self.transactional_ids is None or bool(self.transactional_ids & resources.transactional_ids)

    def _topic_hits(self, resources: Resources) -> Resources | None:
        """The topics or partitions of the request this rule names (None when none)."""
        hits = Resources()
        assert self.topics is not None
        if self.partitions is None:
            hits.topics = self.topics & resources.topics
        else:
            hits.partitions = {(t, p) for t, p in resources.partitions if t in self.topics and p in self.partitions}
        return hits if hits.topics or hits.partitions else None

    def targeted(self, resources: Resources) -> Resources:
        """The resources an error with ``scope: resources`` falls on."""
        if self.topics is None:
            return Resources(topics=set(resources.topics))
        return self._topic_hits(resources) or Resources()

    def view(self) -> dict[str, Any]:
        return {**self.spec, "id": self.id, "matched": self.matched, "injected": self.injected}


class FaultEngine:
    """The rules of one broker; ``armed`` is False while there are none (the dispatcher's only check)."""

    def __init__(self, broker_id: int, clock: Callable[[], int], seed: int = 0) -> None:
        self.broker_id = broker_id
        self.clock = clock
        self.seed = seed
        self.rules: list[FaultRule] = []
        self.armed = False
        self._ids = itertools.count(1)

    def add(self, spec: Mapping[str, Any]) -> FaultRule:
        """Parse and append one rule; FaultRuleError says what is wrong with it."""
        return self.add_all([spec])[0]

    def add_all(self, specs: list[Mapping[str, Any]]) -> list[FaultRule]:
        """Append every rule, or none when one of them is unusable."""
        rules = [self._parse(dict(spec)) for spec in specs]
        self.rules += rules
        self.armed = bool(self.rules)
        for rule in rules:
            log.info("fault rule %d added: %s", rule.id, rule.spec)
        return rules

    def remove(self, rule_id: int) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        self.armed = bool(self.rules)
        return len(self.rules) != before

    def clear(self) -> int:
        count, self.rules, self.armed = len(self.rules), [], False
        return count

    def list(self) -> list[dict[str, Any]]:
        return [rule.view() for rule in self.rules]

    def check(self, facts: RequestFacts, resources: Callable[[], Resources]) -> Injection | None:
        """The injection for this request, if a rule fires (counting and logging it), else None."""
        now = self.clock()
        named: Resources | None = None
        for rule in self.rules:
            if rule.wants_resources and named is None:
                named = resources()
            if not rule.matches(facts, named if rule.wants_resources else None):
                continue
            if not self._fires(rule, now):
                continue
            injection = self._injection(rule, facts, named)
            rule.injected += 1
            log.warning("fault rule %d: %s on API %d v%d from client %r (injection %d)", rule.id,
                        _describe(injection), facts.api_key, facts.api_version, facts.client_id, rule.injected)
            return injection
        return None

    def _fires(self, rule: FaultRule, now: int) -> bool:
        params = rule.params
        elapsed = now - rule.added_at_ms
        if elapsed < params.get("start_ms", 0) or ("end_ms" in params and elapsed >= params["end_ms"]):
            return False
        rule.matched += 1
        if "every" in params and rule.matched % params["every"]:
            return False
        if "first" in params and rule.injected >= params["first"]:
            return False
        return "probability" not in params or rule.rng.random() < params["probability"]

    def _injection(self, rule: FaultRule, facts: RequestFacts, named: Resources | None) -> Injection:
        params = rule.params
        action = rule.action
        if action == "error":
            after = params.get("when", "after" if (facts.api_key, rule.error_code) in AFTER_WORK_ERRORS
                               else "before") == "after"
            targeted = rule.targeted(named) if params.get("scope") == "resources" and named is not None else None
            return Injection(rule, action, after, rule.error_code, params.get("message"), targeted)
        if action == "delay":
            low = params.get("delay_ms", 0)
            high = params.get("delay_max_ms")
            return Injection(rule, action, delay_ms=low if high is None else rule.rng.randint(low, high))
        if action == "close":
            return Injection(rule, action, after_work=params.get("when", "before") == "after")
        if action == "throttle":
            return Injection(rule, action, throttle_ms=params.get("throttle_ms", 1000))
        return Injection(rule, action)

    def _parse(self, spec: dict[str, Any]) -> FaultRule:
        unknown = set(spec) - set(_CONDITIONS) - set(_PARAMETERS)
        if unknown:
            raise FaultRuleError(f"unknown fault rule field(s): {', '.join(sorted(unknown))}")
        action = spec.get("action", "error")
        if action not in ACTIONS:
            raise FaultRuleError(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
        rule_id = int(spec.pop("id", 0)) or next(self._ids)
        params: dict[str, Any] = {}
        try:
            for name in ("delay_ms", "delay_max_ms", "throttle_ms", "first", "every", "start_ms", "end_ms"):
                if name in spec:
                    params[name] = int(spec[name])
                    if params[name] < (1 if name == "every" else 0):
                        raise FaultRuleError(f"{name} must be {'positive' if name == 'every' else '>= 0'}")
            if "probability" in spec:
                params["probability"] = float(spec["probability"])
                if not 0 <= params["probability"] <= 1:
                    raise FaultRuleError("probability must be between 0 and 1")
        except (TypeError, ValueError) as exc:
            if isinstance(exc, FaultRuleError):
                raise
            raise FaultRuleError(f"bad number in fault rule: {exc}") from None
        for name in ("message", "scope", "when"):
            if name in spec:
                params[name] = spec[name]
        if params.get("scope", "request") not in ("request", "resources"):
            raise FaultRuleError("scope must be request or resources")
        if params.get("when", "before") not in ("before", "after"):
            raise FaultRuleError("when must be before or after")
        if params.get("scope") == "resources" and params.get("when") == "after":
            raise FaultRuleError("an error on some resources only is given before the work (when: before)")
        if "partitions" in spec and "topics" not in spec:
            raise FaultRuleError("partitions need topics")
        seed = spec.get("seed", self.seed * 1_000_003 + rule_id)
        rule = FaultRule(
            rule_id, spec, self.clock(), random.Random(seed), action,
            api_keys=_api_keys(spec["api"]) if "api" in spec else None,
            versions=_versions(spec["versions"]) if "versions" in spec else None,
            topics=_strings(spec.get("topics")),
            partitions=frozenset(int(p) for p in spec["partitions"]) if "partitions" in spec else None,
            groups=_strings(spec.get("groups")),
            transactional_ids=_strings(spec.get("transactional_ids")),
            params=params,
        )
        if "error" in spec:
            rule.error_code = _error_code(spec["error"])
        if "broker_id" in spec and int(spec["broker_id"]) != self.broker_id:
            log.info("fault rule %d names broker %s; this is broker %d", rule_id, spec["broker_id"], self.broker_id)
        return rule


def _describe(injection: Injection) -> str:
    if injection.action == "error":
        where = "some resources" if injection.targeted is not None else "the request"
        return (f"error {ErrorCode(injection.error_code).name} on {where}"
                f"{' after the work' if injection.after_work else ''}")
    if injection.action == "delay":
        return f"delay {injection.delay_ms} ms"
    if injection.action == "close":
        return f"close {'after' if injection.after_work else 'before'} the work"
    if injection.action == "throttle":
        return f"throttle {injection.throttle_ms} ms"
    return "no response"
