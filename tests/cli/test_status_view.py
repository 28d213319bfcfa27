"""`failover status`: the terminal view, against a canned /admin/status on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from click.testing import CliRunner, Result
from rich.console import Console

from failover import FakeClock
from failover.cli.status_view import render_status, status_command
from failover.observability import EventLog, snapshot
from failover.testing import fail, ok
from observability.obs_helpers import HI, two_routes


class Gateway:
    """Serves `status` at /admin/status, and checks the admin key when one is set."""

    def __init__(self) -> None:
        self.status: dict[str, Any] = {}
        self.admin_key: str | None = None
        self.seen_auth: list[str | None] = []
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization")
        self.seen_auth.append(auth)
        if self.admin_key is not None and auth != f"Bearer {self.admin_key}":
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response(self.status)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("")).rstrip("/")


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    """A stand-in gateway on a random port of 127.0.0.1."""
    fake = Gateway()
    app = web.Application()
    app.router.add_get("/admin/status", fake.handle)
    fake.server = TestServer(app, host="127.0.0.1")
    await fake.server.start_server()
    yield fake
    await fake.server.close()


async def run(*args: str) -> Result:
    """Run the command in a thread, so the test's loop keeps serving."""
    runner = CliRunner(env={"COLUMNS": "200", "FAILOVER_ADMIN_KEY": None})
    return await asyncio.to_thread(runner.invoke, status_command, list(args))


async def outage_status(clock: FakeClock) -> dict[str, Any]:
    router = two_routes(clock, primary=[fail(401, message="invalid api key")])
    events = EventLog().attach(router)
    for _ in range(3):
        await router.complete("smart", HI)
    router.store.set_healthy("local", False)
    return snapshot(router, events=events)


async def test_once_prints_routes_states_and_errors(gateway: Gateway, clock: FakeClock) -> None:
    """--once prints each route and deployment with breaker, health and last error."""
    gateway.status = await outage_status(clock)
    result = await run("--url", gateway.url, "--once")
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ("smart", "fast", "primary", "backup", "local", "degraded", "down"):
        assert text in out
    assert "open 30s" in out
    assert "unhealthy" in out
    assert "auth: invalid api key" in out
    assert "recent events" in out and "closed -> open" in out


async def test_latency_and_success_columns(gateway: Gateway, clock: FakeClock) -> None:
    """p50/p95 and success rate are shown per deployment."""
    router = two_routes(clock, primary=[ok(latency=0.12)])
    async with clock.autojump():
        await router.complete("smart", HI)
    gateway.status = snapshot(router)
    result = await run("--url", gateway.url, "--once")
    assert "120ms" in result.stdout and "100.0%" in result.stdout


async def test_admin_key_is_sent_as_bearer(gateway: Gateway, clock: FakeClock) -> None:
    """--admin-key goes in an Authorization: Bearer header."""
    gateway.status = await outage_status(clock)
    gateway.admin_key = "adm1n"
    result = await run("--url", gateway.url, "--admin-key", "adm1n", "--once")
    assert result.exit_code == 0
    assert gateway.seen_auth == ["Bearer adm1n"]


async def test_rejected_admin_key_is_explained(gateway: Gateway) -> None:
    """A 401 says the admin key was refused and how to pass one, and exits 1."""
    gateway.admin_key = "adm1n"
    result = await run("--url", gateway.url, "--once")
    assert result.exit_code == 1
    assert "refused the admin key (HTTP 401)" in result.stderr
    assert "--admin-key" in result.stderr


async def test_unreachable_gateway_is_a_clear_message() -> None:
    """With nothing listening, --once says the gateway cannot be reached and exits 1."""
    result = await run("--url", "http://127.0.0.1:9", "--once")
    assert result.exit_code == 1
    assert "cannot reach the gateway at http://127.0.0.1:9" in result.stderr


async def test_not_a_status_document(gateway: Gateway) -> None:
    """A server that answers something else is reported, not crashed on."""
    gateway.status = {"hello": "world"}
    result = await run("--url", gateway.url, "--once")
    assert result.exit_code == 1
    assert "did not answer a failover status" in result.stderr


def test_render_without_routes() -> None:
    """A gateway with no routes renders a notice instead of empty tables."""
    console = Console(width=100, record=True)
    console.print(render_status({"at": 1.0, "routes": {}, "events": []}, "http://x"))
    assert "no routes configured" in console.export_text()


def test_render_reads_the_flat_shape_too() -> None:
    """Deployments listed by name with details in a top-level map (breaker as a string) render."""
    data = {
        "at": 1.0,
        "routes": {"smart": {"strategy": "priority", "deployments": ["openai/gpt-4o"]}},
        "deployments": {
            "openai/gpt-4o": {
                "breaker": "open",
                "healthy": True,
                "cooldown_s": 4.0,
                "latency_ms": {"p50": 812.0, "p95": 1490.0},
                "success_rate": 0.5,
                "last_error": "server_error: 502",
            }
        },
    }
    console = Console(width=160, record=True)
    console.print(render_status(data, "http://x"))
    text = console.export_text()
    for shown in ("openai/gpt-4o", "open", "cooling 4s", "812ms", "1490ms", "50.0%", "502"):
        assert shown in text


def test_render_shows_the_gateways_own_load() -> None:
    """The gateway's admission is a line of its own: shedding or not, how much, how late its
    loop runs and what each line holds; a status without it (a bare router) shows none."""
    admission = {
        "shedding": True,
        "shedding_for_s": 12.4,
        "smoothed_lag_ms": 138.0,
        "retry_after_s": 4.0,
        "told_to_retry": 3210,
        "line": None,
        "stream_line": {"in_flight": 430, "limit": 478},
        "shed": {"total": 12345},
    }
    data = {"at": 1.0, "routes": {}, "events": [], "gateway": {"admission": admission}}
    console = Console(width=160, record=True)
    console.print(render_status(data, "http://x"))
    text = console.export_text()
    assert (
        "gateway  shedding for 12s · 12,345 shed · event loop 138ms late · "
        "430/478 streams (line) · retry after 4s+ (3,210 not due back yet)"
    ) in text
    admission.update(shedding=False, smoothed_lag_ms=3.0, stream_line=None)
    console = Console(width=160, record=True)
    console.print(render_status(data, "http://x"))
    assert "gateway  not shedding · 12,345 shed · event loop 3.0ms late" in console.export_text()
    console = Console(width=160, record=True)
    console.print(render_status({"at": 1.0, "routes": {}, "events": []}, "http://x"))
    assert "shed" not in console.export_text()
