"""ApiVersions (key 18): tells clients which APIs and versions we serve.

The ranges come from the dispatch registry, so they cannot drift from what
is actually routed. v3+ also carries the supported and finalized feature
levels (see kafkacompat/features.py).
"""

from __future__ import annotations

from typing import Any, Mapping

from kafkacompat.features import SUPPORTED
from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol import encode_response
from kafkacompat.protocol.errors import ErrorCode

API_KEY = 18

_registry: Mapping[int, ApiHandler] = {}


def use_registry(registry: Mapping[int, ApiHandler]) -> None:
    global _registry
    _registry = registry


def _api_ranges() -> list[dict[str, int]]:
    return [
        {"api_key": key, "min_version": h.min_version, "max_version": h.max_version}
        for key, h in sorted(_registry.items())
    ]


def unsupported_version_body() -> bytes:
    """The v0-layout answer to an ApiVersions version we do not know."""
    return encode_response(
        API_KEY, 0, {"error_code": ErrorCode.UNSUPPORTED_VERSION, "api_keys": _api_ranges()}
    )


async def handle_api_versions(request: Request, ctx: RequestContext) -> dict[str, Any]:
    features = ctx.broker.features
    return {
        "error_code": ErrorCode.NONE,
        "api_keys": _api_ranges(),
        "throttle_time_ms": 0,
        "supported_features": [
            {"name": name, "min_version": low, "max_version": high} for name, (low, high) in SUPPORTED.items()
        ],
        "finalized_features_epoch": features.epoch,
        "finalized_features": [
            {"name": name, "max_version_level": level, "min_version_level": level}
            for name, level in sorted(features.levels.items())
        ],
    }


API_HANDLERS = [ApiHandler(API_KEY, handle_api_versions)]
