"""EmbeddedBroker: a real kafkacompat broker for a test suite or a script, in one line.

    with EmbeddedBroker(partitions=3) as broker:
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)

The broker listens on an ephemeral loopback port and keeps its data in a
temporary directory that is removed afterwards (unless ``keep_data`` or a
``data_dir`` of the caller's). Two isolations:

- ``"thread"`` (default): the Trio server runs in a background thread of this
  process. Fastest to start; it shares the interpreter (and its GIL) with the
  caller.
- ``"process"``: a child ``python -m kafkacompat serve`` running the same
  kafkacompat package as the caller. Nothing is shared; a crash of one side
  leaves the other standing.

Clients reach it only through its port, in both modes, and so do the helpers
here (``create_topic``, ``records``): they speak the Kafka protocol with
:class:`kafkacompat.client.KafkaClient`, as any client would.
"""

from __future__ import annotations

import abc
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, NamedTuple

import kafkacompat
from kafkacompat.client import KafkaClient
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.records import decode_records, parse_batches

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
_LISTENING = re.compile(r"kafkacompat listening on (\S+):(\d+) ")

CREATE_TOPICS, DELETE_TOPICS, METADATA, LIST_OFFSETS, FETCH = 19, 20, 3, 2, 1
EARLIEST, LATEST = -2, -1


class ConsumedRecord(NamedTuple):
    """One record as a consumer sees it."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes | None]]


def config_name(keyword: str) -> str:
    """``num_partitions`` -> ``num.partitions``: Kafka's config names as Python keywords."""
    return keyword.replace("_", ".")


def _leaf(error: BaseException) -> BaseException:
    """The one exception inside nested single-member exception groups (Trio's nurseries wrap)."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


class BrokerAccess(abc.ABC):
    """What a test does to a broker through its port: create and delete topics, read records back.

    Works against any Kafka broker, so the same helpers serve an embedded
    broker and an external one.
    """

    @property
    @abc.abstractmethod
    def bootstrap_servers(self) -> str:
        """``host:port`` for any client's bootstrap setting."""

    def client(self) -> KafkaClient:
        return KafkaClient(self.bootstrap_servers, client_id="kafkacompat-embedded")

    def create_topic(
        self, name: str, partitions: int | None = None, configs: Mapping[str, object] | None = None
    ) -> str:
        """Create a topic (KafkaError if Kafka would refuse it) and return its name."""
        with self.client() as client:
            response = client.request(CREATE_TOPICS, 5, {
                "topics": [{
                    "name": name,
                    "num_partitions": -1 if partitions is None else partitions,
                    "replication_factor": -1,
                    "assignments": [],
                    "configs": [{"name": k, "value": str(v)} for k, v in (configs or {}).items()],
                }],
                "timeout_ms": 30_000,
                "validate_only": False,
            })
        created = response.topics[0]
        if created.error_code != ErrorCode.NONE:
            raise KafkaError(ErrorCode(created.error_code), created.error_message or f"creating topic {name}")
        return name

    def records(self, topic: str, partition: int | None = None) -> list[ConsumedRecord]:
        """Every record of a topic (or one partition) up to its high watermark, partition by partition."""
        with self.client() as client:
            partitions = [partition] if partition is not None else _partitions_of(client, topic)
            found: list[ConsumedRecord] = []
            for index in partitions:
                found += _read_partition(client, topic, index)
        return found

    def delete_topic(self, name: str) -> None:
        """Delete a topic; one that does not exist is not an error."""
        with self.client() as client:
            response = client.request(DELETE_TOPICS, 4, {"topic_names": [name], "timeout_ms": 30_000})
        code = response.responses[0].error_code
        if code not in (ErrorCode.NONE, ErrorCode.UNKNOWN_TOPIC_OR_PARTITION):
            raise KafkaError(ErrorCode(code), f"deleting topic {name}")




