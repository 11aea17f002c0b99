"""Client metrics subscriptions and pushes (KIP-714), as Kafka's ClientMetricsManager keeps them.

Theory of operation
-------------------
A *subscription* is a ``client-metrics`` config resource: a name with
``metrics`` (name prefixes; ``*`` is every metric), ``interval.ms`` and
``match`` (``selector=regex`` pairs over ``client_instance_id``,
``client_id`` and ``client_source_address``; an empty match is every
client). Subscriptions are durable (``client-metrics.json``), changed through
IncrementalAlterConfigs and listed through ListClientMetricsResources.

A client asks GetTelemetrySubscriptions first with a zero instance id and is
given one. Its answer is the union of the subscriptions matching it: the
prefixes, the shortest interval, and a *subscription id* that is a digest of
them, so it changes whenever what the client should push changes. A push
must name the instance and the current subscription id
(UNKNOWN_SUBSCRIPTION_ID otherwise), fit ``telemetry.max.bytes``
(TELEMETRY_TOO_LARGE), use an accepted codec (UNSUPPORTED_COMPRESSION_TYPE),
decode as OpenTelemetry (INVALID_RECORD), and not come sooner than half the
push interval after the previous one unless the client is terminating
(THROTTLING_QUOTA_EXCEEDED). The newest value of every pushed series is
kept per client instance for the console and /metrics, a terminating
client's too; instances not heard of for three push intervals are forgotten.

Plain object: no sockets, no Trio; the clock is injected.
"""

from __future__ import annotations

import json
import re
import uuid
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from kafkacompat.log.durable import write_json_atomically
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.records import Compression, decompress
from kafkacompat.telemetry.otlp import DataPoint, OtlpError, data_points

SUBSCRIPTIONS_FILE = "client-metrics.json"
ALL_METRICS = "*"
DEFAULT_INTERVAL_MS = 300_000
MIN_INTERVAL_MS, MAX_INTERVAL_MS = 100, 3_600_000
SELECTORS = ("client_instance_id", "client_id", "client_source_address")
CONFIG_NAMES = ("metrics", "interval.ms", "match")
# What Kafka accepts, in its order of preference.
ACCEPTED_COMPRESSION = (Compression.ZSTD, Compression.LZ4, Compression.GZIP, Compression.SNAPPY)
FORGET_AFTER_INTERVALS = 3


@dataclass(frozen=True)
class Subscription:
    name: str
    metrics: tuple[str, ...] = ()
    interval_ms: int = DEFAULT_INTERVAL_MS
    match: tuple[tuple[str, str], ...] = ()

    def configs(self) -> dict[str, str]:
        return {"metrics": ",".join(self.metrics), "interval.ms": str(self.interval_ms),
                "match": ",".join(f"{k}={v}" for k, v in self.match)}

    def matches(self, client: Mapping[str, str]) -> bool:
        return all(re.fullmatch(pattern, client.get(selector, "")) for selector, pattern in self.match)


@dataclass
class ClientInstance:
    instance_id: uuid.UUID
    client_id: str
    source_address: str
    last_seen_ms: int
    subscription_id: int = 0
    interval_ms: int = DEFAULT_INTERVAL_MS
    last_push_ms: int | None = None
    pushes: int = 0
    series: dict[tuple[str, tuple[tuple[str, str], ...]], DataPoint] = field(default_factory=dict)


@dataclass(frozen=True)
class SubscriptionAnswer:
    instance_id: uuid.UUID
    subscription_id: int
    interval_ms: int
    requested_metrics: list[str]


def parse_configs(name: str, configs: Mapping[str, str]) -> Subscription:
    """A subscription from its config values; INVALID_CONFIG where Kafka would refuse one."""
    unknown = sorted(set(configs) - set(CONFIG_NAMES))
    if unknown:
        raise KafkaError(ErrorCode.INVALID_CONFIG, f"Unknown client metrics configuration: {unknown[0]}")
    metrics = tuple(m.strip() for m in configs.get("metrics", "").split(",") if m.strip())
    try:
        interval = int(configs.get("interval.ms", DEFAULT_INTERVAL_MS))
    except ValueError:
        raise KafkaError(ErrorCode.INVALID_CONFIG, "interval.ms must be an integer") from None
    if not MIN_INTERVAL_MS <= interval <= MAX_INTERVAL_MS:
        raise KafkaError(ErrorCode.INVALID_CONFIG,
                         f"interval.ms must be between {MIN_INTERVAL_MS} and {MAX_INTERVAL_MS}")
    match = []
    for pair in filter(None, (p.strip() for p in configs.get("match", "").split(","))):
        selector, sep, pattern = pair.partition("=")
        if not sep or selector not in SELECTORS:
            raise KafkaError(ErrorCode.INVALID_CONFIG,
                             f"match entries are SELECTOR=REGEX with a selector of {', '.join(SELECTORS)}")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise KafkaError(ErrorCode.INVALID_CONFIG, f"match {selector}: {exc}") from None
        match.append((selector, pattern))
    return Subscription(name, metrics, interval, tuple(match))


