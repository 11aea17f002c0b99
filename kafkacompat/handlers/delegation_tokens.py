"""Delegation tokens (keys 38-41: Create, Renew, Expire, Describe), answered as Kafka answers
them on a listener that cannot carry them.

Kafka refuses every token request on a PLAINTEXT connection, before it looks
at whether tokens are enabled: a token must be obtained over an authenticated
channel (SASL, or TLS with a client certificate), and a token-authenticated
connection may not manage tokens either. Every listener here is PLAINTEXT,
so each request gets DELEGATION_TOKEN_REQUEST_NOT_ALLOWED; once SASL listeners
exist, Kafka's next check (no token secret configured) answers
DELEGATION_TOKEN_AUTH_DISABLED.
"""

from __future__ import annotations

from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode

API_CREATE, API_RENEW, API_EXPIRE, API_DESCRIBE = 38, 39, 40, 41
REFUSAL = ErrorCode.DELEGATION_TOKEN_REQUEST_NOT_ALLOWED
# Kafka's principal for an unauthenticated connection, which owns and requests the token.
ANONYMOUS = ("User", "ANONYMOUS")
NO_TIMESTAMP = -1


async def handle_create(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    owner = (body.owner_principal_type, body.owner_principal_name) if body.owner_principal_name else ANONYMOUS
    return {
        "error_code": REFUSAL,
        "principal_type": owner[0],
        "principal_name": owner[1],
        "token_requester_principal_type": ANONYMOUS[0],
        "token_requester_principal_name": ANONYMOUS[1],
        "issue_timestamp_ms": NO_TIMESTAMP,
        "expiry_timestamp_ms": NO_TIMESTAMP,
        "max_timestamp_ms": NO_TIMESTAMP,
        "token_id": "",
        "hmac": b"",
        "throttle_time_ms": 0,
    }


async def handle_renew_or_expire(request: Request, ctx: RequestContext) -> dict[str, Any]:
    return {"error_code": REFUSAL, "expiry_timestamp_ms": NO_TIMESTAMP, "throttle_time_ms": 0}


async def handle_describe(request: Request, ctx: RequestContext) -> dict[str, Any]:
    return {"error_code": REFUSAL, "tokens": [], "throttle_time_ms": 0}


API_HANDLERS = [
    ApiHandler(API_CREATE, handle_create),
    ApiHandler(API_RENEW, handle_renew_or_expire),
    ApiHandler(API_EXPIRE, handle_renew_or_expire),
    ApiHandler(API_DESCRIBE, handle_describe),
]
