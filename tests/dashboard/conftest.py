"""Fixtures of the dashboard tests: Debian's headless Chromium (never a downloaded browser), a
real router behind a stand-in gateway, and a page that records what the console said."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from dashboard_harness import CHROMIUM, LAUNCH_ARGS, FakeGateway, LiveServer, Stack
from playwright.async_api import Browser, async_playwright

from failover import BreakerPolicy, Route, Router
from failover.observability.recent import EventLog
from failover.observability.status import snapshot
from failover.testing import ScriptedDeployment, ok


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "browser: drives the dashboard in headless Chromium at /usr/bin/chromium; "
        "fails (never skips) when it is missing",
    )


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Chromium. A missing browser is a failure: these tests must not go quiet."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the dashboard tests drive Debian's chromium package "
            "(apt-get install chromium; .ci/run installs it). They never skip.",
            pytrace=False,
        )
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    """Route "smart" (sim-a, sim-b; falls back to "fast") and "fast" (local), all answering."""
    deployments = {
        name: ScriptedDeployment(name, ok("hi", latency=latency))
        for name, latency in (
            ("sim-a/model", 0.003),
            ("sim-b/model", 0.006),
            ("local/llama", 0.002),
        )
    }
    router = Router(
        {
            "smart": Route(
                [deployments["sim-a/model"], deployments["sim-b/model"]], fallbacks=["fast"]
            ),
            "fast": Route([deployments["local/llama"]], strategy="round_robin"),
        },
        breaker=BreakerPolicy(consecutive_failures=3, open_for=60),
    )
    log = EventLog().attach(router)
    gateway = FakeGateway(lambda: snapshot(router, events=log), lambda: {"events": log.recent(100)})
    server = await LiveServer(gateway).start()
    try:
        yield Stack(router, log, deployments, gateway, server)
    finally:
        await server.stop()
        await router.aclose()
