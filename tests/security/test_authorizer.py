"""The authorizer's decisions (StandardAuthorizer semantics) and the ACL store's durability."""

from __future__ import annotations

from pathlib import Path

import pytest

from kafkacompat.security.authorizer import (
    AclBinding,
    AclFilter,
    AclOperation as Op,
    AclPermission as Perm,
    AclStore,
    Authorizer,
    PatternType as Pat,
    ResourceType as Res,
    invalid_binding,
)

ALICE, BOB = "User:alice", "User:bob"
HOST = "10.0.0.1"


def acl(name: str, op: Op, perm: Perm = Perm.ALLOW, principal: str = ALICE, host: str = "*",
        pattern: Pat = Pat.LITERAL, kind: Res = Res.TOPIC) -> AclBinding:
    return AclBinding(kind, name, pattern, principal, host, op, perm)


@pytest.fixture
def store(tmp_path: Path) -> AclStore:
    return AclStore(tmp_path)


def authorizer(store: AclStore, *acls: AclBinding, **options) -> Authorizer:
    store.add(acls)
    return Authorizer(store, **options)


def test_deny_beats_allow(store: AclStore) -> None:
    auth = authorizer(store, acl("orders", Op.READ), acl("orders", Op.READ, Perm.DENY, principal="User:*"))
    assert not auth.authorize(ALICE, HOST, Op.READ, Res.TOPIC, "orders")


def test_allow_is_for_its_principal_operation_and_resource_only(store: AclStore) -> None:
    auth = authorizer(store, acl("orders", Op.WRITE))
    assert auth.authorize(ALICE, HOST, Op.WRITE, Res.TOPIC, "orders")
    assert not auth.authorize(ALICE, HOST, Op.READ, Res.TOPIC, "orders")
    assert not auth.authorize(BOB, HOST, Op.WRITE, Res.TOPIC, "orders")
    assert not auth.authorize(ALICE, HOST, Op.WRITE, Res.GROUP, "orders")


def test_prefixed_and_wildcard_patterns(store: AclStore) -> None:
    auth = authorizer(store, acl("logs-", Op.READ, pattern=Pat.PREFIXED), acl("*", Op.WRITE, principal="User:*"))
    assert auth.authorize(ALICE, HOST, Op.READ, Res.TOPIC, "logs-app")
    assert not auth.authorize(ALICE, HOST, Op.READ, Res.TOPIC, "log")
    assert auth.authorize(BOB, HOST, Op.WRITE, Res.TOPIC, "anything")
    assert not auth.authorize(BOB, HOST, Op.READ, Res.TOPIC, "logs-app")


def test_host_matching(store: AclStore) -> None:
    auth = authorizer(store, acl("t", Op.READ, host=HOST), acl("t", Op.WRITE, Perm.DENY, host="10.0.0.2"),
                      acl("t", Op.WRITE))
    assert auth.authorize(ALICE, HOST, Op.READ, Res.TOPIC, "t")
    assert not auth.authorize(ALICE, "10.0.0.2", Op.READ, Res.TOPIC, "t")
    assert auth.authorize(ALICE, HOST, Op.WRITE, Res.TOPIC, "t")
    assert not auth.authorize(ALICE, "10.0.0.2", Op.WRITE, Res.TOPIC, "t")


@pytest.mark.parametrize("granted", [Op.READ, Op.WRITE, Op.DELETE, Op.ALTER, Op.ALL, Op.DESCRIBE])
def test_describe_is_implied(store: AclStore, granted: Op) -> None:
    assert authorizer(store, acl("t", granted)).authorize(ALICE, HOST, Op.DESCRIBE, Res.TOPIC, "t")


def test_describe_configs_is_implied_by_alter_configs_only(store: AclStore) -> None:
    auth = authorizer(store, acl("t", Op.ALTER_CONFIGS), acl("u", Op.ALTER))
    assert auth.authorize(ALICE, HOST, Op.DESCRIBE_CONFIGS, Res.TOPIC, "t")
    assert not auth.authorize(ALICE, HOST, Op.DESCRIBE_CONFIGS, Res.TOPIC, "u")
    assert not auth.authorize(ALICE, HOST, Op.READ, Res.TOPIC, "t")  # implication runs one way


def test_a_deny_implies_nothing(store: AclStore) -> None:
    auth = authorizer(store, acl("t", Op.DESCRIBE), acl("t", Op.READ, Perm.DENY))
    assert auth.authorize(ALICE, HOST, Op.DESCRIBE, Res.TOPIC, "t")
    auth = authorizer(store, acl("v", Op.DESCRIBE), acl("v", Op.ALL, Perm.DENY))
    assert not auth.authorize(ALICE, HOST, Op.DESCRIBE, Res.TOPIC, "v")


