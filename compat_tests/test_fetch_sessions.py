"""Incremental fetch sessions (KIP-227) over a real socket, as the Java consumer drives them.

No client library exposes session ids and epochs, so these requests are
written by hand (kafkacompat.client) and checked against Kafka's rules:
a full fetch with epoch 0 opens a session, incremental fetches name it with
the next epoch and are answered only with partitions that have something
new, the wrong id or epoch gets Kafka's error, epoch -1 closes it.
"""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition

from compat_helpers import free_port, unique_topic
from confluent_clients import create_topic
from kafkacompat.client import KafkaClient
from kafkacompat.protocol import decode_request, decode_response, parse_request, parse_response_frame
from raw_wire import record_batch
from recording_proxy import RecordingProxy

PRODUCE, FETCH, METADATA = 0, 1, 3
FETCH_SESSION_ID_NOT_FOUND, INVALID_FETCH_SESSION_EPOCH, FETCH_SESSION_TOPIC_ID_ERROR = 70, 71, 106


def produce(client: KafkaClient, topic: str, partition: int, count: int) -> None:
    batch = record_batch([(b"k%d" % n, b"v%d" % n) for n in range(count)], int(time.time() * 1000))
    response = client.request(PRODUCE, 9, {"acks": -1, "timeout_ms": 10_000, "topic_data": [
        {"name": topic, "partition_data": [{"index": partition, "records": batch}]}]})
    assert response.responses[0].partition_responses[0].error_code == 0


def fetch(client: KafkaClient, session_id: int, epoch: int, offsets: dict, *, version: int = 12, topic_key=None,
          forgotten: list[int] = (), max_wait_ms: int = 0):
    """`offsets`: partition -> fetch offset for the partitions this request names."""
    name_or_id = {"topic_id": topic_key} if version >= 13 else {"topic": topic_key}
    topics = [{**name_or_id, "partitions": [
        {"partition": p, "fetch_offset": o, "log_start_offset": -1, "partition_max_bytes": 1 << 20,
         "current_leader_epoch": -1, "last_fetched_epoch": -1} for p, o in offsets.items()]}] if offsets else []
    forgotten_topics = [{**name_or_id, "partitions": list(forgotten)}] if forgotten else []
    return client.request(FETCH, version, {
        "replica_id": -1, "max_wait_ms": max_wait_ms, "min_bytes": 1, "max_bytes": 50 << 20, "isolation_level": 0,
        "session_id": session_id, "session_epoch": epoch, "topics": topics,
        "forgotten_topics_data": forgotten_topics, "rack_id": ""})


def answered(response) -> dict[int, tuple[int, int]]:
    """partition -> (high watermark, record bytes) of every partition in the response."""
    return {p.partition_index: (p.high_watermark, len(p.records or b""))
            for topic in response.responses for p in topic.partitions}


def test_a_session_answers_only_what_changed(broker):
    topic = unique_topic("session")
    create_topic(broker.bootstrap, topic, 3)
    with KafkaClient(broker.bootstrap) as client:
        for partition in range(3):
            produce(client, topic, partition, 2)
        full = fetch(client, 0, 0, {0: 0, 1: 0, 2: 0}, topic_key=topic)
        session_id = full.session_id
        assert full.error_code == 0 and session_id > 0
        assert {p: hw for p, (hw, size) in answered(full).items() if size > 0} == {0: 2, 1: 2, 2: 2}
        # The consumer moves its positions; nothing new anywhere: an empty response.
        caught_up = fetch(client, session_id, 1, {0: 2, 1: 2, 2: 2}, topic_key=topic)
        assert (caught_up.error_code, caught_up.session_id, answered(caught_up)) == (0, session_id, {})
        # New records in partition 1 only: an incremental fetch naming no partition gets just that one.
        produce(client, topic, 1, 3)
        news = fetch(client, session_id, 2, {}, topic_key=topic, max_wait_ms=5000)
        assert list(answered(news)) == [1] and answered(news)[1][0] == 5 and answered(news)[1][1] > 0
        # Not moving the position re-sends the records: they are new to the consumer.
        assert list(answered(fetch(client, session_id, 3, {}, topic_key=topic))) == [1]
        # The wrong epoch and an unknown id get Kafka's errors, a top-level code and session id 0 ...
        wrong = fetch(client, session_id, 9, {}, topic_key=topic)
        assert (wrong.error_code, wrong.session_id, wrong.responses) == (INVALID_FETCH_SESSION_EPOCH, 0, [])
        unknown = fetch(client, session_id + 1, 1, {}, topic_key=topic)
        assert (unknown.error_code, unknown.session_id, unknown.responses) == (FETCH_SESSION_ID_NOT_FOUND, 0, [])
        # ... and leave the session as it was.
        assert answered(fetch(client, session_id, 4, {1: 5}, topic_key=topic)) == {}
        # A forgotten partition is no longer read; the others still are.
        produce(client, topic, 0, 1)
        produce(client, topic, 2, 1)
        after_forget = fetch(client, session_id, 5, {}, topic_key=topic, forgotten=[0])
        assert list(answered(after_forget)) == [2]
        # Epoch -1 closes the session: a sessionless full answer, then the id is gone.
        closing = fetch(client, session_id, -1, {0: 0}, topic_key=topic)
        assert closing.session_id == 0 and answered(closing) == {0: (3, answered(closing)[0][1])}
        gone = fetch(client, session_id, 6, {}, topic_key=topic)
        assert gone.error_code == FETCH_SESSION_ID_NOT_FOUND


