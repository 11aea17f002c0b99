"""Listeners by Kafka's rules: ``listeners``, ``advertised.listeners``, ``listener.security.protocol.map``.

``listeners=PLAINTEXT://:9092,SASL_SSL://host:9094`` names each endpoint;
the map gives each name its security protocol (a name that is itself a
protocol maps to it by default). A listener absent from
``advertised.listeners`` is advertised as it listens, a wildcard host as
127.0.0.1 so clients get an address they can dial. Listeners named in
``controller.listener.names`` are not opened: one process here is broker and
controller, and its controller has no endpoint of its own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from kafkacompat.config import BrokerConfig

log = logging.getLogger("kafkacompat.server")

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


@dataclass(frozen=True)
class Endpoint:
    """One listener: its name, security protocol and address."""

    name: str
    security_protocol: str
    host: str
    port: int

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    def with_address(self, host: str, port: int) -> "Endpoint":
        return Endpoint(self.name, self.security_protocol, host, port)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.name}://{host}:{self.port}"


def _error(message: str) -> Exception:
    from kafkacompat.config import ConfigError

    return ConfigError(message)


def protocol_map(text: str) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, sep, protocol = entry.partition(":")
        protocol = protocol.strip().upper()
        if not sep or protocol not in SECURITY_PROTOCOLS:
            raise _error(f"listener.security.protocol.map: {entry!r} is not NAME:PROTOCOL with a protocol of "
                         f"{', '.join(SECURITY_PROTOCOLS)}")
        mapping[name.strip().upper()] = protocol
    return mapping


def parse_endpoints(text: str, protocols: dict[str, str], setting: str = "listeners") -> list[Endpoint]:
    """``NAME://host:port,...`` -> endpoints; names and ports must be unique, as Kafka demands."""
    endpoints: list[Endpoint] = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, sep, address = entry.partition("://")
        if not sep:
            raise _error(f"{setting}: {entry!r} is not NAME://HOST:PORT")
        name = name.upper()
        host, _, port = address.rpartition(":")
        if not port.isdigit():
            raise _error(f"{setting}: cannot read a port from {entry!r}")
        if name not in protocols:
            raise _error(f"{setting}: no security protocol defined for listener {name} "
                         "(add it to listener.security.protocol.map)")
        if any(e.name == name for e in endpoints):
            raise _error(f"{setting}: each listener must have a different name, {name} appears twice")
        endpoints.append(Endpoint(name, protocols[name], host.strip("[]"), int(port)))
    ports = [e.port for e in endpoints if e.port]
    if setting == "listeners" and len(ports) != len(set(ports)):
        raise _error(f"{setting}: each listener must have a different port")
    return endpoints


def configured_endpoints(config: "BrokerConfig") -> tuple[list[Endpoint], dict[str, Endpoint]]:
    """The listeners to open, and the advertised endpoint of those advertised explicitly."""
    protocols = {name: name for name in SECURITY_PROTOCOLS}
    protocols.update(protocol_map(config.get("listener.security.protocol.map")))
    controllers = {name.strip().upper() for name in config.get("controller.listener.names").split(",") if name.strip()}
    for name in controllers:
        protocols.setdefault(name, "PLAINTEXT")
    listeners = parse_endpoints(config.get("listeners"), protocols)
    opened = [e for e in listeners if e.name not in controllers]
    for endpoint in listeners:
        if endpoint.name in controllers:
            log.info("listener %s not opened: it is a controller listener, and this broker's controller "
                     "has no endpoint of its own", endpoint)
    if not opened:
        raise _error("listeners: no listener left to serve clients on")
    names = {e.name for e in opened}
    advertised = {e.name: e for e in parse_endpoints(config.get("advertised.listeners"), protocols,
                                                     "advertised.listeners")}
    unknown = set(advertised) - names - controllers
    if unknown:
        raise _error(f"advertised.listeners: {', '.join(sorted(unknown))} not among the listeners")
    inter_broker = config.get("inter.broker.listener.name").upper()
    if inter_broker and inter_broker not in names:
        raise _error(f"inter.broker.listener.name: {inter_broker} is not a listener")
    return opened, advertised


def advertise(endpoint: Endpoint, bound_port: int, explicit: Endpoint | None) -> Endpoint:
    """What clients of ``endpoint`` are told: the explicit advertised endpoint, else where it listens."""
    if explicit is not None:
        return explicit
    return endpoint.with_address("127.0.0.1" if endpoint.host in WILDCARD_HOSTS else endpoint.host, bound_port)


def replace_address(listeners: str, host: str | None, port: int | None) -> str:
    """``--host``/``--port``: the first listener's address replaced, its name and the others kept."""
    entries = [part.strip() for part in listeners.split(",") if part.strip()]
    first = entries[0] if entries else "PLAINTEXT://127.0.0.1:9092"
    name, sep, address = first.partition("://")
    if not sep:
        name, address = "PLAINTEXT", first
    old_host, _, old_port = address.rpartition(":")
    new_host = old_host.strip("[]") if host is None else host
    new_host = f"[{new_host}]" if ":" in new_host else new_host
    entries[:1] = [f"{name}://{new_host}:{old_port if port is None else port}"]
    return ",".join(entries)


def with_ports(listeners: str, port_of: Callable[[int, str, int], int]) -> str:
    """``listeners`` with each entry's port replaced by ``port_of(position, name, port)``, names and hosts kept."""
    entries = []
    for position, entry in enumerate(part.strip() for part in listeners.split(",") if part.strip()):
        name, _, address = entry.partition("://")
        host, _, port = address.rpartition(":")
        entries.append(f"{name}://{host}:{port_of(position, name.upper(), int(port))}")
    return ",".join(entries)
