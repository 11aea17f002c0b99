"""The Dockerfile's image, started with testcontainers, serves a stock client.

Needs a Docker engine; where there is none (this project's dev machines and
CI have only the client), the test skips and says so.
"""

from __future__ import annotations

import pytest

from compat_helpers import REPO_ROOT, free_port, unique_topic


def _docker_engine_reachable() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:  # any failure to reach an engine means: no engine here
        return False


pytestmark = pytest.mark.skipif(not _docker_engine_reachable(), reason="no Docker engine reachable (docker ping failed)")


@pytest.mark.timeout(600)
def test_image_serves_kafka_python_on_its_advertised_mapped_port():
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.image import DockerImage
    from testcontainers.core.waiting_utils import wait_for_logs

    # Clients must be handed the host side of the port mapping, so fix it before start.
    port = free_port()
    with DockerImage(path=str(REPO_ROOT), tag="kafkacompat:test") as image:
        container = (
            DockerContainer(str(image))
            .with_bind_ports(9092, port)
            .with_env("KAFKACOMPAT_CONFIG_ADVERTISED_LISTENERS", f"PLAINTEXT://127.0.0.1:{port}")
        )
        with container:
            wait_for_logs(container, "kafkacompat listening", timeout=60)
            bootstrap = f"127.0.0.1:{port}"
            topic = unique_topic("docker")
            producer = KafkaProducer(bootstrap_servers=bootstrap)
            producer.send(topic, key=b"k", value=b"v").get(timeout=30)
            producer.close()
            consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest")
            consumer.assign([TopicPartition(topic, 0)])
            records = consumer.poll(timeout_ms=10_000)
            consumer.close()
            assert [(r.key, r.value) for batch in records.values() for r in batch] == [(b"k", b"v")]
