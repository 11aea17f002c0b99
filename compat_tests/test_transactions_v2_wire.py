"""Transactions v2 (KIP-890 part 2) over the wire, request by request, as the Java 4.x client and franz-go
speak it once ApiVersions finalizes transaction.version 2: no AddPartitionsToTxn or AddOffsetsToTxn,
Produce v12 and TxnOffsetCommit v5 join the transaction, and every EndTxn v5 hands back the epoch the next
transaction uses. No stock client we run speaks it, so the requests are ours; the reading is librdkafka's."""

from __future__ import annotations

import pytest

from compat_helpers import start_holding_markers, unique_topic, wait_until
from confluent_clients import create_topic, read_to_end
from kafkacompat.client import KafkaClient
from kafkacompat.protocol.errors import ErrorCode
from tests.log.batch_builder import RecordSpec, build_batch

PRODUCE, OFFSET_FETCH, INIT_PRODUCER_ID, END_TXN, TXN_OFFSET_COMMIT, UPDATE_FEATURES = 0, 9, 22, 26, 28, 57
API_VERSIONS = 18
pytestmark = pytest.mark.timeout(120)


class V2Producer:
    """One transactional id driven with transactions v2's request versions over one connection."""

    def __init__(self, bootstrap: str, transactional_id: str, resume: tuple[int, int] | None = None) -> None:
        """InitProducerId, or with `resume` go on with that producer id and epoch (as after a reconnect)."""
        self.client = KafkaClient(bootstrap, client_id="txn-v2")
        self.transactional_id = transactional_id
        if resume is None:
            init = self.client.request(INIT_PRODUCER_ID, 5, {"transactional_id": transactional_id,
                                                             "transaction_timeout_ms": 60_000})
            assert init.error_code == ErrorCode.NONE, init
            resume = init.producer_id, init.producer_epoch
        self.producer_id, self.epoch = resume
        self.sequences: dict[tuple[str, int], int] = {}

    def produce(self, topic: str, partition: int, values: list[bytes], epoch: int | None = None) -> int:
        """Produce v12 of one transactional batch; its partition's error code."""
        sequence = self.sequences.get((topic, partition), 0)
        batch = build_batch([RecordSpec(value) for value in values], producer_id=self.producer_id,
                            producer_epoch=self.epoch if epoch is None else epoch, base_sequence=sequence,
                            transactional=True)
        answer = self.client.request(PRODUCE, 12, {
            "transactional_id": self.transactional_id, "acks": -1, "timeout_ms": 10_000,
            "topic_data": [{"name": topic, "partition_data": [{"index": partition, "records": batch}]}]})
        code = answer.responses[0].partition_responses[0].error_code
        if code == ErrorCode.NONE:
            self.sequences[(topic, partition)] = sequence + len(values)
        return code

    def commit_offset(self, group: str, topic: str, offset: int) -> int:
        """TxnOffsetCommit v5, with no AddOffsetsToTxn before it; the partition's error code."""
        answer = self.client.request(TXN_OFFSET_COMMIT, 5, {
            "transactional_id": self.transactional_id, "group_id": group, "producer_id": self.producer_id,
            "producer_epoch": self.epoch, "generation_id": -1, "member_id": "", "group_instance_id": None,
            "topics": [{"name": topic, "partitions": [{"partition_index": 0, "committed_offset": offset,
                                                       "committed_leader_epoch": -1, "committed_metadata": ""}]}]})
        return answer.topics[0].partitions[0].error_code

    def end(self, commit: bool, epoch: int | None = None) -> tuple[int, int, int]:
        """EndTxn v5: (error, producer id, epoch); on success the returned id and epoch are taken up."""
        answer = self.client.request(END_TXN, 5, {
            "transactional_id": self.transactional_id, "producer_id": self.producer_id,
            "producer_epoch": self.epoch if epoch is None else epoch, "committed": commit})
        if answer.error_code == ErrorCode.NONE:
            if (answer.producer_id, answer.producer_epoch) != (self.producer_id, self.epoch):
                self.sequences.clear()  # a new epoch starts every partition's sequence at 0
            self.producer_id, self.epoch = answer.producer_id, answer.producer_epoch
        return answer.error_code, answer.producer_id, answer.producer_epoch

    def close(self) -> None:
        self.client.close()


def committed_offset(bootstrap: str, group: str, topic: str) -> tuple[int, int]:
    """OffsetFetch v9 with require_stable: partition 0's (error code, committed offset)."""
    with KafkaClient(bootstrap) as client:
        answer = client.request(OFFSET_FETCH, 9, {"require_stable": True, "groups": [
            {"group_id": group, "member_id": None, "member_epoch": -1,
             "topics": [{"name": topic, "partition_indexes": [0]}]}]})
    (partition,) = answer.groups[0].topics[0].partitions
    return partition.error_code, partition.committed_offset


def values_read(bootstrap: str, topic: str, isolation: str) -> list[bytes]:
    return sorted(value for _, _, value in read_to_end(bootstrap, topic, [0, 1], isolation))


