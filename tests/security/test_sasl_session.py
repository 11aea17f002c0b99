"""A connection's SASL state: what each state serves, failure closes, re-authentication (KIP-368)."""

from __future__ import annotations

from kafkacompat.security.sasl.plain import PlainServer
from kafkacompat.security.sasl.session import (
    API_VERSIONS,
    AUTHENTICATE,
    AUTHENTICATED,
    HANDSHAKE,
    SASL_AUTHENTICATE,
    SASL_HANDSHAKE,
    SaslSession,
)

METADATA = 3
USERS = {"alice": "pw", "bob": "pw2"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000

    def __call__(self) -> int:
        return self.now


def session(reauth_ms: int = 0, clock: Clock | None = None) -> SaslSession:
    return SaslSession({"PLAIN": lambda: PlainServer(USERS.get)}, reauth_ms, clock or Clock())


def test_before_authentication_only_the_sasl_apis_are_served() -> None:
    s = session()
    assert s.state == HANDSHAKE
    assert s.admits(API_VERSIONS) and s.admits(SASL_HANDSHAKE)
    assert not s.admits(METADATA) and not s.admits(SASL_AUTHENTICATE)
    assert s.handshake("PLAIN")
    assert s.state == AUTHENTICATE
    assert s.admits(SASL_AUTHENTICATE) and not s.admits(API_VERSIONS) and not s.admits(METADATA)


def test_success_sets_the_principal_and_serves_everything() -> None:
    s = session()
    s.handshake("PLAIN")
    outcome = s.authenticate(b"\0alice\0pw")
    assert (outcome.error, outcome.session_lifetime_ms) == (None, 0)
    assert (s.state, s.principal, s.closing) == (AUTHENTICATED, "User:alice", False)
    assert s.admits(METADATA)
    assert not s.reauthenticates  # without connections.max.reauth.ms a handshake gets ILLEGAL_SASL_STATE


def test_an_unknown_mechanism_closes_after_the_answer() -> None:
    s = session()
    assert not s.handshake("GSSAPI")
    assert s.closing and s.enabled == ["PLAIN"]


def test_a_failed_authentication_closes_after_the_answer() -> None:
    s = session()
    s.handshake("PLAIN")
    outcome = s.authenticate(b"\0alice\0nope")
    assert outcome.error == "Authentication failed: Invalid username or password"
    assert s.closing and s.principal is None
    assert s.attempted_user() == "alice"


def test_the_session_expires_and_reauthentication_keeps_the_principal() -> None:
    clock = Clock()
    s = session(reauth_ms=5_000, clock=clock)
    s.handshake("PLAIN")
    assert s.authenticate(b"\0alice\0pw").session_lifetime_ms == 5_000
    clock.now += 4_999
    assert s.admits(METADATA)
    clock.now += 1
    assert not s.admits(METADATA)  # past its lifetime: the connection closes
    assert s.admits(SASL_HANDSHAKE) and s.reauthenticates
    assert s.handshake("PLAIN")
    assert not s.admits(METADATA)
    assert s.authenticate(b"\0alice\0pw").error is None
    assert s.admits(METADATA) and s.expires_at_ms == clock.now + 5_000


def test_reauthentication_may_not_change_the_principal() -> None:
    s = session(reauth_ms=5_000)
    s.handshake("PLAIN")
    s.authenticate(b"\0alice\0pw")
    s.handshake("PLAIN")
    outcome = s.authenticate(b"\0bob\0pw2")
    assert outcome.error == "Cannot change principals during re-authentication from User:alice: User:bob"
    assert s.closing
