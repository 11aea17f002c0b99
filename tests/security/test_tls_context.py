"""TLS contexts from Kafka-named PEM settings: file and inline keystores, client auth, versions, refusals."""

from __future__ import annotations

import ssl

import pytest

from kafkacompat.config import BrokerConfig, ConfigError
from kafkacompat.security.certs import create_certificates
from kafkacompat.security.tls import normalize_pem, server_context


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return create_certificates(tmp_path_factory.mktemp("certs"), clients=("app",))


def test_a_keystore_file_and_client_auth_required(certs) -> None:
    config = BrokerConfig({"ssl.keystore.location": str(certs.broker_keystore), "ssl.client.auth": "required",
                           "ssl.truststore.location": str(certs.ca)})
    context = server_context(config, "SSL")
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert (context.minimum_version, context.maximum_version) == (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3)
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "kafkacompat throwaway CA"),),)]


def test_inline_key_and_chain_without_line_breaks_for_one_listener(certs) -> None:
    pem = certs.broker_keystore.read_text()
    cut = pem.index("-----BEGIN CERTIFICATE-----")
    flat = lambda text: text.replace("\n", "")  # noqa: E731  (a .properties continuation drops the breaks)
    config = BrokerConfig({"listener.name.internal.ssl.keystore.key": flat(pem[:cut]),
                           "listener.name.internal.ssl.keystore.certificate.chain": flat(pem[cut:]),
                           "listener.name.internal.ssl.enabled.protocols": "TLSv1.3"})
    context = server_context(config, "INTERNAL")
    assert context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert context.verify_mode == ssl.CERT_NONE
    with pytest.raises(ConfigError, match="ssl.keystore.location"):
        server_context(config, "OTHER")


def test_normalize_pem_rewraps_blocks() -> None:
    body = "A" * 100
    assert normalize_pem(f"junk -----BEGIN CERTIFICATE-----{body}-----END CERTIFICATE----- junk") == (
        "-----BEGIN CERTIFICATE-----\n" + "A" * 64 + "\n" + "A" * 36 + "\n-----END CERTIFICATE-----\n")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"ssl.keystore.type": "JKS"}, "only PEM keystores"),
    ({"ssl.enabled.protocols": "TLSv1.1"}, "TLSv1.1 not supported"),
    ({"ssl.client.auth": "sometimes"}, "ssl.client.auth"),
    ({"ssl.keystore.location": "/nonexistent.pem"}, "cannot read"),
])
def test_unusable_settings_are_refused(certs, overrides: dict, message: str) -> None:
    config = BrokerConfig({"ssl.keystore.location": str(certs.broker_keystore), **overrides})
    with pytest.raises(ConfigError, match=message):
        server_context(config, "SSL")
