"""The Dockerfile's image, run through kafkacompat.testcontainers, serves stock clients.

Needs a Docker engine; where there is none (this project's dev machines and
CI have only the client), the tests skip and say so.
"""

from __future__ import annotations

import time

import pytest

from compat_helpers import REPO_ROOT, unique_topic


def _docker_engine_reachable() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:  # any failure to reach an engine means: no engine here
        return False


pytestmark = [
    pytest.mark.skipif(not _docker_engine_reachable(), reason="no Docker engine reachable (docker ping failed)"),
    pytest.mark.timeout(900),
]


@pytest.fixture(scope="module")
def image() -> str:
    from testcontainers.core.image import DockerImage

    with DockerImage(path=str(REPO_ROOT), tag="kafkacompat:test") as built:
        yield str(built)


def test_container_serves_kafka_python_on_its_mapped_port(image: str) -> None:
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    from kafkacompat.testcontainers import KafkaCompatContainer

    with KafkaCompatContainer(image).with_broker_config("num.partitions", 2) as kafka:
        bootstrap = kafka.get_bootstrap_server()
        topic = unique_topic("docker")
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        producer.send(topic, key=b"k", value=b"v", partition=1).get(timeout=30)
        producer.close()
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
        assert consumer.partitions_for_topic(topic) == {0, 1}
        consumer.assign([TopicPartition(topic, 1)])
        records = consumer.poll(timeout_ms=10_000)
        consumer.close()
        assert [(r.key, r.value) for batch in records.values() for r in batch] == [(b"k", b"v")]
        assert kafka.exec(["id", "-u"]).output.strip() != b"0", "the broker runs as an unprivileged user"


def test_container_reports_healthy_from_an_api_versions_round_trip(image: str) -> None:
    from kafkacompat.testcontainers import KafkaCompatContainer

    with KafkaCompatContainer(image) as kafka:
        wrapped = kafka.get_wrapped_container()
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline:
            wrapped.reload()
            status = wrapped.attrs["State"].get("Health", {}).get("Status")
            if status == "healthy":
                break
            time.sleep(1)
        assert status == "healthy"
