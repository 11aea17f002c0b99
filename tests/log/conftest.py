"""Fixtures for the log engine tests: a settable clock and partition logs in tmp dirs."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafkacompat.log.partition_log import PartitionLog
from kafkacompat.log.topic_config import LogConfig, default_configs
from tests.log.batch_builder import DEFAULT_TIMESTAMP as T0


class FakeClock:
    """Epoch milliseconds that only move when a test says so."""

    def __init__(self, now: int = T0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def open_log(tmp_path: Path, clock: FakeClock):
    """open_log(**topic_configs) -> PartitionLog on the same directory each call."""

    def factory(**overrides: str) -> PartitionLog:
        configs = {**default_configs(), **{k.replace("_", "."): v for k, v in overrides.items()}}
        return PartitionLog("t", 0, tmp_path / "t-0", LogConfig.from_strings(configs), clock)

    return factory
