"""A broker started from a secured Kafka-style ``server.properties``, and each client's settings for it.

The broker listens on PLAINTEXT (the harness's port), SSL (client
certificate requested), SASL_PLAINTEXT, SASL_SSL and MTLS (an SSL listener
that requires a client certificate and has an inline keystore). Users: PLAIN
``alice`` from the listeners' PlainLoginModule JAAS configs; SCRAM ``carol``,
created through AlterUserScramCredentials once the broker is up;
OAUTHBEARER ``dave`` with unsecured tokens. Client certificates map to their
CN through ``ssl.principal.mapping.rules``.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path

from compat_helpers import BrokerProcess, free_port
from kafkacompat.security.certs import CertificateSet, create_certificates

PLAIN_USER, PLAIN_PASSWORD = "alice", "alice-secret"
SCRAM_USER, SCRAM_PASSWORD = "carol", "carol-secret"
OAUTH_USER = "dave"
SECURED_LISTENERS = ("SSL", "SASL_PLAINTEXT", "SASL_SSL", "MTLS")

# (listener, SASL mechanism) pairs every client is tried with.
CASES = [
    ("SSL", None),
    ("SASL_PLAINTEXT", "PLAIN"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-512"),
    ("SASL_SSL", "PLAIN"),
    ("SASL_SSL", "SCRAM-SHA-512"),
    ("SASL_SSL", "OAUTHBEARER"),
]
CASE_IDS = [f"{listener}-{mechanism or 'cert'}" for listener, mechanism in CASES]


def _jaas(*users: tuple[str, str]) -> str:
    """A PlainLoginModule entry spread over continued lines, as server.properties files write it."""
    lines = ["org.apache.kafka.common.security.plain.PlainLoginModule required",
             '    username="admin" password="admin-secret"']
    lines += [f'    user_{user}="{password}"' for user, password in users]
    return " \\\n".join(lines) + ";"


def _continued(pem: str) -> str:
    """A PEM value as one .properties line continued over many (its line breaks lost, as Kafka allows)."""
    return " \\\n    ".join(pem.strip().splitlines())


class SecuredBroker(BrokerProcess):
    """A BrokerProcess started with ``--config server.properties`` (and the harness's --host/--port)."""

    def __init__(self, workdir: Path, certs: CertificateSet, extra: dict[str, str] | None = None) -> None:
        super().__init__(workdir, {})
        self.certs = certs
        self.ports = {name: free_port() for name in SECURED_LISTENERS}
        self.config_path = workdir / "server.properties"
        keystore = certs.broker_keystore.read_text()
        key = keystore[:keystore.index("-----END PRIVATE KEY-----") + len("-----END PRIVATE KEY-----")]
        chain = keystore[len(key):]
        listeners = ",".join(["PLAINTEXT://127.0.0.1:0"] + [f"{name}://127.0.0.1:{port}"
                                                           for name, port in self.ports.items()])
        settings = {
            "process.roles": "broker,controller",
            "num.network.threads": "3",
            "listeners": listeners,
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,"
                                              "SASL_SSL:SASL_SSL,MTLS:SSL",
            "inter.broker.listener.name": "PLAINTEXT",
            "group.initial.rebalance.delay.ms": "0",
            "http.listeners": "http://127.0.0.1:0",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(certs.broker_keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(certs.ca),
            "ssl.client.auth": "requested",
            "ssl.principal.mapping.rules": "RULE:^CN=([^,]+)$/$1/L,DEFAULT",
            "listener.name.mtls.ssl.client.auth": "required",
            "listener.name.mtls.ssl.keystore.location": "",
            "listener.name.mtls.ssl.keystore.key": _continued(key),
            "listener.name.mtls.ssl.keystore.certificate.chain": _continued(chain),
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": _jaas((PLAIN_USER, PLAIN_PASSWORD)),
            "listener.name.sasl_ssl.plain.sasl.jaas.config": _jaas((PLAIN_USER, PLAIN_PASSWORD)),
            **(extra or {}),
        }
        self.config_path.write_text("# a secured Kafka's server.properties\n" + "".join(
            f"{name}={value}\n" for name, value in settings.items()))

    def command(self) -> list[str]:
        return super().command() + ["--config", str(self.config_path)]

    def address(self, listener: str) -> str:
        return self.bootstrap if listener == "PLAINTEXT" else f"127.0.0.1:{self.ports[listener]}"


def start_secured_broker(workdir: Path, extra: dict[str, str] | None = None) -> SecuredBroker:
    certs = create_certificates(workdir / "certs", clients=("app", "other"))
    broker = SecuredBroker(workdir, certs, extra)
    broker.start()
    create_scram_user(broker, SCRAM_USER, SCRAM_PASSWORD)
    return broker


def create_scram_user(broker: BrokerProcess, user: str, password: str, iterations: int = 4096) -> None:
    from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):
        futures = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
            user, ScramCredentialInfo(mechanism, iterations), password.encode())])
        for future in futures.values():
            future.result(timeout=10)


def unsecured_token(principal: str, lifetime_s: int = 3600) -> str:
    """An unsecured JWS (alg none) as Kafka's unsecured OAUTHBEARER validator accepts it."""
    part = lambda value: base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()  # noqa: E731
    now = int(time.time())
    return f"{part({'alg': 'none'})}.{part({'sub': principal, 'iat': now, 'exp': now + lifetime_s})}."


