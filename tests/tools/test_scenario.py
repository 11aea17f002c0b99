"""Scenario files: parsed into timed steps (fault rules and broker actions), run at their times."""

from __future__ import annotations

import pytest

from kafkacompat.tools.scenario import ScenarioError, parse_scenario, run_steps

SCENARIO = """
http: http://127.0.0.1:1
steps:
  - {between: [20, 30], add: {api: Fetch, action: delay, delay_ms: 500}}
  - {at: 5s, add: {api: Produce, error: REQUEST_TIMED_OUT}}
  - {at: 15, clear: true}
"""


class FakeClient:
    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.next_id = 10

    def add(self, rule):
        self.next_id += 1
        self.calls.append(("add", rule["api"], self.next_id))
        return {"id": self.next_id}

    def remove(self, rule_id):
        self.calls.append(("remove", rule_id))

    def clear(self):
        self.calls.append(("clear",))
        return 1


def test_steps_run_in_time_order_at_their_times():
    http, steps = parse_scenario(SCENARIO)
    assert http == "http://127.0.0.1:1"
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    client = FakeClient()
    run_steps(client, steps, sleep=sleep, clock=lambda: now[0], say=lambda _: None)
    assert client.calls == [("add", "Produce", 11), ("clear",), ("add", "Fetch", 12), ("remove", 12)]
    assert slept == [5.0, 10.0, 5.0, 10.0]


@pytest.mark.parametrize("text, reason", [
    ("steps: [{at: 5, stop: two}]", "takes a broker's node id"),
    ("steps: [{at: 5, start_broker: 2}]", "expected add, clear, between or a broker action"),
    ("steps: [{at: -1, clear: true}]", "not negative"),
    ("steps: [{between: [5, 2], add: {api: Fetch}}]", "ends before it starts"),
    ("steps: [{at: 1, add: 3}]", "takes a fault rule"),
    ("steps: [{at: 1}]", "expected add, clear, between or a broker action"),
    ("nothing: here", "list of steps"),
])
def test_unusable_scenarios_are_refused_before_anything_runs(text, reason):
    with pytest.raises(ScenarioError, match=reason):
        parse_scenario(text)


class FakeCluster:
    def __init__(self, calls: list[tuple]) -> None:
        self.calls = calls

    def act(self, node_id, action):
        self.calls.append((action, node_id))


def test_broker_steps_go_to_the_cluster_in_time_order_among_fault_steps():
    _, steps = parse_scenario("""
steps:
  - {at: 5, stop: 2}
  - {at: 1, add: {api: Fetch, action: delay, delay_ms: 10}}
  - {at: 9, start: 2}
  - {at: 7, kill: 3}
""")
    client = FakeClient()
    run_steps(client, steps, sleep=lambda _: None, clock=lambda: 0.0, say=lambda _: None,
              cluster=FakeCluster(client.calls))
    assert client.calls == [("add", "Fetch", 11), ("stop", 2), ("kill", 3), ("start", 2)]
