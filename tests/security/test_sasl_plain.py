"""PLAIN server: one message, Kafka's messages for each way it fails."""

from __future__ import annotations

import pytest

from kafkacompat.security.sasl import AuthenticationFailed
from kafkacompat.security.sasl.plain import PlainServer

USERS = {"alice": "alice-secret"}


def test_good_credentials_complete_with_the_user_as_authorization_id() -> None:
    server = PlainServer(USERS.get)
    assert server.respond(b"\0alice\0alice-secret") == b""
    assert (server.complete, server.authorization_id) == (True, "alice")


def test_authorization_id_equal_to_the_user_is_accepted() -> None:
    server = PlainServer(USERS.get)
    server.respond(b"alice\0alice\0alice-secret")
    assert server.complete


@pytest.mark.parametrize(("token", "message"), [
    (b"\0alice\0wrong", "Authentication failed: Invalid username or password"),
    (b"\0bob\0alice-secret", "Authentication failed: Invalid username or password"),
    (b"\0\0alice-secret", "Authentication failed: username not specified"),
    (b"\0alice\0", "Authentication failed: password not specified"),
    (b"alice-secret", "Invalid SASL/PLAIN response: expected 3 tokens, got 1"),
    (b"admin\0alice\0alice-secret",
     "Authentication failed: Client requested an authorization id that is different from username"),
])
def test_failures_carry_kafkas_message(token: bytes, message: str) -> None:
    server = PlainServer(USERS.get)
    with pytest.raises(AuthenticationFailed) as failure:
        server.respond(token)
    assert str(failure.value) == message
    assert not server.complete
    assert "alice-secret" not in str(failure.value)