def test_transactions_without_add_requests_commit_abort_and_hand_on_the_epoch(broker):
    topic = unique_topic("txn-v2")
    create_topic(broker.bootstrap, topic, partitions=2)
    producer = V2Producer(broker.bootstrap, f"tid-{topic}")
    pid, first = producer.producer_id, producer.epoch
    group = f"group-{topic}"
    try:
        assert producer.produce(topic, 0, [b"c0", b"c1"]) == ErrorCode.NONE
        assert producer.produce(topic, 1, [b"c2"]) == ErrorCode.NONE
        assert producer.produce(topic, 0, [b"c3"]) == ErrorCode.NONE  # already in the transaction
        assert producer.commit_offset(group, topic, 7) == ErrorCode.NONE
        staged = committed_offset(broker.bootstrap, group, topic)
        assert staged == (ErrorCode.UNSTABLE_OFFSET_COMMIT, -1)  # staged until the commit (KIP-447)
        assert producer.end(commit=True) == (ErrorCode.NONE, pid, first + 1)
        assert committed_offset(broker.bootstrap, group, topic) == (ErrorCode.NONE, 7)
        # The epoch the commit replaced is fenced, at a partition of that transaction and elsewhere.
        assert producer.produce(topic, 0, [b"zombie"], epoch=first) == ErrorCode.INVALID_PRODUCER_EPOCH
        assert producer.produce(topic, 1, [b"zombie"], epoch=first) == ErrorCode.INVALID_PRODUCER_EPOCH

        assert producer.produce(topic, 0, [b"a0"]) == ErrorCode.NONE  # sequence 0 at the new epoch
        assert producer.produce(topic, 1, [b"a1", b"a2"]) == ErrorCode.NONE
        assert producer.commit_offset(group, topic, 99) == ErrorCode.NONE
        assert producer.end(commit=False) == (ErrorCode.NONE, pid, first + 2)
        assert committed_offset(broker.bootstrap, group, topic) == (ErrorCode.NONE, 7)

        assert producer.produce(topic, 1, [b"c4"]) == ErrorCode.NONE
        assert producer.end(commit=True) == (ErrorCode.NONE, pid, first + 3)
        # A retry names the epoch it was sent with and gets the answer again, without another bump.
        assert producer.end(commit=True, epoch=first + 2) == (ErrorCode.NONE, pid, first + 3)
        assert producer.end(commit=False, epoch=first + 2)[0] == ErrorCode.INVALID_TXN_STATE
        assert producer.end(commit=False) == (ErrorCode.NONE, pid, first + 4)  # an abort of nothing
        assert producer.end(commit=True, epoch=first + 1)[0] == ErrorCode.PRODUCER_FENCED
    finally:
        producer.close()
    assert values_read(broker.bootstrap, topic, "read_committed") == [b"c0", b"c1", b"c2", b"c3", b"c4"]
    assert values_read(broker.bootstrap, topic, "read_uncommitted") == [
        b"a0", b"a1", b"a2", b"c0", b"c1", b"c2", b"c3", b"c4"]


def test_lowering_transaction_version_changes_what_is_advertised_not_how_v5_is_answered(broker_factory):
    broker = broker_factory()
    topic = unique_topic("txn-v2-tv1")
    create_topic(broker.bootstrap, topic, partitions=2)
    with KafkaClient(broker.bootstrap) as admin:
        answer = admin.request(UPDATE_FEATURES, 1, {"timeout_ms": 10_000, "validate_only": False, "feature_updates": [
            {"feature": "transaction.version", "max_version_level": 1, "upgrade_type": 2}]})
        assert answer.error_code == ErrorCode.NONE, answer
        versions = admin.request(API_VERSIONS, 3, {"client_software_name": "t", "client_software_version": "1"})
    assert [(f.name, f.max_version_level) for f in versions.finalized_features
            if f.name == "transaction.version"] == [("transaction.version", 1)]
    # As in Kafka, the request's version decides (transactionVersionForEndTxn): a v5 EndTxn still bumps.
    producer = V2Producer(broker.bootstrap, f"tid-{topic}")
    try:
        assert producer.produce(topic, 0, [b"v"]) == ErrorCode.NONE
        assert producer.end(commit=True)[2] == 1
    finally:
        producer.close()
    assert values_read(broker.bootstrap, topic, "read_committed") == [b"v"]


def test_sigkill_between_a_v2_end_txn_and_its_markers_completes_the_commit_after_restart(broker_factory,
                                                                                       monkeypatch):
    broker = start_holding_markers(broker_factory, monkeypatch)  # decides the commit, writes no marker
    topic = unique_topic("txn-v2-crash")
    create_topic(broker.bootstrap, topic, partitions=2)
    transactional_id = f"tid-{topic}"
    producer = V2Producer(broker.bootstrap, transactional_id)
    pid, first = producer.producer_id, producer.epoch
    try:
        assert producer.produce(topic, 0, [b"p0", b"p1"]) == ErrorCode.NONE
        assert producer.produce(topic, 1, [b"p2"]) == ErrorCode.NONE
        assert producer.end(commit=True) == (ErrorCode.NONE, pid, first + 1)  # PrepareCommit is durable
    finally:
        producer.close()
    assert values_read(broker.bootstrap, topic, "read_committed") == []
    broker.kill()
    broker.start()
    wait_until(lambda: values_read(broker.bootstrap, topic, "read_committed") == [b"p0", b"p1", b"p2"],
               15, "the prepared commit's markers after the restart")
    # The producer goes on with the epoch EndTxn returned, on a new connection; its retry is still known.
    successor = V2Producer(broker.bootstrap, transactional_id, resume=(pid, first + 1))
    try:
        assert successor.end(commit=True, epoch=first) == (ErrorCode.NONE, pid, first + 1)
        assert successor.produce(topic, 0, [b"stale"], epoch=first) == ErrorCode.INVALID_PRODUCER_EPOCH
        assert successor.produce(topic, 1, [b"after"]) == ErrorCode.NONE
        assert successor.end(commit=True) == (ErrorCode.NONE, pid, first + 2)
    finally:
        successor.close()
    assert values_read(broker.bootstrap, topic, "read_committed") == [b"after", b"p0", b"p1", b"p2"]
