"""Client quotas: the durable store, the rate windows, and the throttle times Kafka computes from them.

Theory of operation. A quota is a value for one key (``producer_byte_rate``,
``consumer_byte_rate``, ``request_percentage``, ``controller_mutation_rate``
for user and client-id entities; ``connection_creation_rate`` for ip
entities) set on an entity: a user, a client id, both, or an ip, each either
named or the default (name None). A request's quota is the first one set
in Kafka's order of precedence: user+client-id, user+default client-id,
user, default user+client-id, default user+default client-id, default
user, client-id, default client-id; an ip's is its own, else the default
ip's.

Usage is measured per quota key and per metric entity (the user and/or
client id the matched quota speaks of; a default quota is measured for each
user or client separately), as Kafka's sampled ``Rate``: ``quota.window.num``
samples of ``quota.window.size.seconds`` each, the rate being the samples'
total over their elapsed time, counted as at least ``num - 1`` full windows.
Every request's usage is recorded; once the rate exceeds the quota the
throttle time is ``(rate - quota) / quota * window``, at most the whole
window span. The broker answers at once with that ``throttle_time_ms`` and
reads nothing more from the connection for as long.

Sans-I/O: the clock is injected (milliseconds). The store is durable in
``__client_quotas.journal`` of the data dir (JSON payloads in the
coordinator's journal format, rewritten compactly at open). Not safe for
concurrent tasks; the event loop serialises access.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Callable, Iterable, Iterator

from kafkacompat.group.journal import Journal

JOURNAL_NAME = "__client_quotas.journal"
USER, CLIENT_ID, IP = "user", "client-id", "ip"
ENTITY_TYPES = (USER, CLIENT_ID, IP)
PRODUCE, FETCH, REQUEST, CONNECTION = "producer_byte_rate", "consumer_byte_rate", "request_percentage", \
    "connection_creation_rate"
MUTATION = "controller_mutation_rate"
# Keys by entity kind, and whether Kafka wants a whole number for the key.
CLIENT_KEYS = {PRODUCE: True, FETCH: True, REQUEST: False, MUTATION: False}
IP_KEYS = {CONNECTION: True}

Entity = tuple[tuple[str, "str | None"], ...]  # (entity type, name or None for the default), sorted by type


def entity_of(pairs: Iterable[tuple[str, str | None]]) -> Entity:
    return tuple(sorted(pairs, key=lambda pair: pair[0]))  # by type alone: a default's name is None


def invalid_entity(pairs: list[tuple[str, str | None]]) -> str | None:
    """Why Kafka refuses to alter quotas of this entity (INVALID_REQUEST), or None."""
    if not pairs:
        return "Invalid empty client quota entity"
    types = [kind for kind, _ in pairs]
    for kind in types:
        if kind not in ENTITY_TYPES:
            return f"Unhandled client quota entity type: {kind}"
    if len(set(types)) != len(types):
        return "Duplicate entity type in the client quota entity"
    if IP in types and len(types) > 1:
        return "Invalid quota entity combination, IP entity should not be used with user or client-id entity."
    for kind, name in pairs:
        if kind == IP and name is not None:
            try:
                ipaddress.ip_address(name)
            except ValueError:
                return f"{name} is not a valid IP or resolvable host."
    return None


def invalid_value(entity: Entity, key: str, value: float) -> str | None:
    keys = IP_KEYS if any(kind == IP for kind, _ in entity) else CLIENT_KEYS
    if key not in keys:
        return f"Invalid configuration key {key}"
    if keys[key] and abs(value - round(value)) > 1e-6:
        return f"Configuration {key} must be a Long value"
    return None


class Rate:
    """Kafka's sampled ``Rate`` over a ``WindowedSum``: per second, over the live samples."""

    __slots__ = ("samples", "window_ms", "_starts", "_sums")

    def __init__(self, samples: int, window_ms: int) -> None:
        self.samples, self.window_ms = samples, window_ms
        self._starts: list[int] = []
        self._sums: list[float] = []

    def record(self, value: float, now_ms: int) -> None:
        if not self._starts or now_ms >= self._starts[-1] + self.window_ms:
            self._starts.append(now_ms)
            self._sums.append(0.0)
            if len(self._starts) > self.samples:
                del self._starts[0], self._sums[0]
        self._sums[-1] += value

    def _purge(self, now_ms: int) -> None:
        expire_ms = self.samples * self.window_ms
        while self._starts and now_ms - self._starts[0] >= expire_ms:
            del self._starts[0], self._sums[0]

    def window_ms_at(self, now_ms: int) -> int:
        """Elapsed time the rate is taken over: from the oldest sample, at least ``samples - 1`` windows."""
        self._purge(now_ms)
        elapsed = now_ms - self._starts[0] if self._starts else 0
        full = elapsed // self.window_ms
        if full < self.samples - 1:
            elapsed += (self.samples - 1 - full) * self.window_ms
        return max(elapsed, 1)

    def per_second(self, now_ms: int) -> float:
        window = self.window_ms_at(now_ms)
        return sum(self._sums) * 1000 / window


