"""OAUTHBEARER: unsecured tokens as Kafka's unsecured validator takes them, and JWKS-signed tokens."""

from __future__ import annotations

import base64
import json

import pytest

from kafkacompat.security.sasl import AuthenticationFailed
from kafkacompat.security.sasl.oauthbearer import OAuthBearerServer, TokenRules, load_jwks

NOW_MS = 1_800_000_000_000
ERROR_CHALLENGE = b'{"status":"invalid_token"}'


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(claims: dict, header: dict | None = None, signature: str = "") -> str:
    header = {"alg": "none"} if header is None else header
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}.{signature}"


def first_message(bearer: str, authzid: str = "") -> bytes:
    gs2 = f"n,a={authzid}," if authzid else "n,,"
    return f"{gs2}\x01auth=Bearer {bearer}\x01\x01".encode()


def claims(**extra) -> dict:
    return {"sub": "dave", "iat": NOW_MS // 1000 - 10, "exp": NOW_MS // 1000 + 600, **extra}


def server(rules: TokenRules = TokenRules()) -> OAuthBearerServer:
    return OAuthBearerServer(rules, lambda: NOW_MS)


def test_an_unsecured_token_authenticates_its_subject_for_its_remaining_life() -> None:
    exchange = server()
    assert exchange.respond(first_message(token(claims()))) == b""
    assert (exchange.complete, exchange.authorization_id, exchange.lifetime_ms) == (True, "dave", 600_000)


@pytest.mark.parametrize("bad", [
    token(claims(exp=NOW_MS // 1000 - 1)),  # expired
    token({"sub": "dave", "iat": NOW_MS // 1000}),  # no exp
    token(claims(iat=NOW_MS // 1000 + 60)),  # issued in the future
    token({"exp": NOW_MS // 1000 + 60}),  # no subject
    token(claims(), header={"alg": "HS256"}),  # not unsecured
    token(claims(), signature="c2ln"),  # a signature on an unsecured token
    "not-a-jws",
])
def test_an_invalid_token_gets_the_error_challenge_then_fails_with_it(bad: str) -> None:
    exchange = server()
    assert exchange.respond(first_message(bad)) == ERROR_CHALLENGE
    with pytest.raises(AuthenticationFailed) as failure:
        exchange.respond(b"\x01")
    assert str(failure.value) == ERROR_CHALLENGE.decode()
    assert not exchange.complete


def test_required_scopes_and_custom_claim_names() -> None:
    rules = TokenRules(principal_claim="client_id", scope_claim="scp", required_scopes=("kafka",))
    good = {"client_id": "svc", "exp": NOW_MS // 1000 + 60, "scp": "kafka other"}
    exchange = server(rules)
    exchange.respond(first_message(token(good)))
    assert exchange.authorization_id == "svc"
    assert server(rules).respond(first_message(token({**good, "scp": "other"}))) == ERROR_CHALLENGE


def test_a_different_authorization_id_is_refused() -> None:
    with pytest.raises(AuthenticationFailed, match="authorization id that is different"):
        server().respond(first_message(token(claims()), authzid="eve"))


def test_a_malformed_first_message_fails() -> None:
    with pytest.raises(AuthenticationFailed):
        server().respond(b"n,,auth=Bearer x")


def test_jwks_signed_tokens_rs256_and_es256() -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    rsa_numbers, ec_numbers = rsa_key.public_key().public_numbers(), ec_key.public_key().public_numbers()
    as_b64 = lambda number, size: b64url(number.to_bytes(size, "big"))  # noqa: E731
    jwks = load_jwks(json.dumps({"keys": [
        {"kty": "RSA", "kid": "r1", "n": as_b64(rsa_numbers.n, 256), "e": as_b64(rsa_numbers.e, 3)},
        {"kty": "EC", "kid": "e1", "crv": "P-256", "x": as_b64(ec_numbers.x, 32), "y": as_b64(ec_numbers.y, 32)},
    ]}))
    rules = TokenRules(jwks=jwks, audiences=("kafka",))
    body = claims(aud="kafka")

    def signed(alg: str, kid: str) -> str:
        unsigned = token(body, header={"alg": alg, "kid": kid})[:-1]
        if alg == "RS256":
            signature = rsa_key.sign(unsigned.encode(), padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = utils.decode_dss_signature(ec_key.sign(unsigned.encode(), ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return unsigned + "." + b64url(signature)

    for good in (signed("RS256", "r1"), signed("ES256", "e1")):
        exchange = server(rules)
        exchange.respond(first_message(good))
        assert exchange.authorization_id == "dave"
    tampered = signed("RS256", "r1").replace(".", ".e30", 1)
    for bad in (signed("RS256", "e1"), tampered, token(body), token({**claims(), "aud": "web"})):
        assert server(rules).respond(first_message(bad)) == ERROR_CHALLENGE
