"""What the coordinator hands back to handlers, including answers that arrive later.

JoinGroup and SyncGroup may have to wait for other members (the join and sync
barriers of a rebalance). The coordinator stays free of any I/O by returning a
:class:`PendingResult`: the handler registers a callback (typically one that
sets a ``trio.Event``) and the coordinator resolves it when the answer is
known, during another member's request or a :meth:`GroupCoordinator.tick`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Generic, NamedTuple, TypeVar

from kafkacompat.protocol.errors import ErrorCode

if TYPE_CHECKING:
    from kafkacompat.group.classic.state import GroupState
    from kafkacompat.group.consumer.state import ConsumerGroupState

T = TypeVar("T")


class PendingResult(Generic[T]):
    """One answer that may not be known yet; resolved exactly once.

    Callbacks run synchronously inside the coordinator call that resolves the
    result, so they must only signal (set an event), never call back into the
    coordinator.
    """

    __slots__ = ("_value", "_done", "_callbacks")

    def __init__(self) -> None:
        self._done = False
        self._value: T | None = None
        self._callbacks: list[Callable[[T], None]] = []

    def done(self) -> bool:
        return self._done

    def result(self) -> T:
        if not self._done:
            raise RuntimeError("result is not known yet")
        return self._value  # type: ignore[return-value]

    def add_done_callback(self, callback: Callable[[T], None]) -> None:
        """Call ``callback(result)`` once resolved (at once if it already is)."""
        if self._done:
            callback(self._value)  # type: ignore[arg-type]
        else:
            self._callbacks.append(callback)

    def resolve(self, value: T) -> None:
        if self._done:
            raise RuntimeError("result resolved twice")
        self._done, self._value = True, value
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback(value)

    @classmethod
    def resolved(cls, value: T) -> PendingResult[T]:
        pending: PendingResult[T] = cls()
        pending.resolve(value)
        return pending


class TopicPartition(NamedTuple):
    topic: str
    partition: int


@dataclass(frozen=True)
class JoinedMember:
    """One member's subscription as the leader sees it in its JoinGroup answer."""

    member_id: str
    group_instance_id: str | None
    metadata: bytes


@dataclass(frozen=True)
class JoinResult:
    error: ErrorCode
    member_id: str
    generation_id: int = -1
    protocol_type: str | None = None
    protocol_name: str | None = None
    leader_id: str = ""
    skip_assignment: bool = False
    members: tuple[JoinedMember, ...] = ()


@dataclass(frozen=True)
class SyncResult:
    error: ErrorCode
    assignment: bytes = b""
    protocol_type: str | None = None
    protocol_name: str | None = None


@dataclass(frozen=True)
class LeavingMember:
    """One identity in a LeaveGroup request: a member id, an instance id, or both."""

    member_id: str
    group_instance_id: str | None = None


@dataclass(frozen=True)
class LeaveResult:
    """Top-level error plus one error per leaving member, in request order."""

    error: ErrorCode
    members: tuple[tuple[LeavingMember, ErrorCode], ...] = ()


@dataclass(frozen=True)
class MemberDescription:
    member_id: str
    group_instance_id: str | None
    client_id: str
    client_host: str
    metadata: bytes
    assignment: bytes


@dataclass(frozen=True)
class GroupDescription:
    """DescribeGroups' view: metadata and assignments only while Stable, as Kafka shows them."""

    group_id: str
    state: GroupState | ConsumerGroupState
    protocol_type: str
    protocol_name: str
    members: tuple[MemberDescription, ...]


@dataclass(frozen=True)
class GroupListing:
    group_id: str
    protocol_type: str
    state: GroupState | ConsumerGroupState
    group_type: str = "classic"
