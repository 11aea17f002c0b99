"""Server TLS contexts from Kafka-named settings, PEM only, as ``ssl.keystore.type=PEM`` has them.

The keystore is one PEM file holding the private key and the certificate
chain (``ssl.keystore.location``), or the two inline
(``ssl.keystore.key`` and ``ssl.keystore.certificate.chain``); the key may be
encrypted with ``ssl.key.password`` (or ``ssl.keystore.password``). The
truststore (``ssl.truststore.location`` or inline
``ssl.truststore.certificates``) holds the CAs client certificates must chain
to. Inline PEM may have lost its line breaks to a ``.properties`` line
continuation, as Kafka allows: blocks are rewrapped before use. Any setting
may be given for one listener (``listener.name.<l>.ssl.*``).
"""

from __future__ import annotations

import os
import re
import ssl
import tempfile
from typing import TYPE_CHECKING

from kafkacompat.config import ConfigError

if TYPE_CHECKING:
    from kafkacompat.config import BrokerConfig

CLIENT_AUTH = {"none": ssl.CERT_NONE, "requested": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}
_VERSIONS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def normalize_pem(text: str) -> str:
    """Every PEM block of ``text`` with its base64 body rewrapped at 64 columns."""
    blocks = []
    for label, body in _PEM_BLOCK.findall(text):
        if "ENCRYPTED" not in label and ":" in body:
            raise ConfigError("PEM blocks with headers (traditional encrypted keys) are not supported: use PKCS#8")
        data = re.sub(r"\s+", "", body)
        lines = [data[i:i + 64] for i in range(0, len(data), 64)]
        blocks.append(f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n")
    return "".join(blocks)


def _read(path: str, setting: str) -> str:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc}") from None


def _load_keystore(context: ssl.SSLContext, config: "BrokerConfig", listener: str) -> None:
    def get(name: str) -> str:
        return config.listener_value(listener, name)

    if get("ssl.keystore.type").upper() != "PEM":
        raise ConfigError(f"ssl.keystore.type={get('ssl.keystore.type')} is not supported: only PEM keystores "
                          "(convert JKS or PKCS12 with keytool/openssl)")
    location, chain, key = get("ssl.keystore.location"), get("ssl.keystore.certificate.chain"), get("ssl.keystore.key")
    if location and (chain or key):
        raise ConfigError("ssl.keystore.location and the inline ssl.keystore.key/certificate.chain exclude each other")
    if location:
        pem = _read(location, "ssl.keystore.location")
    elif chain and key:
        pem = key + "\n" + chain
    else:
        raise ConfigError(f"listener {listener} uses TLS: set ssl.keystore.location, or ssl.keystore.key with "
                          "ssl.keystore.certificate.chain")
    pem = normalize_pem(pem)
    password = get("ssl.key.password") or get("ssl.keystore.password") or None
    # load_cert_chain reads files only: a private file, removed at once.
    descriptor, path = tempfile.mkstemp(prefix="kafkacompat-keystore-", suffix=".pem")
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(pem)
        context.load_cert_chain(path, password=password)
    except ssl.SSLError as exc:
        raise ConfigError(f"listener {listener}: the keystore's key and certificate chain cannot be used: {exc}") from None
    finally:
        os.unlink(path)


def _load_truststore(context: ssl.SSLContext, config: "BrokerConfig", listener: str) -> None:
    if config.listener_value(listener, "ssl.truststore.type").upper() != "PEM":
        raise ConfigError("ssl.truststore.type: only PEM truststores are supported")
    location = config.listener_value(listener, "ssl.truststore.location")
    inline = config.listener_value(listener, "ssl.truststore.certificates")
    if location and inline:
        raise ConfigError("ssl.truststore.location and ssl.truststore.certificates exclude each other")
    pem = _read(location, "ssl.truststore.location") if location else inline
    if not pem:
        context.load_default_certs(ssl.Purpose.CLIENT_AUTH)
        return
    try:
        context.load_verify_locations(cadata=normalize_pem(pem))
    except ssl.SSLError as exc:
        raise ConfigError(f"listener {listener}: the truststore cannot be used: {exc}") from None


def server_context(config: "BrokerConfig", listener: str) -> ssl.SSLContext:
    """The SSLContext a TLS listener serves with; a ConfigError names what is wrong."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    versions = [v.strip() for v in config.listener_value(listener, "ssl.enabled.protocols").split(",") if v.strip()]
    unknown = [v for v in versions if v not in _VERSIONS]
    if unknown or not versions:
        raise ConfigError(f"ssl.enabled.protocols: {', '.join(unknown) or 'nothing'} not supported "
                          f"(choose from {', '.join(_VERSIONS)})")
    context.minimum_version = min(_VERSIONS[v] for v in versions)
    context.maximum_version = max(_VERSIONS[v] for v in versions)
    ciphers = config.listener_value(listener, "ssl.cipher.suites")
    if ciphers:
        try:
            context.set_ciphers(":".join(c.strip() for c in ciphers.split(",")))
        except ssl.SSLError:
            raise ConfigError(f"ssl.cipher.suites: OpenSSL knows none of {ciphers!r} (use OpenSSL's names)") from None
    client_auth = config.listener_value(listener, "ssl.client.auth").lower()
    if client_auth not in CLIENT_AUTH:
        raise ConfigError(f"ssl.client.auth must be none, requested or required, got {client_auth!r}")
    _load_keystore(context, config, listener)
    context.verify_mode = CLIENT_AUTH[client_auth]
    if client_auth != "none":
        _load_truststore(context, config, listener)
    return context
