"""Small scenarios for the simulator's tests: two simulated deployments, a short run."""

from __future__ import annotations

import copy
from typing import Any

from failover.simulate.scenario import Scenario

CONFIG: dict[str, Any] = {
    "providers": {
        "fast": {"kind": "simulated", "options": {"latency": "100ms", "ttft": "50ms"}},
        "slow": {"kind": "simulated", "options": {"latency": "150ms", "ttft": "80ms"}},
    },
    "routes": {
        "chat": {
            "deployments": [
                {"provider": "fast", "model": "m1", "name": "primary"},
                {"provider": "slow", "model": "m2", "name": "backup"},
            ]
        }
    },
    "defaults": {
        "breaker": {"consecutive_failures": 3, "open_for": "2s", "max_open_for": "8s"},
        "timeouts": {"attempt": "2s", "first_token": "1s", "total": "6s"},
    },
}


def scenario_data(**overrides: Any) -> dict[str, Any]:
    """A scenario as a mapping: 50 req/s for 20 s, the primary down from 5 s to 12 s."""
    data: dict[str, Any] = {
        "name": "test",
        "seed": 1,
        "load": {"rate": 50, "duration": "20s", "stream": "20%"},
        "timeline": [
            {"deployment": "primary", "start": "5s", "end": "12s", "fault": {"type": "reset"}}
        ],
        "config": copy.deepcopy(CONFIG),
    }
    data.update(overrides)
    return data


def make_scenario(**overrides: Any) -> Scenario:
    """`scenario_data(**overrides)`, validated."""
    return Scenario.model_validate(scenario_data(**overrides))


ANSWER = "one two three four five six seven eight nine ten eleven twelve"
STREAMED: dict[str, Any] = {
    **CONFIG,
    "providers": {
        name: {
            "kind": "simulated",
            "options": {"ttft": ttft, "tokens_per_second": 100, "reply": ANSWER},
        }
        for name, ttft in (("fast", "50ms"), ("slow", "80ms"))
    },
}
STREAM_LOAD: dict[str, Any] = {
    "rate": 20,
    "duration": "10s",
    "stream": "100%",
    "request": {"messages": [{"role": "user", "content": "count"}], "max_tokens": 64},
}


def cut_streams(*deployments: str, **load: Any) -> Scenario:
    """Every request streams the same twelve words from either deployment; `deployments` cut
    their streams after 4 chunks from 2 s to 6 s."""
    fault = {"type": "cut_stream", "after_chunks": 4}
    timeline = [{"deployment": d, "start": "2s", "end": "6s", "fault": fault} for d in deployments]
    return make_scenario(
        config=copy.deepcopy(STREAMED), load={**STREAM_LOAD, **load}, timeline=timeline
    )
