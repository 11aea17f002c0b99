from __future__ import annotations

import pytest
from group_helpers import FakeClock, make_coordinator

from kafkacompat.group.coordinator import GroupCoordinator


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def coordinator(tmp_path, clock) -> GroupCoordinator:
    coordinator = make_coordinator(tmp_path, clock)
    yield coordinator
    coordinator.close()
