"""One client connection: read size-prefixed frames, answer them in order.

Requests are begun one at a time in arrival order, so their effects (a
Produce's appends, and its place in the next flush round) happen in that
order, as with Kafka. What an answer still waits for after that -- a
Produce's fsync -- is waited for by a writer task while the reader begins the
next request: pipelined produces on one connection then share flush rounds.
The writer sends each answer once it has settled. Answers leave in request
order. The reader pauses when ``MAX_UNSENT_ANSWERS`` answers wait to be sent,
or ``MAX_UNSENT_READY_ANSWERS`` of those that hold a response already (any but
a Produce waiting for its flush).
"""

from __future__ import annotations

import contextlib
import logging
import os
import struct
from typing import Awaitable, Callable, Iterator

import trio

from kafkacompat.handlers.dispatch import Answer, CloseConnection, begin
from kafkacompat.handlers.registry import RequestContext
from kafkacompat.log.file_slice import FileSlice
from kafkacompat.protocol import Part, part_size

log = logging.getLogger("kafkacompat.connection")

_SIZE = struct.Struct(">i")
_RECEIVE_CHUNK = 256 * 1024
# api_key + api_version + correlation_id: the least a header can be.
_MIN_FRAME = 8
# Buffers one sendmsg call may take.
_IOV_MAX = os.sysconf("SC_IOV_MAX") if hasattr(os, "sysconf") else 16
# Requests begun whose answers are not yet written. A Produce waiting for its
# flush holds no frame (its records are in the log) and answers in a few
# bytes, and the more of them wait, the fewer flush rounds a pipelining
# producer needs: up to Kafka's queued.max.requests default of those. Other
# answers may hold record sets and file descriptors: few of them.
MAX_UNSENT_ANSWERS = 500
MAX_UNSENT_READY_ANSWERS = 16


class ConnectionClosed(Exception):
    """The peer went away; nothing more to read."""


