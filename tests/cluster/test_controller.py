"""The controller's rules: elections, ISR changes, epochs, group placement, persistence."""

from __future__ import annotations

from kafkacompat.cluster.controller import (
    NO_LEADER,
    OFFSETS_TOPIC,
    TRANSACTION_TOPIC,
    BrokerInfo,
    Controller,
    default_assignment,
    java_string_hash,
)


def make(tmp_path, *, unclean: bool = False, brokers: int = 3) -> Controller:
    infos = [BrokerInfo(node, "127.0.0.1", 9000 + node, alive=True) for node in range(1, brokers + 1)]
    return Controller(tmp_path, infos, offsets_partitions=4, unclean_leader_election=unclean)


def test_round_robin_assignment_starts_each_partition_on_the_next_broker():
    assert default_assignment([1, 2, 3], 4, 2) == [[1, 2], [2, 3], [3, 1], [1, 2]]
    assert default_assignment([1, 2, 3], 2, 3, first_partition=1) == [[2, 3, 1], [3, 1, 2]]


def test_java_string_hash_matches_javas():
    # Values of "".hashCode(), "a".hashCode(), "group".hashCode() and a non-ASCII string in Java.
    assert [java_string_hash(s) for s in ("", "a", "group", "é")] == [0, 97, 98629247, 233]
    assert java_string_hash("polygenelubricants") == -2147483648


def test_a_stopped_leader_hands_over_to_the_first_in_sync_replica_with_a_new_epoch(tmp_path):
    controller = make(tmp_path)
    controller.add_partitions("t", [[1, 2, 3]])
    moved = controller.broker_stopped(1)
    state = controller.partition("t", 0)
    assert ("t", 0) in moved
    assert (state.leader, state.leader_epoch, state.isr) == (2, 1, [2, 3])


def test_the_last_isr_member_stays_in_the_isr_and_only_it_may_lead_again(tmp_path):
    controller = make(tmp_path)
    controller.add_partitions("t", [[1, 2, 3]])
    for node in (2, 3, 1):
        controller.broker_stopped(node)
    state = controller.partition("t", 0)
    assert (state.leader, state.isr) == (NO_LEADER, [1])
    assert ("t", 0) not in controller.broker_started(2)  # out of sync: no clean election
    assert controller.partition("t", 0).offline
    assert ("t", 0) in controller.broker_started(1)
    assert (state.leader, state.isr, state.leader_epoch) == (1, [1], 2)  # offline was epoch 1


def test_unclean_election_lets_any_live_replica_lead_alone(tmp_path):
    controller = make(tmp_path, unclean=True)
    controller.add_partitions("t", [[1, 2, 3]])
    controller.shrink_isr(("t", 0), 2)
    controller.shrink_isr(("t", 0), 3)
    controller.broker_stopped(1)
    state = controller.partition("t", 0)
    assert (state.leader, state.isr) == (2, [2])


def test_isr_changes_keep_replica_order_and_never_drop_the_leader(tmp_path):
    controller = make(tmp_path)
    controller.add_partitions("t", [[3, 1, 2]])
    assert not controller.shrink_isr(("t", 0), 3)  # the leader
    assert controller.shrink_isr(("t", 0), 1)
    assert not controller.shrink_isr(("t", 0), 1)
    assert controller.expand_isr(("t", 0), 1)
    assert controller.partition("t", 0).isr == [3, 1, 2]
    assert controller.partition("t", 0).leader_epoch == 0  # ISR changes alone keep the epoch


def test_preferred_election_needs_the_preferred_replica_alive_and_in_sync(tmp_path):
    controller = make(tmp_path)
    controller.add_partitions("t", [[1, 2, 3]])
    assert controller.elect_preferred(("t", 0)) == "ELECTION_NOT_NEEDED"
    controller.broker_stopped(1)
    assert controller.elect_preferred(("t", 0)) == "PREFERRED_LEADER_NOT_AVAILABLE"
    controller.broker_started(1)
    assert controller.imbalanced() == []  # back, but not in the ISR yet
    controller.expand_isr(("t", 0), 1)
    assert ("t", 0) in controller.imbalanced()
    assert controller.elect_preferred(("t", 0)) is None
    assert controller.partition("t", 0).leader == 1
    assert controller.elect_preferred(("nope", 0)) == "UNKNOWN_TOPIC_OR_PARTITION"


def test_group_coordinators_follow_their_offsets_partition_leader(tmp_path):
    controller = make(tmp_path)
    index = (java_string_hash("my-group") & 0x7FFFFFFF) % 4
    leader = controller.partition(OFFSETS_TOPIC, index).leader
    assert controller.coordinator("my-group") == leader
    controller.broker_stopped(leader)
    assert controller.coordinator("my-group") not in (leader, NO_LEADER)


def test_transaction_coordinators_are_placed_by_their_own_internal_topic(tmp_path):
    controller = make(tmp_path)
    index = (java_string_hash("txn-1") & 0x7FFFFFFF) % 4
    assert controller.coordinator("txn-1", TRANSACTION_TOPIC) == controller.partition(TRANSACTION_TOPIC, index).leader
    assert controller.followed_by(2) == []  # internal topics have no log to replicate


def test_the_transaction_state_topic_has_its_own_layout(tmp_path):
    infos = [BrokerInfo(node, "127.0.0.1", 9000 + node, alive=True) for node in (1, 2, 3)]
    controller = Controller(tmp_path, infos, offsets_partitions=4, offsets_replication_factor=3,
                            transaction_partitions=6, transaction_replication_factor=2)
    assert len(controller.topic_partitions(OFFSETS_TOPIC)) == 4
    assert [state.replicas for state in controller.topic_partitions(TRANSACTION_TOPIC)] == \
        default_assignment([1, 2, 3], 6, 2)
    index = (java_string_hash("txn-1") & 0x7FFFFFFF) % 6
    leader = controller.partition(TRANSACTION_TOPIC, index).leader
    assert controller.coordinator("txn-1", TRANSACTION_TOPIC) == leader
    controller.broker_stopped(leader)  # the coordinator moves with the partition's leadership
    assert controller.coordinator("txn-1", TRANSACTION_TOPIC) not in (leader, NO_LEADER)


def test_the_metadata_survives_a_restart_and_the_offsets_topic_is_not_followed(tmp_path):
    controller = make(tmp_path)
    controller.add_partitions("t", [[1, 2], [2, 3]])
    controller.broker_stopped(2)
    again = make(tmp_path)
    assert again.partition("t", 1) == controller.partition("t", 1)
    assert again.followed_by(2) == [("t", 0), ("t", 1)]  # stopped, it still replicates both
    assert len(again.topic_partitions(OFFSETS_TOPIC)) == 4
    again.remove_topic("t")
    assert make(tmp_path).topic_partitions("t") == []


def test_the_controller_is_the_lowest_live_broker(tmp_path):
    controller = make(tmp_path)
    controller.broker_stopped(1)
    assert controller.controller_id == 2
    assert controller.live_node_ids == [2, 3]
