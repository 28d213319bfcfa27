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
