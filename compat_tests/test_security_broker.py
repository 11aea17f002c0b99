"""Security as the broker enforces it: failed logins, untrusted certificates, mTLS principals, SCRAM users
managed through the admin API, what a SASL listener serves before authentication, re-authentication, and
a server.properties setting kafkacompat cannot honour.

Failures must reach each stock client as its own authentication error
within seconds, never as a hang. The principal of a connection is observed
through a fault rule that matches on it (the same principal ACLs match).
"""

from __future__ import annotations

import asyncio
import logging
import re
import subprocess
import time

import pytest
from confluent_kafka import KafkaError, Producer

from compat_helpers import unique_topic, wait_until
from kafkacompat.client import KafkaClient
from kafkacompat.security.certs import create_certificates
from kafkacompat.tools.faults import FaultsClient
from recording_proxy import KAFKAJS_DIR, run_kafkajs
from security_helpers import (
    PLAIN_PASSWORD,
    PLAIN_USER,
    SCRAM_PASSWORD,
    SCRAM_USER,
    Credentials,
    SecuredBroker,
    confluent_config,
    create_scram_user,
    kafka_python_config,
    kafkajs_security,
    kcat_args,
    produce_error,
    start_secured_broker,
)

SASL_HANDSHAKE, SASL_AUTHENTICATE, METADATA = 17, 36, 3
_HTTP_LINE = re.compile(r"HTTP admin API and metrics on (http://\S+:\d+)")
BAD = Credentials(PLAIN_USER, "wrong-password")


def confluent_failure(conf: dict, wanted: tuple[int, ...] = (KafkaError._AUTHENTICATION, KafkaError._SSL)) -> KafkaError:
    """The first authentication or TLS error librdkafka reports."""
    errors: list[KafkaError] = []
    producer = Producer({**conf, "error_cb": errors.append})
    producer.produce("never-written", b"x")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any(e.code() in wanted for e in errors):
        producer.poll(0.1)
    found = [e for e in errors if e.code() in wanted]
    assert found, f"no authentication error within 15 s, only {errors}"
    return found[0]


def kafka_python_failure(conf: dict, caplog: pytest.LogCaptureFixture) -> str:
    from kafka import KafkaProducer
    from kafka.errors import KafkaTimeoutError

    caplog.set_level(logging.WARNING, logger="kafka")
    started = time.monotonic()
    with pytest.raises(KafkaTimeoutError):
        KafkaProducer(bootstrap_timeout_ms=3000, **conf)
    assert time.monotonic() - started < 10
    return caplog.text


