"""SASL server mechanisms, each a sans-I/O state machine: tokens in, challenges out.

Every mechanism has ``respond(token) -> bytes`` (the next server message),
``complete`` (authentication succeeded; nothing more to exchange) and, once
complete, ``authorization_id`` (the user name the principal is made of) and
``lifetime_ms`` (an expiring credential's remaining life, else None). A
failure raises :class:`AuthenticationFailed` with the message Kafka sends the
client; the secret never appears in it.
"""

from __future__ import annotations

from typing import Protocol


class AuthenticationFailed(Exception):
    """The client did not authenticate; ``str(exc)`` is what the client is told."""


class SaslMechanism(Protocol):
    name: str
    complete: bool
    authorization_id: str | None
    lifetime_ms: int | None

    def respond(self, token: bytes) -> bytes: ...


def invalid_credentials(mechanism: str) -> AuthenticationFailed:
    """Kafka's message for a mechanism's own failures (SaslException), which it never passes on."""
    return AuthenticationFailed(
        f"Authentication failed during authentication due to invalid credentials with SASL mechanism {mechanism}")
