"""Accept connections and shut down gracefully.

Two nurseries, as structured concurrency wants: the accept loop lives in one,
connections in the other. On SIGINT/SIGTERM we stop accepting, let every
connection finish the request it is serving (bounded by a drain deadline),
then flush and close the log.
"""

from __future__ import annotations

import functools
import logging
import resource
import signal
from typing import TYPE_CHECKING, Awaitable, Callable

import trio

from kafkacompat.broker import Broker
from kafkacompat.config import BrokerConfig
from kafkacompat.handlers.dispatch import REGISTRY
from kafkacompat.handlers.registry import RequestContext
from kafkacompat.log.open_files import descriptor_budget
from kafkacompat.protocol.specs import check_specs_cover
from kafkacompat.listeners import advertise, configured_endpoints
from kafkacompat.security.endpoint_security import EndpointSecurity, endpoint_security
from kafkacompat.server.connection import Connection
from kafkacompat.server.secure import secure

if TYPE_CHECKING:
    from kafkacompat.cluster.member import Member

log = logging.getLogger("kafkacompat.server")

DRAIN_DEADLINE_S = 10.0
# File descriptors kept free for the offsets journal, snapshots, checkpoints and
# fetched file slices; segment files and indexes have a budget of their own
# (kafkacompat.log.open_files), kept free too.
RESERVED_FDS = 256
REFUSAL_LOG_INTERVAL_S = 1.0


def connection_limit(configured: int) -> int:
    """Raise our fd limit as far as allowed, then cap connections below it.

    A flood of connections must be turned away by us, never by EMFILE in the
    middle of opening a segment file.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(1, min(configured, soft - RESERVED_FDS - descriptor_budget(soft)))


def _peer_host(stream: trio.SocketStream) -> str:
    try:
        return str(stream.socket.getpeername()[0])
    except OSError:
        return "?"


async def _close_after(stream: trio.SocketStream, delay_ms: int) -> None:
    """A connection over its ip's creation rate: held for the throttle time, then closed unanswered."""
    try:
        await trio.sleep(delay_ms / 1000)
    finally:
        await stream.aclose()


class Listener:
    """Owns the listening sockets and the set of live connections."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.connections: set[Connection] = set()
        self.max_frame = broker.config.get_int("socket.request.max.bytes")
        self.idle_ms = broker.config.get_int("connections.max.idle.ms")
        self.max_connections = connection_limit(broker.config.get_int("max.connections"))
        self._last_refusal_log = float("-inf")

    async def _serve_one(self, connection: Connection) -> None:
        try:
            await connection.serve()
        finally:
            self.connections.discard(connection)

    async def _accept_loop(self, listeners: list[tuple[trio.SocketListener, EndpointSecurity]],
                           conn_nursery: trio.Nursery) -> None:
        async with trio.open_nursery() as accept_nursery:
            for listener, security in listeners:
                accept_nursery.start_soon(self._accept_from, listener, security, conn_nursery)

    async def _accept_from(self, listener: trio.SocketListener, security: EndpointSecurity,
                           conn_nursery: trio.Nursery) -> None:
        secured = security.ssl_context is not None or security.endpoint.uses_sasl
        async with listener:
            while True:
                try:
                    stream = await listener.accept()
                except OSError as exc:
                    # Out of file descriptors and friends: back off, keep serving.
                    log.warning("accept failed: %s", exc)
                    await trio.sleep(0.1)
                    continue
                if len(self.connections) >= self.max_connections:
                    await self._refuse(stream)
                    continue
                peer = _peer_host(stream)
                if self.broker.quotas.active and (hold_ms := self.broker.quotas.connection_throttle_ms(peer)):
                    conn_nursery.start_soon(_close_after, stream, hold_ms)  # Kafka's per-ip connection_creation_rate
                    continue
                ctx = RequestContext(broker=self.broker, client_host=peer, listener_name=security.endpoint.name)
                opening = functools.partial(secure, security=security) if secured else None
                connection = Connection(stream, ctx, self.max_frame, self.idle_ms, opening)
                # Counted before its task starts, so a burst of accepts sees it.
                self.connections.add(connection)
                conn_nursery.start_soon(self._serve_one, connection)

    async def _refuse(self, stream: trio.SocketStream) -> None:
        now = trio.current_time()
        if now - self._last_refusal_log >= REFUSAL_LOG_INTERVAL_S:
            self._last_refusal_log = now
            log.warning("refusing connection from %s: %d connections open (max.connections)",
                        _peer_host(stream), len(self.connections))
        await stream.aclose()

    async def serve(
        self,
        listeners: list[tuple[trio.SocketListener, EndpointSecurity]],
        until: Callable[[], Awaitable[None]],
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Serve the bound listeners until ``until()`` returns, then drain."""
        async with trio.open_nursery() as conn_nursery:
            async with trio.open_nursery() as service:
                service.start_soon(self._accept_loop, listeners, conn_nursery)
                service.start_soon(self.broker.run_group_timers)
                service.start_soon(self.broker.run_log_maintenance)
                service.start_soon(self.broker.run_transaction_markers)
                task_status.started()
                await until()
                service.cancel_scope.cancel()
            log.info("shutting down: draining %d connection(s)", len(self.connections))
            for connection in list(self.connections):
                connection.drain()
            conn_nursery.cancel_scope.deadline = trio.current_time() + DRAIN_DEADLINE_S


