"""listeners / advertised.listeners / listener.security.protocol.map, by Kafka's rules."""

from __future__ import annotations

import pytest

from kafkacompat.config import BrokerConfig, ConfigError
from kafkacompat.listeners import Endpoint, advertise, configured_endpoints, replace_address


def endpoints(**settings: str):
    return configured_endpoints(BrokerConfig({name.replace("_", "."): value for name, value in settings.items()}))


def test_names_protocols_and_the_controller_listener_left_closed() -> None:
    opened, advertised = endpoints(
        listeners="PLAINTEXT://:9092,INTERNAL://10.0.0.1:9093,CONTROLLER://:9094",
        listener_security_protocol_map="INTERNAL:SASL_SSL,PLAINTEXT:PLAINTEXT",
        controller_listener_names="CONTROLLER")
    assert opened == [Endpoint("PLAINTEXT", "PLAINTEXT", "", 9092), Endpoint("INTERNAL", "SASL_SSL", "10.0.0.1", 9093)]
    assert opened[1].uses_tls and opened[1].uses_sasl and advertised == {}


def test_advertised_listeners_by_name_and_wildcards_advertise_loopback() -> None:
    opened, advertised = endpoints(listeners="PLAINTEXT://0.0.0.0:9092,SSL://:9093",
                                   advertised_listeners="SSL://kafka.example:19093")
    assert advertise(opened[0], 9092, advertised.get("PLAINTEXT")) == Endpoint("PLAINTEXT", "PLAINTEXT", "127.0.0.1", 9092)
    assert advertise(opened[1], 9093, advertised.get("SSL")) == Endpoint("SSL", "SSL", "kafka.example", 19093)


@pytest.mark.parametrize(("settings", "message"), [
    ({"listeners": "FOO://:9092"}, "no security protocol defined for listener FOO"),
    ({"listeners": "PLAINTEXT://:9092,PLAINTEXT://:9093"}, "different name"),
    ({"listeners": "PLAINTEXT://:9092,SSL://:9092"}, "different port"),
    ({"listeners": "PLAINTEXT://:9092", "advertised.listeners": "SSL://h:1"}, "not among the listeners"),
    ({"listeners": "PLAINTEXT://:9092", "listener.security.protocol.map": "PLAINTEXT:TLS"}, "NAME:PROTOCOL"),
    ({"listeners": "PLAINTEXT://:9092", "inter.broker.listener.name": "SSL"}, "not a listener"),
    ({"listeners": "localhost:9092"}, "NAME://HOST:PORT"),
])
def test_bad_listener_settings_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        configured_endpoints(BrokerConfig(settings))


def test_host_and_port_flags_replace_only_the_first_listeners_address() -> None:
    assert replace_address("SASL_SSL://:9094,PLAINTEXT://:9092", "127.0.0.1", 0) == \
        "SASL_SSL://127.0.0.1:0,PLAINTEXT://:9092"
    assert replace_address("PLAINTEXT://127.0.0.1:9092", None, 7000) == "PLAINTEXT://127.0.0.1:7000"
