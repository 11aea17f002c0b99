"""SASL/SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), server side.

Theory of operation: three states, one per message the server waits for.

- ``CLIENT_FIRST``: ``n,,n=<user>,r=<client nonce>`` (the GS2 header may name an
  authorization id, which must be the user; channel binding is refused, as
  Kafka refuses it). The user's stored credential (salt, iterations,
  StoredKey, ServerKey: never the password) is looked up; the answer is
  ``r=<client nonce + server nonce>,s=<salt>,i=<iterations>``. Moves to
  ``CLIENT_FINAL``.
- ``CLIENT_FINAL``: ``c=<GS2 header>,r=<nonce>,p=<proof>``; the nonce must end
  with the server-first nonce (Kafka's test, looser than RFC 5802's equality:
  librdkafka 2.0 sends its own nonce before it). The proof XOR
  HMAC(StoredKey, AuthMessage) must hash to StoredKey; the answer is
  ``v=<HMAC(ServerKey, AuthMessage)>``. Moves to ``COMPLETE``.
- ``COMPLETE``: nothing more is accepted.

Any failure ends the exchange with Kafka's message for SCRAM failures. An
unknown user gets the same message as a wrong password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Callable

from kafkacompat.security.sasl import AuthenticationFailed, invalid_credentials

# Kafka's ScramMechanism: name -> (hash, the type code DescribeUserScramCredentials uses, minimum iterations).
HASHES = {"SCRAM-SHA-256": "sha256", "SCRAM-SHA-512": "sha512"}
MECHANISM_TYPES = {"SCRAM-SHA-256": 1, "SCRAM-SHA-512": 2}
MIN_ITERATIONS = 4096
MAX_ITERATIONS = 16384


@dataclass(frozen=True)
class ScramCredential:
    """What a server keeps for one user and mechanism (RFC 5802 section 3)."""

    salt: bytes
    stored_key: bytes
    server_key: bytes
    iterations: int


def credential_from_salted_password(mechanism: str, salt: bytes, salted_password: bytes,
                                    iterations: int) -> ScramCredential:
    """What AlterUserScramCredentials' upsertion (salt and Hi(password, salt, i)) becomes in the store."""
    digest = HASHES[mechanism]
    client_key = hmac.new(salted_password, b"Client Key", digest).digest()
    server_key = hmac.new(salted_password, b"Server Key", digest).digest()
    return ScramCredential(salt, hashlib.new(digest, client_key).digest(), server_key, iterations)


def salted_password(mechanism: str, password: str, salt: bytes, iterations: int) -> bytes:
    """RFC 5802's Hi(): PBKDF2 with HMAC of the mechanism's hash."""
    return hashlib.pbkdf2_hmac(HASHES[mechanism], password.encode(), salt, iterations)


def credential_from_password(mechanism: str, password: str, iterations: int = MIN_ITERATIONS,
                             salt: bytes | None = None) -> ScramCredential:
    salt = secrets.token_bytes(32) if salt is None else salt
    return credential_from_salted_password(mechanism, salt, salted_password(mechanism, password, salt, iterations),
                                           iterations)


def _attributes(message: str) -> dict[str, str]:
    attributes = {}
    for part in message.split(","):
        key, sep, value = part.partition("=")
        if not sep or len(key) != 1:
            raise ValueError(f"malformed SCRAM attribute {part!r}")
        attributes.setdefault(key, value)
    return attributes


def _sasl_name(text: str) -> str:
    """RFC 5802's saslname: ``=2C`` is a comma, ``=3D`` an equals sign, any other ``=`` is malformed."""
    if "=" in text.replace("=2C", "").replace("=3D", ""):
        raise ValueError("invalid escape in a SCRAM user name")
    return text.replace("=2C", ",").replace("=3D", "=")


class ScramServer:
    """One SCRAM exchange; ``credential_of(user)`` is the stored credential, None for an unknown user."""

    def __init__(self, mechanism: str, credential_of: Callable[[str], ScramCredential | None],
                 nonce: Callable[[], str] = lambda: secrets.token_urlsafe(24)) -> None:
        self.name = mechanism
        self._digest = HASHES[mechanism]
        self._credential_of = credential_of
        self._nonce = nonce
        self._state = "CLIENT_FIRST"
        self._credential: ScramCredential | None = None
        self._gs2_header = ""
        self._client_first_bare = ""
        self._server_first = ""
        self._combined_nonce = ""
        self.complete = False
        self.authorization_id: str | None = None
        self.lifetime_ms: int | None = None

    def respond(self, token: bytes) -> bytes:
        try:
            message = token.decode("utf-8")
            if self._state == "CLIENT_FIRST":
                return self._client_first(message).encode()
            if self._state == "CLIENT_FINAL":
                return self._client_final(message).encode()
        except AuthenticationFailed:
            self._state = "FAILED"
            raise
        except (ValueError, KeyError, UnicodeDecodeError):
            self._state = "FAILED"
            raise invalid_credentials(self.name) from None
        raise invalid_credentials(self.name)

    def _client_first(self, message: str) -> str:
        flag, _, rest = message.partition(",")
        authzid, _, bare = rest.partition(",")
        if flag not in ("n", "y"):
            raise ValueError("channel binding is not supported")
        attributes = _attributes(bare)
        if "m" in attributes:
            raise ValueError("mandatory SCRAM extension not supported")
        username = _sasl_name(attributes["n"])
        if authzid and (not authzid.startswith("a=") or _sasl_name(authzid[2:]) != username):
            raise AuthenticationFailed(
                "Authentication failed: Client requested an authorization id that is different from username")
        credential = self._credential_of(username)
        if credential is None:
            raise invalid_credentials(self.name)
        self._credential = credential
        self.authorization_id = username
        self._gs2_header = f"{flag},{authzid},"
        self._client_first_bare = bare
        self._combined_nonce = attributes["r"] + self._nonce()
        self._server_first = (f"r={self._combined_nonce},s={base64.b64encode(credential.salt).decode()},"
                              f"i={credential.iterations}")
        self._state = "CLIENT_FINAL"
        return self._server_first

    def _client_final(self, message: str) -> str:
        without_proof, sep, proof_text = message.rpartition(",p=")
        if not sep:
            raise ValueError("client-final-message without a proof")
        attributes = _attributes(without_proof)
        if base64.b64decode(attributes["c"]) != self._gs2_header.encode():
            raise ValueError("channel binding does not repeat the GS2 header")
        if not attributes["r"].endswith(self._combined_nonce):  # Kafka's test: librdkafka 2.0 repeats its nonce
            raise ValueError("nonce mismatch")
        credential = self._credential
        assert credential is not None
        auth_message = f"{self._client_first_bare},{self._server_first},{without_proof}".encode()
        signature = hmac.new(credential.stored_key, auth_message, self._digest).digest()
        proof = base64.b64decode(proof_text, validate=True)
        if len(proof) != len(signature):
            raise invalid_credentials(self.name)
        client_key = bytes(a ^ b for a, b in zip(proof, signature))
        if not hmac.compare_digest(hashlib.new(self._digest, client_key).digest(), credential.stored_key):
            raise invalid_credentials(self.name)
        self._state = "COMPLETE"
        self.complete = True
        server_signature = hmac.new(credential.server_key, auth_message, self._digest).digest()
        return "v=" + base64.b64encode(server_signature).decode()
