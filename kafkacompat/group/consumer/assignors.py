"""The server-side assignors of KIP-848 consumer groups: ``uniform`` and ``range``.

An assignor maps each member to the partitions it should own (the *target
assignment*), from the members' subscribed topics and the partition counts
of those topics. It is a pure function: members reconcile towards its answer
later (see :mod:`.state`). Topics are named by topic id, as on the wire.

``uniform`` (Kafka's default) is sticky and balanced: a member keeps every
partition of its current target that it still subscribes to, as long as it
does not hold more than its share; the partitions left over go, one at a
time, to the eligible member holding the fewest; then partitions move from
the most to the least loaded eligible member until no move narrows a gap of
more than one. With identical subscriptions that is Kafka's guarantee (counts
differ by at most one, and as few partitions as possible move); with
different subscriptions it balances as far as single moves can.

``range`` gives each topic's partitions, in order, to the members subscribed
to that topic sorted by member id, in contiguous ranges, the first
``partitions % members`` members getting one more; so members subscribed to
the same co-partitioned topics get the same partition numbers. It is not
sticky beyond what that rule implies.
"""

from __future__ import annotations

import uuid
from typing import Callable, Iterable, Mapping, TypeVar

K = TypeVar("K")
Assignment = dict[uuid.UUID, frozenset[int]]
# member id -> topic ids it subscribes to
Subscriptions = Mapping[str, frozenset[uuid.UUID]]
# topic id -> partition count
TopicSizes = Mapping[uuid.UUID, int]
Assignor = Callable[[Subscriptions, TopicSizes, Mapping[str, Assignment]], dict[str, Assignment]]


def _as_assignment(partitions: set[tuple[uuid.UUID, int]]) -> Assignment:
    grouped: dict[uuid.UUID, set[int]] = {}
    for topic_id, partition in partitions:
        grouped.setdefault(topic_id, set()).add(partition)
    return {topic_id: frozenset(p) for topic_id, p in grouped.items()}


def uniform(
    subscriptions: Subscriptions, topics: TopicSizes, current: Mapping[str, Assignment]
) -> dict[str, Assignment]:
    """Sticky, balanced assignment (see the module docstring)."""
    members = sorted(subscriptions)
    if not members:
        return {}
    eligible: dict[tuple[uuid.UUID, int], list[str]] = {}
    for topic_id in sorted({t for subs in subscriptions.values() for t in subs if t in topics}):
        holders = [m for m in members if topic_id in subscriptions[m]]
        for partition in range(topics[topic_id]):
            eligible[(topic_id, partition)] = holders
    owned: dict[str, set[tuple[uuid.UUID, int]]] = {m: set() for m in members}
    # A share per member as if every member could take every partition, rounded up.
    share = -(-len(eligible) // len(members))
    taken: set[tuple[uuid.UUID, int]] = set()
    for member in members:
        kept = sorted(
            (topic_id, p)
            for topic_id, partitions in current.get(member, {}).items()
            for p in partitions
            if member in eligible.get((topic_id, p), ()) and (topic_id, p) not in taken
        )[:share]
        owned[member].update(kept)
        taken.update(kept)
    for tp, holders in eligible.items():
        if tp not in taken:
            owned[min(holders, key=lambda m: (len(owned[m]), m))].add(tp)
    _balance(owned, eligible)
    return {m: _as_assignment(owned[m]) for m in members}


def _balance(owned: dict[str, set[tuple[uuid.UUID, int]]], eligible: Mapping[tuple[uuid.UUID, int], list[str]]) -> None:
    """Move single partitions to a less loaded eligible member while that narrows a gap of two or more."""
    moved = True
    while moved:
        moved = False
        for member in sorted(owned, key=lambda m: (-len(owned[m]), m)):
            for tp in sorted(owned[member]):
                target = min(eligible[tp], key=lambda m: (len(owned[m]), m))
                if len(owned[target]) < len(owned[member]) - 1:
                    owned[member].discard(tp)
                    owned[target].add(tp)
                    moved = True


def range_assign(
    subscriptions: Mapping[str, Iterable[K]], partition_counts: Mapping[K, int]
) -> dict[str, dict[K, list[int]]]:
    """Kafka's RangeAssignor: per topic, members in id order take consecutive ranges, the first ones one more.

    Topics are any sortable keys (ids here, names in the client-side tools).
    """
    assignment: dict[str, dict[K, list[int]]] = {member: {} for member in subscriptions}
    for topic in sorted({t for topics in subscriptions.values() for t in topics}):
        members = sorted(m for m, topics in subscriptions.items() if topic in topics)
        share, extra = divmod(partition_counts.get(topic, 0), len(members))
        start = 0
        for index, member in enumerate(members):
            size = share + (1 if index < extra else 0)
            if size:
                assignment[member][topic] = list(range(start, start + size))
            start += size
    return assignment


def range_assignor(
    subscriptions: Subscriptions, topics: TopicSizes, current: Mapping[str, Assignment]
) -> dict[str, Assignment]:
    """The ``range`` server-side assignor (see :func:`range_assign`); the current target does not matter."""
    return {member: {topic_id: frozenset(ps) for topic_id, ps in owned.items()}
            for member, owned in range_assign(subscriptions, topics).items()}


ASSIGNORS: dict[str, Assignor] = {"uniform": uniform, "range": range_assignor}
