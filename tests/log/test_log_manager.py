"""LogManager: topic lifecycle, configs, persistence, producer ids."""

from __future__ import annotations

import json
import uuid

import pytest

from kafkacompat.log.log_manager import LogManager
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from tests.log.batch_builder import DEFAULT_TIMESTAMP as T0
from tests.log.batch_builder import RecordSpec, build_batch

DEFAULTS = {"retention.ms": "604800000", "segment.bytes": "1073741824"}


@pytest.fixture
def manager_at(tmp_path, clock):
    opened = []

    def factory(defaults=DEFAULTS) -> LogManager:
        manager = LogManager(tmp_path / "data", defaults, clock)
        opened.append(manager)
        return manager

    return factory


def _error(code: ErrorCode, call, *args, **kwargs) -> None:
    with pytest.raises(KafkaError) as info:
        call(*args, **kwargs)
    assert info.value.code == code, info.value


def test_create_topic_lays_out_kafka_partition_directories(manager_at, tmp_path):
    manager = manager_at()
    topic = manager.create_topic("orders", 3, {"retention.ms": "1000"})
    assert isinstance(topic.topic_id, uuid.UUID) and topic.topic_id.int != 0
    assert [p.index for p in topic.partitions] == [0, 1, 2]
    assert topic.configs == {"retention.ms": "1000"}
    for index in range(3):
        assert (tmp_path / "data" / f"orders-{index}" / "00000000000000000000.log").exists()
    assert manager.topic("orders") is topic
    assert manager.topic_by_id(topic.topic_id) is topic
    assert manager.topics() == [topic]
    assert manager.partition("orders", 2) is topic.partitions[2]
    assert manager.partition("orders", 3) is None
    assert manager.partition("missing", 0) is None


@pytest.mark.parametrize("name", ["", ".", "..", "a" * 250, "has space", "slash/y", "ünïcode"])
def test_illegal_topic_names(manager_at, name):
    _error(ErrorCode.INVALID_TOPIC_EXCEPTION, manager_at().create_topic, name, 1)


def test_legal_edge_names(manager_at):
    manager = manager_at()
    manager.create_topic("a" * 249, 1)
    manager.create_topic("A.b-c_9", 1)


def test_create_errors(manager_at):
    manager = manager_at()
    manager.create_topic("t", 1)
    _error(ErrorCode.TOPIC_ALREADY_EXISTS, manager.create_topic, "t", 1)
    manager.create_topic("a.b", 1)
    _error(ErrorCode.INVALID_TOPIC_EXCEPTION, manager.create_topic, "a_b", 1)
    _error(ErrorCode.INVALID_PARTITIONS, manager.create_topic, "zero", 0)
    _error(ErrorCode.INVALID_CONFIG, manager.create_topic, "bad1", 1, {"no.such.config": "1"})
    _error(ErrorCode.INVALID_CONFIG, manager.create_topic, "bad2", 1, {"retention.ms": "soon"})
    _error(ErrorCode.INVALID_CONFIG, manager.create_topic, "bad3", 1, {"cleanup.policy": "shred"})
    _error(ErrorCode.INVALID_CONFIG, manager.create_topic, "bad4", 1, {"message.timestamp.type": None})
    assert [t.name for t in manager.topics()] == ["t", "a.b"]


def test_validate_new_topic_creates_nothing(manager_at, tmp_path):
    manager = manager_at()
    assert manager.validate_new_topic("dry", 2, {"segment.bytes": " 2048 "}) == {"segment.bytes": "2048"}
    assert manager.topic("dry") is None
    assert not (tmp_path / "data" / "dry-0").exists()


def test_topics_data_and_configs_survive_reopen(manager_at):
    manager = manager_at()
    topic = manager.create_topic("keep", 2, {"message.timestamp.type": "LogAppendTime"})
    topic.partitions[1].append(build_batch([b"a", b"b"]))
    manager.close()

    reopened = manager_at()
    again = reopened.topic("keep")
    assert again.topic_id == topic.topic_id
    assert again.configs == {"message.timestamp.type": "LogAppendTime"}
    assert len(again.partitions) == 2
    assert again.partitions[1].log_end_offset == 2
    assert again.partitions[1].append(build_batch([b"c"]), now_ms=T0 + 1).log_append_time == T0 + 1


def test_reopen_without_close(manager_at):
    manager = manager_at()
    manager.create_topic("crash", 1).partitions[0].append(build_batch([b"x"] * 4))
    reopened = manager_at()  # the first manager is never closed
    assert reopened.partition("crash", 0).log_end_offset == 4


def test_delete_topic_removes_its_data_and_the_name_is_reusable(manager_at, tmp_path):
    manager = manager_at()
    old = manager.create_topic("gone", 2)
    old.partitions[0].append(build_batch([b"x"]))
    manager.delete_topic("gone")
    assert manager.topic("gone") is None and manager.topic_by_id(old.topic_id) is None
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["topics.json"]
    _error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, manager.delete_topic, "gone")
    new = manager.create_topic("gone", 1)
    assert new.topic_id != old.topic_id
    assert new.partitions[0].log_end_offset == 0
    manager.close()
    assert manager_at().topic("gone").topic_id == new.topic_id


