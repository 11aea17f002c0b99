"""COMPATIBILITY.md against reality: the client versions it names are the ones
installed, and every ✅ cell names a compat test that exists."""

from __future__ import annotations

import importlib.metadata
import json
import re
import shutil
import subprocess
import sys

import pytest

from compat_helpers import REPO_ROOT
from recording_proxy import KAFKAJS_DIR

DOC = REPO_ROOT / "COMPATIBILITY.md"
CLIENTS = ["kafka-python", "confluent-kafka", "aiokafka", "kcat", "kafkajs", "sarama"]
MARKS = ("✅", "❌", "—")
NODE_ID = re.compile(r"`(test_\w+\.py::test_\w+(?:\[[^\]]+\])?)`")


def table(heading: str) -> list[list[str]]:
    """The rows (header row first, separator dropped) of the first table under `## heading`."""
    section = DOC.read_text().split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    return [cells[0]] + [row for row in cells[2:]]


def documented_versions() -> dict[str, tuple[str, str]]:
    header, *rows = table("Client versions tested")
    assert header[:2] == ["Client", "Version"]
    return {row[0]: (row[1], row[2]) for row in rows}


def librdkafka_named(built_on: str) -> str:
    match = re.search(r"librdkafka (\d+\.\d+\.\d+)", built_on)
    assert match, f"no librdkafka version in {built_on!r}"
    return match.group(1)


def test_every_client_has_a_version_row():
    assert list(documented_versions()) == CLIENTS


@pytest.mark.parametrize("distribution", ["kafka-python", "confluent-kafka", "aiokafka"])
def test_python_client_versions(distribution):
    assert documented_versions()[distribution][0] == importlib.metadata.version(distribution)


def test_confluent_kafka_librdkafka():
    import confluent_kafka

    assert librdkafka_named(documented_versions()["confluent-kafka"][1]) == confluent_kafka.libversion()[0]


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed (Debian: apt-get install kcat)")
def test_kcat_and_its_librdkafka():
    banner = subprocess.run(["kcat", "-V"], capture_output=True, text=True, timeout=10).stdout
    version, built_on = documented_versions()["kcat"]
    assert re.search(rf"^Version {re.escape(version)} .*librdkafka {re.escape(librdkafka_named(built_on))} ",
                     banner, re.MULTILINE), banner


def test_kafkajs_version_is_the_locked_one():
    version = documented_versions()["kafkajs"][0]
    manifest = json.loads((KAFKAJS_DIR / "package.json").read_text())
    lock = json.loads((KAFKAJS_DIR / "package-lock.json").read_text())
    assert manifest["dependencies"]["kafkajs"] == version
    assert lock["packages"]["node_modules/kafkajs"]["version"] == version
    installed = KAFKAJS_DIR / "node_modules" / "kafkajs" / "package.json"
    if installed.exists():
        assert json.loads(installed.read_text())["version"] == version


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="not a Debian system (no dpkg-query)")
def test_sarama_version_is_debians_package():
    queried = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "golang-github-shopify-sarama-dev"],
                             capture_output=True, text=True, timeout=10)
    if queried.returncode != 0:
        pytest.skip("golang-github-shopify-sarama-dev is not installed")
    assert queried.stdout.split("-")[0] == documented_versions()["sarama"][0]


def collected_node_ids() -> set[str]:
    """Every compat test id pytest collects, as `file::name[param]`."""
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "compat_tests"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return {line.split("/", 1)[1] for line in completed.stdout.splitlines() if line.startswith("compat_tests/")}


def test_feature_table_cells_name_existing_tests():
    header, *rows = table("Features")
    assert header == ["Feature", *CLIENTS]
    existing = collected_node_ids()
    named = []
    for feature, *cells in rows:
        assert len(cells) == len(CLIENTS), f"row {feature!r} has {len(cells)} client cells"
        for client, cell in zip(CLIENTS, cells):
            assert cell.startswith(MARKS), f"{feature} / {client}: cell must start with one of {MARKS}: {cell!r}"
            ids = NODE_ID.findall(cell)
            if cell.startswith("✅"):
                assert len(ids) == 1, f"{feature} / {client}: a ✅ names exactly one test, got {cell!r}"
                named += ids
            else:
                assert not ids, f"{feature} / {client}: only ✅ cells name tests"
    missing = sorted(set(named) - existing)
    assert not missing, f"COMPATIBILITY.md names tests that do not exist: {missing}"
