"""The dashboard page in headless Chromium, against a real router's status."""

from __future__ import annotations

from typing import Any

import pytest
from dashboard_harness import ADMIN_KEY, FakeGateway, LiveServer, Stack, artifact, watch
from dashboard_scenario import Scenario, deployment
from playwright.async_api import Browser, Page, expect

from failover.testing import fail

pytestmark = pytest.mark.browser

WAIT_MS = 5000  # every wait is bounded: a refresh is 1 s in these tests


def row(page: Page, route: str, name: str) -> Any:
    return page.locator(f'[data-route="{route}"] [data-deployment="{name}"]')


async def polls(page: Page) -> int:
    return int(await page.evaluate("() => Number(document.documentElement.dataset.polls || 0)"))


async def next_refresh(page: Page) -> None:
    """Wait until the page has polled again (success or failure)."""
    seen = await polls(page)
    await page.wait_for_function(
        "n => Number(document.documentElement.dataset.polls) > n", arg=seen, timeout=WAIT_MS
    )


async def test_page_follows_an_outage_and_the_gateway_going_away(
    browser: Browser, stack: Stack
) -> None:
    """Deployments render; a breaker that opens shows OPEN with its event; a dead gateway
    raises the unreachable banner, and a returning one clears it."""
    await stack.send(times=3)
    watched = await watch(browser, viewport={"width": 1440, "height": 900})
    page = watched.page
    await page.goto(stack.page_url())

    sim_a = row(page, "smart", "sim-a/model")
    await expect(sim_a.locator(".badge")).to_have_text("CLOSED", timeout=WAIT_MS)
    await expect(row(page, "smart", "sim-b/model").locator(".badge")).to_have_text("CLOSED")
    await expect(row(page, "fast", "local/llama").locator(".badge")).to_have_text("CLOSED")
    await expect(page.locator("#overall-title")).to_have_text("All healthy")
    await expect(page.locator("#sum-shed").locator("..")).to_be_hidden()  # no gateway: no load
    await expect(sim_a.locator(".cell.num .val").first).to_have_text("100%")
    assert await page.title() == "All healthy · failover"
    assert watched.console_errors == [] and watched.page_errors == []

    # the outage: sim-a answers 500, its breaker opens, traffic moves to sim-b
    stack.deployments["sim-a/model"].script(fail(500, message="upstream on fire"))
    await stack.send(times=3)
    assert stack.router.breaker("sim-a/model").state.value == "open"

    badge = sim_a.locator('.badge[data-state="open"]')
    await expect(badge).to_have_text("OPEN", timeout=WAIT_MS)
    await expect(sim_a.locator(".row-error")).to_contain_text("upstream on fire")
    await expect(page.locator("#overall-title")).to_have_text("Degraded")
    await expect(page.locator("#overall-detail")).to_contain_text("1 breaker open")
    await expect(page.locator("#sum-open")).to_have_text("1")
    opened = page.locator('#events .event[data-type="breaker"]').first
    await expect(opened).to_contain_text("Breaker opened")
    await expect(opened).to_contain_text("sim-a/model")
    await expect(opened).to_contain_text("closed → open")
    await page.screenshot(path=str(artifact("dashboard-outage.png")), full_page=True)
    assert watched.console_errors == [] and watched.page_errors == []

    # the gateway goes away: a banner, the last state kept but dimmed
    await stack.server.stop()
    banner = page.locator('#banner[data-kind="unreachable"]')
    await expect(banner).to_be_visible(timeout=WAIT_MS)
    await expect(banner).to_contain_text("Gateway unreachable")
    await expect(page.locator("body")).to_have_class("stale")
    await expect(page.locator("#overall-title")).to_have_text("Gateway unreachable")
    await expect(badge).to_have_text("OPEN")  # still showing the last known state
    await page.screenshot(path=str(artifact("dashboard-unreachable.png")), full_page=True)

    # ...and comes back on the same port
    await stack.server.start()
    await expect(page.locator("#banner")).to_be_hidden(timeout=WAIT_MS)
    await expect(page.locator("#overall-title")).to_have_text("Degraded")
    assert watched.page_errors == []
    assert watched.unexpected() == []  # only the browser's own "failed to load" notices


async def test_wrong_key_asks_for_the_right_one(browser: Browser, stack: Stack) -> None:
    """A refused key raises the key banner; the key typed there is used and kept in the tab."""
    watched = await watch(browser)
    page = watched.page
    await page.goto(stack.page_url(key="wrong"))
    banner = page.locator('#banner[data-kind="auth"]')
    await expect(banner).to_be_visible(timeout=WAIT_MS)
    await expect(banner).to_contain_text("Admin key refused")
    await expect(page.locator("#key-input")).to_be_focused()

    await page.fill("#key-input", ADMIN_KEY)
    await page.press("#key-input", "Enter")
    await expect(page.locator("#banner")).to_be_hidden(timeout=WAIT_MS)
    await expect(row(page, "smart", "sim-a/model").locator(".badge")).to_have_text("CLOSED")
    stored = await page.evaluate("() => sessionStorage.getItem('failover.dashboard.key')")
    assert stored == ADMIN_KEY
    assert watched.page_errors == [] and watched.unexpected() == []


