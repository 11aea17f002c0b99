"""DescribeAcls (key 29), CreateAcls (key 30) and DeleteAcls (key 31).

Without an authorizer (``authorizer.class.name`` empty) Kafka has no ACLs to
show or change: every answer carries SECURITY_DISABLED. With one, the ACLs
live in its durable store. Who may call these (DESCRIBE, resp. ALTER, on the
cluster) is decided at the dispatch checkpoint, like every other check.
"""

from __future__ import annotations

from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.security.authorizer import AclBinding, AclFilter, PatternType, invalid_binding

API_DESCRIBE_ACLS = 29
API_CREATE_ACLS = 30
API_DELETE_ACLS = 31
NO_AUTHORIZER = "No Authorizer is configured on the broker"
FIRST_PATTERN_TYPE_VERSION = 1  # v0 knows only LITERAL patterns


def _filter(entry: Any, version: int) -> AclFilter:
    pattern = entry.pattern_type_filter if version >= FIRST_PATTERN_TYPE_VERSION else PatternType.LITERAL
    return AclFilter(entry.resource_type_filter, entry.resource_name_filter, pattern, entry.principal_filter,
                     entry.host_filter, entry.operation, entry.permission_type)


def _entry(acl: AclBinding) -> dict[str, Any]:
    return {"principal": acl.principal, "host": acl.host, "operation": acl.operation,
            "permission_type": acl.permission_type}


async def handle_describe_acls(request: Request, ctx: RequestContext) -> dict[str, Any]:
    authorizer = ctx.broker.authorizer
    if authorizer is None:
        return {"throttle_time_ms": 0, "error_code": ErrorCode.SECURITY_DISABLED, "error_message": NO_AUTHORIZER,
                "resources": []}
    acl_filter = _filter(request.body, request.version)
    if acl_filter.unknown_element():
        return {"throttle_time_ms": 0, "error_code": ErrorCode.INVALID_REQUEST,
                "error_message": "The filter contains UNKNOWN elements", "resources": []}
    by_pattern: dict[tuple[int, str, int], list[AclBinding]] = {}
    for acl in sorted(authorizer.store.matching(acl_filter), key=_order):
        by_pattern.setdefault((acl.resource_type, acl.resource_name, acl.pattern_type), []).append(acl)
    resources = [{"resource_type": kind, "resource_name": name, "pattern_type": pattern,
                  "acls": [_entry(acl) for acl in acls]}
                 for (kind, name, pattern), acls in by_pattern.items()]
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "resources": resources}


def _order(acl: AclBinding) -> tuple[Any, ...]:
    return (acl.resource_type, acl.resource_name, acl.pattern_type, acl.principal, acl.host, acl.operation,
            acl.permission_type)


async def handle_create_acls(request: Request, ctx: RequestContext) -> dict[str, Any]:
    authorizer = ctx.broker.authorizer
    results: list[dict[str, Any]] = []
    valid: list[AclBinding] = []
    for creation in request.body.creations:
        pattern = creation.resource_pattern_type if request.version >= FIRST_PATTERN_TYPE_VERSION else PatternType.LITERAL
        acl = AclBinding(creation.resource_type, creation.resource_name, pattern, creation.principal,
                         creation.host, creation.operation, creation.permission_type)
        reason = NO_AUTHORIZER if authorizer is None else invalid_binding(acl)
        if reason is None:
            valid.append(acl)
            results.append({"error_code": ErrorCode.NONE, "error_message": None})
        else:
            code = ErrorCode.SECURITY_DISABLED if authorizer is None else ErrorCode.INVALID_REQUEST
            results.append({"error_code": code, "error_message": reason})
    if authorizer is not None:
        authorizer.store.add(valid)
    return {"throttle_time_ms": 0, "results": results}


async def handle_delete_acls(request: Request, ctx: RequestContext) -> dict[str, Any]:
    authorizer = ctx.broker.authorizer
    results = []
    for entry in request.body.filters:
        if authorizer is None:
            results.append({"error_code": ErrorCode.SECURITY_DISABLED, "error_message": NO_AUTHORIZER,
                            "matching_acls": []})
            continue
        acl_filter = _filter(entry, request.version)
        if acl_filter.unknown_element():
            results.append({"error_code": ErrorCode.INVALID_REQUEST,
                            "error_message": "The filter contains UNKNOWN elements", "matching_acls": []})
            continue
        deleted = sorted(authorizer.store.remove(acl_filter), key=_order)
        results.append({"error_code": ErrorCode.NONE, "error_message": None, "matching_acls": [
            {"error_code": ErrorCode.NONE, "error_message": None, "resource_type": acl.resource_type,
             "resource_name": acl.resource_name, "pattern_type": acl.pattern_type, **_entry(acl)}
            for acl in deleted]})
    return {"throttle_time_ms": 0, "filter_results": results}


API_HANDLERS = [
    ApiHandler(API_DESCRIBE_ACLS, handle_describe_acls),
    ApiHandler(API_CREATE_ACLS, handle_create_acls),
    ApiHandler(API_DELETE_ACLS, handle_delete_acls),
]