class FrameReader:
    """Buffers stream bytes and hands out whole frames."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = bytearray()

    async def _fill(self, needed: int) -> None:
        while len(self._buffer) < needed:
            chunk = await self._stream.receive_some(max(_RECEIVE_CHUNK, needed - len(self._buffer)))
            if not chunk:
                raise ConnectionClosed()
            self._buffer += chunk

    async def read_size(self) -> int:
        await self._fill(_SIZE.size)
        (size,) = _SIZE.unpack_from(self._buffer)
        return size

    async def read_frame(self, size: int) -> bytearray:
        """The frame after its size prefix; handed over without a copy when it is all that is buffered.

        That is the usual case for a large Produce, whose records the decoder
        and the log then see without copying them again.
        """
        end = _SIZE.size + size
        await self._fill(end)
        buffer = self._buffer
        if len(buffer) == end:
            self._buffer = bytearray()
            del buffer[: _SIZE.size]  # bytearray drops a prefix without moving the rest
            return buffer
        frame = buffer[_SIZE.size : end]
        del buffer[:end]
        return frame


async def send_gathered(stream: trio.SocketStream, parts: list[Part]) -> None:
    """Write a response given as parts (see protocol.response_frame_parts); every FileSlice is closed after.

    Buffers go out with sendmsg, one system call per socket-buffer-full like
    send_all, the small header travelling with the records after it. A
    record set that is a FileSlice goes with sendfile, from the page cache to
    the socket without passing through this process. (No MSG_MORE on the
    buffers before a slice: Linux then holds the tail back for 200 ms.)
    """
    sock = stream.socket
    try:
        pending: list[memoryview] = []
        for part in parts:
            if isinstance(part, FileSlice):
                await _send_buffers(sock, pending)  # empties pending
                await _send_file(sock, part)
            elif part_size(part):
                pending.append(memoryview(part).cast("B"))
        await _send_buffers(sock, pending)
    except OSError as exc:
        raise trio.BrokenResourceError(f"socket error while sending: {exc}") from exc
    finally:
        for part in parts:
            if isinstance(part, FileSlice):
                part.close()


async def send_joined(stream: trio.abc.SendStream, parts: list[Part]) -> None:
    """Write a response through a stream that wraps the socket (TLS): record sets are read, then encrypted."""
    try:
        await stream.send_all(b"".join(part.tobytes() if isinstance(part, FileSlice) else part for part in parts))
    finally:
        for part in parts:
            if isinstance(part, FileSlice):
                part.close()


async def _send_buffers(sock: trio.socket.SocketType, pending: list[memoryview]) -> None:
    while pending:
        sent = await sock.sendmsg(pending[:_IOV_MAX])
        while sent:
            if sent >= pending[0].nbytes:
                sent -= pending.pop(0).nbytes
            else:
                pending[0] = pending[0][sent:]
                sent = 0


async def _send_file(sock: trio.socket.SocketType, part: FileSlice) -> None:
    await trio.lowlevel.checkpoint_if_cancelled()
    position, remaining = part.position, part.nbytes
    while remaining:
        try:
            sent = os.sendfile(sock.fileno(), part.fileno(), position, remaining)
        except BlockingIOError:
            await trio.lowlevel.wait_writable(sock)
            continue
        if sent == 0:  # the file lost its tail under us (outside damage): the answer cannot be finished
            raise CloseConnection(f"a segment file ended {remaining} bytes short of a fetched range")
        position += sent
        remaining -= sent


@contextlib.contextmanager
def _ends_connection(peer: str) -> Iterator[None]:
    """Turn whatever ends a connection's reading or writing into one log line (or none, when the peer left)."""
    try:
        yield
    except CloseConnection as exc:
        log.warning("closing %s: %s", peer, exc)
    except (ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    except Exception:
        log.exception("closing %s: unexpected error while serving a request", peer)


class Connection:
    """Serves one socket until the peer leaves, a limit trips or the broker drains."""

    def __init__(self, stream: trio.SocketStream, ctx: RequestContext, max_frame: int, idle_ms: int,
                 opening: Callable[[trio.SocketStream, RequestContext], Awaitable[trio.abc.Stream | None]]
                 | None = None) -> None:
        self.stream: trio.abc.Stream = stream
        # A secured listener's handshake (server.secure): the stream to serve, or None to close.
        self.opening = opening
        self.ctx = ctx
        self.max_frame = max_frame
        self.idle_s = idle_ms / 1000
        self.draining = False
        # Cancelled by the listener at shutdown, only while we wait for a request.
        self.idle_scope: trio.CancelScope | None = None
        # Until when a throttled answer mutes the connection (trio time), as Kafka's quotas do.
        self.muted_until = 0.0

    def drain(self) -> None:
        """Finish the request in progress, then close; close at once if idle."""
        self.draining = True
        if self.idle_scope is not None:
            self.idle_scope.cancel()

    async def serve(self) -> None:
        try:
            if self.opening is not None:
                opened = None
                with _ends_connection(self.ctx.client_host):
                    opened = await self.opening(self.stream, self.ctx)  # type: ignore[arg-type]
                if opened is None:
                    return
                self.stream = opened
            async with trio.open_nursery() as nursery:
                answers_in, answers_out = trio.open_memory_channel(MAX_UNSENT_ANSWERS)
                ready_slots = trio.Semaphore(MAX_UNSENT_READY_ANSWERS)
                nursery.start_soon(self._write_answers, answers_out, ready_slots, nursery.cancel_scope)
                async with answers_in:  # closing it lets the writer finish what was begun
                    with _ends_connection(self.ctx.client_host):
                        await self._read_requests(answers_in, ready_slots)
        finally:
            with trio.CancelScope(shield=True):
                await self.stream.aclose()
            for name, callback in self.ctx.on_disconnect.items():
                try:
                    callback()
                except Exception:
                    log.exception("closing %s: %s cleanup failed", self.ctx.client_host, name)

    async def _read_requests(self, answers: trio.MemorySendChannel[Answer], ready_slots: trio.Semaphore) -> None:
        """Begin requests until the peer leaves, a limit trips or the broker drains.

        A Produce enlists in the next flush round as it is begun, so pipelined
        produces wait for their fsyncs together and share flush rounds.
        """
        peer = self.ctx.client_host
        reader = FrameReader(self.stream)
        while not self.draining:
            while self.muted_until > trio.current_time():  # the writer may push it on once the answer is out
                await trio.sleep_until(self.muted_until)
            with trio.move_on_after(self.idle_s) as self.idle_scope:
                size = await reader.read_size()
            waited = self.idle_scope
            self.idle_scope = None
            if waited.cancelled_caught:
                if not self.draining:
                    log.info("closing %s: idle longer than connections.max.idle.ms", peer)
                return
            if size > self.max_frame:
                log.warning(
                    "closing %s: frame of %d bytes exceeds socket.request.max.bytes %d",
                    peer, size, self.max_frame,
                )
                return
            if size < _MIN_FRAME:
                log.warning("closing %s: frame of %d bytes cannot hold a request header", peer, size)
                return
            frame = await reader.read_frame(size)
            answer = await begin(frame, self.ctx)
            if answer.mute_ms:
                self.muted_until = trio.current_time() + answer.mute_ms / 1000
            if answer.settle is None:
                await ready_slots.acquire()  # the writer gives it back once this answer is sent
            await answers.send(answer)
            if answer.close_after:
                return

    async def _write_answers(self, answers: trio.MemoryReceiveChannel[Answer], ready_slots: trio.Semaphore,
                             reading: trio.CancelScope) -> None:
        """Send answers in request order, each once it has settled; ends after the reader, or stops it."""
        send = send_gathered if isinstance(self.stream, trio.SocketStream) else send_joined
        with _ends_connection(self.ctx.client_host):
            async with answers:
                async for answer in answers:
                    parts = await answer.frame_parts()
                    if parts is not None:
                        await send(self.stream, parts)
                    if answer.mute_ms:
                        self.muted_until = trio.current_time() + answer.mute_ms / 1000
                    if answer.settle is None:
                        ready_slots.release()
        reading.cancel()
