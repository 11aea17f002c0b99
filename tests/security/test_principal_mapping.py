"""ssl.principal.mapping.rules as Kafka's SslPrincipalMapper applies them, and the DN of a certificate."""

from __future__ import annotations

import pytest

from kafkacompat.config import ConfigError
from kafkacompat.security.principal import ANONYMOUS, NoMatchingRule, PrincipalMapper, certificate_dn, ssl_principal

DN = "CN=Kafka Client,OU=Eng,O=Example,C=US"


def test_default_keeps_the_dn() -> None:
    assert PrincipalMapper("DEFAULT").principal_name(DN) == DN


@pytest.mark.parametrize(("rules", "expected"), [
    ("RULE:^CN=(.*?),OU=(.*?),O=(.*?),C=(.*?)$/$1@$3/", "Kafka Client@Example"),
    ("RULE:^CN=(.*?),OU=(.*?),O=(.*?),C=(.*?)$/$1/L", "kafka client"),
    ("RULE:^CN=(.*?),OU=(.*?),O=(.*?),C=(.*?)$/$2/U", "ENG"),
    ("RULE:^OU=x.*$/nope/, RULE:^CN=([^,]+),.*$/$1/,DEFAULT", "Kafka Client"),
    ("RULE:^OU=x.*$/nope/,DEFAULT", DN),
    ("RULE:^CN=(.*?),OU=.*$/cn\\/$1/", "cn/Kafka Client"),
])
def test_the_first_matching_rule_maps(rules: str, expected: str) -> None:
    assert PrincipalMapper(rules).principal_name(DN) == expected


def test_no_matching_rule_refuses() -> None:
    with pytest.raises(NoMatchingRule):
        PrincipalMapper("RULE:^OU=x.*$/nope/").principal_name(DN)


def test_unreadable_rules_are_a_config_error() -> None:
    with pytest.raises(ConfigError):
        PrincipalMapper("RULE:^CN=(.*$/$1")


def test_a_certificates_subject_in_rfc2253_order(tmp_path) -> None:
    from cryptography import x509

    from kafkacompat.security.certs import create_certificates

    certs = create_certificates(tmp_path, clients=("app",))
    der = x509.load_pem_x509_certificate(certs.client_certificate("app").read_bytes()).public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER)
    assert certificate_dn(der) == "CN=app"
    assert ssl_principal(der, PrincipalMapper()) == "User:CN=app"
    assert ssl_principal(None, PrincipalMapper()) == ANONYMOUS


def test_multi_attribute_dn_is_most_specific_first() -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import datetime

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "Eng"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Kafka Client")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    assert certificate_dn(cert.public_bytes(serialization.Encoding.DER)) == DN