async def test_no_key_at_all_says_one_is_required(browser: Browser, stack: Stack) -> None:
    """Without a key the page asks for one instead of showing an empty dashboard."""
    watched = await watch(browser)
    await watched.page.goto(f"{stack.server.url}/dashboard")  # the bare mount redirects
    banner = watched.page.locator('#banner[data-kind="auth"]')
    await expect(banner).to_contain_text("Admin key required", timeout=WAIT_MS)
    await expect(watched.page.locator("#routes-placeholder")).to_contain_text("No data yet")
    assert watched.page_errors == [] and watched.unexpected() == []


async def test_every_breaker_state_and_an_outage(browser: Browser) -> None:
    """Each breaker state has its badge; a route with nothing left and no fallback is an outage."""
    status: dict[str, Any] = {
        "routes": {
            "mixed": {
                "strategy": "weighted",
                "fallbacks": [],
                "state": "degraded",
                "deployments": [
                    deployment("p/closed"),
                    deployment("p/half", "half_open"),
                    deployment("p/forced", "forced_open", available=False),
                    deployment("p/disabled", "disabled"),
                    deployment(
                        "p/cool", cooling_down=True, cooldown_remaining_s=4.0, available=False
                    ),
                ],
            },
            "lonely": {
                "strategy": "priority",
                "fallbacks": [],
                "state": "down",
                "deployments": [
                    deployment(
                        "q/dead",
                        "open",
                        available=False,
                        healthy=False,
                        open_remaining_s=12.0,
                        success_rate=0.2,
                    ),
                ],
            },
        },
        "events": [
            {
                "id": 1,
                "type": "panic",
                "at": 1.0e9,
                "message": "every candidate of lonely is unavailable: trying anyway",
                "route": "lonely",
                "deployment": None,
            },
        ],
    }
    server = await LiveServer(FakeGateway(lambda: status, lambda: status)).start()
    try:
        watched = await watch(browser)
        page = watched.page
        await page.goto(f"{server.url}/dashboard/?key={ADMIN_KEY}&interval=1000")
        expected = {
            "p/closed": "CLOSED",
            "p/half": "HALF-OPEN",
            "p/forced": "FORCED OPEN",
            "p/disabled": "DISABLED",
            "p/cool": "CLOSED",
        }
        for name, label in expected.items():
            await expect(row(page, "mixed", name).locator(".badge")).to_have_text(
                label, timeout=WAIT_MS
            )
        await expect(row(page, "mixed", "p/cool")).to_contain_text("cooling 4 s")
        dead = row(page, "lonely", "q/dead")
        await expect(dead.locator(".badge")).to_have_text("OPEN")
        await expect(dead).to_contain_text("probe in 12 s")
        await expect(dead).to_contain_text("unhealthy")
        await expect(dead.locator('.val[data-tone="bad"]')).to_have_text("20.0%")
        await expect(page.locator("#overall-title")).to_have_text("Outage")
        await expect(page.locator("#overall-detail")).to_contain_text("lonely has no deployment")
        await expect(page.locator('[data-route="lonely"] .route-status')).to_have_text(
            "no deployment available"
        )
        await expect(page.locator('#events .event[data-type="panic"]')).to_contain_text(
            "Panic mode"
        )
        href = await page.get_attribute("#favicon", "href")
        assert href is not None and "d64545" in href  # the tab's dot turns red
        assert watched.console_errors == [] and watched.page_errors == []
    finally:
        await server.stop()


async def test_narrow_dark_screen_stacks_without_scrolling_sideways(browser: Browser) -> None:
    """On a phone in dark mode rows become labelled cards and nothing overflows the width."""
    scenario = Scenario()
    scenario.tick = 199
    server = await LiveServer(FakeGateway(scenario.status, scenario.feed)).start()
    try:
        watched = await watch(browser, viewport={"width": 390, "height": 844}, color_scheme="dark")
        page = watched.page
        await page.goto(f"{server.url}/dashboard/?key={ADMIN_KEY}&interval=1000")
        await expect(row(page, "smart", "openai/gpt-4o").locator(".badge")).to_have_text(
            "OPEN", timeout=WAIT_MS
        )
        await next_refresh(page)
        widths = await page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert widths[0] <= widths[1]
        await expect(row(page, "smart", "openai/gpt-4o").locator(".lbl").first).to_be_visible()
        background = await page.evaluate("() => getComputedStyle(document.body).color")
        assert background != "rgb(23, 32, 43)"  # light text on the dark palette
        await page.screenshot(path=str(artifact("dashboard-phone-dark.png")), full_page=True)
        assert watched.console_errors == [] and watched.page_errors == []
    finally:
        await server.stop()


