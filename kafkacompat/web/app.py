"""The ASGI app: ``/metrics`` for Prometheus and a JSON admin API over the broker's engines.

Handlers run on the broker's event loop and read the engines directly;
each reads a bounded amount (a page of records is at most ``RECORD_PAGE_BYTES``
of one partition), so a scrape or a page never stalls Kafka clients for long.
"""

from __future__ import annotations

import base64
import time
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from kafkacompat.cluster.faults import FaultRuleError
from kafkacompat.handlers.configs import ConfigSource, topic_config_entries
from kafkacompat.protocol.errors import KafkaError
from kafkacompat.web.state import group_view, read_records
from kafkacompat.web.writes import alter_topic_config, produce_record, reset_group_offsets

if TYPE_CHECKING:
    from kafkacompat.broker import Broker
    from kafkacompat.web.history import History
    from kafkacompat.web.metrics import BrokerMetrics

RECORD_PAGE_BYTES = 1 << 20
MAX_RECORD_PAGE = 500
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


def _bytes_json(data: bytes | None) -> dict[str, str] | None:
    """Bytes for a JSON reader: as text where they are UTF-8, and always as base64."""
    if data is None:
        return None
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {"text": text, "base64": base64.b64encode(data).decode("ascii")}


def _not_found(what: str) -> JSONResponse:
    return JSONResponse({"error": f"{what} not found"}, status_code=404)


def _int_param(request: Request, name: str, default: int) -> int:
    text = request.query_params.get(name)
    return default if text is None else int(text)


class ConsoleApi:
    """Routes over one broker's engines."""

    def __init__(self, broker: Broker, metrics: BrokerMetrics) -> None:
        self.broker = broker
        self.metrics = metrics
        self.started_at = time.time()

    def routes(self) -> list[Route]:
        return [
            Route("/metrics", self.prometheus),
            Route("/api/overview", self.overview),
            Route("/api/topics", self.topics),
            Route("/api/topics/{topic}", self.topic),
            Route("/api/topics/{topic}/partitions/{partition:int}/records", self.records),
            Route("/api/groups", self.groups),
            Route("/api/groups/{group_id}", self.group),
            Route("/api/faults", self.faults, methods=["GET", "POST", "DELETE"]),
            Route("/api/faults/{rule_id:int}", self.fault, methods=["GET", "DELETE"]),
        ]

    async def prometheus(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=PROMETHEUS_TEXT)

    async def overview(self, request: Request) -> JSONResponse:
        broker = self.broker
        topics = broker.log_manager.topics()
        return JSONResponse({
            "cluster_id": broker.cluster_id,
            "node_id": broker.node_id,
            "advertised_listener": f"{broker.advertised_host}:{broker.advertised_port}",
            "uptime_s": round(time.time() - self.started_at, 3),
            "topics": len(topics),
            "partitions": sum(len(t.partitions) for t in topics),
            "bytes": sum(p.size_in_bytes for t in topics for p in t.partitions),
        })

    async def topics(self, request: Request) -> JSONResponse:
        return JSONResponse([
            {
                "name": topic.name,
                "topic_id": str(topic.topic_id),
                "partitions": len(topic.partitions),
                "bytes": sum(p.size_in_bytes for p in topic.partitions),
                "records": sum(p.high_watermark - p.log_start_offset for p in topic.partitions),
            }
            for topic in sorted(self.broker.log_manager.topics(), key=lambda t: t.name)
        ])

    async def topic(self, request: Request) -> JSONResponse:
        name = request.path_params["topic"]
        manager = self.broker.log_manager
        topic = manager.topic(name)
        if topic is None:
            return _not_found(f"topic {name}")
        configs = [
            {"name": entry["name"], "value": entry["value"], "source": ConfigSource(entry["config_source"]).name}
            for entry in topic_config_entries(self.broker, topic.configs, manager.effective_config(name))
        ]
        return JSONResponse({
            "name": topic.name,
            "topic_id": str(topic.topic_id),
            "partitions": [
                {
                    "partition": p.index,
                    "log_start_offset": p.log_start_offset,
                    "high_watermark": p.high_watermark,
                    "log_end_offset": p.log_end_offset,
                    "bytes": p.size_in_bytes,
                    "segments": len(p.segment_base_offsets),
                }
                for p in topic.partitions
            ],
            "configs": configs,
        })

    async def records(self, request: Request) -> JSONResponse:
        """A page of records from ``offset`` (default: the log start), at most ``limit`` of them."""
        name, index = request.path_params["topic"], request.path_params["partition"]
        partition = self.broker.log_manager.partition(name, index)
        if partition is None:
            return _not_found(f"partition {name}-{index}")
        try:
            offset = _int_param(request, "offset", partition.log_start_offset)
            limit = min(max(_int_param(request, "limit", 50), 1), MAX_RECORD_PAGE)
        except ValueError:
            return JSONResponse({"error": "offset and limit are integers"}, status_code=400)
        try:
            records, _ = read_records(partition, max(offset, partition.log_start_offset), limit, RECORD_PAGE_BYTES)
        except KafkaError as exc:
            return JSONResponse({"error": str(exc)}, status_code=416)
        page: list[dict[str, Any]] = [
            {
                "offset": record.offset,
                "timestamp": record.timestamp,
                "key": _bytes_json(record.key),
                "value": _bytes_json(record.value),
                "headers": [{"key": k, "value": _bytes_json(v)} for k, v in record.headers],
            }
            for record in records
        ]
        next_offset = page[-1]["offset"] + 1 if page else None
        return JSONResponse({"topic": name, "partition": index, "records": page, "next_offset": next_offset,
                             "high_watermark": partition.high_watermark})

    async def groups(self, request: Request) -> JSONResponse:
        return JSONResponse([
            {"group_id": g.group_id, "state": g.state.value, "protocol_type": g.protocol_type}
            for g in sorted(self.broker.groups.list_groups(), key=lambda g: g.group_id)
        ])

    async def group(self, request: Request) -> JSONResponse:
        view = group_view(self.broker, request.path_params["group_id"])
        if view is None:
            return _not_found(f"group {request.path_params['group_id']}")
        return JSONResponse(view)

    async def faults(self, request: Request) -> JSONResponse:
        """GET lists the fault rules with their counts; POST adds one (or a list); DELETE clears them all."""
        engine = self.broker.faults
        if request.method == "DELETE":
            return JSONResponse({"cleared": engine.clear()})
        if request.method == "GET":
            return JSONResponse(engine.list())
        try:
            given = await request.json()
        except ValueError:
            return JSONResponse({"error": "expected a JSON fault rule or a list of them"}, status_code=400)
        specs = given if isinstance(given, list) else [given]
        if not all(isinstance(spec, dict) for spec in specs):
            return JSONResponse({"error": "a fault rule is a JSON object"}, status_code=400)
        try:
            added = [rule.view() for rule in engine.add_all(specs)]
        except FaultRuleError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(added if isinstance(given, list) else added[0], status_code=201)

    async def fault(self, request: Request) -> JSONResponse:
        rule_id = request.path_params["rule_id"]
        engine = self.broker.faults
        if request.method == "DELETE":
            return JSONResponse({"removed": rule_id}) if engine.remove(rule_id) else _not_found(f"fault {rule_id}")
        found = [view for view in engine.list() if view["id"] == rule_id]
        return JSONResponse(found[0]) if found else _not_found(f"fault {rule_id}")


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _written(error: str, done: dict[str, Any]) -> JSONResponse:
    """200 with what was done, or 400 with the Kafka error's one line."""
    return JSONResponse({"error": error}, status_code=400) if error else JSONResponse(done)


