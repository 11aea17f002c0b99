"""Share sessions and share-partition durability over raw requests: what a client cannot show by itself.

A share session ends with the connection that opened it, so a client that
goes away gives its records back at once (long before their locks run out),
those in flight to it included. Share-partition state survives a clean
restart and a SIGKILL: acknowledged records are never delivered again, a
record acquired but not acknowledged comes back with its delivery count
raised, and members keep their epoch. KIP-1222 renewals and KIP-1206's record_limit mode are ShareFetch v2.
"""

from __future__ import annotations

import time
import uuid

import pytest

from kafkacompat.client import KafkaClient
from kafkacompat.protocol.errors import ErrorCode
from test_share_groups_wire import ACCEPT, SHARE_ACKNOWLEDGE, SHARE_FETCH, Share, acquired

DESCRIBE_OFFSETS = 90
RENEW = 4
LOCK_MS = 30_000  # Kafka's default: every release below comes long before a lock could run out
BROKER_OVERRIDES = {"group.share.record.lock.duration.ms": str(LOCK_MS)}


def _group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def _fetch_v2(share: Share, group: str, member: str, epoch: int, *, acks=(), renew: bool = False,
              record_limit: bool = False, max_records: int = 500) -> object:
    return share.client.request(SHARE_FETCH, 2, {
        "group_id": group, "member_id": member, "share_session_epoch": epoch, "max_wait_ms": 0,
        "min_bytes": 1, "max_bytes": 1 << 20, "max_records": max_records, "batch_size": max_records,
        "share_acquire_mode": 1 if record_limit else 0, "is_renew_ack": renew,
        "topics": [{"topic_id": share.topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": [
            {"first_offset": f, "last_offset": last, "acknowledge_types": t} for f, last, t in acks]}]}],
        "forgotten_topics_data": []})


def _acknowledge(share: Share, group: str, member: str, epoch: int, acks, *, version: int = 1) -> object:
    body = {"group_id": group, "member_id": member, "share_session_epoch": epoch, "is_renew_ack": False,
            "topics": [{"topic_id": share.topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": [
                {"first_offset": f, "last_offset": last, "acknowledge_types": t} for f, last, t in acks]}]}]}
    answer = share.client.request(SHARE_ACKNOWLEDGE, version, body)
    assert answer.error_code == ErrorCode.NONE, answer
    assert [p.error_code for t in answer.responses for p in t.partitions] == [ErrorCode.NONE]
    return answer


def _acquire_all(share: Share, group: str, member: str, epoch: int, *, wait_ms: int = 0) -> list[tuple[int, int, int]]:
    return acquired(share.fetch(group, member, epoch, max_wait_ms=wait_ms))


@pytest.fixture
def share(broker):
    with KafkaClient(broker.bootstrap) as client:
        yield Share(client, batches=10)


def test_a_dropped_connection_gives_its_members_records_back_at_once(broker, share) -> None:
    group = _group()
    share.earliest(group)
    with KafkaClient(broker.bootstrap) as leaving:
        gone = Share.existing(leaving, share)
        member = gone.join(group)
        assert _acquire_all(gone, group, member, 0) == [(0, 9, 1)]
    # The connection is closed without ShareFetch epoch -1 and without leaving the group.
    other = share.join(group)
    started = time.monotonic()
    assert _acquire_all(share, group, other, 0, wait_ms=10_000) == [(0, 9, 2)]
    assert time.monotonic() - started < 5  # released on the close, not after the 30 s lock


def test_records_in_flight_when_the_connection_drops_are_released(broker, share) -> None:
    group = _group()  # latest: only records produced from now on
    with KafkaClient(broker.bootstrap) as leaving:
        gone = Share.existing(leaving, share)
        member = gone.join(group)
        assert _acquire_all(gone, group, member, 0) == []
        # A long-polling ShareFetch whose answer nobody will read.
        leaving.request(SHARE_FETCH, 1, {
            "group_id": group, "member_id": member, "share_session_epoch": 1, "max_wait_ms": 10_000,
            "min_bytes": 1, "max_bytes": 1 << 20, "max_records": 500, "batch_size": 500,
            "topics": [{"topic_id": share.topic_id, "partitions": [
                {"partition_index": 0, "acknowledgement_batches": []}]}],
            "forgotten_topics_data": []}, expect_response=False)
        time.sleep(0.5)  # the fetch is waiting in the broker
    share.produce([b"late"])  # the waiting fetch acquires it for a client that is gone
    other = share.join(group)
    assert _acquire_all(share, group, other, 0, wait_ms=10_000) == [(10, 10, 2)]


