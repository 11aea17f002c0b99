"""A minimal blocking Kafka client built on our own codec.

For the command-line tools (``kafkacompat groups ...``) and tests that must
speak one exact request version. It talks to a single broker, which is all
kafkacompat is.
"""

from __future__ import annotations

import socket
import struct
from typing import Any, Mapping

from kafkacompat.protocol import (
    decode_response,
    encode_request,
    encode_request_frame,
    parse_response_frame,
)

_SIZE = struct.Struct(">i")


class KafkaClient:
    """One connection; requests are sent and answered one at a time."""

    def __init__(self, bootstrap: str, client_id: str = "kafkacompat-cli", timeout_s: float = 10.0) -> None:
        host, _, port = bootstrap.rpartition(":")
        self._sock = socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s)
        self._client_id = client_id
        self._correlation_id = 0

    def _receive_exactly(self, count: int) -> bytes:
        chunks = bytearray()
        while len(chunks) < count:
            chunk = self._sock.recv(count - len(chunks))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            chunks += chunk
        return bytes(chunks)

    def send_frame(self, frame: bytes) -> None:
        """Send one complete request frame, size prefix included, as it is."""
        self._sock.sendall(frame)

    def receive_frame(self) -> bytes:
        """The next response frame, without its size prefix."""
        (size,) = _SIZE.unpack(self._receive_exactly(_SIZE.size))
        return self._receive_exactly(size)

    def request(self, api_key: int, version: int, body: Mapping[str, Any]) -> Any:
        """Send one request and return the decoded response body."""
        self._correlation_id += 1
        frame = encode_request_frame(
            api_key, version, self._correlation_id, self._client_id, encode_request(api_key, version, body)
        )
        self.send_frame(frame)
        correlation_id, response = parse_response_frame(api_key, version, self.receive_frame())
        if correlation_id != self._correlation_id:
            raise ConnectionError(f"correlation id {correlation_id} answers no request of ours")
        return decode_response(api_key, version, response)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "KafkaClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
