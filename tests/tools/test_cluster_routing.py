"""The tools' client against two fake brokers: version negotiation, leaders, controller, coordinator.

kafkacompat is one broker, so a cluster whose partitions, controller and
group coordinator live on different nodes is played by two small socket
servers built on our codec. They record every request they get.
"""

from __future__ import annotations

import socket
import struct
import threading
import uuid
from typing import Any, Callable

import pytest

from kafkacompat.client import ApiKey, Cluster
from kafkacompat.protocol import decode_request, encode_response, encode_response_frame, parse_request
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.protocol.records import Compression, decode_records, encode_batch
from kafkacompat.tools.consume import EARLIEST, Fetcher
from kafkacompat.tools.partitioner import partition_for_key
from kafkacompat.tools.produce import Producer

ADVERTISED = {ApiKey.API_VERSIONS: (0, 3), ApiKey.METADATA: (0, 10), ApiKey.PRODUCE: (3, 9),
              ApiKey.FIND_COORDINATOR: (0, 4), ApiKey.CREATE_TOPICS: (2, 5), ApiKey.FETCH: (4, 13),
              ApiKey.LIST_OFFSETS: (1, 7)}
TOPIC_ID = uuid.UUID(int=42)


class FakeNode:
    """One listening socket answering with ``cluster.answer``; a thread per connection."""

    def __init__(self, node_id: int, cluster: "FakeCluster") -> None:
        self.node_id = node_id
        self.cluster = cluster
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            stream = connection.makefile("rb")
            while size_bytes := stream.read(4):
                header, body = parse_request(stream.read(struct.unpack(">i", size_bytes)[0]))
                request = decode_request(header.api_key, header.api_version, body)
                self.cluster.requests.append((self.node_id, header.api_key, header.api_version, request))
                answer = self.cluster.answer(self.node_id, header.api_key, request)
                if answer is not None:
                    connection.sendall(encode_response_frame(
                        header, encode_response(header.api_key, header.api_version, answer)))


