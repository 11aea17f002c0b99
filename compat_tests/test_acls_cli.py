"""``kafkacompat acls list|add|remove`` against a broker with the authorizer on, checked through confluent-kafka."""

from __future__ import annotations

import json

import pytest
from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

from test_acls import AS_SUPER_USER, described, everything
from test_cli_tools import _assert_one_line_error, cli


@pytest.mark.timeout(90)
def test_acls_add_list_and_remove(broker_factory):
    broker = broker_factory(AS_SUPER_USER)
    added = cli(broker, "acls", "add", "--topic", "logs-", "--resource-pattern-type", "prefixed",
                "--allow-principal", "User:alice", "--operation", "read", "--operation", "describe")
    assert added.stdout.startswith("Added 2 ACL(s).\n")
    cli(broker, "acls", "add", "--group", "billing", "--deny-principal", "User:bob", "--host", "10.0.0.1",
        "--operation", "all")
    assert described(broker.bootstrap, everything()) == {
        AclBinding(ResourceType.TOPIC, "logs-", ResourcePatternType.PREFIXED, "User:alice", "*", AclOperation.READ,
                   AclPermissionType.ALLOW),
        AclBinding(ResourceType.TOPIC, "logs-", ResourcePatternType.PREFIXED, "User:alice", "*",
                   AclOperation.DESCRIBE, AclPermissionType.ALLOW),
        AclBinding(ResourceType.GROUP, "billing", ResourcePatternType.LITERAL, "User:bob", "10.0.0.1",
                   AclOperation.ALL, AclPermissionType.DENY),
    }

    listed = json.loads(cli(broker, "acls", "list", "--topic", "logs-app", "--resource-pattern-type", "match",
                            "--json").stdout)
    assert sorted((a["resource_name"], a["pattern_type"], a["principal"], a["operation"], a["permission"])
                  for a in listed) == [("logs-", "PREFIXED", "User:alice", "DESCRIBE", "ALLOW"),
                                       ("logs-", "PREFIXED", "User:alice", "READ", "ALLOW")]
    table = cli(broker, "acls", "list", "--principal", "User:bob").stdout.splitlines()
    assert table[0].split() == ["RESOURCE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"]
    assert [row.split() for row in table[2:]] == [["GROUP", "billing", "LITERAL", "User:bob", "10.0.0.1", "ALL",
                                                   "DENY"]]

    removed = json.loads(cli(broker, "acls", "remove", "--topic", "logs-", "--operation", "read", "--json").stdout)
    assert [(a["resource_name"], a["operation"]) for a in removed] == [("logs-", "READ")]
    assert {a.operation for a in described(broker.bootstrap, everything(ResourceType.TOPIC))} == {
        AclOperation.DESCRIBE}


def test_acls_on_a_broker_without_authorizer_is_one_line_and_a_failure(broker):
    _assert_one_line_error(cli(broker, "acls", "list", ok=False), "No Authorizer is configured on the broker")


def test_adding_needs_principal_and_operation(broker):
    _assert_one_line_error(cli(broker, "acls", "add", "--topic", "t", "--operation", "read", ok=False),
                           "--allow-principal or --deny-principal")
