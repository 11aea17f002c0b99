"""Prometheus metrics with Kafka's names, as the JMX exporter's common rules spell them.

Each broker has its own registry (several embedded brokers may share a
process). Counters that the request path moves are observed at one point per
request; everything that is state (log sizes, offsets, partitions, groups,
lag, connections) is read from the engines when ``/metrics`` is scraped, so
it costs nothing between scrapes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.protocol.specs import api_spec
from kafkacompat.web.state import group_lags, high_watermarks

if TYPE_CHECKING:
    from kafkacompat.broker import Broker

REQUEST_TIME_BUCKETS_MS = (0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)


class BrokerMetrics:
    """The counters the request path moves, and a collector of the broker's state."""

    def __init__(self, broker: Broker, connection_count: Callable[[], int]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "kafka_network_requestmetrics_requests", "Requests answered, by API and version.",
            ["request", "version"], registry=self.registry)
        self.errors = Counter(
            "kafka_network_requestmetrics_errors", "Error codes in responses, by API and error.",
            ["request", "error"], registry=self.registry)
        self.request_time = Histogram(
            "kafka_network_requestmetrics_totaltimems", "Time from request read to response ready, ms.",
            ["request"], buckets=REQUEST_TIME_BUCKETS_MS, registry=self.registry)
        self.messages_in = Counter(
            "kafka_server_brokertopicmetrics_messagesin", "Records appended, by topic.",
            ["topic"], registry=self.registry)
        self.bytes_in = Counter(
            "kafka_server_brokertopicmetrics_bytesin", "Record batch bytes appended, by topic.",
            ["topic"], registry=self.registry)
        self.bytes_out = Counter(
            "kafka_server_brokertopicmetrics_bytesout", "Record batch bytes fetched, by topic.",
            ["topic"], registry=self.registry)
        self.flush_time = Histogram(
            "kafka_log_logflushstats_logflushrateandtimems", "Time of one flush round's fsyncs, ms.",
            buckets=REQUEST_TIME_BUCKETS_MS, registry=self.registry)
        broker.flusher.on_round_synced = self.flush_time.observe
        self._broker = broker
        self.registry.register(BrokerStateCollector(broker, connection_count))

    def render(self) -> bytes:
        return generate_latest(self.registry) + partition_gauges_text(self._broker)

    def bytes_out_total(self) -> int:
        """Record bytes fetched so far, all topics (the console's "bytes out now" is its rate)."""
        return int(sum(sample.value for metric in self.bytes_out.collect() for sample in metric.samples
                       if sample.name.endswith("_total")))

    def appended(self, topic: str, records: int, size: int) -> None:
        """One batch appended by Produce (per batch, never per record)."""
        self.messages_in.labels(topic).inc(records)
        self.bytes_in.labels(topic).inc(size)

    def fetched(self, topic: str, size: int) -> None:
        """Record bytes of one partition in a Fetch response."""
        self.bytes_out.labels(topic).inc(size)

    def request_observer(self, api_key: int, version: int) -> Callable[[Any], None]:
        """Started when a request is read; called with its final response body once it is ready."""
        started = time.perf_counter()
        spec = api_spec(api_key)
        name = spec.name if spec is not None else str(api_key)

        def observe(body: Any) -> None:
            self.request_time.labels(name).observe((time.perf_counter() - started) * 1000)
            self.requests.labels(name, str(version)).inc()
            if isinstance(body, Mapping):
                for code in _error_codes(body):
                    self.errors.labels(name, _error_name(code)).inc()

        return observe


def _error_name(code: int) -> str:
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


def _error_codes(body: Mapping[str, Any]) -> Iterator[int]:
    """Every non-zero ``error_code`` in a response body, at any depth (as Kafka's errorCounts)."""
    pending: list[Any] = [body]
    while pending:
        item = pending.pop()
        if isinstance(item, Mapping):
            code = item.get("error_code")
            if code:
                yield code
            pending.extend(v for v in item.values() if isinstance(v, (list, Mapping)))
        elif isinstance(item, list):
            pending.extend(v for v in item if isinstance(v, (list, Mapping)))


