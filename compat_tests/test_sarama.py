"""Sarama 1.22 (Debian's golang-github-shopify-sarama-dev) against the broker process.

Our Go program in compat_tests/sarama/ is built in GOPATH mode from Debian's
Go sources (GO111MODULE=off, no module proxy) into a temp dir, then run once
per Sarama `Version`: 1.0.0 and 2.1.0 choose different request versions
(DescribeConfigs is always v0, Metadata v0 lists topics for the admin). It
prints one PASS/FAIL line per check; each check is a test case here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from recording_proxy import stored_batches

GO = shutil.which("go")
GOCODE = Path("/usr/share/gocode")
SARAMA = GOCODE / "src" / "github.com" / "Shopify" / "sarama"
PROGRAM = Path(__file__).resolve().parent / "sarama" / "main.go"
CHECKS = ["admin", "sync-producer", "get-offset", "group-resume", "two-members", "snappy", "lz4", "gzip",
          "idempotent"]
# What the async-producer checks' batches must carry: topic label -> (codec, idempotent).
BATCHES = {"snappy": (2, False), "lz4": (3, False), "gzip": (1, False), "idempotent": (0, True)}
VERSIONS = ["1.0.0", "2.1.0"]

pytestmark = [
    pytest.mark.skipif(GO is None, reason="go is not installed (Debian: apt-get install golang-go)"),
    pytest.mark.skipif(not SARAMA.is_dir(),
                       reason=f"Sarama sources not at {SARAMA} (Debian: apt-get install golang-github-shopify-sarama-dev)"),
]


@pytest.fixture(scope="module")
def saramacheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gopath = tmp_path_factory.mktemp("gopath")
    package = gopath / "src" / "saramacheck"
    package.mkdir(parents=True)
    shutil.copy(PROGRAM, package / "main.go")
    binary = gopath / "saramacheck"
    env = {**os.environ, "GO111MODULE": "off", "GOPROXY": "off", "GOFLAGS": "",
           "GOPATH": f"{gopath}{os.pathsep}{GOCODE}", "GOCACHE": str(gopath / "cache")}
    built = subprocess.run([GO, "build", "-o", str(binary), "."], cwd=package, env=env,
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, f"go build failed:\n{built.stderr}"
    return binary


def prefix(version: str) -> str:
    return "sarama-" + version.replace(".", "")


@pytest.fixture(scope="module", params=VERSIONS)
def results(request: pytest.FixtureRequest, saramacheck: Path, broker) -> dict[str, str]:
    """Each check's line from one run of the program with Sarama's `Version` set to the param."""
    version = request.param
    ran = subprocess.run([str(saramacheck), "-brokers", broker.bootstrap, "-version", version,
                          "-prefix", prefix(version)],
                         capture_output=True, text=True, timeout=300)
    lines = {}
    for line in ran.stdout.splitlines():
        verdict, _, rest = line.partition(" ")
        check = rest.split(":", 1)[0]
        if verdict in ("PASS", "FAIL"):
            lines[check] = line
    assert lines, f"no check ran (exit {ran.returncode}):\n{ran.stdout}\n{ran.stderr}"
    return lines


@pytest.mark.parametrize("check", CHECKS)
def test_sarama(results: dict[str, str], check: str) -> None:
    assert check in results, f"{check} did not report; got {sorted(results)}"
    assert results[check] == f"PASS {check}", results[check]


@pytest.mark.parametrize("label", sorted(BATCHES))
def test_sarama_batches_as_stored(results: dict[str, str], broker, request: pytest.FixtureRequest,
                                  label: str) -> None:
    """The codec Sarama was told to use, and for the idempotent producer its id and gapless sequences."""
    assert results[label] == f"PASS {label}", results[label]
    codec, idempotent = BATCHES[label]
    version = request.node.callspec.params["results"]
    batches = stored_batches(broker.bootstrap, f"{prefix(version)}-{label}", 0)
    assert sum(b.records_count for b in batches) == 25
    assert {b.compression for b in batches} == {codec}
    if idempotent:
        assert len({b.producer_id for b in batches}) == 1 and batches[0].producer_id >= 0
        assert [b.base_sequence for b in batches] == [b.base_offset for b in batches]
    else:
        assert {b.producer_id for b in batches} == {-1}
