"""SCRAM credentials managed with AlterUserScramCredentials, kept durably, never as passwords.

On disk: ``scram-credentials.json`` in the data directory, ``{"version": 1,
"users": {name: {mechanism: {"salt", "stored_key", "server_key" (base64),
"iterations"}}}}``; rewritten whole through a temporary file, fsynced and
renamed over the old one, so a crash leaves either the old or the new set.
Users given in the config (``sasl.users``) get in-memory credentials of both
mechanisms at start; a stored credential of the same name wins. Only the
event-loop thread touches a store.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

from kafkacompat.security.sasl.scram import HASHES, ScramCredential, credential_from_password

FILE_NAME = "scram-credentials.json"


def _encode(credential: ScramCredential) -> dict[str, object]:
    b64 = lambda data: base64.b64encode(data).decode()  # noqa: E731
    return {"salt": b64(credential.salt), "stored_key": b64(credential.stored_key),
            "server_key": b64(credential.server_key), "iterations": credential.iterations}


def _decode(entry: dict[str, object]) -> ScramCredential:
    raw = lambda name: base64.b64decode(str(entry[name]))  # noqa: E731
    return ScramCredential(raw("salt"), raw("stored_key"), raw("server_key"), int(str(entry["iterations"])))


class CredentialStore:
    """SCRAM credentials by user and mechanism; see the module docstring for the file."""

    def __init__(self, data_dir: Path, config_users: dict[str, str] | None = None) -> None:
        self._path = data_dir / FILE_NAME
        self._stored: dict[str, dict[str, ScramCredential]] = {}
        if self._path.exists():
            document = json.loads(self._path.read_text())
            self._stored = {user: {mechanism: _decode(entry) for mechanism, entry in mechanisms.items()}
                            for user, mechanisms in document.get("users", {}).items()}
        self._configured = {user: {mechanism: credential_from_password(mechanism, password) for mechanism in HASHES}
                            for user, password in (config_users or {}).items()}

    def credential(self, user: str, mechanism: str) -> ScramCredential | None:
        """What a SCRAM login of ``user`` is checked against."""
        stored = self._stored.get(user, {}).get(mechanism)
        return stored if stored is not None else self._configured.get(user, {}).get(mechanism)

    def described(self) -> dict[str, dict[str, ScramCredential]]:
        """The credentials DescribeUserScramCredentials shows: those managed through the admin API."""
        return self._stored

    def apply(self, deletions: list[tuple[str, str]], upsertions: list[tuple[str, str, ScramCredential]]) -> None:
        """Delete, then upsert, then persist once; callers have checked every entry."""
        for user, mechanism in deletions:
            mechanisms = self._stored.get(user, {})
            mechanisms.pop(mechanism, None)
            if not mechanisms:
                self._stored.pop(user, None)
        for user, mechanism, credential in upsertions:
            self._stored.setdefault(user, {})[mechanism] = credential
        self._persist()

    def _persist(self) -> None:
        document = {"version": 1, "users": {user: {mechanism: _encode(credential)
                                                   for mechanism, credential in mechanisms.items()}
                                            for user, mechanisms in self._stored.items()}}
        tmp = self._path.with_suffix(".tmp")
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(document, handle)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(self._path)
        directory = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
