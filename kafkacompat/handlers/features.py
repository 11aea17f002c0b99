"""UpdateFeatures (key 57): change the cluster's finalized feature levels.

The rules live in kafkacompat/features.py; this handler turns the request
into updates and answers as Kafka's controller does: one top-level error for
the whole request (prefixed to say every feature failed), and for v0-1 a
result per feature only when the request succeeded (v2 dropped them).
v0 has no upgrade type, only `allow_downgrade`, which means a safe downgrade.
"""

from __future__ import annotations

from typing import Any

from kafkacompat.features import FeatureUpdate, UpgradeType
from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode, KafkaError

API_KEY = 57


def _upgrade_type(request: Request, update: Any) -> UpgradeType:
    if request.version == 0:
        return UpgradeType.SAFE_DOWNGRADE if update.allow_downgrade else UpgradeType.UPGRADE
    return UpgradeType.from_code(update.upgrade_type)


async def handle_update_features(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    updates = [FeatureUpdate(u.feature, u.max_version_level, _upgrade_type(request, u)) for u in body.feature_updates]
    try:
        ctx.broker.features.update(updates, validate_only=body.validate_only)
    except KafkaError as exc:
        return {"throttle_time_ms": 0, "error_code": exc.code, "results": [],
                "error_message": f"The update failed for all features since the following feature had an error: "
                                 f"{exc.message}"}
    return {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "error_message": None,
        "results": [{"feature": u.feature, "error_code": ErrorCode.NONE, "error_message": None}
                    for u in body.feature_updates],
    }


API_HANDLERS = [ApiHandler(API_KEY, handle_update_features)]
