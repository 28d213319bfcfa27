"""snapshot(): the JSON document behind /admin/status, `failover status` and the dashboard."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from obs_helpers import HI, two_routes

from failover import FakeClock, Router, Timeouts
from failover.config import HealthConfig
from failover.health import HealthChecker
from failover.observability import EventLog, snapshot
from failover.testing import fail, hang, ok


def dep(status: dict[str, Any], route: str, name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [
        d for d in status["routes"][route]["deployments"] if d["name"] == name
    ]
    assert len(found) == 1
    return found[0]


async def test_lists_configured_routes_and_deployments(router: Router) -> None:
    """Every configured route appears with its deployments, strategy and fallbacks."""
    status = snapshot(router)
    assert list(status["routes"]) == ["smart", "fast"]
    smart = status["routes"]["smart"]
    assert [d["name"] for d in smart["deployments"]] == ["primary", "backup"]
    assert smart["strategy"] == "priority" and smart["fallbacks"] == ["fast"]
    assert smart["state"] == "ok" and smart["available"] == 2
    assert status["health"] is None and status["events"] == []


async def test_directly_addressed_deployments_add_no_route(router: Router) -> None:
    """Asking for a deployment by name does not add a route to the status."""
    await router.complete("backup", HI)
    assert list(snapshot(router)["routes"]) == ["smart", "fast"]


async def test_passive_signals_per_deployment(clock: FakeClock) -> None:
    """Success rate, p50/p95 and latency come from the deployment's recent calls."""
    router = two_routes(clock, primary=[ok(latency=0.1), ok(latency=0.3), fail(500)])
    async with clock.autojump():
        for _ in range(3):
            await router.complete("smart", HI)
    primary = dep(snapshot(router), "smart", "primary")
    assert primary["p50_ms"] == pytest.approx(100.0)
    assert primary["p95_ms"] == pytest.approx(300.0)
    assert primary["success_rate"] == pytest.approx(0.5)
    assert primary["samples"] == 2
    assert primary["last_error"] == "server_error: scripted failure"
    assert primary["breaker"]["state"] == "closed"


async def test_open_breaker_shows_time_remaining(clock: FakeClock) -> None:
    """An open breaker reports its state, remaining open time and window counts."""
    router = two_routes(clock, primary=[fail(401)])
    for _ in range(3):
        await router.complete("smart", HI)
    await clock.advance(10)
    status = snapshot(router)
    breaker = dep(status, "smart", "primary")["breaker"]
    assert breaker["state"] == "open"
    assert breaker["open_remaining_s"] == pytest.approx(20.0)
    assert dep(status, "smart", "primary")["available"] is False
    assert status["routes"]["smart"]["state"] == "degraded"


async def test_health_and_cooldown_are_shown(clock: FakeClock) -> None:
    """Unhealthy and cooling-down deployments are flagged; a route with none left is down."""
    router = two_routes(clock, primary=[fail(429, retry_after=5)])
    await router.complete("smart", HI)
    router.store.set_healthy("backup", False)
    status = snapshot(router)
    primary, backup = dep(status, "smart", "primary"), dep(status, "smart", "backup")
    assert primary["cooling_down"] is True and primary["cooldown_remaining_s"] == 5.0
    assert backup["healthy"] is False
    assert status["routes"]["smart"]["state"] == "down"


async def test_in_flight_calls_are_counted(clock: FakeClock) -> None:
    """A call in progress shows in the deployment's in_flight."""
    router = two_routes(clock, primary=[hang()], timeouts=Timeouts(attempt=5, total=10))
    task = asyncio.ensure_future(router.complete("smart", HI))
    await clock.advance(1)
    assert dep(snapshot(router), "smart", "primary")["in_flight"] == 1
    await clock.advance(5)
    await task


async def test_includes_recent_events_and_health(clock: FakeClock) -> None:
    """With an event log and a health checker, events and probe status are included."""
    router = two_routes(clock, primary=[fail(401)])
    events = EventLog().attach(router)
    checker = HealthChecker(router, HealthConfig(interval=5))
    await checker.check_all()
    for _ in range(3):
        await router.complete("smart", HI)
    status = snapshot(router, checker, events=events)
    assert [e["type"] for e in status["events"]] == ["breaker"]
    assert status["health"]["probe"] == "models" and status["health"]["running"] is False
    assert dep(status, "smart", "primary")["health"]["last"]["outcome"] == "ok"


async def test_is_json_serialisable(clock: FakeClock) -> None:
    """The whole snapshot survives a JSON round trip unchanged."""
    router = two_routes(clock, primary=[fail(500), ok(latency=0.2)])
    async with clock.autojump():
        await router.complete("smart", HI)
    status = snapshot(router, events=EventLog().attach(router))
    assert orjson.loads(orjson.dumps(status)) == status


async def test_last_error_is_redacted(clock: FakeClock) -> None:
    """A provider message quoting a key is masked in last_error."""
    router = two_routes(clock, primary=[fail(401, message="bad key sk-abcdefghijkl123")])
    await router.complete("smart", HI)
    assert dep(snapshot(router), "smart", "primary")["last_error"] == "auth: bad key sk-***"
