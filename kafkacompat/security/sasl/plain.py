"""SASL/PLAIN (RFC 4616): one message, ``[authzid] NUL authcid NUL passwd``, checked against known users.

States: waiting for the message, then complete (or failed). An
authorization id other than the user name is refused, as Kafka's
PlainSaslServer refuses it; so are a missing name or password. Passwords
are compared in constant time.
"""

from __future__ import annotations

import hmac
from typing import Callable

from kafkacompat.security.sasl import AuthenticationFailed

NAME = "PLAIN"


class PlainServer:
    """One PLAIN exchange; ``password_of(user)`` is the configured password, None for an unknown user."""

    name = NAME

    def __init__(self, password_of: Callable[[str], str | None]) -> None:
        self._password_of = password_of
        self.complete = False
        self.authorization_id: str | None = None
        self.lifetime_ms: int | None = None

    def respond(self, token: bytes) -> bytes:
        if self.complete:
            raise AuthenticationFailed("Authentication failed: PLAIN exchange already complete")
        parts = token.decode("utf-8", errors="replace").split("\0")
        if len(parts) != 3:
            raise AuthenticationFailed(f"Invalid SASL/PLAIN response: expected 3 tokens, got {len(parts)}")
        authzid, username, password = parts
        if not username:
            raise AuthenticationFailed("Authentication failed: username not specified")
        self.authorization_id = username  # the name tried, for the log; authenticated only once complete
        if not password:
            raise AuthenticationFailed("Authentication failed: password not specified")
        expected = self._password_of(username)
        if expected is None or not hmac.compare_digest(expected.encode(), password.encode()):
            raise AuthenticationFailed("Authentication failed: Invalid username or password")
        if authzid and authzid != username:
            raise AuthenticationFailed(
                "Authentication failed: Client requested an authorization id that is different from username")
        self.complete = True
        return b""