class FakeCluster:
    """Nodes 1 and 2; topic ``t`` has partition 0 on node 1 and 1, 2 on node 2; node 2 is controller and coordinator."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, int, int, Any]] = []
        self.advertised = dict(ADVERTISED)
        self.leaders = {0: 1, 1: 2, 2: 2}
        self.produce_errors: dict[tuple[int, int], int] = {}  # (node, partition) -> one-time error
        self.nodes = {n: FakeNode(n, self) for n in (1, 2)}
        self.handlers: dict[int, Callable[[int, Any], Any]] = {
            ApiKey.API_VERSIONS: lambda node, request: {"error_code": 0, "api_keys": [
                {"api_key": key, "min_version": low, "max_version": high}
                for key, (low, high) in self.advertised.items()]},
            ApiKey.METADATA: self._metadata,
            ApiKey.PRODUCE: self._produce,
            ApiKey.FIND_COORDINATOR: lambda node, request: {"coordinators": [
                {"key": k, "node_id": 2, "host": "127.0.0.1", "port": self.nodes[2].port, "error_code": 0}
                for k in request.coordinator_keys]},
            ApiKey.CREATE_TOPICS: lambda node, request: {"topics": [
                {"name": t.name, "error_code": 0} for t in request.topics]},
            ApiKey.LIST_OFFSETS: lambda node, request: {"topics": [{"name": t.name, "partitions": [
                {"partition_index": p.partition_index, "error_code": 0, "timestamp": -1, "offset": 0}
                for p in t.partitions]} for t in request.topics]},
            ApiKey.FETCH: self._fetch,
        }

    def address(self, node: int) -> str:
        return f"127.0.0.1:{self.nodes[node].port}"

    def answer(self, node: int, api_key: int, request: Any) -> Any:
        return self.handlers[api_key](node, request)

    def _metadata(self, node: int, request: Any) -> Any:
        return {
            "brokers": [{"node_id": n, "host": "127.0.0.1", "port": fake.port, "rack": None}
                        for n, fake in self.nodes.items()],
            "cluster_id": "fake-cluster", "controller_id": 2,
            "topics": [{"error_code": 0, "name": t.name, "topic_id": TOPIC_ID, "is_internal": False, "partitions": [
                {"error_code": 0, "partition_index": p, "leader_id": leader, "leader_epoch": 0,
                 "replica_nodes": [leader], "isr_nodes": [leader], "offline_replicas": []}
                for p, leader in self.leaders.items()]} for t in request.topics or ()],
        }

    def _produce(self, node: int, request: Any) -> Any:
        if request.acks == 0:
            return None
        return {"responses": [{"name": t.name, "partition_responses": [
            {"index": p.index, "error_code": self.produce_errors.pop((node, p.index), 0), "base_offset": 0}
            for p in t.partition_data]} for t in request.topic_data]}

    def _fetch(self, node: int, request: Any) -> Any:
        """Partition p holds one record, value b"p<p>", at offset 0."""
        return {"error_code": 0, "responses": [{"topic": t.topic, "topic_id": t.topic_id, "partitions": [
            {"partition_index": p.partition, "error_code": 0, "high_watermark": 1,
             "records": encode_batch([(None, b"p%d" % p.partition, [])], 0) if p.fetch_offset == 0 else b""}
            for p in t.partitions]} for t in request.topics]}

    def requests_for(self, api_key: int) -> list[tuple[int, int, Any]]:
        return [(node, version, body) for node, key, version, body in self.requests if key == api_key]

    def close(self) -> None:
        for fake in self.nodes.values():
            fake.listener.close()


@pytest.fixture
def fake():
    cluster = FakeCluster()
    yield cluster
    cluster.close()


def _produced(fake: FakeCluster) -> dict[int, list[tuple[int, bytes]]]:
    """Partitions each node was sent, with the keys of their records."""
    sent: dict[int, list] = {}
    for node, _, body in fake.requests_for(ApiKey.PRODUCE):
        for topic in body.topic_data:
            for data in topic.partition_data:
                sent.setdefault(node, []).extend((data.index, r.key) for r in decode_records(data.records))
    return sent


def test_each_batch_goes_to_its_partitions_leader_at_the_negotiated_version(fake):
    keys = [b"key-%d" % i for i in range(30)]
    with Cluster(fake.address(1)) as cluster:
        producer = Producer(cluster, "t", acks=-1, compression=Compression.NONE)
        for key in keys:
            producer.add((key, b"v", []))
        producer.flush()
    sent = _produced(fake)
    assert sorted(sent) == [1, 2]
    assert {p for p, _ in sent[1]} == {0} and {p for p, _ in sent[2]} <= {1, 2}
    assert sorted(key for records in sent.values() for _, key in records) == sorted(keys)
    assert all(partition_for_key(key, 3) == p for records in sent.values() for p, key in records)
    assert {version for _, version, _ in fake.requests_for(ApiKey.PRODUCE)} == {9}  # broker max < ours (11)
    assert {version for _, version, _ in fake.requests_for(ApiKey.METADATA)} == {10}


def test_a_not_leader_answer_refreshes_metadata_and_resends_to_the_new_leader(fake):
    fake.produce_errors[(1, 0)] = ErrorCode.NOT_LEADER_OR_FOLLOWER
    key = next(b"k%d" % i for i in range(100) if partition_for_key(b"k%d" % i, 3) == 0)
    with Cluster(fake.address(1)) as cluster:
        producer = Producer(cluster, "t", acks=1, compression=Compression.NONE)
        fake.leaders[0] = 2  # leadership moves after the producer looked it up
        producer.add((key, b"v", []))
        producer.flush()
    assert [(node, [p.index for t in body.topic_data for p in t.partition_data])
            for node, _, body in fake.requests_for(ApiKey.PRODUCE)] == [(1, [0]), (2, [0])]


def test_fetches_go_to_each_leader_by_topic_id_and_advance_the_positions(fake):
    with Cluster(fake.address(1)) as cluster:
        fetcher = Fetcher(cluster, "t", EARLIEST)
        fetcher.assign({p: EARLIEST for p in range(3)})
        records = fetcher.fetch()
        assert fetcher.positions == {0: 1, 1: 1, 2: 1}
        assert fetcher.fetch() == []
    assert sorted((r.partition, r.offset, r.value) for r in records) == [(p, 0, b"p%d" % p) for p in range(3)]
    listed = {node: [p.partition_index for t in body.topics for p in t.partitions]
              for node, _, body in fake.requests_for(ApiKey.LIST_OFFSETS)}
    assert listed == {1: [0], 2: [1, 2]}
    fetches = fake.requests_for(ApiKey.FETCH)
    assert {(node, version, t.topic_id, tuple(p.partition for p in t.partitions))
            for node, version, body in fetches for t in body.topics} == {(1, 13, TOPIC_ID, (0,)),
                                                                        (2, 13, TOPIC_ID, (1, 2))}


def test_without_topic_ids_in_metadata_fetches_name_the_topic(fake):
    fake.advertised[ApiKey.METADATA] = (0, 9)  # before topic ids (v10), which Fetch v13 needs
    with Cluster(fake.address(1)) as cluster:
        fetcher = Fetcher(cluster, "t", EARLIEST)
        fetcher.assign({p: 0 for p in range(3)})
        assert len(fetcher.fetch()) == 3
    assert {(version, t.topic) for _, version, body in fake.requests_for(ApiKey.FETCH) for t in body.topics} == {
        (12, "t")}


def test_admin_requests_go_to_the_controller_and_groups_to_their_coordinator(fake):
    with Cluster(fake.address(1)) as cluster:
        cluster.controller().send(ApiKey.CREATE_TOPICS, {"topics": [{"name": "new", "num_partitions": 1,
                                                                     "replication_factor": 1}], "timeout_ms": 1000})
        coordinator = cluster.coordinator("my-group")
        assert coordinator.address == fake.address(2)
    assert [(node, version) for node, version, _ in fake.requests_for(ApiKey.CREATE_TOPICS)] == [(2, 5)]
    ((node, version, body),) = fake.requests_for(ApiKey.FIND_COORDINATOR)
    assert (node, version, list(body.coordinator_keys), body.key_type) == (1, 4, ["my-group"], 0)


def test_an_unreachable_first_bootstrap_address_falls_through_to_the_next(fake):
    with socket.create_server(("127.0.0.1", 0)) as closed:
        dead = closed.getsockname()[1]
    with Cluster(f"127.0.0.1:{dead},{fake.address(2)}") as cluster:
        assert cluster.metadata([]).cluster_id == "fake-cluster"
        assert cluster.bootstrap.address == fake.address(2)
