"""A JSON-able picture of a router right now: for /admin/status, `failover status`, the dashboard.

    {"at": 1700000000.0,
     "health": {"enabled": true, "running": true, "probe": "models", "interval_s": 15.0} | null,
     "routes": {"smart": {"strategy": "priority", "fallbacks": ["fast"], "hedge": false,
                          "state": "ok" | "degraded" | "down", "available": 2,
                          "deployments": [{...one per deployment, see `deployment_status`...}]}},
     "local": {...the process's own saturation, see `local_status`...},
     "events": [{...newest last...}]}

Every value is a plain JSON type; durations are in seconds (`_s`) or milliseconds (`_ms`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._local import LOCAL_LAG
from ..chaos import FaultInjector
from ..resilience.breaker import BreakerState
from ..route import Route
from .logs import redact
from .saturation import LAG_WINDOW

if TYPE_CHECKING:
    from ..health import HealthChecker
    from ..router import Router
    from ..state.base import BreakerLike
    from .recent import EventLog

__all__ = ["deployment_status", "local_status", "route_status", "snapshot"]


def snapshot(
    router: Router,
    health_checker: HealthChecker | None = None,
    *,
    events: EventLog | None = None,
    event_limit: int = 50,
) -> dict[str, Any]:
    """The status of every configured route and deployment, plus recent events."""
    checker = health_checker
    health = None
    if checker is not None:
        health = {
            "enabled": checker.config.enabled,
            "running": checker.running,
            "probe": checker.config.probe,
            "interval_s": checker.config.interval,
            "timeout_s": checker.config.timeout,
        }
    return {
        "at": router.clock.wall(),
        "health": health,
        "routes": {
            name: route_status(router, name, route, checker)
            for name, route in router.routes.items()
        },
        "local": local_status(router),
        "events": events.recent(event_limit) if events is not None else [],
    }


def local_status(router: Router) -> dict[str, Any]:
    """The process's own saturation: how late its event loop wakes, and how full each
    provider's connection pools are (failures during either are blamed on no deployment)."""
    lag = router.lag
    return {
        "loop_lag": {
            "sampling": lag.running,
            "lag_ms": _ms(lag.current),
            "max_ms": _ms(lag.recent(LAG_WINDOW)),
            "window_s": LAG_WINDOW,
            "threshold_ms": _ms(LOCAL_LAG),
        },
        "pools": [pool.to_dict() for pool in router.pools()],
    }


def route_status(
    router: Router, name: str, route: Route, checker: HealthChecker | None = None
) -> dict[str, Any]:
    """One route: its strategy, fallbacks, and each deployment's status."""
    deployments = [
        deployment_status(router, d.name, checker, deployment=d) for d in route.deployments
    ]
    available = sum(1 for d in deployments if d["available"])
    state = "ok" if available == len(deployments) else ("degraded" if available else "down")
    strategy = route.strategy
    return {
        "strategy": strategy if isinstance(strategy, str) else _name_of(strategy),
        "fallbacks": list(route.fallbacks),
        "hedge": route.hedge is not None,
        "state": state,
        "available": available,
        "deployments": deployments,
    }


def deployment_status(
    router: Router,
    name: str,
    checker: HealthChecker | None = None,
    *,
    deployment: object | None = None,
) -> dict[str, Any]:
    """One deployment: breaker, health, cool-down, concurrency and what its recent calls
    looked like."""
    store, now = router.store, router.clock.now()
    breaker = router.breaker(name)
    state = breaker.state
    stats = store.stats(name)
    cooldown = max(0.0, store.cooldown_until(name) - now)
    healthy = store.is_healthy(name)
    if deployment is None:
        deployment = router.deployments().get(name)
    return {
        "name": name,
        "model": getattr(deployment, "model", None),
        "breaker": _breaker(breaker, state, now),
        "healthy": healthy,
        "cooling_down": cooldown > 0,
        "cooldown_remaining_s": _round(cooldown) if cooldown > 0 else None,
        "available": healthy and cooldown <= 0 and breaker.would_admit(),
        "success_rate": _round(stats.success_rate, 4),
        "p50_ms": _ms(stats.percentile(50)),
        "p95_ms": _ms(stats.p95),
        "latency_ewma_ms": _ms(stats.latency_ewma),
        "ttft_ewma_ms": _ms(stats.ttft_ewma),
        "in_flight": stats.in_flight,
        "concurrency": _concurrency(router, name),
        "samples": stats.samples,
        "last_error": redact(stats.last_error) if stats.last_error else None,
        "health": checker.status(name) if checker is not None else None,
        "chaos": _chaos(deployment),
    }


def _concurrency(router: Router, name: str) -> dict[str, Any]:
    """The deployment's adaptive concurrency limit in this process."""
    limit = router.concurrency(name)
    return {"limit": int(limit.limit), "in_flight": limit.in_flight, "waiting": limit.waiting}


def _chaos(deployment: object) -> list[str] | None:
    """The faults injected into a deployment right now (labels), or None."""
    if isinstance(deployment, FaultInjector) and deployment.enabled:
        return [fault.label() for fault in deployment.faults]
    return None


def _breaker(breaker: BreakerLike, state: BreakerState, now: float) -> dict[str, Any]:
    out: dict[str, Any] = {"state": state.value, "open_remaining_s": None}
    if state is BreakerState.OPEN:
        out["open_remaining_s"] = _round(max(0.0, breaker.open_until - now))
    out["window_failures"], out["window_calls"] = breaker.counts()
    return out


def _name_of(strategy: object) -> str:
    return str(getattr(strategy, "__name__", type(strategy).__name__))


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 3)