class QuotaStore:
    """Quota values by entity, durable (see the module docstring)."""

    def __init__(self, data_dir: Path) -> None:
        self._values: dict[Entity, dict[str, float]] = {}
        path = data_dir / JOURNAL_NAME
        for payload in Journal.read(path):
            change = json.loads(payload)
            self._apply(entity_of(map(tuple, change["entity"])), change["key"], change["value"])
        self._journal = Journal(path)
        self._journal.rewrite([_payload(entity, key, value) for entity, values in self._values.items()
                               for key, value in values.items()])
        self.active = bool(self._values)  # whether any quota is set; a plain attribute: every request reads it

    def items(self) -> Iterator[tuple[Entity, dict[str, float]]]:
        return iter(self._values.items())

    def get(self, entity: Entity, key: str) -> float | None:
        values = self._values.get(entity)
        return None if values is None else values.get(key)

    def alter(self, changes: list[tuple[Entity, str, float | None]]) -> None:
        """Set (or, for None, remove) values: journalled, then applied."""
        if changes:
            self._journal.append([_payload(entity, key, value) for entity, key, value in changes])
            for entity, key, value in changes:
                self._apply(entity, key, value)
            self.active = bool(self._values)

    def _apply(self, entity: Entity, key: str, value: float | None) -> None:
        if value is None:
            values = self._values.get(entity, {})
            values.pop(key, None)
            if not values:
                self._values.pop(entity, None)
        else:
            self._values.setdefault(entity, {})[key] = value

    def close(self) -> None:
        self._journal.close()


def _payload(entity: Entity, key: str, value: float | None) -> bytes:
    return json.dumps({"entity": entity, "key": key, "value": value}, separators=(",", ":")).encode()


def _precedence(user: str, client_id: str) -> list[tuple[Entity, tuple[str, str]]]:
    """Kafka's quota lookup order for a request, each with the metric entity usage is measured for."""
    return [
        (((CLIENT_ID, client_id), (USER, user)), (user, client_id)),
        (((CLIENT_ID, None), (USER, user)), (user, client_id)),
        (((USER, user),), (user, "")),
        (((CLIENT_ID, client_id), (USER, None)), (user, client_id)),
        (((CLIENT_ID, None), (USER, None)), (user, client_id)),
        (((USER, None),), (user, "")),
        (((CLIENT_ID, client_id),), ("", client_id)),
        (((CLIENT_ID, None),), ("", client_id)),
    ]


class QuotaManager:
    """Records usage against the quotas and answers with throttle times (see the module docstring).

    Usage is measured per broker, as Kafka enforces quotas; the store of
    quota values may be shared by the brokers of a cluster, as Kafka's
    metadata is.
    """

    def __init__(self, store: QuotaStore, clock: Callable[[], int], samples: int, window_s: int) -> None:
        self.store = store
        self.clock = clock
        self.samples, self.window_ms = samples, window_s * 1000
        self.max_throttle_ms = self.window_ms * samples
        self._rates: dict[tuple[str, object], Rate] = {}

    @property
    def active(self) -> bool:
        return self.store.active

    def alter(self, changes: list[tuple[Entity, str, float | None]]) -> None:
        self.store.alter(changes)

    def quota_for(self, key: str, user: str, client_id: str) -> tuple[float, tuple[str, str]] | None:
        for entity, measured in _precedence(user, client_id):
            value = self.store.get(entity, key)
            if value is not None:
                return value, measured
        return None

    def record(self, key: str, user: str, client_id: str, value: float) -> int:
        """Record usage; the throttle time in ms it earns (0 within the quota or without one)."""
        found = self.quota_for(key, user, client_id)
        if found is None:
            return 0
        bound, measured = found
        return self._record(key, measured, value, bound)

    def connection_throttle_ms(self, ip: str) -> int:
        """A new connection from ``ip``: how long to hold it before closing it, or 0 to accept it.

        A refused connection does not count against the rate, as in Kafka.
        """
        bound = self.store.get(((IP, ip),), CONNECTION)
        if bound is None:
            bound = self.store.get(((IP, None),), CONNECTION)
        if bound is None:
            return 0
        throttle = self._record(CONNECTION, ip, 1, bound)
        if throttle:
            self._rates[(CONNECTION, ip)].record(-1, self.clock())
        return throttle

    def _record(self, key: str, measured: object, value: float, bound: float) -> int:
        now = self.clock()
        rate = self._rates.get((key, measured))
        if rate is None:
            rate = self._rates[(key, measured)] = Rate(self.samples, self.window_ms)
        rate.record(value, now)
        observed = rate.per_second(now)
        if observed <= bound or bound <= 0:
            return 0
        return min(int((observed - bound) / bound * rate.window_ms_at(now)), self.max_throttle_ms)

