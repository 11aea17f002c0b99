"""The thin Trio side of a secured listener: the TLS handshake, then the connection's identity.

A TLS listener's stream becomes a ``trio.SSLStream`` once the handshake
succeeds (within ``HANDSHAKE_TIMEOUT_S``); a client certificate then names the
principal (security.principal). A SASL listener's connection gets its SASL
session, which decides the principal once it authenticates. A failed
handshake is one log line with the peer's address and closes the socket.
"""

from __future__ import annotations

import logging

import trio

from kafkacompat.handlers.registry import RequestContext
from kafkacompat.security.endpoint_security import EndpointSecurity
from kafkacompat.security.principal import NoMatchingRule, ssl_principal

log = logging.getLogger("kafkacompat.security")

HANDSHAKE_TIMEOUT_S = 10.0


async def secure(stream: trio.SocketStream, ctx: RequestContext,
                 security: EndpointSecurity) -> trio.abc.Stream | None:
    """The stream requests are read from, with ``ctx`` carrying the connection's identity; None to close."""
    ctx.listener_name = security.endpoint.name
    result: trio.abc.Stream = stream
    if security.ssl_context is not None:
        tls = trio.SSLStream(stream, security.ssl_context, server_side=True)
        try:
            with trio.fail_after(HANDSHAKE_TIMEOUT_S):
                await tls.do_handshake()
            ctx.principal = ssl_principal(tls.getpeercert(binary_form=True), security.principal_mapper)
        except (trio.BrokenResourceError, trio.TooSlowError, NoMatchingRule) as exc:
            reason = exc.__cause__ or exc
            log.info("closing %s on listener %s: TLS handshake failed: %s", ctx.client_host,
                     security.endpoint.name, reason)
            return None
        result = tls
    ctx.sasl = security.new_session(ctx.broker.clock)
    return result