async def test_reads_the_flat_status_shape_and_lives_without_an_events_feed(
    browser: Browser,
) -> None:
    """The gateway's older flat status (deployments by name, breaker as a string) renders, and
    a gateway without /admin/events is asked for it once, not on every refresh."""
    status: dict[str, Any] = {
        "status": "ok",
        "routes": {
            "smart": {
                "strategy": "priority",
                "deployments": ["a/x", "b/y"],
                "fallbacks": [],
                "hedging": False,
            }
        },
        "deployments": {
            "a/x": {
                "model": "x",
                "breaker": "open",
                "drained": False,
                "healthy": True,
                "cooldown_s": 0.0,
                "success_rate": 0.5,
                "samples": 10,
                "in_flight": 1,
                "latency_ms": {"p50": 12.0, "p95": 30.0},
                "last_error": "boom",
            },
            "b/y": {
                "model": "y",
                "breaker": "closed",
                "drained": False,
                "healthy": True,
                "cooldown_s": 0.0,
                "success_rate": 1.0,
                "samples": 10,
                "in_flight": 0,
                "latency_ms": {"p50": 20.0, "p95": 45.0},
                "last_error": None,
            },
        },
    }
    gateway = FakeGateway(lambda: status)  # no events feed: /admin/events answers 404
    server = await LiveServer(gateway).start()
    try:
        watched = await watch(browser)
        page = watched.page
        await page.goto(f"{server.url}/dashboard/?key={ADMIN_KEY}&interval=1000")
        a = row(page, "smart", "a/x")
        await expect(a.locator(".badge")).to_have_text("OPEN", timeout=WAIT_MS)
        await expect(a).to_contain_text("12 / 30 ms")
        await expect(a.locator(".row-error")).to_contain_text("boom")
        await expect(row(page, "smart", "b/y").locator(".badge")).to_have_text("CLOSED")
        await expect(page.locator("#overall-title")).to_have_text("Degraded")
        await next_refresh(page)
        await next_refresh(page)
        assert gateway.calls.count("/admin/events") == 1
        assert gateway.calls.count("/admin/status") >= 3
        assert watched.page_errors == [] and watched.unexpected() == []
    finally:
        await server.stop()


async def test_the_gateway_shedding_its_own_load_shows(browser: Browser, stack: Stack) -> None:
    """A gateway that sheds shows how many it shed, in the warning tone, and why when asked;
    once it stops, the tile says so."""
    admission: dict[str, Any] = {
        "shedding": True,
        "shedding_for_s": 12.5,
        "smoothed_lag_ms": 138.0,
        "retry_after_s": 4.0,
        "told_to_retry": 3210,
        "line": None,
        "stream_line": {"in_flight": 430, "limit": 478},
        "shed": {"total": 12345, "by_reason": {"loop_lag": 12345}, "by_priority": {}},
    }

    report = stack.gateway.status

    def status() -> dict[str, Any]:
        return {**report(), "gateway": {"status": "ok", "admission": admission}}

    stack.gateway.status = status
    watched = await watch(browser)
    page = watched.page
    await page.goto(stack.page_url())
    shed = page.locator("#sum-shed")
    await expect(shed).to_have_text("12,345", timeout=WAIT_MS)
    tile = shed.locator("..")
    await expect(tile).to_have_attribute("data-tone", "warn")
    title = await tile.get_attribute("title")
    assert title == (
        "Shedding now for 13 s; event loop 138 ms late; 430 of at most 478 streams taken on; "
        "clients told to retry after 4 s or more; 3,210 of them not due back yet"
    )
    admission.update(shedding=False, shedding_for_s=None, smoothed_lag_ms=3.0, stream_line=None)
    await expect(tile).to_have_attribute("data-tone", "ok", timeout=WAIT_MS)
    await expect(tile).to_have_attribute("title", "Not shedding; event loop 3 ms late")
    await expect(shed).to_have_text("12,345")
    assert watched.page_errors == [] and watched.unexpected() == []


async def test_gateway_errors_are_told_apart(browser: Browser, stack: Stack) -> None:
    """A 500 from the gateway is an error banner, a 503 from a proxy means unreachable, and
    both clear once the gateway answers again."""
    watched = await watch(browser)
    page = watched.page
    await page.goto(stack.page_url())
    await expect(page.locator("#overall-title")).to_have_text("All healthy", timeout=WAIT_MS)

    stack.gateway.fail_with = 500
    banner = page.locator('#banner[data-kind="error"]')
    await expect(banner).to_contain_text("GET /admin/status answered HTTP 500", timeout=WAIT_MS)
    stack.gateway.fail_with = 503
    await expect(page.locator('#banner[data-kind="unreachable"]')).to_contain_text(
        "a proxy answered HTTP 503", timeout=WAIT_MS
    )
    stack.gateway.fail_with = None
    await expect(page.locator("#banner")).to_be_hidden(timeout=WAIT_MS)
    await expect(page.locator("#overall-title")).to_have_text("All healthy")
    assert watched.page_errors == [] and watched.unexpected() == []
