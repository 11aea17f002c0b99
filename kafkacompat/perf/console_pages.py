"""``kafkacompat perf console``: how long the web console's pages take with many topics.

Starts a broker of its own (a child process, so the timing client does not
share its interpreter), creates the topics through CreateTopics, then times
whole HTTP round trips of each page, warm, several times.
"""

from __future__ import annotations

import statistics
import time
import urllib.request
from typing import Any

PAGES = ("/", "/topics", "/topics/{topic}", "/groups", "/metrics", "/api/topics")
CREATE_BATCH = 100


def _create_topics(broker: Any, topics: int, partitions: int) -> list[str]:
    from kafkacompat.client import ApiKey, check

    names = [f"console-perf-{n:05d}" for n in range(topics)]
    with broker.cluster() as cluster:
        for start in range(0, topics, CREATE_BATCH):
            answer = cluster.controller().send(ApiKey.CREATE_TOPICS, {
                "topics": [{"name": name, "num_partitions": partitions, "replication_factor": -1,
                            "assignments": [], "configs": []} for name in names[start:start + CREATE_BATCH]],
                "timeout_ms": 60_000}, lowest=4)
            for result in answer.topics:
                check(result.error_code, f"creating {result.name}")
    return names


def _timed_get(url: str) -> float:
    began = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        response.read()
    return (time.perf_counter() - began) * 1000


def measure(topics: int, partitions: int, runs: int) -> dict[str, Any]:
    from kafkacompat.embedded import EmbeddedBroker

    with EmbeddedBroker(isolation="process", config={"http.listeners": "http://127.0.0.1:0"}) as broker:
        names = _create_topics(broker, topics, partitions)
        result: dict[str, Any] = {"workload": f"console pages ({topics} topics, {topics * partitions} partitions)",
                                  "runs": runs}
        for page in PAGES:
            url = broker.http_url + page.format(topic=names[len(names) // 2])
            _timed_get(url)  # warm
            timings = [_timed_get(url) for _ in range(runs)]
            result[f"GET {page}_ms"] = {"median": statistics.median(timings), "min": min(timings),
                                        "max": max(timings)}
        return result
