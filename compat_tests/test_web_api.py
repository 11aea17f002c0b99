"""The HTTP side of a live broker: Prometheus /metrics and the JSON admin API, after stock clients used it."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from compat_helpers import unique_topic, wait_until
from kafkacompat.client import KafkaClient



def _get(base: str, path: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _json(base: str, path: str):
    status, body = _get(base, path)
    assert status == 200, body
    return json.loads(body)


def _samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = _get(base, "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def _create(bootstrap: str, topic: str, partitions: int, configs: dict[str, str] | None = None) -> None:
    with KafkaClient(bootstrap) as client:
        response = client.request(19, 5, {
            "topics": [{"name": topic, "num_partitions": partitions, "replication_factor": 1, "assignments": [],
                        "configs": [{"name": k, "value": v} for k, v in (configs or {}).items()]}],
            "timeout_ms": 10_000, "validate_only": False})
    assert response.topics[0].error_code == 0


def _produce(bootstrap: str, topic: str) -> list[tuple[int, int]]:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    sent = [
        producer.send(topic, key=b"k%d" % i, value=b"v%d" % i, headers=[("h", b"%d" % i)], partition=i % 2)
        .get(timeout=30)
        for i in range(7)
    ]
    producer.close()
    return [(m.partition, m.offset) for m in sent]


def test_metrics_count_exact_requests_errors_and_log_state(http_broker):
    base, bootstrap = http_broker.http, http_broker.bootstrap
    topic = unique_topic("metrics")
    _create(bootstrap, topic, 2)
    before_produce = _samples(base)
    _produce(bootstrap, topic)
    before = _samples(base)
    messages_in = ("kafka_server_brokertopicmetrics_messagesin_total", (("topic", topic),))
    assert before[messages_in] - before_produce.get(messages_in, 0) == 7
    assert before[("kafka_server_brokertopicmetrics_bytesin_total", (("topic", topic),))] > 7 * 4
    with KafkaClient(bootstrap) as client:
        for _ in range(5):
            client.request(3, 9, {"topics": None, "allow_auto_topic_creation": False,
                                  "include_topic_authorized_operations": False})
        client.request(2, 4, {"replica_id": -1, "isolation_level": 0, "topics": [
            {"name": topic, "partitions": [{"partition_index": 9, "current_leader_epoch": -1, "timestamp": -1}]}]})
    after = _samples(base)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert moved("kafka_network_requestmetrics_requests_total", request="Metadata", version="9") == 5
    assert moved("kafka_network_requestmetrics_requests_total", request="ListOffsets", version="4") == 1
    assert moved("kafka_network_requestmetrics_errors_total",
                 request="ListOffsets", error="UNKNOWN_TOPIC_OR_PARTITION") == 1
    assert moved("kafka_network_requestmetrics_totaltimems_count", request="Metadata") == 5
    bytes_in = after[("kafka_server_brokertopicmetrics_bytesin_total", (("topic", topic),))]
    with KafkaClient(bootstrap) as client:
        client.request(1, 12, {
            "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 1 << 20, "isolation_level": 0,
            "session_id": 0, "session_epoch": -1, "forgotten_topics_data": [], "rack_id": "",
            "topics": [{"topic": topic, "partitions": [
                {"partition": p, "fetch_offset": 0, "partition_max_bytes": 1 << 20} for p in (0, 1)]}]})
    fetched = _samples(base)[("kafka_server_brokertopicmetrics_bytesout_total", (("topic", topic),))]
    assert fetched == bytes_in, "one fetch of both partitions from 0 sends every stored batch once"
    ends = {p: after[("kafka_log_log_logendoffset", (("partition", str(p)), ("topic", topic)))] for p in (0, 1)}
    assert ends == {0: 4, 1: 3}
    assert after[("kafka_cluster_partition_highwatermark", (("partition", "0"), ("topic", topic)))] == 4
    assert after[("kafka_log_log_numlogsegments", (("partition", "1"), ("topic", topic)))] == 1
    assert after[("kafka_log_log_size", (("partition", "1"), ("topic", topic)))] > 0
    assert after[("kafka_server_replicamanager_partitioncount", ())] >= 2
    # Seven acks=all produces were each answered after an fsync round.
    assert after[("kafka_log_logflushstats_logflushrateandtimems_count", ())] >= 7


def test_topic_api_shows_partitions_configs_and_records_exactly(http_broker):
    base, bootstrap = http_broker.http, http_broker.bootstrap
    topic = unique_topic("api")
    _create(bootstrap, topic, 2, {"retention.ms": "123456"})
    placed = _produce(bootstrap, topic)
    listed = {t["name"]: t for t in _json(base, "/api/topics")}
    assert listed[topic]["partitions"] == 2 and listed[topic]["records"] == 7
    described = _json(base, f"/api/topics/{topic}")
    assert [(p["partition"], p["log_start_offset"], p["high_watermark"]) for p in described["partitions"]] == [
        (0, 0, 4), (1, 0, 3)]
    configs = {c["name"]: (c["value"], c["source"]) for c in described["configs"]}
    assert configs["retention.ms"] == ("123456", "TOPIC_CONFIG")
    assert configs["cleanup.policy"] == ("delete", "DEFAULT_CONFIG")

    page = _json(base, f"/api/topics/{topic}/partitions/0/records?offset=1&limit=2")
    expected = [i for i, (p, _) in enumerate(placed) if p == 0]  # record numbers on partition 0, in order
    assert [(r["offset"], r["key"]["text"], r["value"]["text"]) for r in page["records"]] == [
        (1, f"k{expected[1]}", f"v{expected[1]}"), (2, f"k{expected[2]}", f"v{expected[2]}")]
    header_value = str(expected[1]).encode()
    assert page["records"][0]["headers"] == [
        {"key": "h", "value": {"text": header_value.decode(), "base64": base64.b64encode(header_value).decode()}}]
    assert page["next_offset"] == 3 and page["high_watermark"] == 4
    rest = _json(base, f"/api/topics/{topic}/partitions/0/records?offset=3")
    assert [r["offset"] for r in rest["records"]] == [3]

    assert _get(base, "/api/topics/no-such-topic")[0] == 404
    assert _get(base, f"/api/topics/{topic}/partitions/7/records")[0] == 404
    assert _get(base, f"/api/topics/{topic}/partitions/0/records?offset=x")[0] == 400
    assert _get(base, f"/api/topics/{topic}/partitions/0/records?offset=99")[0] == 416


def test_group_api_shows_committed_offsets_and_lag(http_broker):
    base, bootstrap = http_broker.http, http_broker.bootstrap
    topic = unique_topic("lag")
    _create(bootstrap, topic, 2)
    _produce(bootstrap, topic)
    group = unique_topic("group")
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(1, "", -1)})
    consumer.close()
    described = wait_until(lambda: _json(base, f"/api/groups/{group}"), 5, "the group in the API")
    assert described["state"] == "Empty"
    assert [(o["partition"], o["committed"], o["high_watermark"], o["lag"]) for o in described["offsets"]] == [
        (0, 1, 4, 3)]
    assert group in {g["group_id"] for g in _json(base, "/api/groups")}
    samples = _samples(base)
    assert samples[("kafka_consumergroup_lag", (("group", group), ("partition", "0"), ("topic", topic)))] == 3
    assert _get(base, "/api/groups/no-such-group")[0] == 404


CLIENT_METRICS_RESOURCE, INCREMENTAL_ALTER_CONFIGS, DESCRIBE_CONFIGS = 16, 44, 32


def _subscribe(bootstrap: str, name: str, configs: dict[str, str]) -> None:
    with KafkaClient(bootstrap) as client:
        answer = client.request(INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [{
            "resource_type": CLIENT_METRICS_RESOURCE, "resource_name": name,
            "configs": [{"name": k, "config_operation": 0, "value": v} for k, v in configs.items()]}],
            "validate_only": False})
    assert answer.responses[0].error_code == 0, answer.responses[0].error_message


def test_client_metrics_subscriptions_are_config_resources(http_broker):
    bootstrap = http_broker.bootstrap
    name = unique_topic("subscription")
    _subscribe(bootstrap, name, {"metrics": "org.apache.kafka.producer.", "interval.ms": "2000",
                                 "match": "client_id=app-.*"})
    with KafkaClient(bootstrap) as client:
        described = client.request(DESCRIBE_CONFIGS, 4, {"resources": [{
            "resource_type": CLIENT_METRICS_RESOURCE, "resource_name": name, "configuration_keys": None}],
            "include_synonyms": False, "include_documentation": False}).results[0]
        listed = client.request(74, 0, {}).client_metrics_resources
        refused = client.request(INCREMENTAL_ALTER_CONFIGS, 1, {"resources": [{
            "resource_type": CLIENT_METRICS_RESOURCE, "resource_name": name,
            "configs": [{"name": "interval.ms", "config_operation": 0, "value": "5"}]}],
            "validate_only": False}).responses[0]
    assert {c.name: (c.value, c.config_source) for c in described.configs} == {
        "metrics": ("org.apache.kafka.producer.", 7), "interval.ms": ("2000", 7), "match": ("client_id=app-.*", 7)}
    assert name in {r.name for r in listed}
    assert refused.error_code == 40 and "interval.ms" in refused.error_message  # INVALID_CONFIG


def test_librdkafka_pushes_telemetry_that_metrics_and_the_console_show(http_broker):
    from confluent_kafka import Producer

    base, bootstrap = http_broker.http, http_broker.bootstrap
    _subscribe(bootstrap, unique_topic("all-producers"), {"metrics": "*", "interval.ms": "1000",
                                                          "match": "client_id=telemetry-producer"})
    producer = Producer({"bootstrap.servers": bootstrap, "client.id": "telemetry-producer",
                         "enable.metrics.push": True})
    topic = unique_topic("telemetry")
    try:
        def pushed() -> list:
            producer.produce(topic, b"tick")
            producer.poll(0.2)
            return [key for key, _ in _samples(base).items()
                    if key[0] == "kafka_client_telemetry" and ("client_id", "telemetry-producer") in key[1]]

        series = wait_until(pushed, 30, "librdkafka's first telemetry push")
        metric_names = {dict(labels)["metric"] for _, labels in series}
        assert any(name.startswith("org.apache.kafka.producer.") for name in metric_names), metric_names
        status, page = _get(base, "/clients")
        assert status == 200 and b"telemetry-producer" in page and b"org.apache.kafka.producer." in page
    finally:
        producer.flush(10)


def _post(base: str, path: str, body: object) -> tuple[int, dict]:
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_admin_api_writes_go_through_kafka(http_broker):
    from kafka import KafkaConsumer, TopicPartition

    base, bootstrap = http_broker.http, http_broker.bootstrap
    topic, group = unique_topic("api-writes"), unique_topic("api-group")
    _create(bootstrap, topic, 1)
    for n in range(3):
        status, done = _post(base, f"/api/topics/{topic}/records",
                             {"partition": 0, "key": f"k{n}", "value": f"v{n}", "headers": {"via": "api"}})
        assert status == 200 and done == {"topic": topic, "partition": 0}
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10_000)
    consumer.assign([TopicPartition(topic, 0)])
    assert [(m.key, m.value, m.headers) for _, m in zip(range(3), consumer)] == [
        (f"k{n}".encode(), f"v{n}".encode(), [("via", b"api")]) for n in range(3)]
    consumer.close()

    status, done = _post(base, f"/api/topics/{topic}/configs", {"set": {"retention.ms": "7200000"}})
    assert status == 200
    configs = {c["name"]: (c["value"], c["source"]) for c in _json(base, f"/api/topics/{topic}")["configs"]}
    assert configs["retention.ms"] == ("7200000", "TOPIC_CONFIG")
    assert _post(base, f"/api/topics/{topic}/configs", {"delete": ["retention.ms"]})[0] == 200
    status, refused = _post(base, f"/api/topics/{topic}/configs", {"set": {"retention.ms": "soon"}})
    assert status == 400 and "INVALID_CONFIG" in refused["error"]

    committer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    committer.assign([TopicPartition(topic, 0)])
    committer.commit({TopicPartition(topic, 0): OffsetAndMetadata(3, "", -1)})
    committer.close()
    status, done = _post(base, f"/api/groups/{group}/reset-offsets", {"topic": topic, "to": "offset", "value": 1})
    assert status == 200, done
    assert [(o["committed"], o["lag"]) for o in _json(base, f"/api/groups/{group}")["offsets"]] == [(1, 2)]
    status, refused = _post(base, f"/api/groups/{group}/reset-offsets", {"topic": topic, "to": "sideways"})
    assert status == 400 and "sideways" in refused["error"]
    assert _post(base, f"/api/topics/{topic}/records", ["not", "an", "object"])[0] == 400


def test_rebalances_are_counted(http_broker):
    from kafka import KafkaConsumer

    base, bootstrap = http_broker.http, http_broker.bootstrap
    topic, group = unique_topic("rebalanced"), unique_topic("rebalancing")
    _create(bootstrap, topic, 2)
    before = _samples(base).get(("kafka_coordinator_group_rebalances_total", ()), 0)
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group)
    wait_until(lambda: consumer.poll(timeout_ms=200) is not None and consumer.assignment(), 30, "an assignment")
    consumer.close()
    after = _samples(base)[("kafka_coordinator_group_rebalances_total", ())]
    # At least the join (generation 1) and the leave that empties the group (the next one);
    # kafka-python may rejoin once more when its subscription's metadata arrives.
    assert after - before >= 2
