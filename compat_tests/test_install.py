"""Install like a user: build the sdist and wheel, install each into a fresh venv outside
the checkout, run the broker from there and talk to it with stock clients; run the pytest
plugin's fixtures in a throwaway project that only installed kafkacompat.

The venvs get kafkacompat's dependencies from the package index, as a user's would
(newest versions allowed by pyproject.toml, not the ones this checkout runs with).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

from compat_helpers import REPO_ROOT, free_port, unique_topic

pytestmark = pytest.mark.timeout(900)

CHECKOUT = str(REPO_ROOT)


def _clean_env() -> dict[str, str]:
    """The caller's environment without anything that could lead a child back to the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KAFKACOMPAT_SPECS_DIR", "VIRTUAL_ENV")}
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _run(argv: list[str], cwd: Path, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(argv, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sdist and wheel, built from the checkout as `python -m build` builds them."""
    out = tmp_path_factory.mktemp("dist")
    source = tmp_path_factory.mktemp("source") / "kafkacompat"
    # A copy, so the build's egg-info never lands in the checkout (links kept as links).
    shutil.copytree(REPO_ROOT, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", "node_modules", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis", "build", "dist"))
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], cwd=out)
    (wheel,) = out.glob("kafkacompat-*.whl")
    (sdist,) = out.glob("kafkacompat-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


class Venv:
    def __init__(self, root: Path) -> None:
        venv.create(root, with_pip=True, clear=True)
        self.root = root
        self.python = str(root / "bin" / "python")
        self.bin = root / "bin"

    def pip_install(self, *requirements: str) -> None:
        _run([self.python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *requirements],
             cwd=self.root)


@pytest.fixture(scope="module", params=["wheel", "sdist"])
def installed(request, dists, tmp_path_factory: pytest.TempPathFactory) -> Venv:
    env = Venv(tmp_path_factory.mktemp(f"venv-{request.param}") / "venv")
    env.pip_install(str(dists[request.param]))
    return env


def test_installed_package_lives_in_the_venv_and_carries_its_specs(installed: Venv) -> None:
    probe = _run([installed.python, "-c", textwrap.dedent("""
        import kafkacompat
        from kafkacompat.protocol.specs import load_specs, specs_dir
        print(kafkacompat.__file__)
        print(specs_dir())
        print(len(load_specs()))
    """)], cwd=installed.root)
    package_file, specs_path, count = probe.stdout.split()
    assert package_file.startswith(str(installed.root)) and CHECKOUT not in package_file
    assert specs_path.startswith(str(installed.root))
    assert int(count) == len(list((REPO_ROOT / "protocol_specs").glob("*.yaml"))) - 2  # less the two data specs


def test_installed_broker_serves_stock_clients(installed: Venv, tmp_path: Path) -> None:
    from confluent_kafka import Consumer, Producer
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition

    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    log_path = tmp_path / "broker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(installed.bin / "kafkacompat"), "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
            cwd=tmp_path, env=_clean_env(), stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        _wait_listening(log_path, process)
        topic = unique_topic("wheel")
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
        producer.send(topic, key=b"kp", value=b"from kafka-python").get(timeout=30)
        producer.close()
        confluent = Producer({"bootstrap.servers": bootstrap})
        confluent.produce(topic, key=b"ck", value=b"from confluent-kafka")
        assert confluent.flush(30) == 0
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10_000)
        consumer.assign([TopicPartition(topic, 0)])
        read_by_kafka_python = [(m.key, m.value) for _, m in zip(range(2), consumer)]
        consumer.close()
        reader = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_topic("g"),
                           "auto.offset.reset": "earliest"})
        reader.subscribe([topic])
        read_by_confluent = []
        for _ in range(100):
            message = reader.poll(0.5)
            if message is not None and message.error() is None:
                read_by_confluent.append((message.key(), message.value()))
            if len(read_by_confluent) == 2:
                break
        reader.close()
        expected = [(b"kp", b"from kafka-python"), (b"ck", b"from confluent-kafka")]
        assert read_by_kafka_python == expected
        assert read_by_confluent == expected
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0, log_path.read_text()
    assert "no request schema" not in log_path.read_text()


def test_installed_broker_without_specs_refuses_to_start(installed: Venv, tmp_path: Path) -> None:
    env = {**_clean_env(), "KAFKACOMPAT_SPECS_DIR": str(tmp_path / "nowhere")}
    port = free_port()
    result = subprocess.run(
        [str(installed.bin / "kafkacompat"), "serve", "--port", str(port), "--data-dir", str(tmp_path / "d")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"kafkacompat: cannot start: no protocol specs directory at {tmp_path / 'nowhere'}"
    ]
    assert not (tmp_path / "d").exists(), "nothing is opened before the specs are known to be there"


def _wait_listening(log_path: Path, process: subprocess.Popen, timeout: float = 30) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if "kafkacompat listening on" in log_path.read_text():
            return
        if process.poll() is not None:
            pytest.fail(f"broker exited {process.returncode}:\n{log_path.read_text()}")
        time.sleep(0.05)
    process.kill()
    pytest.fail(f"broker did not listen within {timeout}s:\n{log_path.read_text()}")


PLUGIN_TESTS = '''
import pathlib, os
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

def _roundtrip(bootstrap, topic, value):
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(topic, value=value).get(timeout=30)
    producer.close()
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10000)
    consumer.assign([TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)])
    got = [m.value for _, m in zip(range(1), consumer)]
    consumer.close()
    return got

def _note(bootstrap):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(pathlib.Path(os.environ["SEEN_DIR"]) / f"{worker}-{os.getpid()}", "a") as seen:
        seen.write(bootstrap + "\\n")
'''

PLUGIN_TEST_CASE = '''
def test_case_{n}(kafka_bootstrap, kafka_topic, kafka_broker):
    _note(kafka_bootstrap)
    topic = kafka_topic(partitions=2)
    other = kafka_topic()
    assert topic != other and topic.startswith("test_case_{n}-")
    assert _roundtrip(kafka_bootstrap, topic, b"value {n}") == [b"value {n}"]
    assert [r.value for r in kafka_broker.records(topic)] == [b"value {n}"]
'''


@pytest.fixture(scope="module")
def plugin_project(dists, tmp_path_factory: pytest.TempPathFactory) -> tuple[Venv, Path]:
    env = Venv(tmp_path_factory.mktemp("venv-plugin") / "venv")
    env.pip_install(str(dists["wheel"]), "pytest", "pytest-xdist", "kafka-python")
    project = tmp_path_factory.mktemp("project")
    body = PLUGIN_TESTS + "".join(PLUGIN_TEST_CASE.format(n=n) for n in range(6))
    (project / "test_with_kafka.py").write_text(body)
    return env, project


def _run_plugin_project(env: Venv, project: Path, *args: str) -> list[str]:
    seen = project / f"seen{len(list(project.glob('seen*')))}"
    seen.mkdir()
    result = subprocess.run(
        [env.python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project, env={**_clean_env(), "SEEN_DIR": str(seen)}, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "6 passed" in result.stdout
    return sorted(set(line for path in seen.iterdir() for line in path.read_text().split()))


def test_plugin_fixtures_in_a_project_that_only_installed_kafkacompat(plugin_project) -> None:
    env, project = plugin_project
    brokers = _run_plugin_project(env, project)
    assert len(brokers) == 1, "one session broker serves every test"


def test_plugin_gives_each_xdist_worker_its_own_broker(plugin_project) -> None:
    env, project = plugin_project
    brokers = _run_plugin_project(env, project, "-n", "2")
    assert len(brokers) == 2


def test_plugin_points_at_an_external_broker(plugin_project, broker) -> None:
    env, project = plugin_project
    brokers = _run_plugin_project(env, project, "--kafka-bootstrap-servers", broker.bootstrap)
    assert brokers == [broker.bootstrap]
