"""The web console: server-rendered pages over the broker's state, a little JavaScript for live views.

Reads come straight from the engines (:mod:`kafkacompat.web.state`); writes
are Kafka requests to this same broker (:mod:`kafkacompat.web.writes`).
"""

from __future__ import annotations

import datetime
import json
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from kafkacompat.handlers.configs import ConfigSource, topic_config_entries
from kafkacompat.protocol.errors import KafkaError
from kafkacompat.web.state import group_lags, group_view, high_watermarks, read_records
from kafkacompat.web.writes import alter_topic_config, produce_record, reset_group_offsets

if TYPE_CHECKING:
    from kafkacompat.broker import Broker
    from kafkacompat.web.history import History

PAGE_RECORDS = 20
SCAN_BYTES = 4 << 20  # how far a filtered browse reads for matches before it shows what it found
FORMATS = ("text", "json", "hex")


def render_bytes(data: bytes | None, form: str) -> str:
    """Key, value or header bytes as the browser asked: text, pretty JSON (text if not JSON) or hex."""
    if data is None:
        return "null"
    if form == "hex":
        return data.hex(" ")
    text = data.decode("utf-8", errors="backslashreplace")
    if form == "json":
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            return text
    return text


def utc_time(timestamp_ms: int) -> str:
    """A record timestamp as UTC with milliseconds, e.g. 2026-12-01 21:17:08.691."""
    if timestamp_ms < 0:
        return str(timestamp_ms)
    moment = datetime.datetime.fromtimestamp(timestamp_ms / 1000, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{timestamp_ms % 1000:03d}"


def _matches(record: Any, key_filter: str, text_filter: str) -> bool:
    key = (record.key or b"").decode("utf-8", errors="backslashreplace")
    if key_filter and key != key_filter:
        return False
    if text_filter:
        value = (record.value or b"").decode("utf-8", errors="backslashreplace")
        return text_filter in key or text_filter in value
    return True


class Console:
    """The HTML routes of one broker's console."""

    def __init__(self, broker: Broker, history: History) -> None:
        self.broker = broker
        self.history = history
        self.started_at = time.time()
        self.templates = Environment(
            loader=PackageLoader("kafkacompat.web", "templates"), autoescape=select_autoescape(["html"]))
        self.templates.filters["bytes"] = render_bytes
        self.templates.filters["utc"] = utc_time

    def routes(self) -> list[Route | Mount]:
        return [
            Route("/", self.overview),
            Route("/topics", self.topics),
            Route("/topics/{topic}", self.topic),
            Route("/topics/{topic}/produce", self.produce, methods=["POST"]),
            Route("/topics/{topic}/configs", self.alter_config, methods=["POST"]),
            Route("/groups", self.groups),
            Route("/groups/{group_id}", self.group),
            Route("/groups/{group_id}/reset", self.reset_offsets, methods=["POST"]),
            Route("/clients", self.clients),
            Mount("/static", StaticFiles(packages=[("kafkacompat.web", "static")]), name="static"),
        ]

    def _page(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        body = self.templates.get_template(template).render(broker=self.broker, **context)
        return HTMLResponse(body, status_code=status_code)

    def _missing(self, what: str) -> HTMLResponse:
        return self._page("missing.html", status_code=404, what=what)

    async def overview(self, request: Request) -> HTMLResponse:
        from importlib.metadata import version

        topics = self.broker.log_manager.topics()
        return self._page(
            "overview.html",
            version=version("kafkacompat"),
            uptime_s=time.time() - self.started_at,
            topic_count=len(topics),
            partition_count=sum(len(t.partitions) for t in topics),
            total_bytes=sum(p.size_in_bytes for t in topics for p in t.partitions),
            records_in_per_s=self.history.records_in_per_s(),
            bytes_out_per_s=self.history.bytes_out_per_s(),
            groups=len(self.broker.groups.list_groups()),
        )

    async def topics(self, request: Request) -> HTMLResponse:
        rows = [
            {
                "name": t.name,
                "partitions": len(t.partitions),
                "bytes": sum(p.size_in_bytes for p in t.partitions),
                "records": sum(p.high_watermark - p.log_start_offset for p in t.partitions),
                "rate": self.history.records_in_per_s(t.name),
            }
            for t in sorted(self.broker.log_manager.topics(), key=lambda t: t.name)
        ]
        return self._page("topics.html", topics=rows)

    async def topic(self, request: Request) -> HTMLResponse:
        name = request.path_params["topic"]
        manager = self.broker.log_manager
        topic = manager.topic(name)
        if topic is None:
            return self._missing(f"topic {name}")
        query = request.query_params
        try:
            partition_index = int(query.get("partition", "0"))
            limit = min(max(int(query.get("limit", PAGE_RECORDS)), 1), 500)
        except ValueError:
            return self._page("missing.html", status_code=400, what="a page: partition and limit are integers")
        partition = manager.partition(name, partition_index)
        if partition is None:
            return self._missing(f"partition {name}-{partition_index}")
        form = query.get("format", "text") if query.get("format") in FORMATS else "text"
        key_filter, text_filter = query.get("key", ""), query.get("q", "")
        start, error = self._seek(partition, query, limit)
        records, next_offset = [], None
        if not error:
            try:
                records, next_offset = read_records(partition, start, limit, SCAN_BYTES,
                                                    lambda record: _matches(record, key_filter, text_filter))
            except KafkaError:
                next_offset = start if start < partition.high_watermark else None
        configs = [
            {"name": e["name"], "value": e["value"], "source": ConfigSource(e["config_source"]).name}
            for e in topic_config_entries(self.broker, topic.configs, manager.effective_config(name))
        ]
        common = {"partition": partition_index, "limit": limit, "format": form, "key": key_filter, "q": text_filter}
        return self._page(
            "topic.html", topic=topic, partitions=topic.partitions, current=partition, configs=configs,
            records=records, start=start, error=error, form=form, key_filter=key_filter, text_filter=text_filter,
            limit=limit, message=query.get("message", ""),
            next_link=None if next_offset is None else "?" + urlencode({**common, "offset": next_offset}),
            back_link=None if start <= partition.log_start_offset else
            "?" + urlencode({**common, "offset": max(start - limit, partition.log_start_offset)}),
            live_from=partition.high_watermark,
        )

    def _seek(self, partition: Any, query: Any, limit: int) -> tuple[int, str | None]:
        """Where the page starts: ``offset``, the first offset at ``timestamp``, or the ``newest`` records."""
        try:
            if "timestamp" in query and query["timestamp"]:
                found = partition.offset_for_timestamp(int(query["timestamp"]))
                return (partition.high_watermark if found is None else found[0]), None
            if query.get("seek") == "newest":
                return max(partition.high_watermark - limit, partition.log_start_offset), None
            return max(int(query.get("offset", partition.log_start_offset)), partition.log_start_offset), None
        except ValueError:
            return partition.log_start_offset, "offset and timestamp are integers"

    async def produce(self, request: Request) -> Response:
        name = request.path_params["topic"]
        form = await _form(request)
        partition = int(form["partition"]) if form.get("partition", "").isdigit() else 0
        headers = []
        for line in form.get("headers", "").splitlines():
            header, sep, header_value = line.partition("=")
            if sep and header.strip():
                headers.append((header.strip(), header_value.encode()))
        error = await produce_record(self.broker, name, partition, form.get("key", "").encode() or None,
                                     form.get("value", "").encode(), headers)
        message = error or "record produced"
        return RedirectResponse(f"/topics/{name}?" + urlencode({"partition": partition, "seek": "newest",
                                                                   "message": message}), status_code=303)

    async def alter_config(self, request: Request) -> Response:
        name = request.path_params["topic"]
        form = await _form(request)
        config = form.get("name", "")
        error = await alter_topic_config(self.broker, name, config,
                                         None if form.get("delete") else form.get("value", ""))
        message = error or f"{config} updated"
        return RedirectResponse(f"/topics/{name}?" + urlencode({"message": message}), status_code=303)

    async def groups(self, request: Request) -> HTMLResponse:
        lags = group_lags(self.broker, high_watermarks(self.broker))
        rows = []
        for listing in sorted(self.broker.groups.list_groups(), key=lambda g: g.group_id):
            total = [lag for (group, _, _), lag in lags.items() if group == listing.group_id]
            rows.append({"group_id": listing.group_id, "state": listing.state.value,
                         "protocol_type": listing.protocol_type, "lag": sum(total) if total else None})
        return self._page("groups.html", groups=rows)

    async def group(self, request: Request) -> HTMLResponse:
        group_id = request.path_params["group_id"]
        view = group_view(self.broker, group_id)
        if view is None:
            return self._missing(f"group {group_id}")
        return self._page("group.html", group=view, chart=lag_chart(self.history.group_lag(group_id)),
                          message=request.query_params.get("message", ""))

    async def clients(self, request: Request) -> HTMLResponse:
        """Clients that asked for telemetry subscriptions, and the metrics they pushed (KIP-714)."""
        manager = self.broker.client_metrics
        now = self.broker.clock()
        instances = sorted((_instance_view(i, now) for i in manager.instances.values()),
                           key=lambda v: (v["client_id"], v["instance_id"]))
        subscriptions = [{"name": s.name, **s.configs()} for _, s in sorted(manager.subscriptions.items())]
        return self._page("clients.html", instances=instances, subscriptions=subscriptions)

    async def reset_offsets(self, request: Request) -> Response:
        group_id = request.path_params["group_id"]
        form = await _form(request)
        topic, target, value = form.get("topic", ""), form.get("to", "earliest"), form.get("value", "")
        error = await reset_group_offsets(self.broker, group_id, topic, target, value)
        message = error or f"offsets of {topic} reset to {target} {value}".rstrip()
        return RedirectResponse(f"/groups/{group_id}?" + urlencode({"message": message}), status_code=303)


async def _form(request: Request) -> dict[str, str]:
    """The fields of a URL-encoded form post (what the console's forms send), last value winning."""
    return {name: value for name, value in parse_qsl((await request.body()).decode("utf-8", "replace"),
                                                     keep_blank_values=True)}


def _instance_view(instance: Any, now_ms: int) -> dict[str, Any]:
    return {
        "instance_id": str(instance.instance_id), "client_id": instance.client_id,
        "address": instance.source_address, "pushes": instance.pushes, "interval_ms": instance.interval_ms,
        "last_push_s": None if instance.last_push_ms is None else (now_ms - instance.last_push_ms) / 1000,
        "series": sorted(instance.series.values()),
    }


def lag_chart(points: list[tuple[float, int]], width: int = 480, height: int = 120) -> dict[str, Any] | None:
    """An SVG polyline of (time, lag) points, scaled to the box; None with fewer than two points."""
    if len(points) < 2:
        return None
    t0, t1 = points[0][0], points[-1][0]
    top = max(lag for _, lag in points) or 1
    span = (t1 - t0) or 1
    coordinates = " ".join(
        f"{(t - t0) / span * width:.1f},{height - lag / top * (height - 10):.1f}" for t, lag in points)
    return {"width": width, "height": height, "points": coordinates, "max": top,
            "seconds": round(t1 - t0), "last": points[-1][1]}
