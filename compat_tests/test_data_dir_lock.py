"""Two brokers on one data directory: the second refuses to start, as Kafka does (issue 12, defect 3)."""

from __future__ import annotations

import subprocess

from compat_helpers import REPO_ROOT, BrokerProcess, free_port
from confluent_clients import create_topic, describe_topic


def test_second_broker_on_the_same_data_dir_exits_with_one_clear_line(broker_factory):
    first = broker_factory()
    create_topic(first.bootstrap, "locked-topic", 1)
    second = BrokerProcess(first.data_dir.parent, first.overrides)
    second.port = free_port()
    result = subprocess.run(second.command(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [f"kafkacompat: failed to acquire lock on file .lock in {first.data_dir.resolve()}: "
                     "another process or thread is using this directory"], result.stderr
    # The first broker serves on, its directory untouched.
    assert describe_topic(first.bootstrap, "locked-topic")[1] == [0]
    first.stop()
    # Once it has stopped, the directory is free again.
    first.start()
    assert describe_topic(first.bootstrap, "locked-topic")[1] == [0]


def test_lock_file_does_not_outlive_a_killed_broker(broker_factory):
    first = broker_factory()
    first.kill()
    first.start()  # the operating system dropped the lock with the process: start must succeed
    create_topic(first.bootstrap, "after-kill", 1)
