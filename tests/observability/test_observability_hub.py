"""`Observability`: metrics, events, logs, webhooks and health wired to one router."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from obs_helpers import HI, two_routes
from prometheus_client.parser import text_string_to_metric_families

from failover import Event, FakeClock, Router
from failover.config import HealthConfig
from failover.health import HealthChecker
from failover.observability import Observability, ObservabilityConfig
from failover.testing import fail


@pytest.fixture
async def hook_url() -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    """A webhook receiver on 127.0.0.1 and the bodies it received."""
    received: list[dict[str, object]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(orjson.loads(await request.read()))
        return web.Response()

    app = web.Application()
    app.router.add_post("/hook", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("/hook")), received
    await server.close()


async def test_everything_is_wired_to_the_router(clock: FakeClock) -> None:
    """After an outage, metrics, the event ring and the status document all show it."""
    router = two_routes(clock, primary=[fail(401)])
    obs = Observability(router)
    for _ in range(3):
        await router.complete("smart", HI)
    obs.observe_overhead(0.0001)
    families = {f.name: f for f in text_string_to_metric_families(obs.metrics_text().decode())}
    assert families["failover_requests"].samples[0].value == 3
    assert [e["type"] for e in obs.events.recent()] == ["breaker"]
    status = obs.status()
    assert status["events"][0]["deployment"] == "primary"
    assert status["routes"]["smart"]["deployments"][0]["breaker"]["state"] == "open"
    assert obs.content_type.startswith("text/plain")


async def test_config_from_yaml_shape(
    clock: FakeClock, hook_url: tuple[str, list[dict[str, object]]]
) -> None:
    """The `observability:` YAML section configures the ring and webhooks, which deliver."""
    url, received = hook_url
    config = ObservabilityConfig.model_validate(
        {
            "logs": {"level": "INFO", "format": "text"},
            "events": {"keep": 10},
            "webhooks": [{"url": url, "events": ["breaker"], "backoff": "10ms"}],
        }
    )
    router = two_routes(clock, primary=[fail(401)])
    obs = Observability(router, config)
    assert obs.events.keep == 10 and config.logs.level == "info"
    await obs.start()
    for _ in range(3):
        await router.complete("smart", HI)
    for _ in range(500):
        if received:
            break
        await asyncio.sleep(0.01)
    await obs.stop()
    assert [b["event"]["type"] for b in received] == ["breaker"]  # type: ignore[index]
    assert "failover_webhook_deliveries" in obs.metrics_text().decode()


async def test_metrics_can_be_turned_off(router: Router) -> None:
    """With metrics: false, nothing is counted and /metrics is empty."""
    obs = Observability(router, ObservabilityConfig(metrics=False))
    await router.complete("smart", HI)
    obs.observe_overhead(0.1)
    assert obs.metrics is None and obs.metrics_text() == b""


async def test_start_and_stop_run_the_health_checker(clock: FakeClock) -> None:
    """A health checker handed in is started and stopped with the rest, and its probes counted."""
    router = two_routes(clock)
    checker = HealthChecker(router, HealthConfig(interval=5, jitter=0))
    obs = Observability(router, health=checker)
    await obs.start()
    assert checker.running
    await clock.advance(0)
    await obs.stop()
    assert not checker.running
    assert "failover_health_probes_total" in obs.metrics_text().decode()
    assert obs.status()["health"]["running"] is False


async def test_event_ring_survives_a_reload(clock: FakeClock) -> None:
    """Handing the old ring to the new router's Observability keeps the history."""
    old_router = two_routes(clock, primary=[fail(401)])
    old = Observability(old_router)
    for _ in range(3):
        await old_router.complete("smart", HI)
    new_router = two_routes(clock)
    new = Observability(new_router, events=old.events)
    new_router.hooks.emit(Event("config", clock.wall(), "config reloaded"))
    assert [e["type"] for e in new.events.recent()] == ["breaker", "config"]
