"""The admin API's cluster routes, served by every broker of a multi-broker process.

``GET /api/cluster``: the controller, each broker (alive, paused, isolated)
and each partition's leader, epoch, replicas and ISR.
``POST /api/cluster/brokers/{node_id}/{action}``: stop, kill, start, pause,
resume, isolate or heal one broker. The action runs in the cluster's own
nursery, not in this request (which may be served by the broker being
stopped): the answer, 202, says it was accepted; ``GET /api/cluster`` shows
when it is done. A broker alone answers both with 409 and why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

if TYPE_CHECKING:
    from kafkacompat.cluster.runtime import ClusterRuntime

ACTIONS = ("stop", "kill", "start", "pause", "resume", "isolate", "heal")
NOT_A_CLUSTER = ("this broker runs alone; broker actions need a multi-broker cluster "
                 "(kafkacompat serve --brokers N)")


def cluster_state(runtime: ClusterRuntime) -> dict[str, Any]:
    controller = runtime.controller
    return {
        "controller_id": controller.controller_id,
        "brokers": [{"node_id": node, "host": info.host, "port": info.port, "rack": info.rack, "alive": info.alive,
                     "paused": runtime.members[node].paused, "isolated": runtime.members[node].isolated}
                    for node, info in sorted(controller.brokers.items())],
        "partitions": [{"topic": topic, "partition": index, "leader": state.leader, "leader_epoch": state.leader_epoch,
                        "replicas": state.replicas, "isr": state.isr}
                       for (topic, index), state in sorted(controller.partitions.items())
                       if not topic.startswith("__")],
    }


class ClusterApi:
    def __init__(self, runtime: ClusterRuntime | None) -> None:
        self.runtime = runtime

    def routes(self) -> list[Route]:
        return [
            Route("/api/cluster", self.state),
            Route("/api/cluster/brokers/{node_id:int}/{action}", self.act, methods=["POST"]),
        ]

    async def state(self, request: Request) -> JSONResponse:
        if self.runtime is None:
            return JSONResponse({"error": NOT_A_CLUSTER}, status_code=409)
        return JSONResponse(cluster_state(self.runtime))

    async def act(self, request: Request) -> JSONResponse:
        if self.runtime is None:
            return JSONResponse({"error": NOT_A_CLUSTER}, status_code=409)
        node_id, action = request.path_params["node_id"], request.path_params["action"]
        if action not in ACTIONS:
            return JSONResponse({"error": f"unknown action {action!r} (one of {', '.join(ACTIONS)})"}, status_code=400)
        if node_id not in self.runtime.members:
            return JSONResponse({"error": f"broker {node_id} not found"}, status_code=404)
        self.runtime.control(node_id, action)
        return JSONResponse({"node_id": node_id, "action": action}, status_code=202)
