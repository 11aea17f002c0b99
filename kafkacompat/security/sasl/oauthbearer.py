"""SASL/OAUTHBEARER (RFC 7628), server side, validating tokens as Kafka's validators do.

Theory of operation: the client's one message is
``<GS2 header>\\x01auth=Bearer <token>\\x01[key=value\\x01...]\\x01``.

- Without a JWKS, the token is an unsecured JWS (``alg: none``, empty
  signature) as Kafka's OAuthBearerUnsecuredValidatorCallbackHandler accepts:
  its principal claim (``sub`` by default) names the user, ``exp`` is
  required, ``iat`` may not lie in the future, required scopes must be in its
  ``scope`` claim; a clock skew is allowed (JAAS options
  ``unsecuredValidatorPrincipalClaimName``, ``unsecuredValidatorScopeClaimName``,
  ``unsecuredValidatorRequiredScope``, ``unsecuredValidatorAllowableClockSkewMs``).
- With a JWKS file (``sasl.oauthbearer.jwks.endpoint.url=file:...``), as
  Kafka's OAuthBearerValidatorCallbackHandler: the token must be signed
  (RS256/384/512, ES256/384/512) by the key its ``kid`` names, be unexpired
  and, when ``sasl.oauthbearer.expected.audience`` is set, name one of those
  audiences.

A token that fails gets Kafka's error challenge ``{"status":"invalid_token"}``;
the client acknowledges with a lone ``\\x01`` and the exchange then fails with
that JSON as the message, as in Kafka. ``lifetime_ms`` is the token's
remaining life, which bounds the session (KIP-368).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from kafkacompat.security.sasl import AuthenticationFailed

NAME = "OAUTHBEARER"
_ERROR = json.dumps({"status": "invalid_token"}, separators=(",", ":"))
_HASH_BITS = {"256", "384", "512"}


class InvalidToken(Exception):
    pass


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_part(text: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url(text))
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("a token part is not base64url JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken("a token part is not a JSON object")
    return value


@dataclass(frozen=True)
class TokenRules:
    """How tokens are validated; ``jwks`` is the parsed JWKS file's keys by ``kid``, None for unsecured tokens."""

    principal_claim: str = "sub"
    scope_claim: str = "scope"
    required_scopes: tuple[str, ...] = ()
    clock_skew_ms: int = 0
    audiences: tuple[str, ...] = ()
    jwks: dict[str, Any] | None = field(default=None)


