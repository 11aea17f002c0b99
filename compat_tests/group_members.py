"""librdkafka group members polled in turn, for the classic and the KIP-848 group tests.

Each :class:`Member` is a confluent-kafka consumer in this process that
records what it read and how often it was rebalanced; the helpers poll a
whole group until a split or a record count shows up.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

from compat_helpers import sample_records, unique_topic, wait_until
from confluent_clients import ClientErrors, produce_records

PARTITIONS = 6
ALL = frozenset(range(PARTITIONS))
SESSION_TIMEOUT_MS = 6000  # the broker's minimum
# Broker overrides for KIP-848 tests: short sessions and heartbeats (classic members keep their own).
KIP848_CONFIG = {
    "group.consumer.session.timeout.ms": str(SESSION_TIMEOUT_MS),
    "group.consumer.min.session.timeout.ms": str(SESSION_TIMEOUT_MS),
    "group.consumer.heartbeat.interval.ms": "500",
    "group.consumer.min.heartbeat.interval.ms": "500",
}


def new_topic(broker, prefix: str, partitions: int = PARTITIONS) -> str:
    topic = unique_topic(prefix)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)],
                                  operation_timeout=10, request_timeout=15)
    futures[topic].result(timeout=20)  # `admin` must outlive the future
    return topic


def produce(broker, topic: str, count: int) -> list:
    return produce_records(broker.bootstrap, topic, sample_records(count))


class Member:
    """One librdkafka group member that records what it read and how often it was rebalanced."""

    def __init__(self, bootstrap: str, group: str, topic: str, **config) -> None:
        self.errors = ClientErrors()
        self.rebalances = 0
        self.read: list[tuple[int, int]] = []
        # The KIP-848 protocol takes its session and heartbeat timing from the broker.
        timing = {} if config.get("group.protocol") == "consumer" else {
            "session.timeout.ms": SESSION_TIMEOUT_MS, "heartbeat.interval.ms": 500}
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
            **timing, "error_cb": self.errors, **config})
        self.consumer.subscribe([topic], on_assign=self._rebalanced, on_revoke=self._rebalanced)

    def _rebalanced(self, consumer, partitions) -> None:
        self.rebalances += 1

    def poll(self) -> None:
        for message in self.consumer.consume(num_messages=500, timeout=0.05):
            assert message.error() is None, f"consumer error: {message.error()}"
            self.read.append((message.partition(), message.offset()))

    def partitions(self) -> frozenset[int]:
        return frozenset(tp.partition for tp in self.consumer.assignment())

    def close(self) -> None:
        self.consumer.close()
        self.errors.assert_none("group member")


def members(broker, group: str, topic: str, count: int, **config) -> list[Member]:
    return [Member(broker.bootstrap, group, topic, **config) for _ in range(count)]


def close_all(group: list[Member]) -> None:
    for member in group:
        member.close()


def poll_until_split(group: list[Member], share: int, timeout_s: float = 30) -> list[frozenset[int]]:
    """Poll until every member owns exactly ``share`` partitions and no partition has two owners."""

    def split():
        for member in group:
            member.poll()
        shares = [member.partitions() for member in group]
        if all(len(s) == share for s in shares) and len(frozenset().union(*shares)) == share * len(group):
            return shares
        return None

    return wait_until(split, timeout_s, f"{len(group)} members to own {share} partitions each", 0)


def poll_until_read(group: list[Member], count: int, timeout_s: float = 30) -> list[tuple[int, int]]:
    def everything():
        for member in group:
            member.poll()
        read = [position for member in group for position in member.read]
        return read if len(read) >= count else None

    wait_until(everything, timeout_s, f"{count} records read", 0)
    for _ in range(10):  # linger: nothing more may arrive
        for member in group:
            member.poll()
    return [position for member in group for position in member.read]


def check_takeover_after_close(group: list[Member], within_s: float) -> None:
    """Close the last member of a three-member, six-partition group (it says goodbye);
    the other two must own three partitions each within ``within_s``."""
    group.pop().close()
    started = time.monotonic()
    shares = poll_until_split(group, 3, timeout_s=15)
    assert time.monotonic() - started < within_s
    assert shares[0] | shares[1] == ALL


_DOOMED_MEMBER = textwrap.dedent("""
    import json, sys
    from confluent_kafka import Consumer
    bootstrap, group, topic, config = sys.argv[1:5]
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         **json.loads(config)})
    consumer.subscribe([topic])
    while True:
        consumer.poll(0.1)
""")


def check_takeover_after_kill(broker, group: list[Member], group_id: str, topic: str, session_timeout_ms: int,
                              **config) -> None:
    """A third member in a child process owns two partitions and gets SIGKILL; the two in ``group`` must
    take them over once its session times out, counted from its last heartbeat, not before."""
    doomed = subprocess.Popen([sys.executable, "-c", _DOOMED_MEMBER, broker.bootstrap, group_id, topic,
                               json.dumps(config)])
    try:
        poll_until_split(group, 2, timeout_s=40)  # the child owns the other two
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        killed_at = time.monotonic()
        shares = poll_until_split(group, 3, timeout_s=30)
        elapsed = time.monotonic() - killed_at
        assert shares[0] | shares[1] == ALL
        # Nothing said goodbye: only the session timeout frees its partitions.
        assert session_timeout_ms / 1000 - 1.5 <= elapsed <= session_timeout_ms / 1000 + 10
    finally:
        doomed.kill()
        doomed.wait(timeout=10)
