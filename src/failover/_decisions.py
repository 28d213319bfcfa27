"""The router's decisions, as plain functions of the request's state and the failure.

Each reads the kind table (`failover.kinds`) and the route's policies and nothing else, so
each can be tested alone with a hand-built `RequestState`.
"""

from __future__ import annotations

from typing import Any

from ._request import RequestState
from .errors import ProviderError
from .kinds import Failover, Retry
from .resilience.panic import Panic
from .route import Plan
from .trace import Skip

__all__ = ["fallback_routes", "should_panic", "tries_allowed"]


def tries_allowed(plan: Plan, err: ProviderError) -> int:
    """How many calls, in all, the deployment that failed with `err` gets for one request.

    A rate limit fails over at once (its deployment is tried again only once every other
    candidate has failed too, after its cool-down: see the router's cool-down level).
    """
    retry = err.kind.policy.retry
    if retry is Retry.BACKOFF:
        return plan.retry.attempts
    if retry is Retry.ONCE:
        return min(plan.retry.attempts, 2)
    return 1


def fallback_routes(plan: Plan, err: ProviderError) -> list[str] | None:
    """The routes the request continues with after `plan` failed with `err`; None when the
    error goes back to the caller (a bad request, or a context-window or content-filter
    refusal with no fallback of its own)."""
    failover = err.kind.policy.failover
    if failover is Failover.NO:
        return None
    targets = plan.fallbacks_for(failover)
    if failover is not Failover.NEXT and not targets:
        return None
    return targets


def should_panic(state: RequestState[Any]) -> bool:
    """Nothing was called because every candidate was ruled out: by health marks or
    cool-downs (panic HEALTH), or by anything including open breakers (panic ALL)."""
    panic, trace = state.plan.panic, state.trace
    if panic is Panic.OFF or trace.calls or not trace.attempts:
        return False
    return panic is Panic.ALL or any(a.skipped is not Skip.OPEN for a in trace.attempts)
