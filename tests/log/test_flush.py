"""Durable acknowledgements: flush tickets, the high watermark they move, and the broker's group commit."""

from __future__ import annotations

import errno
import os
import threading

import pytest
import trio

import kafkacompat.broker as broker_module
import kafkacompat.log.flush as flush_module
from kafkacompat.broker import AppendSignal, Broker, GroupCommit
from kafkacompat.config import BrokerConfig
from kafkacompat.handlers.dispatch import dispatch
from kafkacompat.handlers.registry import RequestContext
from kafkacompat.log.partition_log import PartitionLog
from kafkacompat.log.topic_config import LogConfig, default_configs
from kafkacompat.protocol import decode_response, encode_request, encode_request_frame, parse_response_frame
from kafkacompat.protocol.errors import ErrorCode, KafkaError
from kafkacompat.protocol.records import decode_records
from tests.log.batch_builder import build_batch, stored_batch, values


@pytest.fixture
def durable_log(tmp_path, clock):
    """open_durable(name, **topic_configs): a partition that flushes before acknowledging."""

    def factory(name: str = "t", **overrides: str) -> PartitionLog:
        configs = {**default_configs(), **{k.replace("_", "."): v for k, v in overrides.items()}}
        log = PartitionLog(name, 0, tmp_path / f"{name}-0", LogConfig.from_strings(configs), clock, flush_on_ack=True)
        log.flush()  # a new partition owes its directory an fsync (see the test below)
        return log

    return factory


def test_a_new_partition_owes_a_directory_sync(tmp_path, clock):
    log = PartitionLog("t", 0, tmp_path / "t-0", LogConfig.defaults(), clock, flush_on_ack=True)
    assert log.needs_flush(clock.now)
    ticket = log.begin_flush()
    assert ticket.directory == tmp_path / "t-0" and ticket.fds == []
    ticket.sync()
    assert log.complete_flush(ticket) and not log.needs_flush(clock.now)
    log.close()
    reopened = PartitionLog("t", 0, tmp_path / "t-0", LogConfig.defaults(), clock, flush_on_ack=True)
    assert not reopened.needs_flush(clock.now)


def _record_values(data: bytes) -> list[bytes]:
    return [record.value for record in decode_records(data)] if data else []


def test_appends_become_visible_only_once_flushed(durable_log, clock):
    log = durable_log()
    assert log.flushes_on_ack and not log.needs_flush(clock.now)
    log.append(build_batch([b"a", b"b"]))
    assert (log.log_end_offset, log.high_watermark) == (2, 0)
    assert log.needs_flush(clock.now)
    assert log.read(0, 1 << 20) == b""
    ticket = log.begin_flush()
    log.append(build_batch([b"c"]))  # after the ticket: not covered by it
    ticket.sync()
    assert log.complete_flush(ticket)
    assert (log.high_watermark, log.recovery_point) == (2, 2)
    assert _record_values(log.read(0, 1 << 20)) == [b"a", b"b"]  # the third record stays hidden
    assert log.read(2, 1 << 20) == b""
    log.flush()
    assert log.high_watermark == 3 and not log.needs_flush(clock.now)
    assert _record_values(log.read(2, 1 << 20)) == [b"c"]


def test_hidden_records_in_a_rolled_segment_stay_hidden_until_flushed(durable_log, clock):
    probe = len(build_batch(values(3, 20)))
    log = durable_log(segment_bytes=str(2 * probe))
    log.append(build_batch(values(3, 20)))
    log.flush()
    for _ in range(3):
        log.append(build_batch(values(3, 20)))  # fills the first segment, rolls, lands in the second
    assert log.segment_base_offsets == [0, 6] and log.high_watermark == 3
    assert log.read(0, 1 << 20) == stored_batch(values(3, 20), base_offset=0)
    assert log.read(3, 1 << 20) == b""
    with pytest.raises(KafkaError) as info:
        log.delete_records(4)  # past the high watermark
    assert info.value.code == ErrorCode.OFFSET_OUT_OF_RANGE
    log.flush()
    assert log.high_watermark == 12
    assert len(log.read(3, 1 << 20)) == probe