@dataclass(frozen=True)
class Credentials:
    """Who a client is in one case: the SASL user and password (or token), the client certificate."""

    user: str | None = None
    password: str | None = None
    certificate: str | None = None  # a client name of the CertificateSet


def credentials_for(mechanism: str | None, certificate: str | None = None) -> Credentials:
    if mechanism == "PLAIN":
        return Credentials(PLAIN_USER, PLAIN_PASSWORD, certificate)
    if mechanism and mechanism.startswith("SCRAM"):
        return Credentials(SCRAM_USER, SCRAM_PASSWORD, certificate)
    if mechanism == "OAUTHBEARER":
        return Credentials(OAUTH_USER, None, certificate)
    return Credentials(certificate=certificate)


def produce_error(conf: dict, topic: str):  # type: ignore[no-untyped-def]
    """The error (or None) of one record a confluent producer with ``conf`` sends, without retries."""
    from confluent_kafka import Producer

    outcome: list = []
    producer = Producer({**conf, "message.send.max.retries": 0, "enable.idempotence": False})
    producer.produce(topic, b"x", on_delivery=lambda err, msg: outcome.append(err))
    producer.flush(15)
    assert outcome, "no delivery report"
    return outcome[0]


def protocol_of(listener: str) -> str:
    return "SSL" if listener == "MTLS" else listener


# Each client's names for: bootstrap, security protocol, CA file, certificate file, key file, mechanism,
# user name, password.
_LIBRDKAFKA = ("bootstrap.servers", "security.protocol", "ssl.ca.location", "ssl.certificate.location",
               "ssl.key.location", "sasl.mechanism", "sasl.username", "sasl.password")
_KAFKA_PYTHON = ("bootstrap_servers", "security_protocol", "ssl_cafile", "ssl_certfile", "ssl_keyfile",
                 "sasl_mechanism", "sasl_plain_username", "sasl_plain_password")


def _client_settings(names: tuple[str, ...], broker: SecuredBroker, listener: str, mechanism: str | None,
                     who: Credentials, ca: Path | None) -> dict[str, object]:
    bootstrap, protocol_name, ca_name, cert_name, key_name, mechanism_name, user_name, password_name = names
    protocol = protocol_of(listener)
    conf: dict[str, object] = {bootstrap: broker.address(listener), protocol_name: protocol}
    if "SSL" in protocol:
        conf[ca_name] = str(ca or broker.certs.ca)
        if who.certificate:
            conf[cert_name] = str(broker.certs.client_certificate(who.certificate))
            conf[key_name] = str(broker.certs.client_key(who.certificate))
    if mechanism:
        conf[mechanism_name] = mechanism
    if mechanism and mechanism != "OAUTHBEARER":
        conf.update({user_name: who.user, password_name: who.password})
    return conf


def confluent_config(broker: SecuredBroker, listener: str, mechanism: str | None, who: Credentials,
                     ca: Path | None = None) -> dict[str, object]:
    """librdkafka's settings (confluent-kafka, and kcat's -X)."""
    conf = _client_settings(_LIBRDKAFKA, broker, listener, mechanism, who, ca)
    if mechanism == "OAUTHBEARER":
        conf.update({"sasl.oauthbearer.config": f"principal={who.user}", "enable.sasl.oauthbearer.unsecure.jwt": True})
    return conf


def _token_provider(principal: str):  # type: ignore[no-untyped-def]
    """kafka-python's sasl_oauth_token_provider (its own base class is required): an unsecured token."""
    from kafka.net.sasl.oauth import AbstractTokenProvider

    class UnsecuredTokenProvider(AbstractTokenProvider):
        def token(self) -> str:
            return unsecured_token(principal)

    return UnsecuredTokenProvider()


def kafka_python_config(broker: SecuredBroker, listener: str, mechanism: str | None, who: Credentials,
                        ca: Path | None = None) -> dict[str, object]:
    """kafka-python's settings (aiokafka takes the same names)."""
    conf = _client_settings(_KAFKA_PYTHON, broker, listener, mechanism, who, ca)
    if mechanism == "OAUTHBEARER":
        conf["sasl_oauth_token_provider"] = _token_provider(who.user or "")
    return conf


def kcat_args(broker: SecuredBroker, listener: str, mechanism: str | None, who: Credentials,
              ca: Path | None = None) -> list[str]:
    conf = confluent_config(broker, listener, mechanism, who, ca)
    args = ["-b", str(conf.pop("bootstrap.servers"))]
    for name, value in conf.items():
        args += ["-X", f"{name}={str(value).lower() if isinstance(value, bool) else value}"]
    return args


def kafkajs_security(broker: SecuredBroker, listener: str, mechanism: str | None, who: Credentials,
                     ca: Path | None = None) -> dict[str, object]:
    """The driver's request fields: ``brokers``, and ``ssl``/``sasl`` when the case has them."""
    protocol = protocol_of(listener)
    request: dict[str, object] = {"brokers": [broker.address(listener)]}
    if "SSL" in protocol:
        ssl: dict[str, str] = {"ca": str(ca or broker.certs.ca)}
        if who.certificate:
            ssl.update(cert=str(broker.certs.client_certificate(who.certificate)),
                       key=str(broker.certs.client_key(who.certificate)))
        request["ssl"] = ssl
    if mechanism == "OAUTHBEARER":
        request["sasl"] = {"mechanism": "oauthbearer", "token": unsecured_token(who.user or "")}
    elif mechanism:
        request["sasl"] = {"mechanism": mechanism.lower(), "username": who.user, "password": who.password}
    return request