def test_a_member_that_left_the_group_still_closes_its_share_session_with_its_acknowledgements(share) -> None:
    # librdkafka may send its leave heartbeat before its closing ShareAcknowledge; Kafka keeps the session.
    group = _group()
    share.earliest(group)
    member = share.join(group)
    assert _acquire_all(share, group, member, 0) == [(0, 9, 1)]
    assert share.heartbeat(group, member, -1).error_code == ErrorCode.NONE
    closing = share.client.request(SHARE_ACKNOWLEDGE, 1, {
        "group_id": group, "member_id": member, "share_session_epoch": -1, "topics": [
            {"topic_id": share.topic_id, "partitions": [{"partition_index": 0, "acknowledgement_batches": [
                {"first_offset": 0, "last_offset": 4, "acknowledge_types": [ACCEPT]}]}]}]})
    assert closing.error_code == ErrorCode.NONE
    assert [p.error_code for t in closing.responses for p in t.partitions] == [ErrorCode.NONE]
    assert share.fetch(group, member, 1).error_code == ErrorCode.SHARE_SESSION_NOT_FOUND  # closed now
    again = share.join(group)
    assert _acquire_all(share, group, again, 0) == [(5, 9, 2)]  # 0-4 accepted; 5-9 released by the close


@pytest.mark.parametrize("stop", ["restart", "kill"])
def test_share_partition_state_survives_a_restart_and_a_sigkill(broker_factory, stop: str) -> None:
    broker = broker_factory(BROKER_OVERRIDES)
    group = _group()
    with KafkaClient(broker.bootstrap) as client:
        share = Share(client, batches=10)
        share.earliest(group)
        member = share.join(group)
        epoch = share.wait_assigned(group, member)
        assert _acquire_all(share, group, member, 0) == [(0, 9, 1)]
        _acknowledge(share, group, member, 1, [(0, 4, [ACCEPT])])  # 5-9 stay acquired, unacknowledged
        if stop == "kill":
            broker.kill()
        else:
            broker.stop()  # a clean stop closes the connection first: its session ends, 5-9 are released
    broker.start()
    with KafkaClient(broker.bootstrap) as client:
        share = Share.existing(client, share)
        answer = client.request(DESCRIBE_OFFSETS, 1, {"groups": [{"group_id": group, "topics": None}]})
        [partition] = answer.groups[0].topics[0].partitions
        assert (partition.start_offset, partition.lag) == (5, 5)
        kept = share.heartbeat(group, member, epoch)  # members are durable: the first goes on with its epoch
        assert (kept.error_code, kept.member_epoch, kept.assignment) == (ErrorCode.NONE, epoch, None)
        again = share.join(group)
        assert _acquire_all(share, group, again, 0) == [(5, 9, 2)]  # 0-4 never again; 5-9 counted


def test_renew_keeps_records_and_record_limit_cuts_batches(share) -> None:
    group = _group()
    share.earliest(group)
    member = share.join(group)
    cut = _fetch_v2(share, group, member, 0, record_limit=True, max_records=3)
    assert acquired(cut) == [(0, 2, 1)]
    renewed = _fetch_v2(share, group, member, 1, acks=[(0, 2, [RENEW])], renew=True)
    assert renewed.error_code == ErrorCode.NONE and acquired(renewed) == []  # a renewal acquires nothing
    assert [p.acknowledge_error_code for t in renewed.responses for p in t.partitions] == [ErrorCode.NONE]
    misused = _fetch_v2(share, group, member, 2, acks=[(0, 2, [RENEW])], renew=False)
    assert misused.error_code == ErrorCode.INVALID_REQUEST
    answer = _acknowledge(share, group, member, 2, [(0, 2, [ACCEPT])], version=2)
    assert answer.acquisition_lock_timeout_ms == LOCK_MS
    assert acquired(_fetch_v2(share, group, member, 3)) == [(3, 9, 1)]
