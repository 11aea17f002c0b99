"""Golden bytes: real client frames, captured once, must decode and re-encode exactly.

`golden/<client>/<api>_request_v<N>.bin` are request frames (size prefix
included) that kafka-python, librdkafka (confluent-kafka), kcat (Debian's
librdkafka 2.0) and kafkajs sent
through `recording_proxy.py`; `<api>_response_v<N>.bin` are the answers those
clients accepted, kept for the APIs whose parsers are strictest. Each frame
must decode with our codec to the values the capture run used (topic and
group names, acks, codecs, client software) and encode back to the same
bytes. Refresh with `python compat_tests/recording_proxy.py`.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kafkacompat.protocol import (decode_data, decode_request, decode_response, encode_request,
                                  encode_request_frame, encode_response, parse_request, parse_response_frame)
from kafkacompat.protocol.records import Compression, decode_records, parse_batches
from recording_proxy import GOLDEN_DIR, GOLDEN_GROUP, GOLDEN_RECORDS, GOLDEN_TOPIC, api_file_stem


@dataclasses.dataclass(frozen=True)
class ClientFacts:
    """What the capture run's client was told to do, and how it names itself."""

    client_id_prefix: str
    software_name: str | None  # ApiVersions v3+ client_software_name
    codec: Compression
    creates_topics: bool = True


CLIENTS = {
    "kafka-python": ClientFacts("kafka-python-", "kafka-python", Compression.GZIP),
    "librdkafka": ClientFacts("rdkafka", "confluent-kafka-python", Compression.LZ4),
    "kcat": ClientFacts("rdkafka", "librdkafka", Compression.SNAPPY, creates_topics=False),
    "kafkajs": ClientFacts("kafkacompat-kafkajs", None, Compression.GZIP),
}
# Every client's capture must contain these: the whole produce / group-consume path.
CORE_APIS = {"api_versions", "metadata", "init_producer_id", "produce", "list_offsets", "fetch",
             "find_coordinator", "join_group", "sync_group", "offset_commit", "offset_fetch", "leave_group"}
GOLDEN_VALUES = {value for _, value, _ in GOLDEN_RECORDS}


@dataclasses.dataclass
class Frame:
    client: str
    version: int
    body: Any

    @property
    def topic(self) -> str:
        return GOLDEN_TOPIC.format(client=self.client)

    @property
    def group(self) -> str:
        return GOLDEN_GROUP.format(client=self.client)


def frame_files(kind: str) -> list[Path]:
    return sorted(GOLDEN_DIR.glob(f"*/*_{kind}_v*.bin"))


