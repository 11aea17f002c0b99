"""Java .properties as Kafka reads server.properties, and --config choosing the format by name."""

from __future__ import annotations

import pytest

from kafkacompat.config import BrokerConfig, ConfigError
from kafkacompat.properties import parse_properties


def test_properties_syntax() -> None:
    text = "\n".join([
        "# comment", "! also a comment", "   ",
        "plain=value", "spaced = value with spaces  ", "colon:v", "white space-separated",
        "continued=first \\", "    second \\", "\tthird",
        "escaped\\=key=a\\tb\\u0041\\\\", "empty=", "later=1", "later=2",
        "trailing.backslashes=ends with two \\\\\\\\",
        "next=kept",
    ])
    assert parse_properties(text) == {
        "plain": "value", "spaced": "value with spaces  ", "colon": "v", "white": "space-separated",
        "continued": "first second third", "escaped=key": "a\tbA\\", "empty": "", "later": "2",
        "trailing.backslashes": "ends with two \\\\", "next": "kept",
    }


def test_a_secured_server_properties_starts_with_the_same_meaning(tmp_path) -> None:
    path = tmp_path / "server.properties"
    path.write_text("\n".join([
        "process.roles=broker,controller", "node.id=3", "controller.quorum.voters=3@localhost:9093",
        "listeners=PLAINTEXT://:9092,SASL_SSL://:9094,CONTROLLER://:9093",
        "controller.listener.names=CONTROLLER",
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
        "num.network.threads=3", "socket.send.buffer.bytes=102400", "log.retention.hours=168",
        "offsets.topic.replication.factor=1",
        "sasl.enabled.mechanisms=PLAIN",
        "listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule "
        'required \\', '  user_alice="alice-secret";',
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:admin", "allow.everyone.if.no.acl.found=false",
        f"log.dirs={tmp_path / 'data'}",
    ]))
    config = BrokerConfig.load(path, environ={})
    assert config.get_int("node.id") == 3
    assert config.get("log.retention.ms") == str(168 * 3_600_000)
    assert config.get("super.users") == "User:admin"
    assert config.listener_value("SASL_SSL", "plain.sasl.jaas.config").endswith('user_alice="alice-secret";')
    assert config.listener_value("PLAINTEXT", "plain.sasl.jaas.config") == ""


def test_an_unsupported_setting_is_refused_by_name(tmp_path) -> None:
    path = tmp_path / "server.properties"
    path.write_text("log.dirs=/tmp/x\nremote.log.storage.system.enable=true\n")
    with pytest.raises(ConfigError, match="remote.log.storage.system.enable"):
        BrokerConfig.load(path, environ={})


def test_the_ms_spelling_wins_over_hours() -> None:
    config = BrokerConfig({"log.retention.hours": "1", "log.retention.minutes": "2", "log.retention.ms": "3"})
    assert config.get("log.retention.ms") == "3"
    assert BrokerConfig({"log.retention.hours": "1", "log.retention.minutes": "2"}).get("log.retention.ms") == "120000"
