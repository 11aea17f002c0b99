"""pytest fixtures for tests that need Kafka; loaded whenever kafkacompat is installed.

- ``kafka_broker`` (session): an :class:`~kafkacompat.embedded.EmbeddedBroker`
  started on first use, or the external broker named by
  ``--kafka-bootstrap-servers`` / the ``kafka_bootstrap_servers`` ini option,
  so the same tests can run against Apache Kafka in a later CI stage. Under
  pytest-xdist every worker is its own session and so gets its own broker.
- ``kafka_bootstrap``: its ``host:port`` string.
- ``kafka_topic``: a factory, ``kafka_topic(partitions=None, configs=None)``,
  that creates a fresh, uniquely named topic for the calling test and
  deletes it afterwards.

ini options: ``kafka_broker_isolation`` (``thread`` or ``process``) and
``kafka_broker_config`` (``NAME=VALUE`` lines of broker configs).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping

import pytest

BOOTSTRAP_OPTION = "--kafka-bootstrap-servers"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("kafkacompat", "Kafka fixtures (kafkacompat)")
    group.addoption(
        BOOTSTRAP_OPTION, dest="kafka_bootstrap_servers", default=None, metavar="HOST:PORT",
        help="run the Kafka fixtures against this broker instead of an embedded kafkacompat broker",
    )
    parser.addini("kafka_bootstrap_servers", "external broker for the Kafka fixtures (host:port)", default="")
    parser.addini("kafka_broker_isolation", "embedded broker isolation: thread or process", default="thread")
    parser.addini("kafka_broker_config", "embedded broker configs, NAME=VALUE per line", type="linelist", default=[])


def _broker_configs(lines: list[str]) -> dict[str, str]:
    configs = {}
    for line in lines:
        name, sep, value = line.partition("=")
        if not sep or not name.strip():
            raise pytest.UsageError(f"kafka_broker_config: expected NAME=VALUE, got {line!r}")
        configs[name.strip()] = value.strip()
    return configs


@pytest.fixture(scope="session")
def kafka_broker(pytestconfig: pytest.Config) -> Iterator[object]:
    from kafkacompat.embedded import EmbeddedBroker, ExternalBroker

    external = pytestconfig.getoption("kafka_bootstrap_servers") or pytestconfig.getini("kafka_bootstrap_servers")
    if external:
        yield ExternalBroker(external)
        return
    broker = EmbeddedBroker(
        isolation=pytestconfig.getini("kafka_broker_isolation"),
        config=_broker_configs(pytestconfig.getini("kafka_broker_config")),
    )
    with broker:
        yield broker


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker) -> str:
    return kafka_broker.bootstrap_servers


_NOT_TOPIC_CHARS = re.compile(r"[^a-zA-Z0-9._-]+")


@pytest.fixture
def kafka_topic(kafka_broker, request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    created: list[str] = []
    stem = _NOT_TOPIC_CHARS.sub("-", request.node.name).strip("-")[:200] or "topic"

    def make(partitions: int | None = None, configs: Mapping[str, object] | None = None) -> str:
        name = f"{stem}-{uuid.uuid4().hex[:8]}"
        kafka_broker.create_topic(name, partitions, configs)
        created.append(name)
        return name

    yield make
    for name in created:
        kafka_broker.delete_topic(name)
