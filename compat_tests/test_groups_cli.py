"""`kafkacompat groups list|describe` against a live broker and a live confluent-kafka group."""

from __future__ import annotations

import subprocess
import sys

from confluent_kafka import Consumer

from compat_helpers import REPO_ROOT, sample_records, unique_topic, wait_until
from confluent_clients import create_topic, produce_records


def groups_cli(broker, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "kafkacompat", "groups", "--bootstrap-server", broker.bootstrap, *args],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_list_and_describe_show_members_offsets_and_lag(broker):
    topic, group = unique_topic("cli"), unique_topic("cli-group")
    create_topic(broker.bootstrap, topic, 2)
    produce_records(broker.bootstrap, topic, sample_records(10))
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "client.id": "cli-reader",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    try:
        consumer.subscribe([topic])
        read = 0
        while read < 10:
            message = consumer.poll(1.0)
            if message is not None and not message.error():
                read += 1
        consumer.commit(asynchronous=False)

        listed = groups_cli(broker, "list").splitlines()
        assert any(line.split()[:3] == [group, "Stable", "consumer"] for line in listed), listed

        produce_records(broker.bootstrap, topic, sample_records(5))
        described = groups_cli(broker, "describe", group)
        assert f"GROUP {group}  STATE Stable" in described
        member_lines = [line for line in described.splitlines() if "cli-reader" in line]
        assert len(member_lines) == 1 and f"{topic}-0,{topic}-1" in member_lines[0]
        offset_rows = [line.split() for line in described.splitlines() if line.startswith(topic)]
        assert sorted(int(row[1]) for row in offset_rows) == [0, 1]
        assert sum(int(row[2]) for row in offset_rows) == 10      # committed
        assert sum(int(row[3]) for row in offset_rows) == 15      # log end
        assert sum(int(row[4]) for row in offset_rows) == 5       # lag
    finally:
        consumer.close()
    wait_until(lambda: "Empty" in groups_cli(broker, "describe", group), 10, "the group to empty after close")


def test_a_kip848_consumer_group_is_listed_and_described_with_its_type_and_epochs(broker):
    topic, group = unique_topic("cli-cg"), unique_topic("cli-cg-group")
    create_topic(broker.bootstrap, topic, 2)
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "client.id": "cli-cg-reader",
                         "group.protocol": "consumer", "auto.offset.reset": "earliest"})
    try:
        consumer.subscribe([topic])
        wait_until(lambda: consumer.poll(0.2) or len(consumer.assignment()) == 2, 20, "the member's assignment")
        listed = groups_cli(broker, "list").splitlines()
        assert any(line.split()[:4] == [group, "Stable", "consumer", "consumer"] for line in listed), listed
        described = groups_cli(broker, "describe", group)
        assert f"GROUP {group}  STATE Stable  ASSIGNOR uniform  TYPE consumer" in described
        assert "GROUP-EPOCH 1  ASSIGNMENT-EPOCH 1" in described
        member_lines = [line.split() for line in described.splitlines() if "cli-cg-reader" in line]
        assert len(member_lines) == 1 and member_lines[0][-3:] == ["1", "true", f"{topic}-0,{topic}-1"]
    finally:
        consumer.close()
    wait_until(lambda: "Empty" in groups_cli(broker, "describe", group), 10, "the group to empty after close")
