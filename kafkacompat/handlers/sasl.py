"""SaslHandshake (key 17) and SaslAuthenticate (key 36): the broker side of a connection's SASL exchange.

The connection's SaslSession (security.sasl.session) holds the state and
decides which requests are served before authentication; these handlers
hand it the mechanism and the tokens. Where there is no session to talk to
-- a PLAINTEXT or SSL listener, or an authenticated connection without
re-authentication -- the answer is ILLEGAL_SASL_STATE, as Kafka's request
handler gives. A failed authentication is logged with the user name tried
and the client's address, never the secret.
"""

from __future__ import annotations

import logging
from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode

API_SASL_HANDSHAKE = 17
API_SASL_AUTHENTICATE = 36

log = logging.getLogger("kafkacompat.security")

_AFTER_AUTHENTICATION = "SaslAuthenticate request received after successful authentication"


async def handle_sasl_handshake(request: Request, ctx: RequestContext) -> dict[str, Any]:
    session = ctx.sasl
    if session is None or not session.reauthenticates:
        return {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "mechanisms": []}
    mechanism = request.body.mechanism
    if not session.handshake(mechanism):
        log.info("closing %s on listener %s: SASL mechanism %r not enabled", ctx.client_host, ctx.listener_name,
                 mechanism)
        return {"error_code": ErrorCode.UNSUPPORTED_SASL_MECHANISM, "mechanisms": session.enabled}
    return {"error_code": ErrorCode.NONE, "mechanisms": session.enabled}


async def handle_sasl_authenticate(request: Request, ctx: RequestContext) -> dict[str, Any]:
    session = ctx.sasl
    if session is None or session.state != "AUTHENTICATE":
        return {"error_code": ErrorCode.ILLEGAL_SASL_STATE, "error_message": _AFTER_AUTHENTICATION,
                "auth_bytes": b"", "session_lifetime_ms": 0}
    outcome = session.authenticate(bytes(request.body.auth_bytes))
    if outcome.error is not None:
        log.warning("authentication failed: user %r from %s on listener %s with %s: %s", session.attempted_user(),
                    ctx.client_host, ctx.listener_name, session.mechanism_name, outcome.error)
        return {"error_code": ErrorCode.SASL_AUTHENTICATION_FAILED, "error_message": outcome.error,
                "auth_bytes": b"", "session_lifetime_ms": 0}
    if session.principal is not None and session.state == "AUTHENTICATED":
        ctx.principal = session.principal
    return {"error_code": ErrorCode.NONE, "error_message": None, "auth_bytes": outcome.token,
            "session_lifetime_ms": outcome.session_lifetime_ms}


API_HANDLERS = [
    ApiHandler(API_SASL_HANDSHAKE, handle_sasl_handshake),
    ApiHandler(API_SASL_AUTHENTICATE, handle_sasl_authenticate),
]
