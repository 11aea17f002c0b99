"""InitProducerId (key 22): producer ids and epochs for idempotent producers.

Idempotent producers (the default in kafka-python 3 and the Java client) call
this before their first produce. A producer that names its current id and
epoch (v3+, after a sequence error) gets the same id with the next epoch, so
its partitions accept a fresh sequence from 0. Transactions are not served.
"""

from __future__ import annotations

import logging
from typing import Any

from kafkacompat.handlers.registry import ApiHandler, Request, RequestContext
from kafkacompat.protocol.errors import ErrorCode

log = logging.getLogger("kafkacompat.producer_ids")

API_KEY = 22
MAX_EPOCH = 32767


async def handle_init_producer_id(request: Request, ctx: RequestContext) -> dict[str, Any]:
    body = request.body
    if body.transactional_id is not None:
        log.info("refusing transactional producer %r: transactions are not supported", body.transactional_id)
        return {"error_code": ErrorCode.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, "producer_id": -1, "producer_epoch": -1}
    producer_id = getattr(body, "producer_id", -1)
    epoch = getattr(body, "producer_epoch", -1)
    if request.version >= 3 and producer_id >= 0 and 0 <= epoch < MAX_EPOCH:
        return {"error_code": ErrorCode.NONE, "producer_id": producer_id, "producer_epoch": epoch + 1}
    return {
        "throttle_time_ms": 0,
        "error_code": ErrorCode.NONE,
        "producer_id": ctx.broker.log_manager.allocate_producer_id(),
        "producer_epoch": 0,
    }


API_HANDLERS = [ApiHandler(API_KEY, handle_init_producer_id)]
