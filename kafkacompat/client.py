"""A small blocking Kafka client built on our own codec.

For the command-line tools (``kafkacompat topics|produce|consume|groups|cluster``)
and tests that must speak one exact request version. :class:`KafkaClient` is
one connection; :class:`Cluster` follows Metadata to the broker that leads a
partition or coordinates a group, so the tools work against a multi-broker
Apache Kafka cluster as well as against kafkacompat. Versions are negotiated
from ApiVersions: the newest one both sides know, capped by what the caller
can build.
"""

from __future__ import annotations

import enum
import socket
import struct
import time
from typing import Any, Mapping

from kafkacompat.protocol import (
    DecodeError,
    decode_response,
    encode_request,
    encode_request_frame,
    parse_response_frame,
)
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.protocol.specs import api_spec

_SIZE = struct.Struct(">i")
DEFAULT_BOOTSTRAP = "localhost:9092"


class ApiKey(enum.IntEnum):
    PRODUCE = 0
    FETCH = 1
    LIST_OFFSETS = 2
    METADATA = 3
    OFFSET_COMMIT = 8
    OFFSET_FETCH = 9
    FIND_COORDINATOR = 10
    JOIN_GROUP = 11
    HEARTBEAT = 12
    LEAVE_GROUP = 13
    SYNC_GROUP = 14
    DESCRIBE_GROUPS = 15
    LIST_GROUPS = 16
    API_VERSIONS = 18
    CREATE_TOPICS = 19
    DELETE_TOPICS = 20
    DESCRIBE_ACLS = 29
    CREATE_ACLS = 30
    DELETE_ACLS = 31
    DESCRIBE_CONFIGS = 32
    INCREMENTAL_ALTER_CONFIGS = 44
    DESCRIBE_CLUSTER = 60
    DESCRIBE_PRODUCERS = 61
    DESCRIBE_TRANSACTIONS = 65
    LIST_TRANSACTIONS = 66
    CONSUMER_GROUP_DESCRIBE = 69
    SHARE_GROUP_DESCRIBE = 77
    DESCRIBE_SHARE_GROUP_OFFSETS = 90


class ClientError(Exception):
    """A failure the tools report as one line: unreachable broker, Kafka error code, no common version.

    ``code`` is the Kafka error code behind it, where there is one.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


def check(code: int, what: str, message: str | None = None) -> None:
    """Raise :class:`ClientError` naming Kafka's error code unless ``code`` is NONE."""
    if code != ErrorCode.NONE:
        name = ErrorCode(code).name if code in ErrorCode._value2member_map_ else f"error code {code}"
        raise ClientError(f"{what}: {name}" + (f" ({message})" if message else ""), code)


