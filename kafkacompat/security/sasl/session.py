"""The SASL state of one connection on a SASL listener, as Kafka's SaslServerAuthenticator keeps it.

Theory of operation. States, and what each request gets in them:

- ``HANDSHAKE``: ApiVersions (any number) and SaslHandshake are served;
  anything else closes the connection (Kafka: "Unexpected Kafka request ...
  during SASL handshake"). A handshake naming an enabled mechanism moves to
  ``AUTHENTICATE``; any other gets UNSUPPORTED_SASL_MECHANISM with the enabled
  list, then the connection closes.
- ``AUTHENTICATE``: only SaslAuthenticate. Its token goes to the mechanism;
  a challenge stays here, success moves to ``AUTHENTICATED`` (principal
  ``User:<authorization id>``), failure answers SASL_AUTHENTICATION_FAILED with
  Kafka's message and closes the connection.
- ``AUTHENTICATED``: every API. With ``connections.max.reauth.ms`` > 0 the
  session lasts that long (less when the credential, an OAUTHBEARER token,
  expires sooner) and SaslAuthenticate v1+ says so; a SaslHandshake then starts
  re-authentication (KIP-368): back to ``AUTHENTICATE`` with the same
  mechanism, only SASL requests served until done, and the principal may not
  change. Past the session's end any other request closes the connection.
  Without re-authentication SaslHandshake and SaslAuthenticate get
  ILLEGAL_SASL_STATE, as from Kafka's request handler.

``closing`` tells the connection to close once the current answer is sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from kafkacompat.security.sasl import AuthenticationFailed, SaslMechanism

API_VERSIONS, SASL_HANDSHAKE, SASL_AUTHENTICATE = 18, 17, 36

HANDSHAKE, AUTHENTICATE, AUTHENTICATED = "HANDSHAKE", "AUTHENTICATE", "AUTHENTICATED"
_ADMITTED = {
    HANDSHAKE: frozenset({API_VERSIONS, SASL_HANDSHAKE}),
    AUTHENTICATE: frozenset({SASL_AUTHENTICATE}),
}


@dataclass(frozen=True)
class AuthenticateOutcome:
    error: str | None  # None, or the message sent with SASL_AUTHENTICATION_FAILED
    token: bytes
    session_lifetime_ms: int


class SaslSession:
    """One connection's SASL state; ``mechanisms`` maps each enabled name to a factory of its state machine."""

    def __init__(self, mechanisms: dict[str, Callable[[], SaslMechanism]], reauth_ms: int,
                 clock: Callable[[], int]) -> None:
        self._factories = mechanisms
        self._reauth_ms = reauth_ms
        self._clock = clock
        self.state = HANDSHAKE
        self.mechanism: SaslMechanism | None = None
        self.mechanism_name: str | None = None
        self.principal: str | None = None
        self.expires_at_ms: int | None = None
        self.closing = False

    @property
    def enabled(self) -> list[str]:
        return list(self._factories)

    def admits(self, api_key: int) -> bool:
        """Whether a request of ``api_key`` may be served now; False closes the connection."""
        if self.state != AUTHENTICATED:
            return api_key in _ADMITTED[self.state]
        if self.expires_at_ms is None or api_key == SASL_HANDSHAKE:
            return True
        return self._clock() < self.expires_at_ms

    @property
    def reauthenticates(self) -> bool:
        """Whether a SaslHandshake now begins re-authentication (else Kafka's request handler refuses it)."""
        return self.state != AUTHENTICATED or self.expires_at_ms is not None

    def handshake(self, mechanism: str) -> bool:
        """Choose the mechanism; False means it is not enabled (the connection closes after the answer)."""
        reauthenticating = self.state == AUTHENTICATED
        if mechanism not in self._factories or (reauthenticating and mechanism != self.mechanism_name):
            self.closing = True
            return False
        self.mechanism_name = mechanism
        self.mechanism = self._factories[mechanism]()
        self.state = AUTHENTICATE
        return True

    def authenticate(self, token: bytes) -> AuthenticateOutcome:
        mechanism = self.mechanism
        assert mechanism is not None and self.state == AUTHENTICATE
        try:
            challenge = mechanism.respond(token)
        except AuthenticationFailed as exc:
            self.closing = True
            return AuthenticateOutcome(str(exc), b"", 0)
        if not mechanism.complete:
            return AuthenticateOutcome(None, challenge, 0)
        principal = f"User:{mechanism.authorization_id}"
        if self.principal is not None and principal != self.principal:
            self.closing = True
            return AuthenticateOutcome(
                f"Cannot change principals during re-authentication from {self.principal}: {principal}", b"", 0)
        self.principal = principal
        self.state = AUTHENTICATED
        lifetime = 0
        if self._reauth_ms > 0:
            lifetime = self._reauth_ms if mechanism.lifetime_ms is None else min(self._reauth_ms, mechanism.lifetime_ms)
            self.expires_at_ms = self._clock() + lifetime
        return AuthenticateOutcome(None, challenge, lifetime)

    def attempted_user(self) -> str | None:
        """The user name the client tried, for the log (never the secret)."""
        return None if self.mechanism is None else self.mechanism.authorization_id