def file_id(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def unprefixed(path: Path) -> bytes:
    raw = path.read_bytes()
    (size,) = struct.unpack_from(">i", raw)
    assert size == len(raw) - 4, f"{path.name}: size prefix {size}, frame has {len(raw) - 4} bytes"
    return raw[4:]


def consumer_data(name: str, data: bytes) -> Any:
    """Consumer-protocol bytes: an int16 version, then that version's struct."""
    (version,) = struct.unpack_from(">h", data)
    return decode_data(name, version, data[2:])


def topic_names(topics: list) -> list[str]:
    return [t.name for t in topics]


# --- what each request must say ----------------------------------------------------

def check_api_versions_request(frame: Frame) -> None:
    software = CLIENTS[frame.client].software_name
    if frame.version >= 3:
        assert frame.body.client_software_name == software
        assert frame.body.client_software_version


def check_metadata_request(frame: Frame) -> None:
    assert topic_names(frame.body.topics) == [frame.topic]


def check_create_topics_request(frame: Frame) -> None:
    assert [(t.name, t.num_partitions) for t in frame.body.topics] == [(frame.topic, 2)]
    assert frame.body.timeout_ms > 0


def check_init_producer_id_request(frame: Frame) -> None:
    assert frame.body.transactional_id is None  # idempotent, not transactional
    if frame.version >= 3:
        assert (frame.body.producer_id, frame.body.producer_epoch) == (-1, -1)


def check_produce_request(frame: Frame) -> None:
    assert (frame.body.acks, frame.body.transactional_id) == (-1, None)
    assert topic_names(frame.body.topic_data) == [frame.topic]
    for partition in frame.body.topic_data[0].partition_data:
        records = bytes(partition.records)
        for batch in parse_batches(records):
            assert batch.compression == CLIENTS[frame.client].codec
            assert batch.producer_id >= 0 and batch.base_sequence >= 0, "idempotent producers number batches"
            sent = decode_records(records[batch.position:batch.end])
            assert len(sent) == batch.records_count
            assert {(r.key, r.value, tuple(r.headers)) for r in sent} <= {
                (key, value, tuple(headers)) for key, value, headers in GOLDEN_RECORDS}


def check_fetch_request(frame: Frame) -> None:
    (topic,) = frame.body.topics
    if frame.version >= 13:
        assert topic.topic_id.int != 0
    else:
        assert topic.topic == frame.topic
    assert {p.partition for p in topic.partitions} <= {0, 1}
    assert all(p.fetch_offset >= 0 for p in topic.partitions)
    assert frame.body.max_wait_ms > 0 and frame.body.min_bytes >= 1


def check_list_offsets_request(frame: Frame) -> None:
    (topic,) = frame.body.topics
    assert topic.name == frame.topic
    assert {p.partition_index for p in topic.partitions} <= {0, 1}
    assert {p.timestamp for p in topic.partitions} <= {-1, -2}  # latest / earliest


def check_find_coordinator_request(frame: Frame) -> None:
    keys = frame.body.coordinator_keys if frame.version >= 4 else [frame.body.key]
    assert (keys, frame.body.key_type) == ([frame.group], 0)


def check_join_group_request(frame: Frame) -> None:
    assert (frame.body.group_id, frame.body.protocol_type) == (frame.group, "consumer")
    assert frame.body.protocols
    for protocol in frame.body.protocols:
        assert consumer_data("consumer_protocol_subscription", bytes(protocol.metadata)).topics == [frame.topic]


def check_sync_group_request(frame: Frame) -> None:
    assert frame.body.group_id == frame.group and frame.body.generation_id >= 1
    (assignment,) = frame.body.assignments  # the leader assigns; it is the only member
    assert assignment.member_id == frame.body.member_id
    assigned = consumer_data("consumer_protocol_assignment", bytes(assignment.assignment))
    assert [(a.topic, list(a.partitions)) for a in assigned.assigned_partitions] == [(frame.topic, [0, 1])]


def check_heartbeat_request(frame: Frame) -> None:
    assert frame.body.group_id == frame.group and frame.body.generation_id >= 1 and frame.body.member_id


def check_leave_group_request(frame: Frame) -> None:
    assert frame.body.group_id == frame.group
    members = [m.member_id for m in frame.body.members] if frame.version >= 3 else [frame.body.member_id]
    assert len(members) == 1 and members[0]


def check_offset_commit_request(frame: Frame) -> None:
    assert frame.body.group_id == frame.group and frame.body.generation_id_or_member_epoch >= 1
    assert topic_names(frame.body.topics) == [frame.topic]
    for partition in frame.body.topics[0].partitions:
        assert partition.partition_index in (0, 1)
        assert 0 <= partition.committed_offset <= len(GOLDEN_RECORDS)


def check_offset_fetch_request(frame: Frame) -> None:
    if frame.version >= 8:
        (group,) = frame.body.groups
        group_id, topics = group.group_id, group.topics
    else:
        group_id, topics = frame.body.group_id, frame.body.topics
    assert group_id == frame.group
    assert [(t.name, sorted(t.partition_indexes)) for t in topics] == [(frame.topic, [0, 1])]


REQUEST_CHECKS: dict[str, Callable[[Frame], None]] = {
    "api_versions": check_api_versions_request,
    "metadata": check_metadata_request,
    "create_topics": check_create_topics_request,
    "init_producer_id": check_init_producer_id_request,
    "produce": check_produce_request,
    "fetch": check_fetch_request,
    "list_offsets": check_list_offsets_request,
    "find_coordinator": check_find_coordinator_request,
    "join_group": check_join_group_request,
    "sync_group": check_sync_group_request,
    "heartbeat": check_heartbeat_request,
    "leave_group": check_leave_group_request,
    "offset_commit": check_offset_commit_request,
    "offset_fetch": check_offset_fetch_request,
}


# --- what each kept response must say ------------------------------------------------

def check_api_versions_response(frame: Frame) -> None:
    assert frame.body.error_code == 0
    ranges = {k.api_key: (k.min_version, k.max_version) for k in frame.body.api_keys}
    assert ranges[0][0] == 0, "Produce is advertised from v0 (librdkafka picks its message format from it)"
    assert {1, 3, 10, 11, 14, 18} <= set(ranges)


def check_metadata_response(frame: Frame) -> None:
    (broker,) = frame.body.brokers
    assert broker.host == "127.0.0.1"
    (topic,) = frame.body.topics
    assert (topic.name, topic.error_code) == (frame.topic, 0)
    assert sorted(p.partition_index for p in topic.partitions) == [0, 1]
    assert all(p.leader_id == broker.node_id for p in topic.partitions)


def check_fetch_response(frame: Frame) -> None:
    if frame.version >= 7:
        assert frame.body.error_code == 0
    (topic,) = frame.body.responses
    values = []
    for partition in topic.partitions:
        assert partition.error_code == 0
        records = bytes(partition.records or b"")
        if records:  # a partition with nothing new answers with no batches
            values += [r.value for b in parse_batches(records) for r in decode_records(records[b.position:b.end])]
    assert values and set(values) <= GOLDEN_VALUES


def check_join_group_response(frame: Frame) -> None:
    assert frame.body.error_code == 0 and frame.body.generation_id >= 1
    assert frame.body.leader == frame.body.member_id
    assert [m.member_id for m in frame.body.members] == [frame.body.member_id]


def check_sync_group_response(frame: Frame) -> None:
    assert frame.body.error_code == 0
    assigned = consumer_data("consumer_protocol_assignment", bytes(frame.body.assignment))
    assert [(a.topic, list(a.partitions)) for a in assigned.assigned_partitions] == [(frame.topic, [0, 1])]


RESPONSE_CHECKS: dict[str, Callable[[Frame], None]] = {
    "api_versions": check_api_versions_response,
    "metadata": check_metadata_response,
    "fetch": check_fetch_response,
    "join_group": check_join_group_response,
    "sync_group": check_sync_group_response,
}


# --- the tests --------------------------------------------------------------------

def test_every_client_has_the_core_frames():
    assert sorted(p.name for p in GOLDEN_DIR.iterdir() if p.is_dir()) == sorted(CLIENTS)
    for client in CLIENTS:
        stems = {p.name.rsplit("_request_v", 1)[0] for p in (GOLDEN_DIR / client).glob("*_request_v*.bin")}
        expected = CORE_APIS | ({"create_topics"} if CLIENTS[client].creates_topics else set())
        assert expected <= stems, f"{client} lacks {sorted(expected - stems)}"
        assert stems <= set(REQUEST_CHECKS), f"{client} has frames no check reads: {sorted(stems - set(REQUEST_CHECKS))}"


@pytest.mark.parametrize("path", frame_files("request"), ids=file_id)
def test_request_decodes_and_reencodes_exactly(path: Path):
    frame = unprefixed(path)
    header, body_view = parse_request(frame)
    assert path.name == f"{api_file_stem(header.api_key)}_request_v{header.api_version}.bin"
    client = path.parent.name
    assert header.client_id.startswith(CLIENTS[client].client_id_prefix)
    body = decode_request(header.api_key, header.api_version, body_view)
    reencoded = encode_request_frame(header.api_key, header.api_version, header.correlation_id, header.client_id,
                                     encode_request(header.api_key, header.api_version, body))
    assert reencoded == path.read_bytes()
    REQUEST_CHECKS[api_file_stem(header.api_key)](Frame(client, header.api_version, body))


@pytest.mark.parametrize("path", frame_files("response"), ids=file_id)
def test_response_decodes_and_reencodes_exactly(path: Path):
    request_frame = unprefixed(path.with_name(path.name.replace("_response_", "_request_")))
    api_key, version, correlation_id = struct.unpack_from(">hhi", request_frame)
    answered, body_view = parse_response_frame(api_key, version, unprefixed(path))
    assert answered == correlation_id, "the response answers the request kept beside it"
    body = decode_response(api_key, version, body_view)
    assert encode_response(api_key, version, body) == bytes(body_view)
    stem = api_file_stem(api_key)
    assert stem in RESPONSE_CHECKS, f"no check reads {path.name}"
    RESPONSE_CHECKS[stem](Frame(path.parent.name, version, body))