class BrokerStateCollector(Collector):
    """Gauges read from the engines at scrape time."""

    def __init__(self, broker: Broker, connection_count: Callable[[], int]) -> None:
        self._broker = broker
        self._connection_count = connection_count

    def describe(self) -> list[Metric]:
        return []  # families depend on state; nothing to check at registration

    def collect(self) -> Iterator[Metric]:
        broker = self._broker
        topics = broker.log_manager.topics()
        yield GaugeMetricFamily("kafka_server_replicamanager_partitioncount", "Partitions on this broker.",
                                value=sum(len(t.partitions) for t in topics))
        yield GaugeMetricFamily("kafka_controller_kafkacontroller_globaltopiccount", "Topics in the cluster.",
                                value=len(topics))
        yield GaugeMetricFamily("kafka_server_socketservermetrics_connection_count", "Open client connections.",
                                value=self._connection_count())
        yield from self._groups(high_watermarks(broker))
        yield CounterMetricFamily("kafka_coordinator_group_rebalances", "Group rebalances completed.",
                                  value=broker.groups.rebalances)
        yield self._client_telemetry()

    def _client_telemetry(self) -> Metric:
        """The newest value of every series clients pushed (KIP-714), by client and metric name."""
        family = GaugeMetricFamily("kafka_client_telemetry", "Newest value a client pushed, by metric.",
                                   labels=["client_instance_id", "client_id", "metric", "attributes"])
        for instance in self._broker.client_metrics.instances.values():
            for point in instance.series.values():
                attributes = ",".join(f"{k}={v}" for k, v in point.attributes)
                family.add_metric([str(instance.instance_id), instance.client_id, point.metric, attributes],
                                  point.value)
        return family

    def _groups(self, ends: dict[tuple[str, int], int]) -> Iterator[Metric]:
        states = GaugeMetricFamily("kafka_coordinator_group_groupmetadatamanager_numgroups",
                                   "Groups by state.", labels=["state"])
        by_state: dict[str, int] = {}
        for listing in self._broker.groups.list_groups():
            by_state[listing.state.value] = by_state.get(listing.state.value, 0) + 1
        for state, count in sorted(by_state.items()):
            states.add_metric([state], count)
        yield states
        lag = GaugeMetricFamily("kafka_consumergroup_lag", "High watermark minus committed offset.",
                                labels=["group", "topic", "partition"])
        for (group, topic, partition), value in sorted(group_lags(self._broker, ends).items()):
            lag.add_metric([group, topic, str(partition)], value)
        yield lag


PARTITION_GAUGES = (
    ("kafka_log_log_size", "Bytes of the partition's segments.", lambda p: p.size_in_bytes),
    ("kafka_log_log_numlogsegments", "Segments of the partition.", lambda p: len(p.segment_base_offsets)),
    ("kafka_log_log_logendoffset", "Log end offset.", lambda p: p.log_end_offset),
    ("kafka_log_log_logstartoffset", "Log start offset.", lambda p: p.log_start_offset),
    ("kafka_cluster_partition_highwatermark", "High watermark.", lambda p: p.high_watermark),
)


def partition_gauges_text(broker: Broker) -> bytes:
    """The per-partition gauges in Prometheus' text format, written directly.

    They are five samples per partition -- 50,000 lines at 10,000 partitions --
    which prometheus-client's generic families build about twenty times
    slower, on the event loop. Topic names need no escaping: Kafka allows
    only ``[a-zA-Z0-9._-]`` in them.
    """
    partitions = [(t.name, p) for t in broker.log_manager.topics() for p in t.partitions]
    lines: list[str] = []
    for name, doc, value in PARTITION_GAUGES:
        lines.append(f"# HELP {name} {doc}\n# TYPE {name} gauge")
        lines.extend(f'{name}{{partition="{p.index}",topic="{topic}"}} {value(p)}' for topic, p in partitions)
    return ("\n".join(lines) + "\n").encode()
