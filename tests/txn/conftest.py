"""The transaction coordinator under test: a data directory, an injected clock, producer ids from 4000."""

from __future__ import annotations

import itertools

import pytest

from kafkacompat.txn.coordinator import TransactionCoordinator
from tests.log.conftest import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def open_coordinator(tmp_path, clock):
    """Open (or reopen, reading the journal back) the coordinator of `tmp_path`."""
    ids = itertools.count(4000)

    def factory(**options) -> TransactionCoordinator:
        return TransactionCoordinator(tmp_path, clock, lambda: next(ids), **options)

    return factory