def test_leftovers_of_an_interrupted_delete_are_swept_on_open(manager_at, tmp_path):
    manager_at().close()
    leftover = tmp_path / "data" / f"{uuid.uuid4().hex}-0-delete"
    leftover.mkdir()
    (leftover / "00000000000000000000.log").write_bytes(b"old")
    manager_at()
    assert not leftover.exists()


def test_stale_partition_directory_is_not_reused_by_create(manager_at, tmp_path):
    stale = tmp_path / "data" / "fresh-0"
    stale.mkdir(parents=True)
    (stale / "00000000000000000000.log").write_bytes(build_batch([b"ghost"]))
    topic = manager_at().create_topic("fresh", 1)
    assert topic.partitions[0].log_end_offset == 0


def test_create_partitions(manager_at):
    manager = manager_at()
    manager.create_topic("grow", 2)
    _error(ErrorCode.INVALID_PARTITIONS, manager.create_partitions, "grow", 2)
    _error(ErrorCode.INVALID_PARTITIONS, manager.create_partitions, "grow", 1)
    _error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, manager.create_partitions, "nope", 3)
    manager.create_partitions("grow", 5, validate_only=True)
    assert len(manager.topic("grow").partitions) == 2
    manager.create_partitions("grow", 5)
    assert [p.index for p in manager.topic("grow").partitions] == [0, 1, 2, 3, 4]
    manager.partition("grow", 4).append(build_batch([b"x"]))
    manager.close()
    assert manager_at().partition("grow", 4).log_end_offset == 1


def test_effective_config_layers_kafka_defaults_broker_defaults_and_overrides(manager_at):
    manager = manager_at({"retention.ms": "5000", "segment.bytes": "4096"})
    manager.create_topic("layers", 1, {"segment.bytes": "2048"})
    effective = manager.effective_config("layers")
    assert effective["retention.ms"] == "5000"  # broker default
    assert effective["segment.bytes"] == "2048"  # topic override
    assert effective["cleanup.policy"] == "delete"  # Kafka default
    assert manager.partition("layers", 0).config.segment_bytes == 2048
    assert manager.partition("layers", 0).config.retention_ms == 5000
    _error(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, manager.effective_config, "nope")


def test_alter_configs_apply_live_and_persist(manager_at):
    manager = manager_at()
    manager.create_topic("alter", 1, {"retention.ms": "1000"})
    partition = manager.partition("alter", 0)
    manager.alter_topic_configs("alter", {"message.timestamp.type": "LogAppendTime"}, ["retention.ms"])
    assert manager.topic("alter").configs == {"message.timestamp.type": "LogAppendTime"}
    assert partition.append(build_batch([b"x"]), now_ms=T0 + 3).log_append_time == T0 + 3
    assert partition.config.retention_ms == 604800000
    _error(ErrorCode.INVALID_CONFIG, manager.alter_topic_configs, "alter", {"max.message.bytes": "-5"})
    _error(ErrorCode.INVALID_CONFIG, manager.alter_topic_configs, "alter", {}, ["made.up"])
    manager.alter_topic_configs("alter", {"segment.bytes": "4096"}, validate_only=True)
    assert "segment.bytes" not in manager.topic("alter").configs
    manager.close()
    assert manager_at().topic("alter").configs == {"message.timestamp.type": "LogAppendTime"}


def test_invalid_broker_defaults_are_a_startup_error(tmp_path, clock):
    with pytest.raises(ValueError):
        LogManager(tmp_path, {"segment.bytes": "huge"}, clock)
    with pytest.raises(ValueError):
        LogManager(tmp_path, {"log.segment.bytes": "1024"}, clock)


def test_unreadable_registry_refuses_to_start(manager_at, tmp_path):
    manager_at().create_topic("t", 1)
    (tmp_path / "data" / "topics.json").write_text("{torn")
    with pytest.raises(RuntimeError):
        manager_at()


def test_registry_is_plain_json(manager_at, tmp_path):
    topic = manager_at().create_topic("readable", 2, {"retention.ms": "10"})
    document = json.loads((tmp_path / "data" / "topics.json").read_text())
    assert document["topics"] == [
        {"name": "readable", "topic_id": str(topic.topic_id), "partitions": 2, "configs": {"retention.ms": "10"}}
    ]


def test_producer_ids_are_unique_across_restarts(manager_at):
    manager = manager_at()
    first = [manager.allocate_producer_id() for _ in range(3)]
    assert first == [0, 1, 2]
    manager.close()
    second = manager_at()
    later = [second.allocate_producer_id() for _ in range(1500)]
    assert later[0] > first[-1]
    assert len(set(later)) == 1500 and later == sorted(later)
    crashed_after = later[-1]
    third = manager_at()  # `second` never closed
    assert third.allocate_producer_id() > crashed_after


def test_retention_sweep_over_all_partitions(manager_at, clock):
    manager = manager_at()
    probe = len(build_batch([b"x"]))
    manager.create_topic("old", 2, {"retention.ms": "100", "segment.bytes": str(probe)})
    for partition in manager.topic("old").partitions:
        partition.append(build_batch([RecordSpec(b"x", timestamp=T0)]))
        partition.append(build_batch([RecordSpec(b"y", timestamp=T0)]))
    clock.now = T0 + 1000
    assert manager.apply_retention() == 4
    assert [p.log_start_offset for p in manager.topic("old").partitions] == [2, 2]