async def serve_broker(
    config: BrokerConfig,
    until: Callable[[], Awaitable[None]],
    member: Member | None = None,
    task_status: trio.TaskStatus[Broker] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Open the broker, serve until ``until()`` returns, drain, then flush and close the log.

    Refuses to open anything when the protocol specs of a served API are
    missing (SpecError): a broker that cannot decode requests must not look
    alive. Reports the broker, its advertised address final, once listening.
    ``member``: the broker's place in a multi-broker process (cluster/runtime.py).
    """
    check_specs_cover(list(REGISTRY))
    endpoints, advertised = configured_endpoints(config)
    broker = Broker(config, member=member)
    try:
        securities = [endpoint_security(config, endpoint, broker.scram_credentials, broker.clock)
                      for endpoint in endpoints]
        listeners: list[tuple[trio.SocketListener, EndpointSecurity]] = []
        bound_endpoints, listening = [], []
        for endpoint, security in zip(endpoints, securities):
            sockets = await trio.open_tcp_listeners(endpoint.port, host=endpoint.host or None)
            bound = sockets[0].socket.getsockname()[1]
            listeners += [(socket_listener, security) for socket_listener in sockets]
            bound_endpoints.append(advertise(endpoint, bound, advertised.get(endpoint.name)))
            listening.append(str(endpoint.with_address(endpoint.host, bound)))
            if endpoint.port == 0 and endpoint.name in advertised:
                log.warning("listener %s picks a free port, yet advertises %s", endpoint.name,
                            advertised[endpoint.name])
        broker.set_advertised(bound_endpoints)
        http_listener = config.get("http.listeners")
        stopping = trio.Event()

        async def until_stopping() -> None:
            await until()
            stopping.set()

        async with trio.open_nursery() as nursery:
            listener = Listener(broker)
            await nursery.start(listener.serve, listeners, until_stopping)
            if http_listener:
                from kafkacompat.web.server import serve_http

                broker.http_port = await nursery.start(
                    serve_http, broker, lambda: len(listener.connections), http_listener, stopping.wait)
            log.info(
                "kafkacompat listening on %s (advertised %s), data in %s",
                ", ".join(listening), ", ".join(map(str, bound_endpoints)), broker.data_dir.resolve(),
            )
            task_status.started(broker)
    finally:
        broker.close()
        log.info("stopped; log flushed and closed")


async def run(config: BrokerConfig) -> None:
    """Run a broker (or, with cluster.brokers above 1, that many in this process) until SIGINT/SIGTERM."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:

        async def until_stop_signal() -> None:
            async for signum in signals:
                log.info("received %s", signal.Signals(signum).name)
                return

        if config.get_int("cluster.brokers") > 1:
            from kafkacompat.cluster.runtime import ClusterRuntime

            await ClusterRuntime(config).run(until_stop_signal)
        else:
            await serve_broker(config, until_stop_signal)