def test_super_users_bypass_denies(store: AclStore) -> None:
    auth = authorizer(store, acl("t", Op.ALL, Perm.DENY, principal="User:*"), super_users=[BOB])
    assert auth.authorize(BOB, HOST, Op.READ, Res.TOPIC, "t")
    assert not auth.authorize(ALICE, HOST, Op.READ, Res.TOPIC, "t")


def test_allow_everyone_if_no_acl_found_counts_any_acl_on_the_resource(store: AclStore) -> None:
    auth = authorizer(store, acl("t", Op.READ, principal=BOB), allow_if_no_acl=True)
    assert auth.authorize(ALICE, HOST, Op.READ, Res.TOPIC, "free")
    assert not auth.authorize(ALICE, HOST, Op.READ, Res.TOPIC, "t")  # bob's ACL applies to t
    assert not Authorizer(store).authorize(ALICE, HOST, Op.READ, Res.TOPIC, "free")


def test_authorize_any_resource_of_a_type(store: AclStore) -> None:
    auth = authorizer(store, acl("a-", Op.WRITE, pattern=Pat.PREFIXED), acl("a", Op.WRITE, Perm.DENY,
                                                                          pattern=Pat.PREFIXED))
    assert not auth.authorize_any(ALICE, HOST, Op.WRITE, Res.TOPIC)  # the allowed prefix lies under the denied one
    store.add([acl("b", Op.WRITE)])
    assert auth.authorize_any(ALICE, HOST, Op.WRITE, Res.TOPIC)
    assert not auth.authorize_any(BOB, HOST, Op.WRITE, Res.TOPIC)


def test_filters() -> None:
    literal, prefixed, wildcard = acl("orders", Op.READ), acl("ord", Op.READ, pattern=Pat.PREFIXED), acl("*", Op.READ)
    group = acl("orders", Op.READ, kind=Res.GROUP)

    def selected(kind: Res, name: str | None, pattern: Pat, **entry) -> set[AclBinding]:
        options = {"principal": None, "host": None, "operation": Op.ANY, "permission_type": Perm.ANY, **entry}
        flt = AclFilter(kind, name, pattern, **options)
        return {a for a in (literal, prefixed, wildcard, group) if flt.matches(a)}

    assert selected(Res.ANY, None, Pat.ANY) == {literal, prefixed, wildcard, group}
    assert selected(Res.TOPIC, "orders", Pat.MATCH) == {literal, prefixed, wildcard}
    assert selected(Res.TOPIC, "orders", Pat.ANY) == {literal}
    assert selected(Res.TOPIC, "ord", Pat.PREFIXED) == {prefixed}
    assert selected(Res.TOPIC, None, Pat.LITERAL) == {literal, wildcard}
    assert selected(Res.ANY, None, Pat.ANY, principal=BOB) == set()
    assert selected(Res.ANY, None, Pat.ANY, operation=Op.WRITE) == set()


def test_invalid_bindings_are_refused_with_kafkas_reasons() -> None:
    assert invalid_binding(acl("t", Op.READ)) is None
    assert invalid_binding(acl("t", Op.READ, pattern=Pat.MATCH)) == "Invalid patternType MATCH"
    assert invalid_binding(acl("t", Op.ANY)) == "Invalid operation ANY"
    assert invalid_binding(acl("t", Op.READ, Perm.ANY)) == "Invalid permissionType ANY"
    assert invalid_binding(acl("t", Op.READ, kind=Res.ANY)) == "Invalid resourceType ANY"
    assert invalid_binding(acl("", Op.READ)) == "Resource name should not be empty"
    assert "kafka-cluster" in invalid_binding(acl("c", Op.ALTER, kind=Res.CLUSTER))
    assert "no colon" in invalid_binding(acl("t", Op.READ, principal="alice"))


def test_the_store_survives_reopening(tmp_path: Path) -> None:
    first = AclStore(tmp_path)
    kept, removed = acl("t", Op.READ), acl("u", Op.WRITE, pattern=Pat.PREFIXED)
    first.add([kept, removed, kept])
    assert len(first) == 2
    assert first.remove(AclFilter(Res.TOPIC, "u", Pat.ANY, None, None, Op.ANY, Perm.ANY)) == [removed]
    first.close()
    second = AclStore(tmp_path)
    assert set(second) == {kept}
    second.close()
    assert set(AclStore(tmp_path)) == {kept}  # the compacted journal reads the same


def test_a_filter_with_an_unknown_code_is_refused() -> None:
    assert AclFilter(Res.ANY, None, Pat.ANY, None, None, Op.ANY, Perm.ANY).unknown_element() is False
    assert AclFilter(Res.UNKNOWN, None, Pat.ANY, None, None, Op.ANY, Perm.ANY).unknown_element() is True
    assert AclFilter(Res.ANY, None, Pat.ANY, None, None, 99, Perm.ANY).unknown_element() is True
