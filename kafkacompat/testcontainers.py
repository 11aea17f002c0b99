"""KafkaCompatContainer: the kafkacompat image for testcontainers-python.

Same surface as testcontainers' ``KafkaContainer``::

    with KafkaCompatContainer() as kafka:
        producer = KafkaProducer(bootstrap_servers=kafka.get_bootstrap_server())

Clients outside the container must be handed the host side of the port
mapping, which Docker picks only once the container runs. So the container
waits for that address to be written into it, then starts the broker with it
as its advertised listener (``pip install 'kafkacompat[testcontainers]'``;
build the image with ``docker build -t kafkacompat .`` in a checkout).
"""

from __future__ import annotations

import re

from testcontainers.core.container import DockerContainer
from testcontainers.core.waiting_utils import wait_for_logs

KAFKA_PORT = 9092
ADVERTISED_FILE = "/tmp/kafkacompat-advertised"
_START = (
    f"while [ ! -s {ADVERTISED_FILE} ]; do sleep 0.05; done; "
    f'exec kafkacompat serve --host 0.0.0.0 --port {KAFKA_PORT} --data-dir /data '
    f'--advertised-host "$(cut -d" " -f1 {ADVERTISED_FILE})" '
    f'--advertised-port "$(cut -d" " -f2 {ADVERTISED_FILE})"'
)
_LISTENING = re.compile(r"kafkacompat listening on")


class KafkaCompatContainer(DockerContainer):
    """A kafkacompat broker in a container; ``-o``-style broker configs via ``with_broker_config``."""

    def __init__(self, image: str = "kafkacompat:latest", port: int = KAFKA_PORT, **kwargs) -> None:
        super().__init__(image, **kwargs)
        self.port = port
        self.with_exposed_ports(port)

    def with_broker_config(self, name: str, value: object) -> KafkaCompatContainer:
        """Any broker config by Kafka's name, e.g. ``("num.partitions", 3)``."""
        env_name = "KAFKACOMPAT_CONFIG_" + name.replace(".", "_").upper()
        self.with_env(env_name, str(value))
        return self

    def get_bootstrap_server(self) -> str:
        return f"{self.get_container_host_ip()}:{self.get_exposed_port(self.port)}"

    def start(self, timeout: float = 60) -> KafkaCompatContainer:
        self.with_command(["sh", "-c", _START])
        super().start()
        host, port = self.get_container_host_ip(), self.get_exposed_port(self.port)
        result = self.exec(["sh", "-c", f"echo '{host} {port}' > {ADVERTISED_FILE}"])
        if result.exit_code != 0:
            raise RuntimeError(f"could not hand the container its advertised address: {result.output!r}")
        wait_for_logs(self, _LISTENING, timeout=timeout)
        return self
