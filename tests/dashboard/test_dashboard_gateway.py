"""The dashboard of the real gateway, in headless Chromium, through a chaos outage.

`failover serve` runs as a subprocess with a config of two simulated providers; the primary's
`chaos:` fault window makes it answer 500 from CHAOS_START seconds after start-up. While a
client sends a few requests per second, the page must show both deployments CLOSED first,
then the primary OPEN (its breaker cut it off) and unhealthy (its health probes fail too),
with the breaker opening and the health mark in the events timeline, and never a console
error. Every client request must still be answered. Chromium missing is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from dashboard_harness import artifact, watch
from playwright.async_api import Browser, Page, expect
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.browser

ADMIN_KEY = "gateway-admin-key-5e1f"
CHAOS_START = 4.0  # seconds after the gateway built its router
RATE = 5.0  # client requests per second
MAX_REQUESTS = 150  # ...and never more than this, whatever happens
WAIT_MS = 12_000  # the longest any one thing may take to show on the page
HI = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}

CONFIG: dict[str, Any] = {
    "server": {"host": "127.0.0.1", "admin_key": ADMIN_KEY, "grace": "1s"},
    "providers": {
        "sim-a": {"kind": "simulated", "options": {"latency": "20ms"}},
        "sim-b": {"kind": "simulated", "options": {"latency": "30ms"}},
    },
    "routes": {
        "chat": {
            "deployments": [
                {
                    "provider": "sim-a",
                    "model": "gpt-4o",
                    "name": "primary",
                    "chaos": {
                        "faults": [{"type": "error", "status": 500, "start": "4s", "end": "60s"}]
                    },
                },
                {"provider": "sim-b", "model": "gpt-4o-mini", "name": "backup"},
            ]
        }
    },
    "defaults": {
        "retry": {"attempts": 1},
        # open after 3 failed calls in a row and stay open for the rest of the test
        "breaker": {"consecutive_failures": 3, "window": 10, "min_calls": 5, "open_for": "30s"},
        # probes every 3 s: too slow to beat the breaker (3 calls at 5/s), quick enough to
        # mark the primary unhealthy while the test watches
        "health": {"interval": "3s", "jitter": "10%", "unhealthy_after": 2, "timeout": "1s"},
        "timeouts": {"attempt": "2s", "total": "5s"},
    },
}


@dataclass
class Served:
    """A `failover serve` process and where it listens."""

    proc: subprocess.Popen[bytes]
    port: int
    started: float  # time.monotonic() just before the process was started
    stderr: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def elapsed(self) -> float:
        """Seconds since start-up: at least as long as the chaos clock has run."""
        return time.monotonic() - self.started

    def logs(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")[-4000:]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health/ready", timeout=1) as resp:
            return int(resp.status) == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Served]:
    """The gateway as an operator runs it: `failover serve --config FILE --port N`."""
    config = tmp_path / "failover.yaml"
    config.write_text(yaml.safe_dump(CONFIG, sort_keys=False), encoding="utf-8")
    cli = Path(sys.executable).with_name("failover")
    assert cli.exists(), f"the failover console script is not installed next to {sys.executable}"
    port = _free_port()
    stdout, stderr = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    with stdout.open("wb") as out, stderr.open("wb") as err:
        started = time.monotonic()
        proc = subprocess.Popen(
            [str(cli), "serve", "--config", str(config), "--port", str(port)],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    served = Served(proc, port, started, stderr)
    try:
        deadline = started + 10.0
        while not _ready(served.url):
            if proc.poll() is not None:
                pytest.fail(f"failover serve exited with {proc.returncode}:\n{served.logs()}")
            if time.monotonic() > deadline:
                pytest.fail(f"failover serve was not ready within 10 s:\n{served.logs()}")
            time.sleep(0.05)
        yield served
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # a graceful drain, as in production
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
            raise
    assert code == 0, f"failover serve exited with {code} on SIGTERM:\n{served.logs()}"


@dataclass
class Answer:
    at: float  # seconds since the gateway started
    status: int
    deployment: str | None


@dataclass
class Traffic:
    """A client sending RATE requests per second until stopped (at most MAX_REQUESTS)."""

    served: Served
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        url = f"{self.served.url}/v1/chat/completions"
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for _ in range(MAX_REQUESTS):
                if self.stop.is_set():
                    return
                sent = time.monotonic()
                try:
                    async with session.post(url, json=HI) as resp:
                        await resp.read()
                        deployment = resp.headers.get("x-failover-deployment")
                        self.answers.append(Answer(self.served.elapsed(), resp.status, deployment))
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                pause = max(0.0, 1 / RATE - (time.monotonic() - sent))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), pause)


async def admin_get(served: Served, path: str) -> Any:
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
        session.get(f"{served.url}{path}", headers=headers) as resp,
    ):
        assert resp.status == 200, f"GET {path}: {resp.status}"
        if resp.content_type == "application/json":
            return await resp.json()
        return await resp.text()


def row(page: Page, name: str) -> Any:
    return page.locator(f'[data-route="chat"] [data-deployment="{name}"]')


async def test_dashboard_shows_a_chaos_outage_on_the_real_gateway(
    browser: Browser, gateway: Served
) -> None:
    traffic = Traffic(gateway)
    client = asyncio.get_running_loop().create_task(traffic.run())
    watched = await watch(browser, viewport={"width": 1440, "height": 1000})
    page = watched.page
    try:
        await page.goto(f"{gateway.url}/dashboard/?key={ADMIN_KEY}&interval=500")

        # -- before the fault window: everything CLOSED and healthy --------------------------
        primary, backup = row(page, "primary"), row(page, "backup")
        await expect(primary.locator(".badge")).to_have_text("CLOSED", timeout=WAIT_MS)
        await expect(backup.locator(".badge")).to_have_text("CLOSED")
        seen_closed = gateway.elapsed()
        assert seen_closed < CHAOS_START, (
            f"the page took {seen_closed:.1f}s to show the deployments: the fault window "
            f"(from {CHAOS_START:g}s) had already begun"
        )
        await expect(page.locator("#overall-title")).to_have_text("All healthy")
        await expect(primary.locator('.health[data-health="up"]')).to_have_text("healthy")
        # the gateway reports its own load: nothing shed, and it says so
        shed = page.locator("#sum-shed")
        await expect(shed).to_have_text("0")
        await expect(shed.locator("..")).to_have_attribute("data-tone", "ok")
        await expect(shed.locator("..")).to_have_attribute("title", re.compile("^Not shedding"))
        assert watched.console_errors == [] and watched.page_errors == []

        # -- the outage: the primary's breaker opens, the dashboard shows it -----------------
        await expect(primary.locator('.badge[data-state="open"]')).to_have_text(
            "OPEN", timeout=WAIT_MS
        )
        seen_open = gateway.elapsed()
        assert seen_open >= CHAOS_START
        await expect(backup.locator(".badge")).to_have_text("CLOSED")
        await expect(primary.locator(".row-error")).to_contain_text("injected 500")
        await expect(page.locator("#overall-title")).to_have_text("Degraded")
        await expect(page.locator("#sum-open")).to_have_text("1")
        opened = page.locator('#events .event[data-type="breaker"]').first
        await expect(opened).to_contain_text("Breaker opened")
        await expect(opened).to_contain_text("primary")
        await expect(opened).to_contain_text("closed → open")
        await expect(opened).to_contain_text("3 consecutive failures")

        # ...and its failing health probes mark it unhealthy too
        await expect(primary.locator('.health[data-health="down"]')).to_have_text(
            "unhealthy", timeout=WAIT_MS
        )
        marked = page.locator('#events .event[data-type="health"]').first
        await expect(marked).to_contain_text("Unhealthy")
        await expect(marked).to_contain_text("primary is unhealthy after 2 failed probe(s)")
        await expect(backup.locator('.health[data-health="up"]')).to_have_text("healthy")
        await page.screenshot(path=str(artifact("dashboard-gateway-outage.png")), full_page=True)
        assert watched.console_errors == [] and watched.page_errors == []

        # -- the gateway's own APIs say the same ---------------------------------------------
        status = await admin_get(gateway, "/admin/status")
        rows = {d["name"]: d for d in status["routes"]["chat"]["deployments"]}
        assert rows["primary"]["breaker"]["state"] == "open"
        assert rows["primary"]["healthy"] is False
        assert rows["backup"]["breaker"]["state"] == "closed" and rows["backup"]["healthy"]
        assert status["routes"]["chat"]["state"] == "degraded"
        events = (await admin_get(gateway, "/admin/events"))["events"]
        breaker = [e for e in events if e["type"] == "breaker"]
        assert [(e["deployment"], e["data"]["old"], e["data"]["new"]) for e in breaker] == [
            ("primary", "closed", "open")
        ]
        health = [e for e in events if e["type"] == "health"]
        assert [(e["deployment"], e["data"]["healthy"]) for e in health] == [("primary", False)]
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(await admin_get(gateway, "/metrics"))
            for s in family.samples
        }
        assert samples[("failover_breaker_state", (("deployment", "primary"),))] == 1
        assert samples[("failover_breaker_state", (("deployment", "backup"),))] == 0
        assert samples[("failover_deployment_healthy", (("deployment", "primary"),))] == 0
        assert samples[("failover_deployment_healthy", (("deployment", "backup"),))] == 1
        opened_key = (("deployment", "primary"), ("from", "closed"), ("to", "open"))
        assert samples[("failover_breaker_transitions_total", opened_key)] == 1
        failed = (("deployment", "primary"), ("outcome", "server_error"), ("route", "chat"))
        assert samples[("failover_attempts_total", failed)] == 3
    finally:
        traffic.stop.set()
        async with asyncio.timeout(10):
            await client
        await page.context.close()

    # -- the client never noticed -----------------------------------------------------------
    assert traffic.errors == []
    assert traffic.answers, "no request was answered"
    assert [a for a in traffic.answers if a.status != 200] == []
    early = [a.deployment for a in traffic.answers if a.at < CHAOS_START]
    late = [a.deployment for a in traffic.answers if a.at >= seen_open]
    assert early and set(early) == {"primary"}, early
    assert late and set(late) == {"backup"}, late
    assert watched.console_errors == [] and watched.page_errors == []