def test_a_ticket_survives_the_segment_being_rolled_closed_and_deleted(durable_log, clock):
    log = durable_log(segment_bytes="200", retention_ms="1000")
    log.append(build_batch(values(3, 20)))
    ticket = log.begin_flush()
    log.roll()
    clock.now += 10_000_000
    log.close()  # closes every segment's descriptor; the ticket holds duplicates
    ticket.sync()
    assert ticket.error is None and ticket.fds == []
    assert log.complete_flush(ticket)  # a closed partition ignores late completions


def test_periodic_flushing_when_the_topic_sets_flush_messages(durable_log, clock):
    log = durable_log(flush_messages="5")
    assert not log.flushes_on_ack
    log.append(build_batch(values(3)))
    assert log.high_watermark == 3  # visible at once, as in Kafka
    assert not log.needs_flush(clock.now)
    log.append(build_batch(values(2)))
    assert log.needs_flush(clock.now)
    log.flush()
    assert log.recovery_point == 5 and not log.needs_flush(clock.now)


def test_periodic_flushing_by_time(durable_log, clock):
    log = durable_log(flush_ms="1000")
    log.append(build_batch(values(1)))
    assert not log.needs_flush(clock.now + 999)
    assert log.needs_flush(clock.now + 1000)


def test_a_roll_owes_a_flush_even_with_periodic_flushing(open_log, clock):
    log = open_log(segment_bytes="200")
    for _ in range(3):
        log.append(build_batch(values(3, 20)))
    assert len(log.segment_base_offsets) == 3
    assert log.needs_flush(clock.now)  # the sealed segments' files and the directory
    log.flush()
    assert not log.needs_flush(clock.now)


