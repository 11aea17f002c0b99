"""The web console in headless Chromium (Debian's package, driven by Playwright), over a live broker.

Topics are made with the CLI and records with stock clients; the console must
show exactly what they did. Screenshots of the pages land in
``$KAFKACOMPAT_SCREENSHOTS`` (default: the test's temp dir) and are checked
for content.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest

from compat_helpers import unique_topic, wait_until

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - CI installs it with the test extras
    sync_playwright = None

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)"),
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed"),
    pytest.mark.timeout(300),
]



@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("KAFKACOMPAT_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def page():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        yield context.new_page()
        browser.close()


def png_is_blank(data: bytes) -> bool:
    """Whether a PNG shows (next to) nothing: its decompressed pixel stream has only a few byte values.

    Text and borders bring anti-aliased greys and many distinct bytes; an
    empty page, whatever the PNG filters did to it, has a handful.
    """
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat = 8, b""
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        if data[position + 4:position + 8] == b"IDAT":
            idat += data[position + 8:position + 8 + length]
        position += 12 + length
    return len(set(zlib.decompress(idat))) <= 16


def snap(page, shots: Path, name: str) -> Path:
    path = shots / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "kafkacompat", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_topic_pages_show_exactly_what_clients_wrote(http_broker, page, shots):
    from kafka import KafkaProducer

    base, bootstrap = http_broker.http, http_broker.bootstrap
    topic = unique_topic("console")
    cli("topics", "create", topic, "--partitions", "3", "--bootstrap-server", bootstrap)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i in range(5):
        producer.send(topic, key=f"order-{i}".encode(), value=f'{{"amount": {i * 10}}}'.encode(),
                      headers=[("source", b"web-test"), ("n", str(i).encode())], partition=1)
    producer.send(topic, key=b"other", value=b"on partition two", partition=2)
    producer.flush()
    producer.close()

    page.goto(f"{base}/topics")
    row = page.locator(f"tr[data-topic='{topic}']")
    assert row.locator("td.partitions").inner_text() == "3"
    row.locator("a").click()
    page.wait_for_url(f"**/topics/{topic}")
    marks = {int(r.get_attribute("data-partition")): int(r.locator("td.high-watermark").inner_text())
             for r in page.locator("#partitions tbody tr").all()}
    assert marks == {0: 0, 1: 5, 2: 1}
    snap(page, shots, "topic")

    page.goto(f"{base}/topics/{topic}?partition=1")
    records = page.locator("#records tr.record")
    assert records.count() == 5
    third = records.nth(2)
    assert third.locator("td.offset").inner_text() == "2"
    assert third.locator("td.key").inner_text() == "order-2"
    assert third.locator("td.value").inner_text() == '{"amount": 20}'
    assert [h.inner_text() for h in third.locator(".header-key").all()] == ["source", "n"]
    assert [h.inner_text() for h in third.locator(".header-value").all()] == ["web-test", "2"]

    page.fill("#filter-key", "order-3")
    page.locator("#browse button[type=submit]").first.click()
    page.wait_for_load_state()
    assert [r.locator("td.key").inner_text() for r in page.locator("#records tr.record").all()] == ["order-3"]
    page.select_option("#format", "json")
    page.fill("#filter-key", "")
    page.fill("#filter-text", "40")
    page.locator("#browse button[type=submit]").first.click()
    page.wait_for_load_state()
    shown = page.locator("#records tr.record")
    assert shown.count() == 1 and shown.locator("td.value").inner_text() == '{\n  "amount": 40\n}'
    assert not png_is_blank(snap(page, shots, "records-json").read_bytes())


def test_live_view_and_produce_from_the_page(http_broker, page, shots):
    from kafka import KafkaProducer

    base, bootstrap = http_broker.http, http_broker.bootstrap
    topic = unique_topic("live")
    cli("topics", "create", topic, "--partitions", "1", "--bootstrap-server", bootstrap)
    page.goto(f"{base}/topics/{topic}")
    page.check("#live")
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(topic, key=b"live-key", value=b"arrived while watching").get(timeout=30)
    producer.close()
    page.wait_for_selector("#records tr.record[data-offset='0']", timeout=10_000)
    assert page.locator("#records tr.record td.value").first.inner_text() == "arrived while watching"

    page.fill("#produce input[name=key]", "from-page")
    page.fill("#produce textarea[name=value]", "typed in the console")
    page.fill("#produce textarea[name=headers]", "via=browser")
    page.locator("#produce button").click()
    page.wait_for_load_state()
    assert page.locator("#message").inner_text() == "record produced"
    out = cli("consume", topic, "--from-beginning", "--max-messages", "2", "--format", "{key}={value} [{headers}]",
              "--bootstrap-server", bootstrap)
    assert out.splitlines()[1] == "from-page=typed in the console [via:browser]"


def test_group_page_members_lag_and_offset_reset(http_broker, page, shots):
    from confluent_kafka import Consumer, Producer

    base, bootstrap = http_broker.http, http_broker.bootstrap
    topic, group = unique_topic("grouped"), unique_topic("console-group")
    cli("topics", "create", topic, "--partitions", "2", "--bootstrap-server", bootstrap)
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(40):
        producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 2)
    assert producer.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                         "client.id": "console-reader", "enable.auto.commit": False})
    consumer.subscribe([topic])
    seen: list[bytes] = []
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set():
            message = consumer.poll(0.2)
            if message is not None and message.error() is None:
                seen.append(message.value())
                consumer.commit(message=message, asynchronous=False)

    reader = threading.Thread(target=consume)
    reader.start()
    try:
        wait_until(lambda: len(seen) == 40, 30, "the group to read everything")

        def lag_is_zero() -> bool:
            page.goto(f"{base}/groups/{group}")
            lags = [int(x) for x in page.locator("#offsets td.lag").all_inner_texts()]
            return page.locator("#members tr.member").count() == 1 and lags == [0, 0]

        wait_until(lag_is_zero, 20, "the console to show lag 0")
        assert page.locator("#group-state").inner_text() == "Stable"
        assert page.locator("#members td.client-id").inner_text() == "console-reader"
        assigned = sorted(page.locator("#members span.tp").all_inner_texts())
        assert assigned == [f"{topic}-0", f"{topic}-1"]
        snap(page, shots, "group-stable")
    finally:
        stop.set()
        reader.join()
        consumer.close()

    wait_until(lambda: (page.goto(f"{base}/groups/{group}"), page.locator("#group-state").inner_text())[1]
               == "Empty", 20, "the group to become Empty")
    page.select_option("#reset select[name=to]", "earliest")
    page.locator("#reset button").click()
    page.wait_for_load_state()
    assert page.locator("#message").inner_text().startswith(f"offsets of {topic} reset to earliest")
    assert page.locator("#offsets td.committed").all_inner_texts() == ["0", "0"]
    assert not png_is_blank(snap(page, shots, "group-reset").read_bytes())

    again = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "latest"})
    again.subscribe([topic])
    reread = []
    deadline = time.monotonic() + 30
    while len(reread) < 40 and time.monotonic() < deadline:
        message = again.poll(0.5)
        if message is not None and message.error() is None:
            reread.append(message.value())
    again.close()
    assert sorted(reread) == sorted(seen)


def test_overview_and_missing_pages(http_broker, page, shots):
    base = http_broker.http
    page.goto(base + "/")
    assert page.locator("#cluster-id").inner_text().strip() != ""
    assert int(page.locator("#partition-count").inner_text()) >= 0
    assert not png_is_blank(snap(page, shots, "overview").read_bytes())
    response = page.goto(base + "/topics/no-such-topic")
    assert response.status == 404
