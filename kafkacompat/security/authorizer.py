"""ACLs and the decisions made from them, with Kafka's StandardAuthorizer semantics.

Theory of operation. An ACL binds a resource pattern (resource type, name,
LITERAL or PREFIXED) to an entry (principal, host, operation, ALLOW or
DENY). To decide whether a principal connected from a host may perform an
operation on a named resource:

1. a principal in ``super.users`` may do anything;
2. the ACLs that apply are those whose pattern matches the resource: a
   LITERAL pattern with the same name or the wildcard ``*``, or a PREFIXED
   pattern the name starts with;
3. among them, an entry matches when its principal is the caller's or
   ``User:*``, its host the caller's or ``*``, and its operation the one
   asked, ALL, or (ALLOW entries only) one that implies it: READ, WRITE,
   DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS;
4. a matching DENY wins over any ALLOW; then a matching ALLOW allows;
5. when no ACL at all applies to the resource (whoever it names), the
   answer is ``allow.everyone.if.no.acl.found``; otherwise it is DENIED.

The store keeps the ACLs in memory, indexed by resource type, and durable in
``__acls.journal`` of the data dir (JSON payloads in the coordinator's
checksummed journal format, rewritten compactly at open). Sans-I/O apart from
that file; not safe for concurrent tasks, the event loop serialises access.
"""

from __future__ import annotations

import enum
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator

from kafkacompat.group.journal import Journal

JOURNAL_NAME = "__acls.journal"
WILDCARD_RESOURCE = "*"
WILDCARD_PRINCIPAL = "User:*"
WILDCARD_HOST = "*"
CLUSTER_NAME = "kafka-cluster"
# Kafka's class name switches the authorizer on (authorizer.class.name).
STANDARD_AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"


class ResourceType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    TOPIC = 2
    GROUP = 3
    CLUSTER = 4
    TRANSACTIONAL_ID = 5
    DELEGATION_TOKEN = 6
    USER = 7