def _bytes_field(body: dict[str, Any], name: str) -> bytes | None:
    value = body.get(name)
    return None if value is None else str(value).encode()


class ApiWrites:
    """The admin API's POST routes: each a Kafka request to this broker (see web/writes.py)."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def routes(self) -> list[Route]:
        return [
            Route("/api/topics/{topic}/configs", self.alter_configs, methods=["POST"]),
            Route("/api/topics/{topic}/records", self.produce, methods=["POST"]),
            Route("/api/groups/{group_id}/reset-offsets", self.reset_offsets, methods=["POST"]),
        ]

    async def alter_configs(self, request: Request) -> JSONResponse:
        """``{"set": {name: value}, "delete": [name]}`` for one topic (IncrementalAlterConfigs)."""
        topic = request.path_params["topic"]
        try:
            body = await _json_body(request)
            to_set = {str(k): str(v) for k, v in dict(body.get("set", {})).items()}
            to_delete = [str(name) for name in body.get("delete", [])]
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        for name, value in [*to_set.items(), *((n, None) for n in to_delete)]:
            error = await alter_topic_config(self.broker, topic, name, value)
            if error:
                return _written(error, {})
        return _written("", {"topic": topic, "set": to_set, "deleted": to_delete})

    async def produce(self, request: Request) -> JSONResponse:
        """``{"partition": N, "key": text, "value": text, "headers": {name: text}}``: one record."""
        topic = request.path_params["topic"]
        try:
            body = await _json_body(request)
            partition = int(body.get("partition", 0))
            headers = [(str(k), None if v is None else str(v).encode()) for k, v in dict(body.get("headers", {})).items()]
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        error = await produce_record(self.broker, topic, partition, _bytes_field(body, "key"),
                                     _bytes_field(body, "value"), headers)
        return _written(error, {"topic": topic, "partition": partition})

    async def reset_offsets(self, request: Request) -> JSONResponse:
        """``{"topic": T, "to": "earliest"|"latest"|"timestamp"|"offset", "value": N}`` for an empty group."""
        group_id = request.path_params["group_id"]
        try:
            body = await _json_body(request)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        topic, target = str(body.get("topic", "")), str(body.get("to", ""))
        error = await reset_group_offsets(self.broker, group_id, topic, target, str(body.get("value", "")))
        return _written(error, {"group_id": group_id, "topic": topic, "to": target})


def build_app(broker: Broker, metrics: BrokerMetrics, history: History) -> Starlette:
    """The console's pages, the JSON admin API and /metrics, on one app."""
    from kafkacompat.web.cluster_api import ClusterApi
    from kafkacompat.web.console import Console

    cluster = ClusterApi(broker.cluster.runtime if broker.cluster.replicated else None)
    return Starlette(routes=ConsoleApi(broker, metrics).routes() + ApiWrites(broker).routes() + cluster.routes()
                     + Console(broker, history).routes())
