"""SCRAM server state machine: RFC 7677's SCRAM-SHA-256 exchange byte for byte, SHA-512, and its failures."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from kafkacompat.security.sasl import AuthenticationFailed
from kafkacompat.security.sasl.scram import (
    ScramServer,
    credential_from_password,
    credential_from_salted_password,
    salted_password,
)

# RFC 7677 section 3: user "user", password "pencil".
RFC_SALT = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
RFC_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC_SERVER_NONCE = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SERVER_FIRST = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
RFC_CLIENT_FINAL = (b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
                    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
RFC_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
FAILED_MESSAGE = "Authentication failed during authentication due to invalid credentials with SASL mechanism {}"


def rfc_server(password: str = "pencil") -> ScramServer:
    credential = credential_from_password("SCRAM-SHA-256", password, 4096, RFC_SALT)
    return ScramServer("SCRAM-SHA-256", {"user": credential}.get, nonce=lambda: RFC_SERVER_NONCE)


def test_rfc7677_exchange_byte_for_byte() -> None:
    server = rfc_server()
    assert server.respond(RFC_CLIENT_FIRST) == RFC_SERVER_FIRST
    assert not server.complete
    assert server.respond(RFC_CLIENT_FINAL) == RFC_SERVER_FINAL
    assert (server.complete, server.authorization_id) == (True, "user")


def test_a_credential_from_alter_user_scram_credentials_equals_one_from_the_password() -> None:
    salted = salted_password("SCRAM-SHA-256", "pencil", RFC_SALT, 4096)
    assert credential_from_salted_password("SCRAM-SHA-256", RFC_SALT, salted, 4096) == \
        credential_from_password("SCRAM-SHA-256", "pencil", 4096, RFC_SALT)


def test_wrong_password_fails_with_kafkas_message() -> None:
    server = rfc_server(password="not-pencil")
    server.respond(RFC_CLIENT_FIRST)
    with pytest.raises(AuthenticationFailed, match="^" + FAILED_MESSAGE.format("SCRAM-SHA-256") + "$"):
        server.respond(RFC_CLIENT_FINAL)
    assert not server.complete


def test_unknown_user_fails_at_the_first_message() -> None:
    server = ScramServer("SCRAM-SHA-256", {}.get)
    with pytest.raises(AuthenticationFailed, match="SCRAM-SHA-256"):
        server.respond(RFC_CLIENT_FIRST)


def test_a_tampered_nonce_or_channel_binding_fails() -> None:
    for final in (RFC_CLIENT_FINAL.replace(b"k0,p=", b"k1,p="), RFC_CLIENT_FINAL.replace(b"c=biws", b"c=eSws")):
        server = rfc_server()
        server.respond(RFC_CLIENT_FIRST)
        with pytest.raises(AuthenticationFailed):
            server.respond(final)


def test_a_different_authorization_id_is_refused() -> None:
    with pytest.raises(AuthenticationFailed, match="authorization id that is different"):
        rfc_server().respond(b"n,a=admin,n=user,r=abc")


def test_channel_binding_is_refused() -> None:
    with pytest.raises(AuthenticationFailed):
        rfc_server().respond(b"p=tls-unique,,n=user,r=abc")


def _client_final(mechanism_hash: str, password: str, salt: bytes, iterations: int, client_first_bare: str,
                  server_first: str, nonce: str) -> tuple[str, bytes]:
    """What a client sends and the server signature it expects (RFC 5802 section 3), by hand."""
    salted = hashlib.pbkdf2_hmac(mechanism_hash, password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", mechanism_hash).digest()
    stored_key = hashlib.new(mechanism_hash, client_key).digest()
    without_proof = f"c=biws,r={nonce}"
    auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(stored_key, auth_message, mechanism_hash).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    server_key = hmac.new(salted, b"Server Key", mechanism_hash).digest()
    expected = hmac.new(server_key, auth_message, mechanism_hash).digest()
    return f"{without_proof},p={base64.b64encode(proof).decode()}", expected


def test_sha512_exchange_with_an_escaped_user_name() -> None:
    credential = credential_from_password("SCRAM-SHA-512", "s3cret", 8192)
    server = ScramServer("SCRAM-SHA-512", {"a,b=c": credential}.get)
    bare = "n=a=2Cb=3Dc,r=clientnonce"
    server_first = server.respond(f"n,,{bare}".encode()).decode()
    attributes = dict(part.split("=", 1) for part in server_first.split(","))
    assert attributes["r"].startswith("clientnonce") and attributes["i"] == "8192"
    final, expected = _client_final("sha512", "s3cret", base64.b64decode(attributes["s"]), 8192, bare,
                                    server_first, attributes["r"])
    assert server.respond(final.encode()) == b"v=" + base64.b64encode(expected)
    assert server.authorization_id == "a,b=c"


def test_a_final_nonce_that_repeats_the_client_nonce_is_accepted_as_kafka_accepts_it() -> None:
    """librdkafka 2.0 sends client nonce + server-first nonce; Kafka checks only the ending."""
    credential = credential_from_password("SCRAM-SHA-512", "pw", 4096)
    server = ScramServer("SCRAM-SHA-512", {"u": credential}.get)
    bare = "n=u,r=cn"
    server_first = server.respond(f"n,,{bare}".encode()).decode()
    nonce = dict(part.split("=", 1) for part in server_first.split(","))["r"]
    salt = credential.salt
    final, expected = _client_final("sha512", "pw", salt, 4096, bare, server_first, "cn" + nonce)
    assert server.respond(final.encode()) == b"v=" + base64.b64encode(expected)