class PatternType(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    MATCH = 2
    LITERAL = 3
    PREFIXED = 4


class AclOperation(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    ALL = 2
    READ = 3
    WRITE = 4
    CREATE = 5
    DELETE = 6
    ALTER = 7
    DESCRIBE = 8
    CLUSTER_ACTION = 9
    DESCRIBE_CONFIGS = 10
    ALTER_CONFIGS = 11
    IDEMPOTENT_WRITE = 12
    CREATE_TOKENS = 13
    DESCRIBE_TOKENS = 14


class AclPermission(enum.IntEnum):
    UNKNOWN = 0
    ANY = 1
    DENY = 2
    ALLOW = 3


# Operations an ALLOW entry for the key also grants.
_IMPLIED_BY = {
    AclOperation.DESCRIBE: {AclOperation.DESCRIBE, AclOperation.READ, AclOperation.WRITE,
                            AclOperation.DELETE, AclOperation.ALTER, AclOperation.ALL},
    AclOperation.DESCRIBE_CONFIGS: {AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS, AclOperation.ALL},
}


@dataclass(frozen=True)
class AclBinding:
    """One ACL: a resource pattern and an access control entry (Kafka's ``AclBinding``)."""

    resource_type: int
    resource_name: str
    pattern_type: int
    principal: str
    host: str
    operation: int
    permission_type: int

    def applies_to(self, name: str) -> bool:
        if self.pattern_type == PatternType.LITERAL:
            return self.resource_name == name or self.resource_name == WILDCARD_RESOURCE
        return name.startswith(self.resource_name)


@dataclass(frozen=True)
class AclFilter:
    """Kafka's ``AclBindingFilter``: None names and ANY enums match everything.

    A pattern filter of MATCH selects the ACLs that would apply to the named
    resource (same literal name, the literal wildcard, or a prefix of it);
    ANY with a name selects exactly that name whatever its pattern type.
    """

    resource_type: int
    resource_name: str | None
    pattern_type: int
    principal: str | None
    host: str | None
    operation: int
    permission_type: int

    def unknown_element(self) -> bool:
        """Kafka reads a code it does not know as UNKNOWN, and refuses a filter holding one."""
        return any(value == 0 or value not in kind._value2member_map_ for kind, value in (
            (ResourceType, self.resource_type), (PatternType, self.pattern_type),
            (AclOperation, self.operation), (AclPermission, self.permission_type)))

    def matches(self, acl: AclBinding) -> bool:
        return self._matches_pattern(acl) and (
            (self.principal is None or self.principal == acl.principal)
            and (self.host is None or self.host == acl.host)
            and self.operation in (AclOperation.ANY, acl.operation)
            and self.permission_type in (AclPermission.ANY, acl.permission_type))

    def _matches_pattern(self, acl: AclBinding) -> bool:
        if self.resource_type not in (ResourceType.ANY, acl.resource_type):
            return False
        if self.pattern_type not in (PatternType.ANY, PatternType.MATCH, acl.pattern_type):
            return False
        if self.resource_name is None:
            return True
        if self.pattern_type in (PatternType.ANY, acl.pattern_type):
            return self.resource_name == acl.resource_name
        return acl.applies_to(self.resource_name)


def invalid_binding(acl: AclBinding) -> str | None:
    """Why Kafka refuses to create this ACL (INVALID_REQUEST), or None."""
    if acl.pattern_type not in (PatternType.LITERAL, PatternType.PREFIXED):
        return f"Invalid patternType {_name(PatternType, acl.pattern_type)}"
    if acl.resource_type in (ResourceType.UNKNOWN, ResourceType.ANY) or acl.resource_type not in ResourceType._value2member_map_:
        return f"Invalid resourceType {_name(ResourceType, acl.resource_type)}"
    if acl.operation in (AclOperation.UNKNOWN, AclOperation.ANY) or acl.operation not in AclOperation._value2member_map_:
        return f"Invalid operation {_name(AclOperation, acl.operation)}"
    if acl.permission_type not in (AclPermission.ALLOW, AclPermission.DENY):
        return f"Invalid permissionType {_name(AclPermission, acl.permission_type)}"
    if not acl.resource_name:
        return "Resource name should not be empty"
    if acl.resource_type == ResourceType.CLUSTER and acl.resource_name != CLUSTER_NAME:
        return f"The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
    if ":" not in acl.principal:
        return (f"Could not parse principal from `{acl.principal}` (no colon is present separating the "
                "principal type from the principal name)")
    if not acl.host:
        return "Invalid host: empty"
    return None


def _name(kind: type[enum.IntEnum], value: int) -> str:
    return kind(value).name if value in kind._value2member_map_ else str(value)


class AclStore:
    """The broker's ACLs, durable; see the module docstring for the file."""

    def __init__(self, data_dir: Path) -> None:
        self._by_type: dict[int, set[AclBinding]] = {}
        path = data_dir / JOURNAL_NAME
        for payload in Journal.read(path):
            entry = json.loads(payload)
            acls = [AclBinding(**fields) for fields in entry["acls"]]
            (self._add if entry["op"] == "add" else self._remove)(acls)
        self._journal = Journal(path)
        self._journal.rewrite([_payload("add", list(self))] if len(self) else [])

    def __iter__(self) -> Iterator[AclBinding]:
        for acls in self._by_type.values():
            yield from acls

    def __len__(self) -> int:
        return sum(len(acls) for acls in self._by_type.values())

    def of_type(self, resource_type: int) -> set[AclBinding]:
        return self._by_type.get(resource_type, set())

    def add(self, acls: Iterable[AclBinding]) -> None:
        """Journal, then apply; ACLs already present are left as they are (Kafka's idempotent create)."""
        new = list(dict.fromkeys(acl for acl in acls if acl not in self.of_type(acl.resource_type)))
        if new:
            self._journal.append([_payload("add", new)])
            self._add(new)

    def remove(self, acl_filter: AclFilter) -> list[AclBinding]:
        """Delete the ACLs the filter matches; they are returned."""
        gone = [acl for acl in self if acl_filter.matches(acl)]
        if gone:
            self._journal.append([_payload("remove", gone)])
            self._remove(gone)
        return gone

    def matching(self, acl_filter: AclFilter) -> list[AclBinding]:
        return [acl for acl in self if acl_filter.matches(acl)]

    def _add(self, acls: Iterable[AclBinding]) -> None:
        for acl in acls:
            self._by_type.setdefault(acl.resource_type, set()).add(acl)

    def _remove(self, acls: Iterable[AclBinding]) -> None:
        for acl in acls:
            self._by_type.get(acl.resource_type, set()).discard(acl)

    def close(self) -> None:
        self._journal.close()


def _payload(op: str, acls: list[AclBinding]) -> bytes:
    return json.dumps({"op": op, "acls": [asdict(acl) for acl in acls]}, separators=(",", ":")).encode()


class Authorizer:
    """Decisions over an :class:`AclStore` (see the module docstring for the rules)."""

    def __init__(self, store: AclStore, super_users: Iterable[str] = (), allow_if_no_acl: bool = False) -> None:
        self.store = store
        self.super_users = frozenset(super_users)
        self.allow_if_no_acl = allow_if_no_acl

    def authorize(self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType,
                  name: str) -> bool:
        if principal in self.super_users:
            return True
        found_any = allowed = False
        for acl in self.store.of_type(resource_type):
            if not acl.applies_to(name):
                continue
            found_any = True
            if not _entry_matches(acl, principal, host):
                continue
            if acl.permission_type == AclPermission.DENY:
                if acl.operation in (operation, AclOperation.ALL):
                    return False
            elif acl.operation in _IMPLIED_BY.get(operation, (operation, AclOperation.ALL)):
                allowed = True
        return allowed or (not found_any and self.allow_if_no_acl)

    def authorize_any(self, principal: str, host: str, operation: AclOperation, resource_type: ResourceType) -> bool:
        """Kafka's ``authorizeByResourceType``: is some resource of this type allowed?

        True when a name with no ACL of its own would be allowed, or when some
        ALLOW pattern for the caller is not covered by a DENY (a literal deny
        of the same name, a prefixed deny of a prefix of it, or a wildcard deny).
        """
        if self.authorize(principal, host, operation, resource_type, "\x00hardcode"):
            return True
        denies, allows = [], []
        for acl in self.store.of_type(resource_type):
            if not _entry_matches(acl, principal, host) or acl.operation not in (operation, AclOperation.ALL):
                continue
            (denies if acl.permission_type == AclPermission.DENY else allows).append(acl)
        if any(d.pattern_type == PatternType.LITERAL and d.resource_name == WILDCARD_RESOURCE for d in denies):
            return False
        for allow in allows:
            covered = any(allow.resource_name.startswith(d.resource_name) if d.pattern_type == PatternType.PREFIXED
                          else allow.pattern_type == PatternType.LITERAL and d.resource_name == allow.resource_name
                          for d in denies)
            if not covered:
                return True
        return False


def _entry_matches(acl: AclBinding, principal: str, host: str) -> bool:
    return acl.principal in (principal, WILDCARD_PRINCIPAL) and acl.host in (host, WILDCARD_HOST)


def open_authorizer(class_name: str, super_users: str, allow_if_no_acl: bool, data_dir: Path) -> Authorizer | None:
    """The configured authorizer; None when ``authorizer.class.name`` is empty (the broker checks the class)."""
    if not class_name:
        return None
    users = [user.strip() for user in super_users.split(";") if user.strip()]
    return Authorizer(AclStore(data_dir), users, allow_if_no_acl)
