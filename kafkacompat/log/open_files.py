"""A process-wide budget of open segment and index descriptors, least recently used closed first.

Kafka keeps every segment file open and asks for a huge ``ulimit -n``; a
broker run by a developer or in a container often gets 1,024, and 10,000
partitions would then fail with EMFILE. Here each segment's data file and
each index holding an appending descriptor registers with :data:`OPEN_FILES`
when it opens one, touches it on use, and gives it back (``release_descriptor``)
when the budget is full and it is the least recently used. A released owner
reopens on its next use.

Closing the descriptor of a file with unsynced writes loses nothing: the
bytes are in the page cache, and the next fsync through a reopened
descriptor writes them back (Linux reports a writeback error to descriptors
opened after it, as long as no one has seen it yet).

Contract: a descriptor number is used only between the owner's touch and the
next call into the log on the same thread. The event loop and the recovery
threads each hold one segment at a time, far fewer than the budget, so the
owner in use is never the least recently used one.
"""

from __future__ import annotations

import resource
import threading
from collections import OrderedDict
from typing import Protocol

# Never fewer than this, whatever the limit: a broker with few partitions keeps them all open.
MIN_OPEN_FILES = 128
# Descriptors kept out of the log's budget, for connections and everything else.
OTHER_FDS = 256


def descriptor_budget(soft_limit: int) -> int:
    """How many log descriptors stay open under a soft RLIMIT_NOFILE of `soft_limit`.

    Three quarters of what is left after OTHER_FDS: reopening costs a system
    call that Kafka never pays, so the log keeps as many open as it can
    while connections keep room of their own (server/listener.py).
    """
    return max(MIN_OPEN_FILES, (soft_limit - OTHER_FDS) * 3 // 4)


class DescriptorOwner(Protocol):
    def release_descriptor(self) -> None: ...


class OpenFiles:
    """The owners holding a descriptor, oldest use first. Thread-safe (recovery opens on worker threads)."""

    def __init__(self, budget: int | None = None) -> None:
        self._owners: OrderedDict[DescriptorOwner, None] = OrderedDict()
        self._lock = threading.Lock()
        self._fixed_budget = budget

    def __len__(self) -> int:
        return len(self._owners)

    def budget(self) -> int:
        if self._fixed_budget is not None:
            return self._fixed_budget
        return descriptor_budget(resource.getrlimit(resource.RLIMIT_NOFILE)[0])

    def opened(self, owner: DescriptorOwner) -> None:
        """`owner` has just opened its descriptor; close the least recently used ones over the budget."""
        with self._lock:
            self._owners[owner] = None
            self._owners.move_to_end(owner)
            if len(self._owners) <= (self._fixed_budget or MIN_OPEN_FILES):
                return
            budget = self.budget()
            victims = [self._owners.popitem(last=False)[0] for _ in range(len(self._owners) - budget)]
        for victim in victims:
            victim.release_descriptor()

    def touched(self, owner: DescriptorOwner) -> None:
        try:
            self._owners.move_to_end(owner)
        except KeyError:
            pass  # released by another thread a moment ago; it reopens on its next use

    def closed(self, owner: DescriptorOwner) -> None:
        with self._lock:
            self._owners.pop(owner, None)


OPEN_FILES = OpenFiles()
