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
the command-line tools' client (:mod:`kafkacompat.client`), as any client would.
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
from typing import Any, Literal

import kafkacompat
from kafkacompat.client import ClientError, Cluster
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.tools.consume import EARLIEST, LATEST, Fetcher
from kafkacompat.tools.formatting import ConsumedRecord
from kafkacompat.tools.topics import create_topic, delete_topics

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
_LISTENING = re.compile(r"kafkacompat listening on (?:\w+://)?(\S+?):(\d+)[ ,]")
_HTTP_LISTENING = re.compile(r"HTTP admin API and metrics on (http://\S+)")



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

    def cluster(self) -> Cluster:
        """A client-side view of the broker (close it, or use it in ``with``)."""
        return Cluster(self.bootstrap_servers, client_id="kafkacompat-embedded")

    def create_topic(
        self, name: str, partitions: int | None = None, configs: Mapping[str, object] | None = None
    ) -> str:
        """Create a topic and return its name; ClientError (with ``code``) where Kafka refuses it."""
        with self.cluster() as cluster:
            create_topic(cluster, name, -1 if partitions is None else partitions,
                         configs=[(k, str(v)) for k, v in (configs or {}).items()])
        return name

    def delete_topic(self, name: str) -> None:
        """Delete a topic; one that does not exist is not an error."""
        with self.cluster() as cluster:
            try:
                delete_topics(cluster, [name])
            except ClientError as exc:
                if exc.code != ErrorCode.UNKNOWN_TOPIC_OR_PARTITION:
                    raise

    def records(self, topic: str, partition: int | None = None) -> list[ConsumedRecord]:
        """Every record of a topic (or one partition) up to its high watermark, partition by partition."""
        with self.cluster() as cluster:
            fetcher = Fetcher(cluster, topic, EARLIEST)
            partitions = [partition] if partition is not None else sorted(fetcher.leaders)
            ends = cluster.list_offsets([(topic, p) for p in partitions], LATEST)
            fetcher.assign(dict.fromkeys(partitions, EARLIEST))
            found: list[ConsumedRecord] = []
            while any(fetcher.positions[p] < ends[topic, p] for p in partitions):
                found += [r for r in fetcher.fetch() if r.offset < ends[topic, r.partition]]
        return sorted(found, key=lambda r: (r.partition, r.offset))


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

    @property
    def faults(self) -> Any:
        """This broker's fault rules: ``add(rule=None, **fields)``, ``list()``, ``remove(id)``, ``clear()``.

        In thread isolation they reach the engine on the broker's event loop; in
        process isolation they go through the HTTP admin API, so the broker
        needs ``http_listeners="http://127.0.0.1:0"``.
        """
        if self._runner is None:
            raise RuntimeError("the broker is not running")
        return self._runner.faults()

    @property
    def http_url(self) -> str | None:
        """The console, admin API and /metrics (``http.listeners``, e.g. ``http://127.0.0.1:0``), if served."""
        if self._runner is None:
            raise RuntimeError("the broker is not running")
        return self._runner.http_url

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


class _ThreadRunner:
    """The Trio server in a daemon thread; stopped through its Trio token."""

    def __init__(self, owner: EmbeddedBroker) -> None:
        self._owner = owner
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._port = 0
        self.http_url: str | None = None
        self._stop: Any = None
        self._token: Any = None
        self._broker: Any = None
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
            self._broker = broker
            self._port = broker.advertised_port
            self.http_url = None if broker.http_port is None else f"http://{self._owner.host}:{broker.http_port}"
            self._ready.set()

    def faults(self) -> _LoopFaults:
        return _LoopFaults(self._broker.faults, self._token)

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
        self.http_url: str | None = None

    def faults(self) -> Any:
        from kafkacompat.tools.faults import FaultsClient

        if self.http_url is None:
            raise RuntimeError("a process-isolated broker's faults go through its HTTP admin API: "
                               "start it with http_listeners='http://127.0.0.1:0'")
        return FaultsClient(self.http_url)

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
                http = _HTTP_LISTENING.search(text)
                self.http_url = http.group(1) if http else None
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