def split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.strip().rpartition(":")
    if not sep or not port.isdigit():
        raise ClientError(f"bad broker address {address!r}: expected HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


class KafkaClient:
    """One connection; requests are sent and answered one at a time.

    A request that fails or is interrupted before its answer is read closes
    the socket; the next request reconnects.
    """

    def __init__(self, bootstrap: str, client_id: str = "kafkacompat-cli", timeout_s: float = 10.0) -> None:
        self._host, self._port = split_address(bootstrap)
        self.address = f"{self._host}:{self._port}"
        self._timeout_s = timeout_s
        self._client_id = client_id
        self._correlation_id = 0
        self._api_versions: dict[int, tuple[int, int]] | None = None
        self._sock = self._connect()

    def _connect(self) -> socket.socket:
        try:
            return socket.create_connection((self._host, self._port), timeout=self._timeout_s)
        except socket.gaierror as exc:
            raise ClientError(f"cannot resolve broker host {self._host!r}: {exc.strerror}") from None
        except OSError as exc:
            raise ClientError(f"cannot connect to {self.address}: {exc.strerror or exc}") from None

    def _receive_exactly(self, count: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < count:
            chunk = self._sock.recv(count - len(chunks))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            chunks += chunk
        return bytes(chunks)

    def send_frame(self, frame: bytes) -> None:
        """Send one complete request frame, size prefix included, as it is (raw socket errors pass through)."""
        if self._sock is None:
            self._sock = self._connect()
        self._sock.sendall(frame)

    def receive_frame(self) -> bytes:
        """The next response frame, without its size prefix."""
        (size,) = _SIZE.unpack(self._receive_exactly(_SIZE.size))
        return self._receive_exactly(size)

    def request(self, api_key: int, version: int, body: Mapping[str, Any], *, expect_response: bool = True) -> Any:
        """Send one request and return the decoded response body (None when ``expect_response`` is false)."""
        self._correlation_id += 1
        frame = encode_request_frame(
            api_key, version, self._correlation_id, self._client_id, encode_request(api_key, version, body)
        )
        if self._sock is None:
            self._sock = self._connect()
        try:
            self._sock.sendall(frame)
            if not expect_response:
                return None
            correlation_id, response = parse_response_frame(api_key, version, self.receive_frame())
        except BaseException as exc:
            # Interrupted or failed mid-exchange: an answer may still be on its way, so this
            # socket is out of step. The next request opens a new one.
            self.close()
            if isinstance(exc, socket.timeout):
                raise ClientError(f"{self.address} did not answer in time") from None
            if isinstance(exc, OSError):
                raise ClientError(f"connection to {self.address} failed: {exc.strerror or exc}") from None
            raise
        if correlation_id != self._correlation_id:
            raise ClientError(f"{self.address} answered with correlation id {correlation_id}, not ours")
        return decode_response(api_key, version, response)

    def api_versions(self) -> dict[int, tuple[int, int]]:
        """The broker's (min, max) per API key, asked once; an older broker gets v0 after UNSUPPORTED_VERSION."""
        if self._api_versions is None:
            try:
                answer = self.request(ApiKey.API_VERSIONS, 3, {
                    "client_software_name": "kafkacompat-cli", "client_software_version": "1"})
            except DecodeError:  # the v0-shaped UNSUPPORTED_VERSION answer of a pre-2.4 broker
                answer = None
            if answer is None or answer.error_code == ErrorCode.UNSUPPORTED_VERSION:
                answer = self.request(ApiKey.API_VERSIONS, 0, {})
            check(answer.error_code, f"ApiVersions from {self.address}")
            self._api_versions = {a.api_key: (a.min_version, a.max_version) for a in answer.api_keys}
        return self._api_versions

    def version(self, api_key: int, lowest: int = 0, highest: int | None = None) -> int:
        """The newest version of ``api_key`` that the broker, our specs and the caller (lowest..highest) share."""
        spec = api_spec(api_key)
        broker = self.api_versions().get(api_key)
        name = ApiKey(api_key).name if api_key in ApiKey._value2member_map_ else str(api_key)
        if spec is None or broker is None:
            raise ClientError(f"{self.address} does not support {name}")
        top = min(spec.max_version, broker[1], spec.max_version if highest is None else highest)
        if top < max(lowest, spec.min_version, broker[0]):
            raise ClientError(f"{self.address} supports {name} v{broker[0]}-{broker[1]}; we need v{lowest}+")
        return top

    def send(self, api_key: int, body: Mapping[str, Any], *, lowest: int = 0, highest: int | None = None,
             expect_response: bool = True) -> Any:
        """``request`` at the negotiated version."""
        version = self.version(api_key, lowest, highest)
        return self.request(api_key, version, body, expect_response=expect_response)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "KafkaClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Cluster:
    """Connections to the brokers of one cluster, found from a bootstrap list through Metadata.

    ``bootstrap`` is Kafka's comma-separated ``host:port`` list; the first that
    answers is used for Metadata and for requests any broker may serve.
    Not thread-safe: one command uses one cluster from one thread.
    """

    def __init__(self, bootstrap: str = DEFAULT_BOOTSTRAP, client_id: str = "kafkacompat-cli",
                 timeout_s: float = 10.0) -> None:
        self.client_id = client_id
        self.timeout_s = timeout_s
        self.brokers: dict[int, str] = {}
        self.controller_id = -1
        self.cluster_id: str | None = None
        self._connections: dict[str, KafkaClient] = {}
        errors = []
        for address in filter(None, (a.strip() for a in bootstrap.split(","))):
            try:
                self.bootstrap = self._connect(address)
                break
            except ClientError as exc:
                errors.append(str(exc))
        else:
            raise ClientError("; ".join(errors) or "no bootstrap server given")

    def _connect(self, address: str) -> KafkaClient:
        if address not in self._connections:
            self._connections[address] = KafkaClient(address, self.client_id, self.timeout_s)
        return self._connections[address]

    def metadata(self, topics: list[str] | None, *, auto_create: bool = False) -> Any:
        """Metadata for ``topics`` (None: all), remembering the brokers and the controller."""
        body = {"topics": None if topics is None else [{"name": t} for t in topics],
                "allow_auto_topic_creation": auto_create}
        answer = self.bootstrap.send(ApiKey.METADATA, body, lowest=1)
        self.brokers = {b.node_id: f"{b.host}:{b.port}" for b in answer.brokers}
        self.controller_id = answer.controller_id
        self.cluster_id = answer.cluster_id
        return answer

    def topic(self, name: str, *, auto_create: bool = False) -> Any:
        """One topic's metadata once every partition has a leader; ClientError for an unknown topic.

        Waits (up to the timeout) through LEADER_NOT_AVAILABLE, as while a
        topic is being created. With ``auto_create`` the broker may create it
        (Kafka answers UNKNOWN_TOPIC_OR_PARTITION when it will not).
        """
        deadline = time.monotonic() + self.timeout_s
        while True:
            found = self.metadata([name], auto_create=auto_create).topics[0]
            code = found.error_code
            if code == ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                raise ClientError(f"unknown topic {name!r}"
                                  + (" (the broker does not create topics on use)" if auto_create else ""), code)
            if code == ErrorCode.NONE and found.partitions and all(p.leader_id >= 0 for p in found.partitions):
                return found
            if code not in (ErrorCode.NONE, ErrorCode.LEADER_NOT_AVAILABLE) or time.monotonic() > deadline:
                check(code, f"topic {name!r}")
                raise ClientError(f"topic {name!r} has partitions without a leader")
            time.sleep(0.1)

    def list_offsets(self, partitions: list[tuple[str, int]], timestamp: int) -> dict[tuple[str, int], int]:
        """ListOffsets at each partition's leader: ``timestamp`` -1 for the log end, -2 for the log start."""
        leaders = {(t.name, p.partition_index): p.leader_id
                   for t in self.metadata(sorted({t for t, _ in partitions})).topics for p in t.partitions}
        by_leader: dict[int, dict[str, list[int]]] = {}
        for topic, partition in partitions:
            if (topic, partition) not in leaders:
                raise ClientError(f"unknown partition {topic}-{partition}")
            by_leader.setdefault(leaders[topic, partition], {}).setdefault(topic, []).append(partition)
        offsets = {}
        for leader, topics in by_leader.items():
            answer = self.node(leader).send(ApiKey.LIST_OFFSETS, {"replica_id": -1, "isolation_level": 0, "topics": [
                {"name": t, "partitions": [{"partition_index": p, "timestamp": timestamp} for p in parts]}
                for t, parts in topics.items()]}, lowest=1)
            for topic in answer.topics:
                for result in topic.partitions:
                    check(result.error_code, f"ListOffsets {topic.name}-{result.partition_index}")
                    offsets[topic.name, result.partition_index] = result.offset
        return offsets

    def node(self, node_id: int) -> KafkaClient:
        """The connection to broker ``node_id`` (as Metadata last named it)."""
        if node_id not in self.brokers:
            self.metadata([])
        if node_id not in self.brokers:
            raise ClientError(f"broker {node_id} is not in the cluster's metadata")
        return self._connect(self.brokers[node_id])

    def controller(self) -> KafkaClient:
        """Where admin requests go, as Kafka's admin client sends them (any broker if none is named)."""
        if not self.brokers:
            self.metadata([])
        return self.node(self.controller_id) if self.controller_id in self.brokers else self.bootstrap

    def coordinator(self, key: str, key_type: int = 0) -> KafkaClient:
        """The coordinator of a group (key_type 0) or transactional id (1), from FindCoordinator."""
        client = self.bootstrap
        version = client.version(ApiKey.FIND_COORDINATOR)
        answer = client.request(ApiKey.FIND_COORDINATOR, version, {
            "key": key, "key_type": key_type, "coordinator_keys": [key]})
        found = answer.coordinators[0] if version >= 4 else answer
        check(found.error_code, f"FindCoordinator {key}", found.error_message)
        self.brokers[found.node_id] = f"{found.host}:{found.port}"
        return self._connect(self.brokers[found.node_id])

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
