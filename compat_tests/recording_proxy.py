"""Wire-level tools of the compat tests: a TCP proxy that records Kafka frames,
the capture run that refreshes `compat_tests/golden/`, and two helpers the
client tests share (`run_kafkajs`, `stored_batches`).

The proxy forwards bytes unchanged; it only splits the two streams into
frames to pair each request with its response by correlation id (responses
come back in request order, and a Produce with acks=0 gets none). The capture
run starts a broker that advertises the proxy's address, so every connection
a client opens after bootstrap passes through the proxy too.

Refresh the fixtures (kafka-python, confluent-kafka, kcat, and kafkajs after
`npm ci --prefix compat_tests/kafkajs`; `--client NAME` picks some):

    python compat_tests/recording_proxy.py [--out compat_tests/golden]

`--share` instead captures a librdkafka ShareConsumer's share-group frames
(ShareGroupHeartbeat, ShareFetch, ShareAcknowledge, with their responses)
into `compat_tests/golden_share/librdkafka/`.

Client requests carry timestamps, member ids and producer ids, so refreshed
fixtures differ from the committed ones; the golden test asserts only what
the capture run fixed (names, codecs, acks, client software).
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

_SIZE = struct.Struct(">i")
_REQUEST_START = struct.Struct(">hhi")  # api_key, api_version, correlation_id
GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
KAFKAJS_DIR = Path(__file__).resolve().parent / "kafkajs"
SHARE_GOLDEN_DIR = Path(__file__).resolve().parent / "golden_share"
SHARE_API_KEYS = frozenset({76, 78, 79})  # ShareGroupHeartbeat, ShareFetch, ShareAcknowledge


@dataclasses.dataclass
class Exchange:
    """One request frame and its response frame, both with their 4-byte size prefix."""

    api_key: int
    api_version: int
    correlation_id: int
    request: bytes
    response: bytes | None = None


def _read_exactly(sock: socket.socket, count: int) -> bytes | None:
    """`count` bytes, or None if the peer closed the stream first."""
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _read_frame(sock: socket.socket) -> bytes | None:
    prefix = _read_exactly(sock, _SIZE.size)
    if prefix is None:
        return None
    rest = _read_exactly(sock, _SIZE.unpack(prefix)[0])
    return None if rest is None else prefix + rest


class RecordingProxy:
    """Listens on a local port and forwards each connection to `upstream`.

    Owns its listening socket and one pair of threads per proxied connection
    (client→broker records requests, broker→client pairs responses).
    `exchanges` lists every request seen, in arrival order per connection,
    guarded by a lock since connections record concurrently.
    """

    def __init__(self, upstream: tuple[str, int], port: int = 0) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", port))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._sockets: list[socket.socket] = []
        self._closed = False

    @property
    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._exchanges)

    def start(self) -> RecordingProxy:
        threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True).start()
        return self

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def __enter__(self) -> RecordingProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
                broker = socket.create_connection(self.upstream)
            except OSError:
                return
            pending: collections.deque[Exchange] = collections.deque()
            with self._lock:
                self._sockets += [client, broker]
            threading.Thread(target=self._forward_requests, args=(client, broker, pending), daemon=True).start()
            threading.Thread(target=self._forward_responses, args=(broker, client, pending), daemon=True).start()

    def _forward_requests(self, client: socket.socket, broker: socket.socket, pending: collections.deque) -> None:
        try:
            while (frame := _read_frame(client)) is not None:
                api_key, api_version, correlation_id = _REQUEST_START.unpack_from(frame, _SIZE.size)
                exchange = Exchange(api_key, api_version, correlation_id, frame)
                with self._lock:
                    self._exchanges.append(exchange)
                    pending.append(exchange)
                broker.sendall(frame)
        except OSError:
            pass
        finally:
            _shutdown(broker)

    def _forward_responses(self, broker: socket.socket, client: socket.socket, pending: collections.deque) -> None:
        try:
            while (frame := _read_frame(broker)) is not None:
                (correlation_id,) = _SIZE.unpack_from(frame, _SIZE.size)
                with self._lock:
                    # Requests answered by nothing (acks=0) are skipped over.
                    while pending and pending[0].correlation_id != correlation_id:
                        pending.popleft()
                    if pending:
                        pending.popleft().response = frame
                client.sendall(frame)
        except OSError:
            pass
        finally:
            _shutdown(client)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


# --- what the broker stored ----------------------------------------------------

def stored_batches(bootstrap: str, topic: str, partition: int) -> list:
    """Headers of every batch in a partition, read with our own client (Fetch v12, by topic name).

    Tests use it to see what a client really sent: compression codec, producer
    id and sequence (idempotence), record counts.
    """
    from kafkacompat.client import KafkaClient
    from kafkacompat.protocol.records import parse_batches

    headers = []
    offset = 0
    with KafkaClient(bootstrap, client_id="compat-inspect") as client:
        while True:
            answer = client.request(1, 12, {
                "max_wait_ms": 0, "min_bytes": 1, "max_bytes": 64 << 20, "isolation_level": 0,
                "session_id": 0, "session_epoch": -1,
                "topics": [{"topic": topic, "partitions": [
                    {"partition": partition, "fetch_offset": offset, "partition_max_bytes": 64 << 20}]}]})
            (data,) = answer.responses[0].partitions
            if data.error_code != 0:
                raise AssertionError(f"fetch {topic}-{partition}@{offset} failed with error {data.error_code}")
            batches = [b for b in parse_batches(bytes(data.records or b"")) if b.last_offset >= offset]
            headers += batches
            if not batches or batches[-1].last_offset + 1 >= data.high_watermark:
                return headers
            offset = batches[-1].last_offset + 1


# --- the capture run -----------------------------------------------------------

# Responses kept beside requests: the ones a client cannot get past unless it
# parses them exactly (version negotiation, topology, records, group state).
RESPONSES_KEPT = {"api_versions", "metadata", "fetch", "join_group", "sync_group"}
GOLDEN_TOPIC = "golden-{client}"
GOLDEN_GROUP = "golden-{client}-group"
# The same headers on every record, since kcat can only send those.
GOLDEN_HEADERS = [("tag", b"golden"), ("tag", b"twice"), ("client", b"any")]
GOLDEN_RECORDS = [(b"key-%d" % n, b"value-%d" % n, GOLDEN_HEADERS) for n in range(5)]
# Clients that cannot create topics get theirs made beforehand, straight at the broker.
PRECREATED = {"kcat"}


def api_file_stem(api_key: int) -> str:
    from kafkacompat.protocol.specs import load_specs, snake_case

    return snake_case(load_specs()[api_key].name)


def save_exchanges(exchanges: list[Exchange], out_dir: Path, *, api_keys: frozenset[int] | None = None,
                   responses_kept: frozenset[str] | set[str] = RESPONSES_KEPT) -> list[str]:
    """Keep the largest request of each (api, version): it names the most topics and partitions."""
    chosen: dict[tuple[int, int], Exchange] = {}
    for exchange in exchanges:
        if api_keys is not None and exchange.api_key not in api_keys:
            continue
        key = (exchange.api_key, exchange.api_version)
        if key not in chosen or len(exchange.request) > len(chosen[key].request):
            chosen[key] = exchange
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    written = []
    for (api_key, version), exchange in sorted(chosen.items()):
        stem = api_file_stem(api_key)
        (out_dir / f"{stem}_request_v{version}.bin").write_bytes(exchange.request)
        written.append(f"{stem}_request_v{version}.bin")
        if stem in responses_kept and exchange.response is not None:
            (out_dir / f"{stem}_response_v{version}.bin").write_bytes(exchange.response)
            written.append(f"{stem}_response_v{version}.bin")
    return written


def drive_kafka_python(bootstrap: str) -> None:
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic

    topic, group = GOLDEN_TOPIC.format(client="kafka-python"), GOLDEN_GROUP.format(client="kafka-python")
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 2, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, compression_type="gzip")
    for key, value, headers in GOLDEN_RECORDS:
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, auto_offset_reset="earliest",
                             enable_auto_commit=False)
    seen = 0
    deadline = time.monotonic() + 30
    while seen < len(GOLDEN_RECORDS) and time.monotonic() < deadline:
        seen += sum(len(batch) for batch in consumer.poll(timeout_ms=500).values())
    consumer.commit()
    consumer.close()
    if seen != len(GOLDEN_RECORDS):
        raise RuntimeError(f"kafka-python consumed {seen} of {len(GOLDEN_RECORDS)} records")


def drive_confluent(bootstrap: str) -> None:
    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    topic, group = GOLDEN_TOPIC.format(client="librdkafka"), GOLDEN_GROUP.format(client="librdkafka")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        future.result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "compression.type": "lz4",
                         "linger.ms": 50})
    for key, value, headers in GOLDEN_RECORDS:
        producer.produce(topic, key=key, value=value, headers=headers)
    if producer.flush(30):
        raise RuntimeError("librdkafka did not deliver every golden record")
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen = 0
    deadline = time.monotonic() + 30
    while seen < len(GOLDEN_RECORDS) and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            seen += 1
    consumer.commit(asynchronous=False)
    consumer.close()
    if seen != len(GOLDEN_RECORDS):
        raise RuntimeError(f"librdkafka consumed {seen} of {len(GOLDEN_RECORDS)} records")


def run_kafkajs(command: str, request: dict, timeout_s: float = 60) -> dict:
    """Run `compat_tests/kafkajs/driver.js <command>` with `request` on stdin; its JSON answer."""
    completed = subprocess.run(
        ["node", str(KAFKAJS_DIR / "driver.js"), command], input=json.dumps(request), capture_output=True,
        text=True, timeout=timeout_s, cwd=KAFKAJS_DIR, env={**os.environ, "KAFKAJS_NO_PARTITIONER_WARNING": "1"})
    if completed.returncode != 0:
        raise RuntimeError(f"kafkajs {command} failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout)


def drive_kafkajs(bootstrap: str) -> None:
    import base64

    topic, group = GOLDEN_TOPIC.format(client="kafkajs"), GOLDEN_GROUP.format(client="kafkajs")
    brokers = [bootstrap]
    run_kafkajs("admin", {"brokers": brokers, "topic": topic, "partitions": 2})
    records = [{"key": base64.b64encode(key).decode(), "value": base64.b64encode(value).decode(),
                "headers": [[name, base64.b64encode(data).decode()] for name, data in headers],
                "timestamp": int(time.time() * 1000)} for key, value, headers in GOLDEN_RECORDS]
    run_kafkajs("produce", {"brokers": brokers, "topic": topic, "records": records, "compression": "gzip",
                            "idempotent": True})
    result = run_kafkajs("consume", {"brokers": brokers, "topic": topic, "groupId": group,
                                     "expected": len(GOLDEN_RECORDS)})
    if len(result["records"]) != len(GOLDEN_RECORDS):
        raise RuntimeError(f"kafkajs consumed {len(result['records'])} of {len(GOLDEN_RECORDS)} records")


def drive_kcat(bootstrap: str) -> None:
    topic, group = GOLDEN_TOPIC.format(client="kcat"), GOLDEN_GROUP.format(client="kcat")
    lines = "".join(f"{key.decode()}\t{value.decode()}\n" for key, value, _ in GOLDEN_RECORDS)
    headers = [arg for name, value in GOLDEN_HEADERS for arg in ("-H", f"{name}={value.decode()}")]
    kcat = ["kcat", "-b", bootstrap]
    subprocess.run([*kcat, "-P", "-t", topic, "-K", "\t", *headers, "-z", "snappy", "-X", "enable.idempotence=true"],
                   input=lines, text=True, check=True, timeout=60)
    consumed = subprocess.run([*kcat, "-G", group, "-e", "-q", "-X", "auto.offset.reset=earliest", topic],
                              capture_output=True, text=True, check=True, timeout=60).stdout
    if len(consumed.splitlines()) != len(GOLDEN_RECORDS):
        raise RuntimeError(f"kcat consumed {consumed!r}")


SHARE_GOLDEN_TOPIC, SHARE_GOLDEN_GROUP = "golden-share", "golden-share-group"


def drive_share_consumer(bootstrap: str) -> None:
    """A ShareConsumer reads the golden records, releases the first once, accepts the rest and leaves."""
    from confluent_kafka import AcknowledgeType, Producer, ShareConsumer
    from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(SHARE_GOLDEN_TOPIC, 1, 1)])[SHARE_GOLDEN_TOPIC].result(30)
    resource = ConfigResource(ConfigResource.Type.GROUP, SHARE_GOLDEN_GROUP, incremental_configs=[
        ConfigEntry("share.auto.offset.reset", "earliest", incremental_operation=AlterConfigOpType.SET)])
    admin.incremental_alter_configs([resource])[resource].result(30)
    producer = Producer({"bootstrap.servers": bootstrap})
    for key, value, headers in GOLDEN_RECORDS:
        producer.produce(SHARE_GOLDEN_TOPIC, key=key, value=value, headers=headers)
    if producer.flush(30):
        raise RuntimeError("librdkafka did not deliver every golden record")
    consumer = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": SHARE_GOLDEN_GROUP,
                              "share.acknowledgement.mode": "explicit"})
    consumer.subscribe([SHARE_GOLDEN_TOPIC])
    seen: list = []
    deadline = time.monotonic() + 30
    while len(seen) < len(GOLDEN_RECORDS) + 1 and time.monotonic() < deadline:
        batch = [m for m in consumer.poll(0.5) if m.error() is None]
        for message in batch:
            release = message.offset() == 0 and message.delivery_count() == 1
            consumer.acknowledge(message, AcknowledgeType.RELEASE if release else AcknowledgeType.ACCEPT)
        seen += batch
        if batch:
            consumer.commit_sync(30)
    consumer.close()
    if len(seen) != len(GOLDEN_RECORDS) + 1:
        raise RuntimeError(f"the share consumer got {len(seen)} deliveries, expected {len(GOLDEN_RECORDS) + 1}")


DRIVERS = {"kafka-python": drive_kafka_python, "librdkafka": drive_confluent, "kafkajs": drive_kafkajs,
           "kcat": drive_kcat}


def create_golden_topic(bootstrap: str, topic: str) -> None:
    """Two partitions, like the topics the other clients create; made with our own client."""
    from kafkacompat.client import KafkaClient

    with KafkaClient(bootstrap) as client:
        answer = client.request(19, 7, {"topics": [{"name": topic, "num_partitions": 2, "replication_factor": 1}]})
    if answer.topics[0].error_code != 0:
        raise RuntimeError(f"could not create {topic}: {answer.topics[0]}")


def capture(out_root: Path, clients: list[str], *, share: bool = False) -> None:
    """Start a broker advertising the proxy's address, so every client connection passes through it."""
    from compat_helpers import BrokerProcess, free_port

    with tempfile.TemporaryDirectory() as workdir:
        for client in clients:
            proxy_port = free_port()
            broker = BrokerProcess(Path(workdir) / client, {
                "group.initial.rebalance.delay.ms": "0",
                "advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy_port}"})
            broker.start()
            try:
                if client in PRECREATED:
                    create_golden_topic(broker.bootstrap, GOLDEN_TOPIC.format(client=client))
                with RecordingProxy(("127.0.0.1", broker.port), proxy_port) as proxy:
                    (drive_share_consumer if share else DRIVERS[client])(f"127.0.0.1:{proxy.port}")
                    time.sleep(0.5)  # let the last responses be paired
                    stems = frozenset(api_file_stem(key) for key in SHARE_API_KEYS)
                    written = save_exchanges(proxy.exchanges, out_root / client, api_keys=SHARE_API_KEYS,
                                             responses_kept=stems) if share else save_exchanges(
                                                 proxy.exchanges, out_root / client)
                print(f"{client}: {len(written)} files in {out_root / client}")
            finally:
                broker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Capture golden client frames through a recording proxy.")
    parser.add_argument("--out", type=Path, default=GOLDEN_DIR)
    parser.add_argument("--client", action="append", choices=sorted(DRIVERS), help="default: all")
    parser.add_argument("--share", action="store_true", help="librdkafka's share-group frames only")
    args = parser.parse_args(argv)
    if args.share:
        capture(SHARE_GOLDEN_DIR if args.out == GOLDEN_DIR else args.out, ["librdkafka"], share=True)
    else:
        capture(args.out, args.client or sorted(DRIVERS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