class _LoopFaults:
    """A thread-isolated broker's fault engine, called on the broker's event loop (it is not thread-safe)."""

    def __init__(self, engine: Any, token: Any) -> None:
        self._engine = engine
        self._token = token

    def _on_loop(self, call: Any, *args: Any) -> Any:
        import trio

        return trio.from_thread.run_sync(call, *args, trio_token=self._token)

    def add(self, rule: Mapping[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Add one rule (a mapping, keyword fields or both); returns it with its id and counts."""
        return self._on_loop(lambda: self._engine.add({**(rule or {}), **fields}).view())

    def list(self) -> list[dict[str, Any]]:
        return self._on_loop(self._engine.list)

    def remove(self, rule_id: int) -> None:
        if not self._on_loop(self._engine.remove, rule_id):
            raise KeyError(f"no fault rule {rule_id}")

    def clear(self) -> int:
        return self._on_loop(self._engine.clear)


class EmbeddedCluster(BrokerAccess):
    """Several brokers in one background Trio thread, replicating to each other, under the caller's control.

        with EmbeddedCluster(brokers=3) as cluster:
            cluster.create_topic("orders", partitions=3, replication_factor=3)
            cluster.kill(cluster.leader("orders", 0))

    ``stop`` / ``kill`` / ``start`` / ``pause`` / ``resume`` / ``isolate`` take
    a node id (1..N); ``faults`` is a node id's fault rules
    (``cluster.faults[2].add(...)``). Configs as for EmbeddedBroker.
    """

    def __init__(self, brokers: int = 3, partitions: int | None = None, *, data_dir: str | os.PathLike[str] | None = None,
                 keep_data: bool = False, host: str = "127.0.0.1", config: Mapping[str, object] | None = None,
                 **configs: object) -> None:
        self._broker = EmbeddedBroker(partitions, data_dir=data_dir, keep_data=keep_data, host=host,
                                      config={**(config or {}), "cluster.brokers": brokers}, **configs)
        self._runner: _ClusterRunner | None = None

    @property
    def bootstrap_servers(self) -> str:
        if self._runner is None:
            raise RuntimeError("the cluster is not running")
        return self._runner.on_loop(lambda runtime: runtime.bootstrap_servers)

    def create_topic(self, name: str, partitions: int | None = None, configs: Mapping[str, object] | None = None,
                     replication_factor: int | None = None) -> str:
        """Create a topic with `replication_factor` replicas (default.replication.factor when None)."""
        with self.cluster() as cluster:
            create_topic(cluster, name, -1 if partitions is None else partitions,
                         replication_factor=-1 if replication_factor is None else replication_factor,
                         configs=[(k, str(v)) for k, v in (configs or {}).items()])
        return name

    def start(self, node_id: int | None = None) -> EmbeddedCluster:
        """Start the cluster, or one stopped broker of it."""
        if node_id is not None:
            self._control(lambda runtime: runtime.start(node_id))
            return self
        if self._runner is not None:
            raise RuntimeError("the cluster is already running")
        self._runner = _ClusterRunner(self._broker)
        self._runner.start()
        return self

    def stop(self, node_id: int | None = None) -> None:
        """Stop one broker cleanly, or (no node id) the whole cluster."""
        if node_id is not None:
            self._control(lambda runtime: runtime.stop(node_id))
            return
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.stop()
        if not self._broker.keep_data:
            shutil.rmtree(self._broker._workdir, ignore_errors=True)

    def kill(self, node_id: int) -> None:
        """Stop a broker as a crash would: what it had not fsynced is lost."""
        self._control(lambda runtime: runtime.kill(node_id))

    def pause(self, node_id: int) -> None:
        """The broker keeps accepting connections and answers nothing; it stops replicating."""
        self._on_loop(lambda runtime: runtime.pause(node_id))

    def resume(self, node_id: int) -> None:
        self._on_loop(lambda runtime: runtime.resume(node_id))

    def isolate(self, node_id: int, isolated: bool = True) -> None:
        """No replication to or from the other brokers (clients still reach it); False heals it."""
        self._on_loop(lambda runtime: runtime.isolate(node_id, isolated))

    def leader(self, topic: str, partition: int) -> int:
        return self._on_loop(lambda runtime: runtime.leader(topic, partition))

    def isr(self, topic: str, partition: int) -> list[int]:
        return self._on_loop(lambda runtime: list(runtime.controller.partitions[topic, partition].isr))

    @property
    def faults(self) -> dict[int, _LoopFaults]:
        """Each running broker's fault rules, by node id."""
        runner = self._require()
        return runner.on_loop(lambda runtime: {node: _LoopFaults(member.broker.faults, runner.token)
                                               for node, member in runtime.members.items() if member.running})

    def _require(self) -> _ClusterRunner:
        if self._runner is None:
            raise RuntimeError("the cluster is not running")
        return self._runner

    def _on_loop(self, call: Any) -> Any:
        return self._require().on_loop(call)

    def _control(self, call: Any) -> None:
        import trio

        runner = self._require()
        trio.from_thread.run(lambda: call(runner.runtime), trio_token=runner.token)

    def __enter__(self) -> EmbeddedCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _ClusterRunner(_ThreadRunner):
    """A ClusterRuntime in a daemon thread."""

    runtime: Any = None

    @property
    def token(self) -> Any:
        return self._token

    def on_loop(self, call: Any) -> Any:
        import trio

        return trio.from_thread.run_sync(lambda: call(self.runtime), trio_token=self._token)

    async def _serve(self) -> None:
        import trio

        from kafkacompat.cluster.runtime import ClusterRuntime
        from kafkacompat.config import BrokerConfig

        self._stop = trio.Event()
        self._token = trio.lowlevel.current_trio_token()
        config = BrokerConfig(self._owner.serve_config())
        async with trio.open_nursery() as nursery:
            self.runtime = await nursery.start(ClusterRuntime(config).run, self._stop.wait)
            self._ready.set()
