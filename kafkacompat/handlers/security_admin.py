"""DescribeUserScramCredentials (key 50), answered as Kafka answers it with none configured.

There is no SCRAM credential here yet, so:
DescribeUserScramCredentials lists no users, and a user named in the request
is RESOURCE_NOT_FOUND (DUPLICATE_RESOURCE when named twice).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode

API_DESCRIBE_USER_SCRAM_CREDENTIALS = 50


async def handle_describe_user_scram_credentials(request: Request, ctx: RequestContext) -> dict[str, Any]:
    named = Counter(user.name for user in request.body.users or ())
    results = []
    for user, count in named.items():
        if count > 1:
            code = ErrorCode.DUPLICATE_RESOURCE
            message = f"Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
        else:
            code = ErrorCode.RESOURCE_NOT_FOUND
            message = f"Attempt to describe a user credential that does not exist: {user}"
        results.append({"user": user, "error_code": code, "error_message": message, "credential_infos": []})
    return {"throttle_time_ms": 0, "error_code": ErrorCode.NONE, "error_message": None, "results": results}


API_HANDLERS = [
    ApiHandler(API_DESCRIBE_USER_SCRAM_CREDENTIALS, handle_describe_user_scram_credentials),
]