def test_a_failed_fsync_takes_the_partition_offline(durable_log, monkeypatch):
    log = durable_log()
    log.append(build_batch([b"x"]))

    def failing_fsync(fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(flush_module.os, "fsync", failing_fsync)
    ticket = log.begin_flush()
    ticket.sync()
    assert isinstance(ticket.error, OSError)
    assert not log.complete_flush(ticket)
    assert log.high_watermark == 0
    for call in (lambda: log.append(build_batch([b"y"])), lambda: log.read(0, 100)):
        with pytest.raises(KafkaError) as info:
            call()
        assert info.value.code == ErrorCode.KAFKA_STORAGE_ERROR
    monkeypatch.undo()
    log.close()


# -- group commit -------------------------------------------------------------


async def test_concurrent_flushes_share_rounds_and_run_off_the_event_loop(durable_log, clock, monkeypatch, tmp_path):
    logs = [durable_log(f"p{n}") for n in range(3)]
    rounds: list[list] = []
    first_round_blocked = threading.Event()
    release = threading.Event()
    loop_thread = threading.get_ident()

    def recording_sync_all(tickets, data_dir):
        assert threading.get_ident() != loop_thread
        rounds.append(tickets)
        if len(rounds) == 1:
            first_round_blocked.set()
            release.wait(5)
        for ticket in tickets:
            ticket.sync()

    monkeypatch.setattr(broker_module, "sync_tickets", recording_sync_all)
    commit = GroupCommit(clock, AppendSignal(), tmp_path)
    finished = []

    async def produce_and_flush(log: PartitionLog) -> None:
        appended = log.append(build_batch(values(2)))
        assert await commit.flush({log: appended.last_offset + 1}) == set()
        finished.append(log.topic)
        assert log.high_watermark == log.log_end_offset

    async with trio.open_nursery() as nursery:
        nursery.start_soon(produce_and_flush, logs[0])
        await trio.to_thread.run_sync(first_round_blocked.wait, 5)
        nursery.start_soon(produce_and_flush, logs[1])
        nursery.start_soon(produce_and_flush, logs[2])
        await trio.sleep(0.05)
        assert finished == []  # the event loop kept running while the first fsync was stuck
        release.set()
    assert sorted(finished) == ["p0", "p1", "p2"]
    assert [len(tickets) for tickets in rounds] == [1, 2]  # the two late writers shared one round


async def test_group_commit_skips_partitions_with_nothing_owed(durable_log, clock, monkeypatch, tmp_path):
    log = durable_log()
    calls = []
    monkeypatch.setattr(broker_module, "sync_tickets", lambda tickets, data_dir: calls.append(tickets))
    assert await GroupCommit(clock, AppendSignal(), tmp_path).flush({log: None}) == set()
    assert calls == []


async def test_group_commit_waits_for_no_round_once_the_acknowledged_appends_are_durable(
    durable_log, clock, monkeypatch, tmp_path
):
    log = durable_log()
    rounds = []

    def counting_sync_all(tickets, data_dir):
        rounds.append(tickets)
        for ticket in tickets:
            ticket.sync()

    monkeypatch.setattr(broker_module, "sync_tickets", counting_sync_all)
    commit = GroupCommit(clock, AppendSignal(), tmp_path)
    first = log.append(build_batch(values(2)))
    second = log.append(build_batch(values(3)))
    assert await commit.flush({log: first.last_offset + 1}) == set()
    assert len(rounds) == 1 and log.high_watermark == 5
    # The round for the first request covered the second one's records too.
    assert await commit.flush({log: second.last_offset + 1}) == set()
    assert len(rounds) == 1
    later = log.append(build_batch(values(1)))
    # Appends after the last round are still owed, whoever waits for earlier ones.
    assert await commit.flush({log: second.last_offset + 1}) == set() and len(rounds) == 1
    assert await commit.flush({log: later.last_offset + 1}) == set()
    assert len(rounds) == 2 and log.high_watermark == 6


async def test_a_round_of_many_partitions_is_one_filesystem_sync(durable_log, clock, monkeypatch, tmp_path):
    logs = [durable_log(f"many{n}") for n in range(flush_module.SYNC_FILESYSTEM_MIN_TICKETS)]
    syncs, fsyncs = [], []
    monkeypatch.setattr(flush_module, "CAN_SYNC_FILESYSTEM", True)
    monkeypatch.setattr(flush_module, "sync_filesystem", syncs.append)
    monkeypatch.setattr(flush_module.os, "fsync", fsyncs.append)
    owed = {log: log.append(build_batch(values(1))).last_offset + 1 for log in logs}
    assert await GroupCommit(clock, AppendSignal(), tmp_path).flush(owed) == set()
    assert syncs == [tmp_path] and fsyncs == []
    assert all(log.high_watermark == 1 for log in logs)


async def test_a_failed_filesystem_sync_takes_every_partition_of_the_round_offline(
    durable_log, clock, monkeypatch, tmp_path
):
    logs = [durable_log(f"bad{n}") for n in range(flush_module.SYNC_FILESYSTEM_MIN_TICKETS)]

    def failing_sync(path):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(flush_module, "CAN_SYNC_FILESYSTEM", True)
    monkeypatch.setattr(flush_module, "sync_filesystem", failing_sync)
    owed = {log: log.append(build_batch(values(1))).last_offset + 1 for log in logs}
    assert await GroupCommit(clock, AppendSignal(), tmp_path).flush(owed) == set(logs)
    assert all(log.high_watermark == 0 for log in logs)


# -- the produce path ----------------------------------------------------------


@pytest.fixture
def ctx(tmp_path):
    broker = Broker(BrokerConfig({"log.dirs": str(tmp_path)}))
    broker.log_manager.create_topic("t", 1)
    yield RequestContext(broker=broker, client_host="127.0.0.1")
    broker.close()


async def produce(ctx, records: bytes, acks: int = -1):
    body = {"acks": acks, "timeout_ms": 1000,
            "topic_data": [{"name": "t", "partition_data": [{"index": 0, "records": records}]}]}
    raw = await dispatch(encode_request_frame(0, 9, 1, "test", encode_request(0, 9, body))[4:], ctx)
    if raw is None:
        return None
    _, payload = parse_response_frame(0, 9, raw[4:])
    return decode_response(0, 9, payload).responses[0].partition_responses[0]


async def test_produce_is_answered_after_its_records_are_durable(ctx, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(flush_module.os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd)))
    partition = ctx.broker.log_manager.partition("t", 0)
    answer = await produce(ctx, build_batch(values(3)))
    assert (answer.error_code, answer.base_offset) == (ErrorCode.NONE, 0)
    assert synced and partition.high_watermark == 3
    assert await produce(ctx, build_batch(values(2)), acks=0) is None
    assert partition.high_watermark == 5  # acks=0 records are flushed too: only durable records are visible


