"""``kafkacompat acls list|add|remove``, after kafka-acls.sh.

A resource is named with ``--topic``, ``--group``, ``--transactional-id`` or
``--cluster``, and ``--resource-pattern-type`` (``literal`` by default for
add; ``any`` by default for list and remove, where ``match`` selects every
ACL that applies to the named resource). ``add`` creates one ACL per
principal, host and operation given (``--allow-principal`` or
``--deny-principal``); ``list`` and ``remove`` take the same options as a
filter, any of them left out matching everything.
"""

from __future__ import annotations

import argparse
from typing import Any

from kafkacompat.client import ApiKey, ClientError, Cluster, check
from kafkacompat.security.authorizer import (CLUSTER_NAME, AclFilter, AclOperation, AclPermission, PatternType,
                                             ResourceType)
from kafkacompat.tools import output

PATTERNS = {"any": PatternType.ANY, "match": PatternType.MATCH, "literal": PatternType.LITERAL,
            "prefixed": PatternType.PREFIXED}
OPERATIONS = {op.name.lower().replace("_", "-"): op for op in AclOperation if op > AclOperation.ANY}


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from kafkacompat.tools import common_options

    parser = sub.add_parser("acls", help="list, add and remove ACLs (the broker needs an authorizer)")
    common_options(parser, leaf=False)
    actions = parser.add_subparsers(dest="acls_command", required=True)
    for name, help_text in (("list", "the ACLs matching a filter"), ("add", "create ACLs"),
                            ("remove", "delete the ACLs matching a filter")):
        action = actions.add_parser(name, help=help_text)
        resource = action.add_mutually_exclusive_group(required=name == "add")
        resource.add_argument("--topic")
        resource.add_argument("--group")
        resource.add_argument("--transactional-id")
        resource.add_argument("--cluster", action="store_true")
        action.add_argument("--resource-pattern-type", choices=list(PATTERNS),
                            default="literal" if name == "add" else "any")
        action.add_argument("--allow-principal", action="append", default=[], metavar="TYPE:NAME")
        action.add_argument("--deny-principal", action="append", default=[], metavar="TYPE:NAME")
        action.add_argument("--host", action="append", default=[], help="default: * (add), any (list, remove)")
        action.add_argument("--operation", action="append", default=[], choices=list(OPERATIONS))
        if name == "list":
            action.add_argument("--principal", help="only the ACLs of this principal")
        common_options(action)
    return parser


def _resource(args: argparse.Namespace) -> tuple[ResourceType, str | None]:
    if args.topic is not None:
        return ResourceType.TOPIC, args.topic
    if args.group is not None:
        return ResourceType.GROUP, args.group
    if args.transactional_id is not None:
        return ResourceType.TRANSACTIONAL_ID, args.transactional_id
    if args.cluster:
        return ResourceType.CLUSTER, CLUSTER_NAME
    return ResourceType.ANY, None


def _filters(args: argparse.Namespace) -> list[AclFilter]:
    """One filter per (principal, host, operation) asked for; None fields match anything."""
    kind, name = _resource(args)
    entries = [(p, AclPermission.ALLOW) for p in args.allow_principal] + \
              [(p, AclPermission.DENY) for p in args.deny_principal]
    if getattr(args, "principal", None):
        entries.append((args.principal, AclPermission.ANY))
    return [AclFilter(kind, name, PATTERNS[args.resource_pattern_type], principal, host, operation, permission)
            for principal, permission in entries or [(None, AclPermission.ANY)]
            for host in args.host or [None]
            for operation in [OPERATIONS[o] for o in args.operation] or [AclOperation.ANY]]


def _wire_filter(acl_filter: AclFilter) -> dict[str, Any]:
    return {"resource_type_filter": acl_filter.resource_type, "resource_name_filter": acl_filter.resource_name,
            "pattern_type_filter": acl_filter.pattern_type, "principal_filter": acl_filter.principal,
            "host_filter": acl_filter.host, "operation": acl_filter.operation,
            "permission_type": acl_filter.permission_type}


def _shown(kind: int, name: str, pattern: int, entry: Any) -> dict[str, Any]:
    return {"resource_type": ResourceType(kind).name, "resource_name": name, "pattern_type": PatternType(pattern).name,
            "principal": entry.principal, "host": entry.host, "operation": AclOperation(entry.operation).name,
            "permission": AclPermission(entry.permission_type).name}


def list_acls(cluster: Cluster, filters: list[AclFilter]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for acl_filter in filters:
        answer = cluster.bootstrap.send(ApiKey.DESCRIBE_ACLS, _wire_filter(acl_filter), lowest=1)
        check(answer.error_code, "DescribeAcls", answer.error_message)
        found += [_shown(r.resource_type, r.resource_name, r.pattern_type, acl)
                  for r in answer.resources for acl in r.acls]
    return found


def add_acls(cluster: Cluster, filters: list[AclFilter]) -> list[dict[str, Any]]:
    if any(f.principal is None for f in filters):
        raise ClientError("give the principals the ACLs are for: --allow-principal or --deny-principal")
    if any(f.operation == AclOperation.ANY for f in filters):
        raise ClientError("give the operations to allow or deny: --operation")
    creations = [{"resource_type": f.resource_type, "resource_name": f.resource_name,
                  "resource_pattern_type": f.pattern_type, "principal": f.principal, "host": f.host or "*",
                  "operation": f.operation, "permission_type": f.permission_type} for f in filters]
    answer = cluster.bootstrap.send(ApiKey.CREATE_ACLS, {"creations": creations}, lowest=1)
    for result in answer.results:
        check(result.error_code, "CreateAcls", result.error_message)
    return [{**c, "resource_type": ResourceType(c["resource_type"]).name,
             "pattern_type": PatternType(c.pop("resource_pattern_type")).name,
             "operation": AclOperation(c["operation"]).name,
             "permission": AclPermission(c.pop("permission_type")).name} for c in creations]


def remove_acls(cluster: Cluster, filters: list[AclFilter]) -> list[dict[str, Any]]:
    answer = cluster.bootstrap.send(ApiKey.DELETE_ACLS, {"filters": [_wire_filter(f) for f in filters]}, lowest=1)
    removed = []
    for result in answer.filter_results:
        check(result.error_code, "DeleteAcls", result.error_message)
        removed += [_shown(acl.resource_type, acl.resource_name, acl.pattern_type, acl) for acl in result.matching_acls]
    return removed


def _table(acls: list[dict[str, Any]]) -> None:
    output.table(None, ["RESOURCE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"], (
        [a["resource_type"], a["resource_name"], a["pattern_type"], a["principal"], a["host"], a["operation"],
         a["permission"]] for a in acls))


def run(args: argparse.Namespace, cluster: Cluster) -> int:
    filters = _filters(args)
    command = args.acls_command
    acls = (list_acls if command == "list" else add_acls if command == "add" else remove_acls)(cluster, filters)
    if args.json:
        output.emit_json(acls)
    elif command == "list":
        _table(acls)
    else:
        output.line(f"{'Added' if command == 'add' else 'Removed'} {len(acls)} ACL(s).")
        if acls:
            _table(acls)
    return 0