class ExternalBroker(BrokerAccess):
    """A broker somebody else runs (real Kafka, a container), reached at ``bootstrap_servers``."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._bootstrap_servers = bootstrap_servers

    @property
    def bootstrap_servers(self) -> str:
        return self._bootstrap_servers


class EmbeddedBroker(BrokerAccess):
    """One broker owned by the caller: started by ``start()`` or ``with``, stopped by ``stop()``.

    ``partitions`` sets ``num.partitions`` (auto-created topics and
    ``create_topic`` without a count); ``config`` and keyword arguments set any
    broker config by Kafka's name (``log_retention_ms=1000`` is
    ``log.retention.ms``). Not thread-safe: one caller drives it.
    """

    def __init__(
        self,
        partitions: int | None = None,
        *,
        isolation: Literal["thread", "process"] = "thread",
        data_dir: str | os.PathLike[str] | None = None,
        keep_data: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        config: Mapping[str, object] | None = None,
        **configs: object,
    ) -> None:
        if isolation not in ("thread", "process"):
            raise ValueError(f"isolation must be 'thread' or 'process', not {isolation!r}")
        self.isolation = isolation
        self.host = host
        self.port = port
        self.keep_data = keep_data
        self._workdir = Path(tempfile.mkdtemp(prefix="kafkacompat-"))
        self.data_dir = Path(data_dir) if data_dir is not None else self._workdir / "data"
        self.log_path = self._workdir / "broker.log"
        self.configs: dict[str, str] = {config_name(k): str(v) for k, v in configs.items()}
        self.configs.update({k: str(v) for k, v in (config or {}).items()})
        if partitions is not None:
            self.configs["num.partitions"] = str(partitions)
        self._runner: _ThreadRunner | _ProcessRunner | None = None

    # -- lifetime ---------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._runner is not None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` for any client's bootstrap setting."""
        if not self.running:
            raise RuntimeError("the broker is not running")
        return f"{self.host}:{self.port}"

    def start(self) -> EmbeddedBroker:
        if self._runner is not None:
            raise RuntimeError("the broker is already running")
        runner_type = _ThreadRunner if self.isolation == "thread" else _ProcessRunner
        runner = runner_type(self)
        self.port = runner.start()
        self._runner = runner
        return self

    def stop(self) -> None:
        """Shut down cleanly (drain, flush, close); the temporary data dir goes unless ``keep_data``.

        A ``data_dir`` of the caller's always stays: only the work dir with the
        broker's log, which holds it in no case, is removed.
        """
        self._halt()
        if not self.keep_data:
            shutil.rmtree(self._workdir, ignore_errors=True)

    def restart(self) -> None:
        """Stop cleanly and start again on the same port with the same data."""
        self._halt()
        self.start()

    def _halt(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def serve_config(self) -> dict[str, str]:
        """The broker configs a start uses: the caller's, then this broker's address and data dir."""
        return {
            **self.configs,
            "listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "log.dirs": str(self.data_dir),
        }


def _partitions_of(client: KafkaClient, topic: str) -> list[int]:
    response = client.request(METADATA, 4, {"topics": [{"name": topic}], "allow_auto_topic_creation": False})
    described = response.topics[0]
    if described.error_code != ErrorCode.NONE:
        raise KafkaError(ErrorCode(described.error_code), f"topic {topic}")
    return sorted(p.partition_index for p in described.partitions)


def _offset(client: KafkaClient, topic: str, partition: int, timestamp: int) -> int:
    response = client.request(LIST_OFFSETS, 4, {
        "replica_id": -1, "isolation_level": 0,
        "topics": [{"name": topic, "partitions": [{"partition_index": partition, "timestamp": timestamp}]}],
    })
    answer = response.topics[0].partitions[0]
    if answer.error_code != ErrorCode.NONE:
        raise KafkaError(ErrorCode(answer.error_code), f"offsets of {topic}-{partition}")
    return answer.offset


def _read_partition(client: KafkaClient, topic: str, partition: int) -> list[ConsumedRecord]:
    offset = _offset(client, topic, partition, EARLIEST)
    end = _offset(client, topic, partition, LATEST)
    found: list[ConsumedRecord] = []
    while offset < end:
        response = client.request(FETCH, 4, {
            "replica_id": -1, "max_wait_ms": 0, "min_bytes": 0, "max_bytes": 64 << 20, "isolation_level": 0,
            "topics": [{"topic": topic, "partitions": [
                {"partition": partition, "fetch_offset": offset, "partition_max_bytes": 16 << 20}
            ]}],
        })
        answer = response.responses[0].partitions[0]
        if answer.error_code != ErrorCode.NONE:
            raise KafkaError(ErrorCode(answer.error_code), f"fetching {topic}-{partition}")
        blob = bytes(answer.records or b"")
        batches = parse_batches(blob)
        if not batches:
            break
        for header in batches:
            if not header.is_control:
                found += [
                    ConsumedRecord(topic, partition, r.offset, r.timestamp, r.key, r.value, r.headers)
                    for r in decode_records(memoryview(blob)[header.position:header.end])
                    if offset <= r.offset < end
                ]
            offset = max(offset, header.last_offset + 1)
    return found


class _ThreadRunner:
    """The Trio server in a daemon thread; stopped through its Trio token."""

    def __init__(self, owner: EmbeddedBroker) -> None:
        self._owner = owner
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._port = 0
        self._stop: Any = None
        self._token: Any = None
        self._thread = threading.Thread(target=self._main, name="kafkacompat-broker", daemon=True)

    def start(self) -> int:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError(f"the embedded broker did not start within {START_TIMEOUT_S} s")
        if self._error is not None:
            self._thread.join(STOP_TIMEOUT_S)
            raise self._error
        return self._port

    def _main(self) -> None:
        import trio

        try:
            trio.run(self._serve)
        except BaseException as exc:  # reported to the caller of start(), never lost in this thread
            self._error = _leaf(exc)
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        import trio

        from kafkacompat.config import BrokerConfig
        from kafkacompat.server.listener import serve_broker

        self._stop = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        config = BrokerConfig(self._owner.serve_config())
        async with trio.open_nursery() as nursery:
            broker = await nursery.start(serve_broker, config, self._stop.wait)
            self._port = broker.advertised_port
            self._ready.set()

    def stop(self) -> None:
        import trio

        try:
            trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
        except trio.RunFinishedError:
            pass
        self._thread.join(STOP_TIMEOUT_S)
        if self._thread.is_alive():
            raise RuntimeError(f"the embedded broker did not stop within {STOP_TIMEOUT_S} s")
        if self._error is not None:
            raise self._error


class _ProcessRunner:
    """A child ``python -m kafkacompat serve`` importing this very kafkacompat package."""

    def __init__(self, owner: EmbeddedBroker) -> None:
        self._owner = owner
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        owner = self._owner
        argv = [sys.executable, "-m", "kafkacompat", "serve",
                "--host", owner.host, "--port", str(owner.port), "--data-dir", str(owner.data_dir)]
        for name, value in owner.configs.items():
            argv += ["-o", f"{name}={value}"]
        return argv

    def start(self) -> int:
        package_root = str(Path(kafkacompat.__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONUNBUFFERED": "1",
               "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        log_path = self._owner.log_path
        seen = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as log:
            self._process = subprocess.Popen(
                self.command(), cwd=self._owner._workdir, stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            text = log_path.read_bytes()[seen:].decode(errors="replace")
            match = _LISTENING.search(text)
            if match:
                return int(match.group(2))
            if self._process.poll() is not None:
                raise RuntimeError(f"the broker exited with code {self._process.returncode}:\n{text}")
            time.sleep(0.01)
        self._process.kill()
        raise RuntimeError(f"the broker did not start within {START_TIMEOUT_S} s; its log is {log_path}")

    def stop(self) -> None:
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise RuntimeError(f"the broker ignored SIGTERM for {STOP_TIMEOUT_S} s") from None
