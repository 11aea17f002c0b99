"""The SCRAM credential store: durable across reopening, never holding a password, config users in memory."""

from __future__ import annotations

import json

from kafkacompat.security.credentials import FILE_NAME, CredentialStore
from kafkacompat.security.sasl.scram import credential_from_password


def test_credentials_survive_reopening_and_deletions_persist(tmp_path) -> None:
    store = CredentialStore(tmp_path)
    credential = credential_from_password("SCRAM-SHA-512", "hunter2", 4096)
    store.apply([], [("carol", "SCRAM-SHA-512", credential), ("erin", "SCRAM-SHA-256",
                                                                 credential_from_password("SCRAM-SHA-256", "x"))])
    reopened = CredentialStore(tmp_path)
    assert reopened.credential("carol", "SCRAM-SHA-512") == credential
    assert reopened.credential("carol", "SCRAM-SHA-256") is None
    reopened.apply([("erin", "SCRAM-SHA-256")], [])
    assert sorted(CredentialStore(tmp_path).described()) == ["carol"]
    text = (tmp_path / FILE_NAME).read_text()
    assert "hunter2" not in text
    assert set(json.loads(text)["users"]["carol"]["SCRAM-SHA-512"]) == {"salt", "stored_key", "server_key",
                                                                        "iterations"}


def test_config_users_log_in_but_are_not_described_and_stored_ones_win(tmp_path) -> None:
    store = CredentialStore(tmp_path, {"alice": "pw"})
    assert store.credential("alice", "SCRAM-SHA-256") is not None
    assert store.credential("alice", "SCRAM-SHA-512") is not None
    assert store.described() == {}
    stored = credential_from_password("SCRAM-SHA-512", "other", 4096)
    store.apply([], [("alice", "SCRAM-SHA-512", stored)])
    assert store.credential("alice", "SCRAM-SHA-512") == stored
