"""DescribeUserScramCredentials (key 50) and AlterUserScramCredentials (key 51), over the credential store.

Kafka's rules (its controller's ScramControlManager): a user named more than
once in one AlterUserScramCredentials (deletions and upsertions together) is
DUPLICATE_RESOURCE and nothing of it changes; an empty name is
UNACCEPTABLE_CREDENTIAL, an unknown mechanism UNSUPPORTED_SASL_MECHANISM,
iterations outside 4096-16384 UNACCEPTABLE_CREDENTIAL, deleting what does
not exist RESOURCE_NOT_FOUND. Upsertions arrive salted (salt and
Hi(password)); only StoredKey and ServerKey are kept. Describe with no users
named lists every user.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode
from kafkacompat.security.sasl.scram import (
    MAX_ITERATIONS,
    MECHANISM_TYPES,
    MIN_ITERATIONS,
    credential_from_salted_password,
)

API_DESCRIBE_USER_SCRAM_CREDENTIALS = 50
API_ALTER_USER_SCRAM_CREDENTIALS = 51

_MECHANISM_NAMES = {code: name for name, code in MECHANISM_TYPES.items()}


def _user_result(user: str, code: ErrorCode = ErrorCode.NONE, message: str | None = None) -> dict[str, Any]:
    return {"user": user, "error_code": code, "error_message": message}


async def handle_describe_user_scram_credentials(request: Request, ctx: RequestContext) -> dict[str, Any]:
    stored = ctx.broker.scram_credentials.described()
    named = Counter(user.name for user in request.body.users or ())
    results = []
    for user, count in (named.items() if named else ((user, 1) for user in sorted(stored))):
        infos = [{"mechanism": MECHANISM_TYPES[mechanism], "iterations": credential.iterations}
                 for mechanism, credential in sorted(stored.get(user, {}).items())]
        if count > 1:
            code = ErrorCode.DUPLICATE_RESOURCE
            message = f"Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
            infos = []
        elif not infos:
            code = ErrorCode.RESOURCE_NOT_FOUND
            message = f"Attempt to describe a user credential that does not exist: {user}"
        else:
            code, message = ErrorCode.NONE, None
        results.append({"user": user, "error_code": code, "error_message": message, "credential_infos": infos})
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "results": results}


def _name_and_mechanism_error(name: str, mechanism: int) -> tuple[ErrorCode, str] | None:
    if not name:
        return ErrorCode.UNACCEPTABLE_CREDENTIAL, "Username must not be empty"
    if mechanism not in _MECHANISM_NAMES:
        return ErrorCode.UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism"
    return None


async def handle_alter_user_scram_credentials(request: Request, ctx: RequestContext) -> dict[str, Any]:
    store = ctx.broker.scram_credentials
    body = request.body
    named = Counter([d.name for d in body.deletions] + [u.name for u in body.upsertions])
    errors: dict[str, tuple[ErrorCode, str]] = {
        user: (ErrorCode.DUPLICATE_RESOURCE, "A user credential cannot be altered twice in the same request")
        for user, count in named.items() if count > 1}
    deletions, upsertions = [], []
    for deletion in body.deletions:
        if deletion.name in errors:
            continue
        error = _name_and_mechanism_error(deletion.name, deletion.mechanism)
        mechanism = _MECHANISM_NAMES.get(deletion.mechanism, "")
        if error is None and mechanism not in store.described().get(deletion.name, {}):
            error = ErrorCode.RESOURCE_NOT_FOUND, "Attempt to delete a user credential that does not exist"
        if error is not None:
            errors[deletion.name] = error
        else:
            deletions.append((deletion.name, mechanism))
    for upsertion in body.upsertions:
        if upsertion.name in errors:
            continue
        error = _name_and_mechanism_error(upsertion.name, upsertion.mechanism)
        if error is None and upsertion.iterations < MIN_ITERATIONS:
            error = ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too few iterations"
        elif error is None and upsertion.iterations > MAX_ITERATIONS:
            error = ErrorCode.UNACCEPTABLE_CREDENTIAL, "Too many iterations"
        if error is not None:
            errors[upsertion.name] = error
            continue
        mechanism = _MECHANISM_NAMES[upsertion.mechanism]
        upsertions.append((upsertion.name, mechanism, credential_from_salted_password(
            mechanism, bytes(upsertion.salt), bytes(upsertion.salted_password), upsertion.iterations)))
    if deletions or upsertions:
        store.apply(deletions, upsertions)
    results = [_user_result(user) for user, _ in deletions] + [_user_result(user) for user, _, _ in upsertions]
    results += [_user_result(user, code, message) for user, (code, message) in errors.items()]
    return {"throttle_time_ms": 0, "results": results}


API_HANDLERS = [
    ApiHandler(API_DESCRIBE_USER_SCRAM_CREDENTIALS, handle_describe_user_scram_credentials),
    ApiHandler(API_ALTER_USER_SCRAM_CREDENTIALS, handle_alter_user_scram_credentials),
]
