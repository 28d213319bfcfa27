"""Helpers for the observability tests: a small router over scripted deployments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from failover import BreakerPolicy, FakeClock, RetryPolicy, Route, Router
from failover.testing import ScriptedDeployment, Step, ok

HI = {"messages": [{"role": "user", "content": "a secret prompt"}]}


def two_routes(
    clock: FakeClock,
    primary: Sequence[Step] = (),
    backup: Sequence[Step] = (),
    **kwargs: Any,
) -> Router:
    """Route "smart" (primary, backup) falling back to route "fast" (local)."""
    kwargs.setdefault("retry", RetryPolicy(attempts=2, base=0.1, max_backoff=1.0))
    kwargs.setdefault("breaker", BreakerPolicy(consecutive_failures=3, open_for=30, jitter=0))
    return Router(
        {
            "smart": Route(
                [
                    ScriptedDeployment("primary", *(primary or [ok("p")]), clock=clock),
                    ScriptedDeployment("backup", *(backup or [ok("b")]), clock=clock),
                ],
                fallbacks=["fast"],
            ),
            "fast": Route([ScriptedDeployment("local", ok("l"), clock=clock)]),
        },
        clock=clock,
        **kwargs,
    )