def aiokafka_failure(conf: dict, caplog: pytest.LogCaptureFixture) -> str:
    """aiokafka's exception and what it logged, as one text."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.helpers import create_ssl_context

    caplog.set_level(logging.ERROR, logger="aiokafka")
    if "ssl_cafile" in conf:
        conf["ssl_context"] = create_ssl_context(cafile=conf.pop("ssl_cafile"))

    async def run() -> BaseException:
        producer = AIOKafkaProducer(request_timeout_ms=5000, **conf)
        try:
            await asyncio.wait_for(producer.start(), 15)
        except Exception as exc:  # the client's own error type is what is under test
            return exc
        finally:
            await producer.stop()
        raise AssertionError("aiokafka connected")

    return f"{asyncio.run(run())!r}\n{caplog.text}"


def kcat_failure(args: list[str]) -> str:
    completed = subprocess.run(["kcat", *args, "-L"], capture_output=True, text=True, timeout=30)
    assert completed.returncode != 0
    return completed.stderr


def kafkajs_failure(request: dict) -> str:
    if not (KAFKAJS_DIR / "node_modules" / "kafkajs").is_dir():
        pytest.skip("kafkajs is not installed: run `npm ci --prefix compat_tests/kafkajs`")
    with pytest.raises(RuntimeError) as failure:
        run_kafkajs("admin", {**request, "topic": unique_topic("never"), "partitions": 1, "retries": 0},
                    timeout_s=30)
    return str(failure.value)


KAFKA_PLAIN_FAILURE = "Authentication failed: Invalid username or password"
KAFKA_SCRAM_FAILURE = ("Authentication failed during authentication due to invalid credentials with SASL mechanism "
                       "SCRAM-SHA-512")


@pytest.mark.parametrize(("mechanism", "message"), [("PLAIN", KAFKA_PLAIN_FAILURE),
                                                    ("SCRAM-SHA-512", KAFKA_SCRAM_FAILURE)])
def test_a_wrong_password_is_each_clients_authentication_error(secured, caplog, mechanism, message) -> None:
    who = Credentials(PLAIN_USER if mechanism == "PLAIN" else SCRAM_USER, "wrong-password")
    error = confluent_failure(confluent_config(secured, "SASL_SSL", mechanism, who))
    assert error.code() == KafkaError._AUTHENTICATION and message in error.str()
    assert message in kafka_python_failure(kafka_python_config(secured, "SASL_SSL", mechanism, who), caplog)
    assert message in aiokafka_failure(kafka_python_config(secured, "SASL_PLAINTEXT", mechanism, who), caplog)
    assert message in kcat_failure(kcat_args(secured, "SASL_SSL", mechanism, who))
    assert message in kafkajs_failure(kafkajs_security(secured, "SASL_SSL", mechanism, who))
    assert f"authentication failed: user '{who.user}'" in secured.log_text()
    assert "wrong-password" not in secured.log_text()


def test_an_untrusted_broker_certificate_fails_the_handshake_in_each_client(secured, caplog) -> None:
    ca = secured.untrusted.ca  # a CA that did not sign the broker's certificate
    error = confluent_failure(confluent_config(secured, "SSL", None, Credentials(), ca))
    assert error.code() == KafkaError._SSL and "certificate verify failed" in error.str()
    assert "CERTIFICATE_VERIFY_FAILED" in kafka_python_failure(
        kafka_python_config(secured, "SSL", None, Credentials(), ca), caplog)
    assert "certificate verify failed" in kcat_failure(kcat_args(secured, "SSL", None, Credentials(), ca))
    # Both CAs carry the same name, so each client finds the broker's chain signed by the wrong key.
    assert "certificate signature failure" in kafkajs_failure(kafkajs_security(secured, "SSL", None, Credentials(), ca))
    assert "CERTIFICATE_VERIFY_FAILED" in aiokafka_failure(kafka_python_config(secured, "SSL", None, Credentials(), ca),
                                                            caplog)


def test_mtls_listener_refuses_clients_without_a_trusted_certificate(secured) -> None:
    """With TLS 1.3 the client learns only that the broker hung up, as with Apache Kafka."""
    refused = (KafkaError._SSL, KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN)
    confluent_failure(confluent_config(secured, "MTLS", None, Credentials()), refused)
    wait_until(lambda: "peer did not return a certificate" in secured.log_text(), 5, "the broker's log line")
    stranger = confluent_config(secured, "MTLS", None, Credentials())
    stranger.update({"ssl.certificate.location": str(secured.untrusted.client_certificate("stranger")),
                     "ssl.key.location": str(secured.untrusted.client_key("stranger"))})
    confluent_failure(stranger, refused)
    wait_until(lambda: "certificate signature failure" in secured.log_text() or
               "certificate verify failed" in secured.log_text(), 5, "the broker's log line")


def _http(broker: SecuredBroker) -> FaultsClient:
    found = wait_until(lambda: _HTTP_LINE.search(broker.log_text()), 10, "the HTTP listener's log line")
    return FaultsClient(found.group(1))


@pytest.mark.parametrize("listener", ["MTLS", "SSL"])
def test_a_client_certificates_dn_becomes_the_principal(secured, listener) -> None:
    """ssl.principal.mapping.rules maps CN=app to User:app: a rule on that principal refuses only its produce."""
    faults = _http(secured)
    topic = unique_topic("mtls")
    rule = faults.add(api="Produce", principal="User:app", topics=[topic], error="TOPIC_AUTHORIZATION_FAILED")
    try:
        app = produce_error(confluent_config(secured, listener, None, Credentials(certificate="app")), topic)
        assert app is not None and app.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        other = produce_error(confluent_config(secured, listener, None, Credentials(certificate="other")), topic)
        assert other is None
        if listener == "SSL":  # no certificate: ANONYMOUS, which the rule does not match either
            assert produce_error(confluent_config(secured, listener, None, Credentials()), topic) is None
    finally:
        faults.remove(rule["id"])


def test_the_sasl_user_is_the_principal_on_sasl_ssl_even_with_a_certificate(secured) -> None:
    faults = _http(secured)
    topic = unique_topic("sasl-principal")
    rule = faults.add(api="Produce", principal=f"User:{PLAIN_USER}", listener="SASL_SSL", topics=[topic],
                      error="TOPIC_AUTHORIZATION_FAILED")
    try:
        who = Credentials(PLAIN_USER, PLAIN_PASSWORD, certificate="app")
        error = produce_error(confluent_config(secured, "SASL_SSL", "PLAIN", who), topic)
        assert error is not None and error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED
        assert produce_error(confluent_config(secured, "SASL_PLAINTEXT", "PLAIN", who), topic) is None
    finally:
        faults.remove(rule["id"])


def _scram_logs_in(broker: SecuredBroker, user: str, password: str) -> bool:
    conf = confluent_config(broker, "SASL_PLAINTEXT", "SCRAM-SHA-256", Credentials(user, password))
    errors: list[KafkaError] = []
    producer = Producer({**conf, "error_cb": errors.append})
    metadata = None
    try:
        metadata = producer.list_topics(timeout=5)
    except Exception:  # noqa: BLE001 -- a refused login surfaces as a timeout here; errors says why
        pass
    return metadata is not None and not any(e.code() == KafkaError._AUTHENTICATION for e in errors)


def test_scram_users_created_through_the_admin_api_log_in_survive_a_restart_and_deleted_ones_cannot(secured):
    from confluent_kafka.admin import AdminClient, ScramMechanism, UserScramCredentialDeletion

    create_scram_user(secured, "frank", "frank-pw", iterations=8192)
    assert _scram_logs_in(secured, "frank", "frank-pw")
    assert not _scram_logs_in(secured, "frank", "not-franks")
    admin = AdminClient({"bootstrap.servers": secured.bootstrap})
    described = admin.describe_user_scram_credentials(["frank"])["frank"].result(10)
    assert sorted((i.mechanism, i.iterations) for i in described.scram_credential_infos) == [
        (ScramMechanism.SCRAM_SHA_256, 8192), (ScramMechanism.SCRAM_SHA_512, 8192)]
    secured.restart()
    assert _scram_logs_in(secured, "frank", "frank-pw")
    assert _scram_logs_in(secured, SCRAM_USER, SCRAM_PASSWORD)
    admin = AdminClient({"bootstrap.servers": secured.bootstrap})
    for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512):  # one user per request, as Kafka
        for future in admin.alter_user_scram_credentials([UserScramCredentialDeletion("frank", mechanism)]).values():
            future.result(10)
    assert not _scram_logs_in(secured, "frank", "frank-pw")
    assert "frank-pw" not in (secured.data_dir / "scram-credentials.json").read_text()


def _authenticate(client: KafkaClient, mechanism: str, token: bytes, version: int = 2):
    handshake = client.request(SASL_HANDSHAKE, 1, {"mechanism": mechanism})
    assert handshake.error_code == 0, handshake
    return client.request(SASL_AUTHENTICATE, version, {"auth_bytes": token})


def test_before_authentication_a_sasl_listener_serves_only_sasl_requests(secured) -> None:
    with KafkaClient(secured.address("SASL_PLAINTEXT")) as client:
        client.api_versions()
        with pytest.raises(Exception):
            client.request(METADATA, 4, {"topics": None, "allow_auto_topic_creation": False})
    with KafkaClient(secured.address("SASL_PLAINTEXT")) as client:
        handshake = client.request(SASL_HANDSHAKE, 1, {"mechanism": "GSSAPI"})
        assert handshake.error_code == 33  # UNSUPPORTED_SASL_MECHANISM
        assert list(handshake.mechanisms) == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"]
        with pytest.raises(Exception):
            client.api_versions()  # closed after the answer
    with KafkaClient(secured.address("SASL_PLAINTEXT")) as client:
        failed = _authenticate(client, "PLAIN", f"\0{PLAIN_USER}\0nope".encode())
        assert (failed.error_code, failed.error_message) == (58, KAFKA_PLAIN_FAILURE)
        with pytest.raises(Exception):
            client.api_versions()


def test_metadata_names_the_listener_the_client_connected_on(secured) -> None:
    with KafkaClient(secured.address("SASL_PLAINTEXT")) as client:
        ok = _authenticate(client, "PLAIN", f"\0{PLAIN_USER}\0{PLAIN_PASSWORD}".encode())
        assert (ok.error_code, ok.session_lifetime_ms) == (0, 0)
        metadata = client.request(METADATA, 12, {"topics": None, "allow_auto_topic_creation": False,
                                                 "include_topic_authorized_operations": False})
        assert [(b.host, b.port) for b in metadata.brokers] == [("127.0.0.1", secured.ports["SASL_PLAINTEXT"])]
        again = client.request(SASL_HANDSHAKE, 1, {"mechanism": "PLAIN"})
        assert again.error_code == 34  # ILLEGAL_SASL_STATE: no re-authentication configured
    with KafkaClient(secured.bootstrap) as client:
        metadata = client.request(METADATA, 12, {"topics": None, "allow_auto_topic_creation": False,
                                                 "include_topic_authorized_operations": False})
        assert [(b.host, b.port) for b in metadata.brokers] == [("127.0.0.1", secured.port)]


def test_sessions_expire_and_reauthenticate(tmp_path) -> None:
    """connections.max.reauth.ms (KIP-368): the lifetime is announced, re-authentication renews it, and a
    connection that lets it lapse is closed at its next request."""
    broker = start_secured_broker(tmp_path, {"listener.name.sasl_plaintext.connections.max.reauth.ms": "1500"})
    try:
        token = f"\0{PLAIN_USER}\0{PLAIN_PASSWORD}".encode()
        metadata = {"topics": None, "allow_auto_topic_creation": False, "include_topic_authorized_operations": False}
        with KafkaClient(broker.address("SASL_PLAINTEXT")) as client:
            assert _authenticate(client, "PLAIN", token).session_lifetime_ms == 1500
            time.sleep(1.0)
            assert _authenticate(client, "PLAIN", token).session_lifetime_ms == 1500
            time.sleep(1.0)  # 2 s after the first login, 1 s after the second
            client.request(METADATA, 12, metadata)
            time.sleep(1.6)
            with pytest.raises(Exception):
                client.request(METADATA, 12, metadata)
        # A client that authenticated with SaslAuthenticate v0 cannot be told the lifetime, yet it ends too.
        with KafkaClient(broker.address("SASL_PLAINTEXT")) as client:
            _authenticate(client, "PLAIN", token, version=0)
            time.sleep(1.6)
            with pytest.raises(Exception):
                client.request(METADATA, 12, metadata)
        # librdkafka re-authenticates on its own (KIP-368) and keeps producing across many lifetimes.
        conf = confluent_config(broker, "SASL_PLAINTEXT", "PLAIN", Credentials(PLAIN_USER, PLAIN_PASSWORD))
        errors: list[KafkaError] = []
        producer = Producer({**conf, "error_cb": errors.append})
        topic = unique_topic("reauth")
        delivered: list[KafkaError | None] = []
        for n in range(8):
            producer.produce(topic, b"%d" % n, on_delivery=lambda err, msg: delivered.append(err))
            producer.flush(10)
            time.sleep(0.5)
        assert delivered == [None] * 8 and errors == []
    finally:
        if broker.running:
            broker.stop()
        broker.kill()


def test_a_setting_kafkacompat_cannot_honour_is_refused_at_start(tmp_path) -> None:
    certs = create_certificates(tmp_path / "certs")
    broker = SecuredBroker(tmp_path, certs, {"ssl.keystore.type": "JKS"})
    completed = subprocess.run(broker.command(), capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2
    assert "cannot start: ssl.keystore.type=JKS is not supported: only PEM keystores" in completed.stderr
    broker = SecuredBroker(tmp_path, certs, {"remote.log.storage.system.enable": "true"})
    completed = subprocess.run(broker.command(), capture_output=True, text=True, timeout=60)
    assert completed.returncode == 2
    assert "cannot start: unknown broker config 'remote.log.storage.system.enable'" in completed.stderr
