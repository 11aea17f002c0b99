"""Gathered sends: a response's parts arrive as the bytes of their join, whatever the socket accepts at once."""

from __future__ import annotations

import os

import pytest
import trio

from kafkacompat.handlers.dispatch import CloseConnection
from kafkacompat.log.file_slice import FileSlice
from kafkacompat.protocol import part_size
from kafkacompat.server import connection
from kafkacompat.server.connection import send_gathered


async def receive_exactly(stream: trio.SocketStream, count: int) -> bytes:
    received = bytearray()
    while len(received) < count:
        chunk = await stream.receive_some(count - len(received))
        assert chunk, "peer closed early"
        received += chunk
    return bytes(received)


async def round_trip(parts: list) -> bytes:
    left, right = trio.socket.socketpair()
    sender, receiver = trio.SocketStream(left), trio.SocketStream(right)
    expected = sum(map(part_size, parts))
    async with sender, receiver, trio.open_nursery() as nursery:
        nursery.start_soon(send_gathered, sender, parts)
        return await receive_exactly(receiver, expected)


async def test_parts_of_every_kind_arrive_in_order():
    big = os.urandom(4 << 20)  # far more than one socket buffer: many partial sendmsg calls
    parts = [b"head", b"", bytearray(b"mid"), memoryview(big), memoryview(b"tail"), b""]
    assert await round_trip(parts) == b"head" + b"mid" + big + b"tail"


async def test_file_slices_go_by_sendfile_between_buffers_and_are_closed(tmp_path):
    content = os.urandom(3 << 20)  # more than a socket buffer: sendfile must wait for room
    path = tmp_path / "segment.log"
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    try:
        slices = [FileSlice(fd, 100, 2 << 20), FileSlice(fd, 5, 10)]
    finally:
        os.close(fd)  # as when the segment is closed before the answer is sent
    parts = [b"head", slices[0], b"mid", slices[1], b"tail"]
    received = await round_trip(parts)
    assert received == b"head" + content[100 : 100 + (2 << 20)] + b"mid" + content[5:15] + b"tail"
    for sliced in slices:
        with pytest.raises(OSError):
            os.fstat(sliced.fileno())


async def test_a_slice_past_the_end_of_its_file_closes_the_connection_with_a_reason(tmp_path):
    path = tmp_path / "segment.log"
    path.write_bytes(b"x" * 100)
    fd = os.open(path, os.O_RDONLY)
    sliced = FileSlice(fd, 50, 100)
    os.close(fd)
    left, right = trio.socket.socketpair()
    async with trio.SocketStream(left) as sender, trio.SocketStream(right):
        with pytest.raises(CloseConnection, match="50 bytes short"):
            await send_gathered(sender, [b"head", sliced])


async def test_more_parts_than_one_call_may_take(monkeypatch):
    monkeypatch.setattr(connection, "_IOV_MAX", 3)
    parts = [bytes([n]) * (n + 1) for n in range(10)]
    assert await round_trip(parts) == b"".join(parts)


async def test_a_closed_peer_is_a_broken_resource():
    left, right = trio.socket.socketpair()
    right.close()
    async with trio.SocketStream(left) as sender:
        with pytest.raises(trio.BrokenResourceError):
            await send_gathered(sender, [b"x" * 1000, b"y" * (1 << 20)])
