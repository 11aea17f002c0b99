"""kafkacompat: an Apache Kafka wire-protocol-compatible broker.

``from kafkacompat import EmbeddedBroker`` gives a broker for tests and
scripts, ``EmbeddedCluster`` several replicating brokers; they are imported on first use so that ``import kafkacompat`` (the CLI,
the pytest plugin) stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EmbeddedBroker", "EmbeddedCluster"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from kafkacompat import embedded

        return getattr(embedded, name)
    raise AttributeError(f"module 'kafkacompat' has no attribute {name!r}")