class ClientMetricsManager:
    """Subscriptions (durable, in ``data_dir``) and the client instances that push. Event-loop thread only."""

    def __init__(self, data_dir: Path, clock: Callable[[], int], telemetry_max_bytes: int) -> None:
        self._path = data_dir / SUBSCRIPTIONS_FILE
        self._clock = clock
        self.telemetry_max_bytes = telemetry_max_bytes
        self.subscriptions: dict[str, Subscription] = {}
        self.instances: dict[uuid.UUID, ClientInstance] = {}
        if self._path.exists():
            for name, configs in json.loads(self._path.read_text()).items():
                self.subscriptions[name] = parse_configs(name, configs)

    # -- subscriptions (config resources) ----------------------------------

    def set_subscription(self, name: str, configs: Mapping[str, str]) -> None:
        """Replace a subscription's configs; with none left, the subscription is gone."""
        if not name:
            raise KafkaError(ErrorCode.INVALID_REQUEST, "a client metrics resource needs a name")
        subscription = parse_configs(name, configs)
        wanted = dict(self.subscriptions)
        if configs:
            wanted[name] = subscription
        else:
            wanted.pop(name, None)
        write_json_atomically(self._path, {n: s.configs() for n, s in sorted(wanted.items())})
        self.subscriptions = wanted

    def subscription_configs(self, name: str) -> dict[str, str]:
        """The configs of a subscription; Kafka's defaults for a name that has none."""
        return (self.subscriptions.get(name) or Subscription(name)).configs()

    # -- the client side ---------------------------------------------------

    def _matching(self, instance: ClientInstance) -> list[Subscription]:
        client = {"client_instance_id": str(instance.instance_id), "client_id": instance.client_id,
                  "client_source_address": instance.source_address}
        return [s for _, s in sorted(self.subscriptions.items()) if s.matches(client)]

    def get_subscriptions(self, instance_id: uuid.UUID, client_id: str, source_address: str) -> SubscriptionAnswer:
        now = self._clock()
        self._forget_idle(now)
        if instance_id.int == 0:
            instance_id = uuid.uuid4()
        instance = self.instances.get(instance_id)
        if instance is None:
            instance = self.instances[instance_id] = ClientInstance(instance_id, client_id, source_address, now)
        instance.last_seen_ms = now
        matching = self._matching(instance)
        prefixes = sorted({m for s in matching for m in s.metrics})
        requested = [""] if ALL_METRICS in prefixes else prefixes
        instance.interval_ms = min((s.interval_ms for s in matching), default=DEFAULT_INTERVAL_MS)
        digest = json.dumps([requested, instance.interval_ms, str(instance_id)]).encode()
        instance.subscription_id = zlib.crc32(digest) - (1 << 31)  # an int32
        return SubscriptionAnswer(instance_id, instance.subscription_id, instance.interval_ms, requested)

    def push(self, instance_id: uuid.UUID, subscription_id: int, terminating: bool, compression: int,
             metrics: bytes) -> ErrorCode:
        """Take one push; the error code Kafka answers it with."""
        now = self._clock()
        if instance_id.int == 0:
            return ErrorCode.INVALID_REQUEST
        instance = self.instances.get(instance_id)
        if instance is None or instance.subscription_id != subscription_id:
            return ErrorCode.UNKNOWN_SUBSCRIPTION_ID
        if (not terminating and instance.last_push_ms is not None
                and now - instance.last_push_ms < instance.interval_ms // 2):
            return ErrorCode.THROTTLING_QUOTA_EXCEEDED
        if len(metrics) > self.telemetry_max_bytes:
            return ErrorCode.TELEMETRY_TOO_LARGE
        if compression != Compression.NONE and compression not in ACCEPTED_COMPRESSION:
            return ErrorCode.UNSUPPORTED_COMPRESSION_TYPE
        try:
            raw = decompress(compression, metrics) if compression != Compression.NONE else metrics
            points = data_points(raw)
        except (OtlpError, KafkaError, ValueError, OSError):
            return ErrorCode.INVALID_RECORD
        instance.last_seen_ms = instance.last_push_ms = now
        instance.pushes += 1
        for point in points:
            instance.series[(point.metric, point.attributes)] = point
        return ErrorCode.NONE

    def _forget_idle(self, now: int) -> None:
        idle = [i for i, instance in self.instances.items()
                if now - instance.last_seen_ms > FORGET_AFTER_INTERVALS * instance.interval_ms]
        for instance_id in idle:
            del self.instances[instance_id]
