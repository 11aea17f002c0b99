"""The dispatch table: which API keys and versions this broker serves.

Every handler module exports ``API_HANDLERS``, a list of :class:`ApiHandler`.
ApiVersions answers from this table, so what is advertised is exactly what is
routed — never a hand-kept list.

One rule sets every range: a handler serves exactly the ``valid_versions`` of
its API's YAML spec, and each spec restates every version Apache Kafka 3.9
accepted (the versions KIP-896 removed in 4.0 included). A handler therefore
names only its API key and its function, ``ApiHandler(api_key, handle)``; it
never states a floor or a ceiling of its own. Widening an API means adding
the versions to its spec. Versions that would need records in message format
v0/v1 (Produce v0-2, Fetch v0-3) are still served, and the handler refuses
them in-band with UNSUPPORTED_VERSION, as Kafka does when down-conversion is
off: a refusal on use, not a narrower range.
"""

from __future__ import annotations

import functools

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Mapping

from kafkacompat.protocol.frames import RequestHeader
from kafkacompat.protocol.specs import spec_version_range

if TYPE_CHECKING:
    from kafkacompat.broker import Broker
    from kafkacompat.security.sasl.session import SaslSession


@dataclass(frozen=True)
class Request:
    """One decoded request: its header and its body (a construct Container)."""

    header: RequestHeader
    body: Any

    @property
    def version(self) -> int:
        return self.header.api_version


@dataclass
class RequestContext:
    """What a handler may use: the broker's engines and the calling connection's identity."""

    broker: "Broker"
    client_host: str
    principal: str = "User:ANONYMOUS"  # set by authentication (SASL or a TLS client certificate)
    listener_name: str = "PLAINTEXT"  # the listener the connection came in on
    sasl: "SaslSession | None" = None  # on a SASL listener: the connection's authentication state
    # Run once when the connection closes (Kafka's ConnectionDisconnectListener): share sessions end there.
    on_disconnect: dict[str, Callable[[], None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Deferred:
    """A response body that is final only once ``settle`` has run.

    Produce answers with one after appending, so that its connection can read
    and append the next request while this one waits for its fsync: requests
    pipelined on one connection then share flush rounds. ``body`` is None when
    no response is sent at all.
    """

    body: Mapping[str, Any] | None
    settle: Callable[[], Awaitable[None]]


# A handler returns the response body as a plain mapping (one shape for all
# versions; the codec keeps the fields of the negotiated version), None when
# no response is sent at all, or a Deferred body.
HandlerFunc = Callable[[Request, RequestContext], Awaitable["Mapping[str, Any] | Deferred | None"]]


@dataclass(frozen=True)
class ApiHandler:
    """One API key's handler; its version range is its spec's (see the module docstring).

    The range is read from the spec file on first use, not at import, so a
    broker without its specs can say so instead of failing to import.
    """

    api_key: int
    handle: HandlerFunc

    @functools.cached_property
    def _range(self) -> tuple[int, int]:
        return spec_version_range(self.api_key)

    @property
    def min_version(self) -> int:
        return self._range[0]

    @property
    def max_version(self) -> int:
        return self._range[1]

    def supports(self, version: int) -> bool:
        low, high = self._range
        return low <= version <= high


def build_registry(modules: list[Any]) -> dict[int, ApiHandler]:
    """Collect ``API_HANDLERS`` from handler modules, refusing duplicate keys."""
    registry: dict[int, ApiHandler] = {}
    for module in modules:
        for handler in module.API_HANDLERS:
            if handler.api_key in registry:
                raise ValueError(f"API key {handler.api_key} registered twice")
            registry[handler.api_key] = handler
    return registry
