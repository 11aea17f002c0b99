"""Route one request frame to its handler and frame the answer.

Kafka's rules for requests it cannot serve: an unknown API key, an
unsupported version (except ApiVersions) or a body that does not parse closes
the connection; ApiVersions with a version we do not know gets a v0 response
carrying UNSUPPORTED_VERSION and our ranges so the client can retry lower.
"""

from __future__ import annotations

import logging
from typing import Mapping

from kafkacompat.handlers import (
    api_versions,
    cluster,
    configs,
    coordinator,
    delete_records,
    fetch,
    groups,
    list_offsets,
    metadata,
    offsets,
    produce,
    producer_ids,
    topics,
)
from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext, build_registry
from kafkacompat.protocol import DecodeError, decode_request, encode_response, encode_response_frame, parse_request

log = logging.getLogger("kafkacompat.dispatch")

REGISTRY: Mapping[int, ApiHandler] = build_registry(
    [
        api_versions, metadata, produce, fetch, list_offsets, producer_ids,
        topics, configs, cluster, coordinator, groups, offsets, delete_records,
    ]
)
api_versions.use_registry(REGISTRY)


class CloseConnection(Exception):
    """The request cannot be answered; Kafka drops the connection here."""


async def dispatch(frame: bytes | memoryview, ctx: RequestContext) -> bytes | None:
    """Answer one frame (size prefix already removed); None means no response."""
    try:
        header, body_view = parse_request(frame)
    except DecodeError as exc:
        raise CloseConnection(f"unreadable request header: {exc}") from None
    handler = REGISTRY.get(header.api_key)
    if handler is None:
        raise CloseConnection(f"unknown API key {header.api_key} (version {header.api_version})")
    if not handler.supports(header.api_version):
        if header.api_key == api_versions.API_KEY:
            return encode_response_frame(header, api_versions.unsupported_version_body())
        raise CloseConnection(
            f"unsupported version {header.api_version} of API key {header.api_key}"
            f" (supported {handler.min_version}-{handler.max_version})"
        )
    try:
        body = decode_request(header.api_key, header.api_version, body_view)
    except DecodeError as exc:
        raise CloseConnection(
            f"malformed body for API key {header.api_key} v{header.api_version}: {exc}"
        ) from None
    response = await handler.handle(Request(header, body), ctx)
    if response is None:
        return None
    return encode_response_frame(header, encode_response(header.api_key, header.api_version, response))
