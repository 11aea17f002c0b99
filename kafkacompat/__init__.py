"""kafkacompat: an Apache Kafka wire-protocol-compatible broker.

``from kafkacompat import EmbeddedBroker`` gives a broker for tests and
scripts; it is imported on first use so that ``import kafkacompat`` (the CLI,
the pytest plugin) stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EmbeddedBroker"]


def __getattr__(name: str) -> Any:
    if name == "EmbeddedBroker":
        from kafkacompat.embedded import EmbeddedBroker

        return EmbeddedBroker
    raise AttributeError(f"module 'kafkacompat' has no attribute {name!r}")