async def test_produce_answers_storage_error_when_the_fsync_fails(ctx, monkeypatch):
    def failing_fsync(fd):
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(flush_module.os, "fsync", failing_fsync)
    answer = await produce(ctx, build_batch(values(1)))
    assert answer.error_code == ErrorCode.KAFKA_STORAGE_ERROR
    monkeypatch.undo()
    answer = await produce(ctx, build_batch(values(1)))
    assert answer.error_code == ErrorCode.KAFKA_STORAGE_ERROR  # offline until restart


def test_sync_filesystem_on_linux(tmp_path):
    from kafkacompat.log.durable import CAN_SYNC_FILESYSTEM, sync_filesystem

    if not CAN_SYNC_FILESYSTEM:
        pytest.skip("syncfs is Linux-only; elsewhere flush rounds fsync file by file")
    (tmp_path / "f").write_bytes(b"data")
    sync_filesystem(tmp_path)
    with pytest.raises(OSError):
        sync_filesystem(tmp_path / "missing")


async def _flush_rounds_of_pipelined_produces(tmp_path, monkeypatch, count: int) -> list[int]:
    """Send `count` produces (one partition each) on one connection at once; the size of each flush round."""
    from kafkacompat.server.connection import Connection

    broker = Broker(BrokerConfig({"log.dirs": str(tmp_path)}))
    broker.log_manager.create_topic("piped", count)
    rounds: list[int] = []
    real_sync = broker_module.sync_tickets

    def counting_sync(tickets, data_dir):
        rounds.append(len(tickets))
        real_sync(tickets, data_dir)

    monkeypatch.setattr(broker_module, "sync_tickets", counting_sync)
    client_socket, server_socket = trio.socket.socketpair()
    client, server = trio.SocketStream(client_socket), trio.SocketStream(server_socket)
    connection = Connection(server, RequestContext(broker=broker, client_host="test"), 1 << 20, 60_000)
    frames = b"".join(
        encode_request_frame(0, 9, n, "t", encode_request(0, 9, {"acks": -1, "timeout_ms": 1000, "topic_data": [
            {"name": "piped", "partition_data": [{"index": n, "records": build_batch(values(1))}]}]}))
        for n in range(count))
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.serve)
            await client.send_all(frames)
            received = b""
            for n in range(count):
                while len(received) < 4 or len(received) < 4 + int.from_bytes(received[:4], "big"):
                    received += await client.receive_some()
                size = int.from_bytes(received[:4], "big")
                correlation_id, payload = parse_response_frame(0, 9, received[4 : 4 + size])
                received = received[4 + size :]
                assert correlation_id == n
                answer = decode_response(0, 9, payload).responses[0].partition_responses[0]
                assert (answer.index, answer.error_code, answer.base_offset) == (n, 0, 0)
            await client.aclose()
    finally:
        broker.close()
    assert sum(rounds) == count
    return rounds


async def test_produces_pipelined_on_one_connection_share_flush_rounds(tmp_path, monkeypatch):
    rounds = await _flush_rounds_of_pipelined_produces(tmp_path, monkeypatch, 8)
    assert len(rounds) < 8, "each pipelined produce waited for a flush round of its own"


async def test_produces_waiting_for_their_flush_do_not_count_against_the_ready_answer_limit(tmp_path, monkeypatch):
    """Hundreds of one-partition produces in flight share a few rounds (librdkafka sends one per partition)."""
    from kafkacompat.server.connection import MAX_UNSENT_READY_ANSWERS

    count = 20 * MAX_UNSENT_READY_ANSWERS
    rounds = await _flush_rounds_of_pipelined_produces(tmp_path, monkeypatch, count)
    assert len(rounds) < count // MAX_UNSENT_READY_ANSWERS, f"flush rounds of {rounds}"