def test_sessions_by_topic_id_and_the_switch_to_names(broker):
    topic = unique_topic("session-ids")
    create_topic(broker.bootstrap, topic, 1)
    with KafkaClient(broker.bootstrap) as client:
        topic_id = client.request(METADATA, 12, {"topics": [{"name": topic}],
                                                 "allow_auto_topic_creation": False,
                                                 "include_topic_authorized_operations": False}).topics[0].topic_id
        produce(client, topic, 0, 1)
        full = fetch(client, 0, 0, {0: 0}, version=13, topic_key=topic_id)
        assert full.session_id > 0 and answered(full)[0][0] == 1
        assert answered(fetch(client, full.session_id, 1, {0: 1}, version=13, topic_key=topic_id)) == {}
        switched = fetch(client, full.session_id, 2, {}, version=12, topic_key=topic)
        assert switched.error_code == FETCH_SESSION_TOPIC_ID_ERROR


def test_sessionless_fetches_and_a_broker_without_session_slots(broker_factory):
    server = broker_factory({"max.incremental.fetch.session.cache.slots": "0"})
    topic = unique_topic("no-slots")
    create_topic(server.bootstrap, topic, 1)
    with KafkaClient(server.bootstrap) as client:
        produce(client, topic, 0, 1)
        sessionless = fetch(client, 0, -1, {0: 0}, topic_key=topic)
        assert (sessionless.error_code, sessionless.session_id) == (0, 0) and answered(sessionless)[0][0] == 1
        # No room for a session: a full answer with session id 0, and the client keeps fetching in full.
        declined = fetch(client, 0, 0, {0: 0}, topic_key=topic)
        assert (declined.error_code, declined.session_id) == (0, 0) and answered(declined)[0][1] > 0


def _recorded_fetches(proxy) -> list[tuple[object, object]]:
    """(request, response) bodies of every Fetch that went through the proxy."""
    pairs = []
    for exchange in proxy.exchanges:
        if exchange.api_key != FETCH or exchange.response is None:
            continue
        _, body = parse_request(exchange.request[4:])
        _, payload = parse_response_frame(FETCH, exchange.api_version, exchange.response[4:])
        pairs.append((decode_request(FETCH, exchange.api_version, body),
                      decode_response(FETCH, exchange.api_version, payload)))
    return pairs


def test_kafka_python_reads_everything_through_incremental_sessions(broker_factory):
    """kafka-python 3.x opens a session and fetches incrementally; every record arrives once."""
    proxy_port = free_port()
    server = broker_factory({"advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy_port}"})
    topic = unique_topic("kp-session")
    with RecordingProxy(("127.0.0.1", server.port), proxy_port) as proxy:
        create_topic(server.bootstrap, topic, 3)  # the admin client follows Metadata to the proxy
        consumer = KafkaConsumer(bootstrap_servers=f"127.0.0.1:{proxy_port}", group_id=None,
                                 enable_auto_commit=False, auto_offset_reset="earliest", fetch_max_wait_ms=100)
        consumer.assign([TopicPartition(topic, p) for p in range(3)])
        seen: list[tuple[int, int, bytes]] = []
        with KafkaClient(server.bootstrap) as client:
            for wave in range(3):
                for partition in range(3):
                    produce(client, topic, partition, 2)
                deadline = time.monotonic() + 30
                while len(seen) < 6 * (wave + 1) and time.monotonic() < deadline:
                    for records in consumer.poll(timeout_ms=200).values():
                        seen += [(r.partition, r.offset, r.value) for r in records]
        time.sleep(0.3)
        consumer.close()
        fetches = _recorded_fetches(proxy)
    assert sorted((p, o) for p, o, _ in seen) == [(p, o) for p in range(3) for o in range(6)]
    assert all(value == b"v%d" % (offset % 2) for _, offset, value in seen)
    incremental = [(request, response) for request, response in fetches if request.session_epoch > 0]
    assert incremental, "kafka-python never fetched incrementally"
    assert all(response.error_code == 0 and response.session_id == request.session_id
               for request, response in incremental)
