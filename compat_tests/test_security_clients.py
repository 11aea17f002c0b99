"""Every stock client over SSL, SASL_PLAINTEXT and SASL_SSL (PLAIN, SCRAM-SHA-512, OAUTHBEARER).

One broker, started from a secured Kafka's ``server.properties``
(security_helpers), serves the module. Each case produces records with the
client and reads them back in a consumer group with the same client and the
same security settings, on the listener under test: the client bootstraps
there, so the Metadata it gets must name that listener's address, or its
connections to the partition leader would speak the wrong protocol. Wrong
passwords and untrusted certificates end in the client's authentication
error within seconds, never a hang.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess

import pytest

from compat_helpers import unique_topic, wait_until
from recording_proxy import KAFKAJS_DIR, run_kafkajs
from security_helpers import (
    CASE_IDS,
    CASES,
    Credentials,
    confluent_config,
    credentials_for,
    kafka_python_config,
    kafkajs_security,
    kcat_args,
)

COUNT = 5


def values(topic: str) -> list[bytes]:
    return [f"{topic}-{n}".encode() for n in range(COUNT)]


def confluent_round_trip(broker, listener: str, mechanism: str | None, who: Credentials, topic: str) -> list[bytes]:
    from confluent_kafka import Consumer, Producer

    conf = confluent_config(broker, listener, mechanism, who)
    producer = Producer({**conf, "enable.idempotence": True})
    for value in values(topic):
        producer.produce(topic, value, key=b"k")
    assert producer.flush(20) == 0
    consumer = Consumer({**conf, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    read: list[bytes] = []
    try:
        for _ in range(300):  # up to a minute: a loaded machine joins groups slowly
            message = consumer.poll(0.2)
            if message is not None:
                assert message.error() is None, message.error()
                read.append(message.value())
            if len(read) >= COUNT:
                break
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    return read


def kafka_python_round_trip(broker, listener: str, mechanism: str | None, who: Credentials, topic: str) -> list[bytes]:
    from kafka import KafkaConsumer, KafkaProducer

    conf = kafka_python_config(broker, listener, mechanism, who)
    producer = KafkaProducer(**conf)
    for value in values(topic):
        producer.send(topic, value, key=b"k").get(timeout=20)
    producer.close()
    consumer = KafkaConsumer(group_id=f"g-{topic}", auto_offset_reset="earliest", **conf)
    # Knowing the topic before the first JoinGroup spares kafka-python 3.0.12 an assignment without the
    # topic's partitions and a second rebalance, after which it was seen to read nothing for a minute.
    wait_until(lambda: consumer.partitions_for_topic(topic), 20, f"kafka-python to see {topic}")
    consumer.subscribe([topic])
    read: list[bytes] = []
    try:
        for _ in range(300):  # up to a minute: a loaded machine joins groups slowly
            for records in consumer.poll(timeout_ms=200).values():
                read += [record.value for record in records]
            if len(read) >= COUNT:
                break
        consumer.commit()
    finally:
        consumer.close()
    return read


def aiokafka_round_trip(broker, listener: str, mechanism: str | None, who: Credentials, topic: str) -> list[bytes]:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
    from aiokafka.abc import AbstractTokenProvider
    from aiokafka.helpers import create_ssl_context

    conf = kafka_python_config(broker, listener, mechanism, who)
    if "ssl_cafile" in conf:
        conf["ssl_context"] = create_ssl_context(cafile=conf.pop("ssl_cafile"), certfile=conf.pop("ssl_certfile", None),
                                                 keyfile=conf.pop("ssl_keyfile", None))
    if "sasl_oauth_token_provider" in conf:
        sync_provider = conf["sasl_oauth_token_provider"]

        class Provider(AbstractTokenProvider):
            async def token(self) -> str:
                return sync_provider.token()

        conf["sasl_oauth_token_provider"] = Provider()

    async def run() -> list[bytes]:
        producer = AIOKafkaProducer(enable_idempotence=True, **conf)
        await producer.start()
        try:
            for value in values(topic):
                await producer.send_and_wait(topic, value, key=b"k")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, group_id=f"g-{topic}", auto_offset_reset="earliest", **conf)
        await consumer.start()
        read: list[bytes] = []
        try:
            while len(read) < COUNT:
                batches = await asyncio.wait_for(consumer.getmany(timeout_ms=200), 20)
                read += [record.value for records in batches.values() for record in records]
            await consumer.commit()
        finally:
            await consumer.stop()
        return read

    return asyncio.run(asyncio.wait_for(run(), 60))


def kcat_round_trip(broker, listener: str, mechanism: str | None, who: Credentials, topic: str) -> list[bytes]:
    if shutil.which("kcat") is None:
        pytest.skip("kcat is not installed (Debian: apt-get install kcat)")
    args = kcat_args(broker, listener, mechanism, who)
    lines = "".join(value.decode() + "\n" for value in values(topic))
    subprocess.run(["kcat", *args, "-P", "-t", topic, "-X", "enable.idempotence=true"], input=lines, text=True,
                   check=True, timeout=60, capture_output=True)
    out = subprocess.run(["kcat", *args, "-G", f"g-{topic}", "-J", "-e", "-q", "-X", "auto.offset.reset=earliest",
                          topic], text=True, check=True, timeout=60, capture_output=True).stdout
    return [json.loads(line)["payload"].encode() for line in out.splitlines() if line.strip()]


def kafkajs_round_trip(broker, listener: str, mechanism: str | None, who: Credentials, topic: str) -> list[bytes]:
    if shutil.which("node") is None or not (KAFKAJS_DIR / "node_modules" / "kafkajs").is_dir():
        pytest.skip("kafkajs is not installed: run `npm ci --prefix compat_tests/kafkajs`")
    import base64

    security = kafkajs_security(broker, listener, mechanism, who)
    run_kafkajs("admin", {**security, "topic": topic, "partitions": 1})
    records = [{"key": base64.b64encode(b"k").decode(), "value": base64.b64encode(value).decode(), "headers": [],
                "timestamp": 1_700_000_000_000} for value in values(topic)]
    run_kafkajs("produce", {**security, "topic": topic, "records": records, "idempotent": True})
    result = run_kafkajs("consume", {**security, "topic": topic, "groupId": f"g-{topic}", "expected": COUNT})
    return [base64.b64decode(r["value"]) for r in result["records"]]


CLIENTS = {
    "confluent-kafka": confluent_round_trip,
    "kafka-python": kafka_python_round_trip,
    "aiokafka": aiokafka_round_trip,
    "kcat": kcat_round_trip,
    "kafkajs": kafkajs_round_trip,
}


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("listener", "mechanism"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("client", list(CLIENTS))
def test_produce_and_consume_in_a_group(secured, client: str, listener: str, mechanism: str | None) -> None:
    topic = unique_topic(f"sec-{client}-{listener}-{mechanism or 'cert'}".lower().replace("_", "-"))
    if client == "kcat":  # kcat cannot create topics
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": secured.bootstrap})
        admin.create_topics([NewTopic(topic, 1)])[topic].result(10)
    read = CLIENTS[client](secured, listener, mechanism, credentials_for(mechanism), topic)
    assert read == values(topic)