def load_jwks(text: str) -> dict[str, Any]:
    """A JWKS document -> public keys by ``kid`` (RSA and EC keys)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    curves = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
    keys: dict[str, Any] = {}
    for jwk in json.loads(text).get("keys", []):
        number = lambda name: int.from_bytes(_b64url(jwk[name]), "big")  # noqa: E731
        if jwk.get("kty") == "RSA":
            keys[jwk.get("kid", "")] = rsa.RSAPublicNumbers(number("e"), number("n")).public_key()
        elif jwk.get("kty") == "EC" and jwk.get("crv") in curves:
            keys[jwk.get("kid", "")] = ec.EllipticCurvePublicNumbers(
                number("x"), number("y"), curves[jwk["crv"]]).public_key()
    return keys


def _verify_signature(header: dict[str, Any], signed: bytes, signature: bytes, jwks: dict[str, Any]) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

    alg = str(header.get("alg", ""))
    key = jwks.get(header.get("kid", ""))
    if key is None or alg[:2] not in ("RS", "ES") or alg[2:] not in _HASH_BITS:
        raise InvalidToken("no JWKS key for this token's kid and alg")
    digest = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
    try:
        if alg.startswith("RS"):
            key.verify(signature, signed, padding.PKCS1v15(), digest)
        else:
            half = len(signature) // 2
            der = utils.encode_dss_signature(int.from_bytes(signature[:half], "big"),
                                             int.from_bytes(signature[half:], "big"))
            key.verify(der, signed, ec.ECDSA(digest))
    except (InvalidSignature, TypeError, ValueError):
        raise InvalidToken("bad signature") from None


def validate_token(token: str, rules: TokenRules, now_ms: int) -> tuple[str, int]:
    """(principal name, expiry in ms) of a valid token; InvalidToken otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("a JWS has three dot-separated parts")
    header, claims = _json_part(parts[0]), _json_part(parts[1])
    if rules.jwks is None:
        if header.get("alg") != "none" or parts[2]:
            raise InvalidToken("an unsecured token has alg none and no signature")
    else:
        _verify_signature(header, f"{parts[0]}.{parts[1]}".encode(), _b64url(parts[2]), rules.jwks)
    principal = claims.get(rules.principal_claim)
    if not isinstance(principal, str) or not principal.strip():
        raise InvalidToken(f"no {rules.principal_claim} claim")
    expiry, issued = claims.get("exp"), claims.get("iat")
    if not isinstance(expiry, (int, float)) or isinstance(expiry, bool):
        raise InvalidToken("no exp claim")
    expiry_ms = int(expiry * 1000)
    if expiry_ms + rules.clock_skew_ms <= now_ms:
        raise InvalidToken("expired")
    if isinstance(issued, (int, float)) and int(issued * 1000) - rules.clock_skew_ms > now_ms:
        raise InvalidToken("issued in the future")
    scope = claims.get(rules.scope_claim, [])
    scopes = set(scope.split() if isinstance(scope, str) else scope if isinstance(scope, list) else [])
    if not set(rules.required_scopes) <= scopes:
        raise InvalidToken("a required scope is missing")
    if rules.audiences:
        audience = claims.get("aud", [])
        audience = {audience} if isinstance(audience, str) else set(audience) if isinstance(audience, list) else set()
        if not audience & set(rules.audiences):
            raise InvalidToken("no expected audience")
    return principal, expiry_ms


def _initial_response(token: bytes) -> tuple[str, str]:
    """(authorization id, bearer token) of the client's first message."""
    text = token.decode("utf-8")
    gs2, sep, rest = text.partition("\x01")
    flag, _, tail = gs2.partition(",")
    authzid = tail.rstrip(",")
    if not sep or flag not in ("n", "y") or not rest.endswith("\x01\x01"):
        raise ValueError("malformed OAUTHBEARER client response")
    pairs = dict(item.split("=", 1) for item in rest[:-2].split("\x01") if item)
    scheme, _, bearer = pairs.get("auth", "").partition(" ")
    if scheme.lower() != "bearer" or not bearer:
        raise ValueError("no bearer token")
    return (authzid[2:] if authzid.startswith("a=") else ""), bearer.strip()


class OAuthBearerServer:
    """One OAUTHBEARER exchange against ``rules``; ``clock`` gives ms since the epoch."""

    name = NAME

    def __init__(self, rules: TokenRules, clock: Callable[[], int]) -> None:
        self._rules = rules
        self._clock = clock
        self._error_sent = False
        self.complete = False
        self.authorization_id: str | None = None
        self.lifetime_ms: int | None = None

    def respond(self, token: bytes) -> bytes:
        if self._error_sent:
            raise AuthenticationFailed(_ERROR)
        if self.complete:
            raise AuthenticationFailed("Authentication failed: OAUTHBEARER exchange already complete")
        try:
            authzid, bearer = _initial_response(token)
        except (ValueError, UnicodeDecodeError):
            raise AuthenticationFailed("Invalid OAUTHBEARER client first message") from None
        now = self._clock()
        try:
            principal, expiry_ms = validate_token(bearer, self._rules, now)
        except InvalidToken:
            self._error_sent = True
            return _ERROR.encode()
        if authzid and authzid != principal:
            raise AuthenticationFailed(
                "Authentication failed: Client requested an authorization id that is different from username")
        self.authorization_id = principal
        self.lifetime_ms = max(expiry_ms - now, 0)
        self.complete = True
        return b""
