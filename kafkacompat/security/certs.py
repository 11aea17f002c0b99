"""Throwaway certificates for a development TLS setup: a CA, a broker certificate, client certificates.

Everything is PEM, keys are EC P-256 in unencrypted PKCS#8 (what
``ssl.keystore.type=PEM`` takes). Files written to the directory:

- ``ca.pem`` (the CA certificate: every truststore) and ``ca-key.pem``;
- ``broker.pem``: the broker's key, certificate and the CA, in one file
  (``ssl.keystore.location``), valid for the host names and IP addresses given;
- per client NAME: ``NAME.pem`` (key and certificate chain in one file, for
  Java's PEM keystore), ``NAME-cert.pem`` and ``NAME-key.pem`` (librdkafka,
  kafka-python), subject ``CN=NAME``.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

VALID_DAYS = 825


@dataclass(frozen=True)
class CertificateSet:
    directory: Path
    hostnames: tuple[str, ...]
    clients: tuple[str, ...]

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def broker_keystore(self) -> Path:
        return self.directory / "broker.pem"

    def client_keystore(self, name: str) -> Path:
        return self.directory / f"{name}.pem"

    def client_certificate(self, name: str) -> Path:
        return self.directory / f"{name}-cert.pem"

    def client_key(self, name: str) -> Path:
        return self.directory / f"{name}-key.pem"


def _key():  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key) -> bytes:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem_cert(cert) -> bytes:  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _certificate(subject_cn: str, key, issuer=None, issuer_key=None, *, ca: bool = False,  # type: ignore[no-untyped-def]
                 hostnames: tuple[str, ...] = (), client: bool = False):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject_cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(subject)
               .issuer_name(subject if issuer is None else issuer.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    else:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH,
                                                                   ExtendedKeyUsageOID.CLIENT_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if hostnames:
        names: list[x509.GeneralName] = []
        for host in hostnames:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(key if issuer_key is None else issuer_key, hashes.SHA256())


def _write(path: Path, data: bytes, private: bool = False) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


def create_certificates(directory: Path, hostnames: tuple[str, ...] = ("localhost", "127.0.0.1"),
                        clients: tuple[str, ...] = ("client",)) -> CertificateSet:
    """Write a fresh CA, broker and client certificates into ``directory`` (created if need be)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca_cert = _certificate("kafkacompat throwaway CA", ca_key, ca=True)
    _write(directory / "ca.pem", _pem_cert(ca_cert))
    _write(directory / "ca-key.pem", _pem_key(ca_key), private=True)
    broker_key = _key()
    broker_cert = _certificate(hostnames[0] if hostnames else "broker", broker_key, ca_cert, ca_key,
                               hostnames=hostnames)
    result = CertificateSet(directory, tuple(hostnames), tuple(clients))
    _write(result.broker_keystore, _pem_key(broker_key) + _pem_cert(broker_cert) + _pem_cert(ca_cert), private=True)
    for name in clients:
        key = _key()
        cert = _certificate(name, key, ca_cert, ca_key, client=True)
        _write(result.client_keystore(name), _pem_key(key) + _pem_cert(cert) + _pem_cert(ca_cert), private=True)
        _write(result.client_certificate(name), _pem_cert(cert))
        _write(result.client_key(name), _pem_key(key), private=True)
    return result


def client_settings(certs: CertificateSet, bootstrap: str) -> str:
    """What to paste into a broker's and each client's configuration."""
    name = certs.clients[0] if certs.clients else None
    lines = [
        "# broker (kafkacompat serve --config broker.properties, or Apache Kafka's server.properties)",
        f"listeners=PLAINTEXT://127.0.0.1:9092,SSL://127.0.0.1:{bootstrap.rpartition(':')[2]}",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={certs.broker_keystore}",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={certs.ca}",
        "ssl.client.auth=requested",
        "",
        "# confluent-kafka / librdkafka / kcat",
        f"bootstrap.servers={bootstrap}",
        "security.protocol=SSL",
        f"ssl.ca.location={certs.ca}",
    ]
    if name:
        lines += [f"ssl.certificate.location={certs.client_certificate(name)}",
                  f"ssl.key.location={certs.client_key(name)}"]
    lines += ["", "# kafka-python / aiokafka (keyword arguments)",
              f"bootstrap_servers='{bootstrap}', security_protocol='SSL', ssl_cafile='{certs.ca}'"
              + (f", ssl_certfile='{certs.client_certificate(name)}', ssl_keyfile='{certs.client_key(name)}'"
                 if name else ""),
              "", "# Java clients (client.properties)",
              f"bootstrap.servers={bootstrap}", "security.protocol=SSL",
              "ssl.truststore.type=PEM", f"ssl.truststore.location={certs.ca}"]
    if name:
        lines += ["ssl.keystore.type=PEM", f"ssl.keystore.location={certs.client_keystore(name)}"]
    return "\n".join(lines) + "\n"
