"""Health monitoring end to end: a real OpenAI adapter over HTTP goes down, is probed unhealthy,
is routed around, comes back, and every step shows in the Prometheus metrics and the events.

Two fake OpenAI servers (real aiohttp servers on 127.0.0.1) behind real `OpenAIAdapter`s, in a
`Router` with a `HealthChecker` and the `Observability` hub (metrics, event log). The checker's
schedule runs on a `FakeClock`: the test moves virtual time from one timer to the next and lets
each probe's real HTTP round trip finish before moving on, so nothing sleeps for real and every
time asserted below is measured on that clock. The breaker is made too lenient to ever open:
whatever keeps traffic off the sick deployment here is the health checker.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from failover import BreakerPolicy, FakeClock, RetryPolicy, Route, Router
from failover.config import HealthConfig
from failover.health import HealthChecker
from failover.observability import Observability
from failover.providers import OpenAIAdapter
from failover.transport import Transport
from fakes import Drop, FakeOpenAI
from fakes.openai_server import DEFAULT_TEXT
from fakes.server import Behaviour, Received

KEY = "sk-test-health-e2e-0c4d"
HI = {"messages": [{"role": "user", "content": "hi"}]}
BACKUP_TEXT = "Hello from the backup."

INTERVAL = 1.0
JITTER = 0.1
UNHEALTHY_AFTER = 2
HEALTHY_AFTER = 1
HEALTH = HealthConfig(
    interval=INTERVAL,
    jitter=JITTER,
    timeout=2.0,
    unhealthy_after=UNHEALTHY_AFTER,
    healthy_after=HEALTHY_AFTER,
)
# the worst case: an outage starting just after a probe, then every probe interval x (1 + jitter)
# apart; the best: a probe right after it starts, then the shortest intervals
DETECT_MAX = UNHEALTHY_AFTER * INTERVAL * (1 + JITTER)
DETECT_MIN = (UNHEALTHY_AFTER - 1) * INTERVAL * (1 - JITTER)
RECOVER_MAX = HEALTHY_AFTER * INTERVAL * (1 + JITTER)
REAL_WAIT = 5.0  # seconds of real time any one probe or request may take (localhost HTTP)


class Upstream(FakeOpenAI):
    """A fake OpenAI with an outage switch: while `outage` is set, every path answers with it
    (the models list the probe reads as much as chat completions)."""

    def __init__(self, text: str = DEFAULT_TEXT) -> None:
        super().__init__(api_key=KEY, text=text)
        self.outage: Behaviour | None = None

    def answer(self, received: Received) -> Any:
        return self.outage if self.outage is not None else super().answer(received)

    def chats(self) -> int:
        return sum(r.path.endswith("/chat/completions") for r in self.requests)

    def probes(self) -> int:
        return sum(r.method == "GET" and r.path.endswith("/models") for r in self.requests)


@dataclass
class Outage:
    behaviour: Behaviour
    kind: str  # what the probes and calls fail with


OUTAGES = {
    "503": Outage(
        FakeOpenAI.error(503, "The engine is currently overloaded.", type="server_error"),
        "overloaded",
    ),
    "drop": Outage(Drop(), "connection"),
}


class Scrape:
    """One scrape of the Prometheus exposition, parsed."""

    def __init__(self, text: bytes) -> None:
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(text.decode()):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def get(self, name: str, **labels: str) -> float:
        """The sample's value; 0 for a labelled counter child nobody has incremented yet."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def gauge(self, name: str, **labels: str) -> float:
        """A gauge's value: read from the store at every scrape, so it must be there."""
        return self.samples[(name, frozenset(labels.items()))]

    def healthy(self, deployment: str) -> float:
        return self.gauge("failover_deployment_healthy", deployment=deployment)

    def skipped_unhealthy(self, deployment: str) -> float:
        return self.get(
            "failover_skips_total", route="chat", deployment=deployment, reason="unhealthy"
        )

    def attempts(self, deployment: str, outcome: str) -> float:
        return self.get(
            "failover_attempts_total", route="chat", deployment=deployment, outcome=outcome
        )

    def probes(self, deployment: str, outcome: str) -> float:
        return self.get("failover_health_probes_total", deployment=deployment, outcome=outcome)


@dataclass
class Rig:
    clock: FakeClock
    primary: Upstream
    backup: Upstream
    router: Router
    checker: HealthChecker
    obs: Observability
    probed: asyncio.Event  # set by a probe listener whenever a probe ends

    def scrape(self) -> Scrape:
        return Scrape(self.obs.metrics_text())

    def health_events(self) -> list[dict[str, Any]]:
        return self.obs.events.recent(type="health")

    async def ask(self, times: int = 1) -> list[str]:
        """Send `times` requests; the deployment that answered each one."""
        answered = []
        for _ in range(times):
            async with asyncio.timeout(REAL_WAIT):
                reply = await self.router.complete("chat", HI)
            want = BACKUP_TEXT if reply.deployment == "backup" else DEFAULT_TEXT
            assert reply.text == want
            answered.append(reply.deployment)
        return answered

    async def probes_done(self) -> None:
        """Wait (in real time, bounded) until no probe is in flight."""
        async with asyncio.timeout(REAL_WAIT):
            while any(self._status(name)["in_flight"] for name in self.checker.names()):
                self.probed.clear()
                await self.probed.wait()

    def _status(self, name: str) -> dict[str, Any]:
        status = self.checker.status(name)
        assert status is not None
        return status

    async def next_timer(self) -> None:
        """Jump virtual time to the next timer (a probe loop waking) and let the probes it
        started finish their real HTTP round trips."""
        when = self.clock.next_deadline()
        assert when is not None, "the probe loops should always be waiting on the clock"
        await self.clock.advance(when - self.clock.now())
        await self.probes_done()

    async def run_for(self, seconds: float) -> None:
        """Let `seconds` of virtual time pass, probing as scheduled."""
        end = self.clock.now() + seconds
        while (when := self.clock.next_deadline()) is not None and when <= end:
            await self.next_timer()
        await self.clock.advance(end - self.clock.now())

    async def until_probed(self, name: str, count: int) -> None:
        """Run the clock until `name` has been probed `count` times in all."""
        for _ in range(100):
            if self._status(name)["probes"] >= count:
                return
            await self.next_timer()
        raise AssertionError(f"{name} was not probed {count} times")

    async def until_health(self, name: str, healthy: bool, *, within: float) -> float:
        """Run the clock until `name` is marked `healthy`; the virtual seconds that took."""
        started = self.clock.now()
        while self.router.store.is_healthy(name) != healthy:
            assert self.clock.now() - started <= within, (
                f"{name} not marked {'healthy' if healthy else 'unhealthy'} within {within}s"
            )
            await self.next_timer()
        return self.clock.now() - started


@pytest.fixture
async def rig(clock: FakeClock) -> AsyncIterator[Rig]:
    async with Upstream() as primary, Upstream(BACKUP_TEXT) as backup:
        transport = Transport()
        adapters = [
            OpenAIAdapter(
                model=model,
                name=name,
                api_key=KEY,
                base_url=server.base_url,
                transport=transport,
                provider_name=name,
            )
            for name, model, server in (
                ("primary", "gpt-4o", primary),
                ("backup", "gpt-4o-mini", backup),
            )
        ]
        router = Router(
            {"chat": Route(adapters)},
            clock=clock,
            retry=RetryPolicy(attempts=1),  # one call per deployment: no backoff sleeps
            # never opens: consecutive failures off, and a rate over more calls than it keeps
            breaker=BreakerPolicy(consecutive_failures=0, min_calls=1000),
        )
        checker = HealthChecker(router, HEALTH, rng=random.Random(20250101))
        obs = Observability(router, health=checker)
        probed = asyncio.Event()
        checker.listeners.append(lambda _result: probed.set())
        await obs.start()
        try:
            yield Rig(clock, primary, backup, router, checker, obs, probed)
        finally:
            await obs.stop()
            await router.aclose()
            await transport.aclose()


@pytest.mark.parametrize("outage", list(OUTAGES), ids=[f"outage-{k}" for k in OUTAGES])
async def test_down_unhealthy_avoided_recovered_back_in_rotation(rig: Rig, outage: str) -> None:
    fault = OUTAGES[outage]
    clock, primary, backup = rig.clock, rig.primary, rig.backup
    assert sorted(rig.checker.names()) == ["backup", "primary"]
    assert rig.checker.running

    # -- (a) the primary serves ---------------------------------------------------------------
    await rig.run_for(INTERVAL * JITTER)  # the first probes come within interval x jitter
    assert primary.probes() == 1 and backup.probes() == 1
    assert await rig.ask(3) == ["primary"] * 3
    assert (primary.chats(), backup.chats()) == (3, 0)
    m = rig.scrape()
    assert m.healthy("primary") == 1 and m.healthy("backup") == 1
    assert m.probes("primary", "ok") == 1 and m.probes("backup", "ok") == 1
    assert m.attempts("primary", "ok") == 3 and m.attempts("backup", "ok") == 0
    assert m.get("failover_requests_total", route="chat", outcome="ok") == 3
    assert m.get("failover_events_total", type="health") == 0
    assert rig.health_events() == []

    # -- (b) the primary goes down: unhealthy within interval x unhealthy_after (+ jitter) ---
    primary.outage = fault.behaviour
    down_at = clock.now()
    down_wall = clock.wall()
    await rig.until_probed("primary", 2)
    first_failure = clock.now() - down_at
    assert 0 < first_failure <= INTERVAL * (1 + JITTER)
    # one failed probe is not enough: still healthy, and real calls still reach the primary
    m = rig.scrape()
    assert m.probes("primary", fault.kind) == 1
    assert m.healthy("primary") == 1
    assert rig.router.store.is_healthy("primary")
    assert await rig.ask() == ["backup"]  # the primary failed the call; the backup answered it
    assert primary.chats() == 4
    m = rig.scrape()
    assert m.attempts("primary", fault.kind) == 1 and m.attempts("backup", "ok") == 1
    assert m.get("failover_failovers_total", route="chat") == 1
    assert rig.health_events() == []

    took = first_failure + await rig.until_health("primary", False, within=DETECT_MAX)
    # measured on the clock: two probes, one interval (+- jitter) apart, the first of them
    # within one interval of the outage
    assert DETECT_MIN <= took <= DETECT_MAX
    assert rig.router.store.is_healthy("backup")
    m = rig.scrape()
    assert m.healthy("primary") == 0 and m.healthy("backup") == 1
    assert m.probes("primary", fault.kind) == UNHEALTHY_AFTER
    assert m.get("failover_events_total", type="health") == 1
    [event] = rig.health_events()
    assert event["deployment"] == "primary"
    assert event["message"].startswith("primary is unhealthy after 2 failed probe(s)")
    assert event["data"]["healthy"] is False
    assert event["data"]["outcome"] == fault.kind
    assert event["data"]["failures"] == UNHEALTHY_AFTER
    assert event["at"] == pytest.approx(down_wall + took, abs=1e-6)
    status = rig.obs.status()
    [row] = [d for d in status["routes"]["chat"]["deployments"] if d["name"] == "primary"]
    assert row["healthy"] is False and row["available"] is False
    assert row["health"]["consecutive_failures"] == UNHEALTHY_AFTER
    assert row["health"]["last"]["ok"] is False
    assert status["routes"]["chat"]["state"] == "degraded"

    # -- (c) traffic avoids it: the backup answers, the primary sees no chat request --------
    chats_before = primary.chats()
    assert await rig.ask(5) == ["backup"] * 5
    probes_before = primary.probes()
    await rig.run_for(3 * INTERVAL)  # probing goes on, failing, with no new event
    assert primary.probes() >= probes_before + 2
    assert await rig.ask(5) == ["backup"] * 5
    assert primary.chats() == chats_before
    assert not rig.router.store.is_healthy("primary")
    m = rig.scrape()
    assert m.healthy("primary") == 0
    assert m.skipped_unhealthy("primary") == 10
    assert m.attempts("backup", "ok") == 11
    assert m.attempts("primary", fault.kind) == 1  # only the call made before the mark
    assert m.probes("primary", fault.kind) >= UNHEALTHY_AFTER + 2
    assert m.get("failover_events_total", type="health") == 1
    assert len(rig.health_events()) == 1
    # the breaker never moved: the health checker kept the traffic away
    assert rig.router.breaker("primary").state.value == "closed"
    assert m.gauge("failover_breaker_state", deployment="primary") == 0
    assert rig.obs.events.recent(type="breaker") == []
    assert m.get("failover_events_total", type="panic") == 0

    # -- (d) it recovers: healthy again after healthy_after passed probes --------------------
    primary.outage = None
    ok_probes = m.probes("primary", "ok")
    took = await rig.until_health("primary", True, within=RECOVER_MAX)
    assert 0 < took <= RECOVER_MAX
    m = rig.scrape()
    assert m.healthy("primary") == 1
    assert m.probes("primary", "ok") == ok_probes + HEALTHY_AFTER
    assert m.get("failover_events_total", type="health") == 2
    unhealthy, healthy = rig.health_events()
    assert unhealthy["data"]["healthy"] is False
    assert healthy["deployment"] == "primary"
    assert healthy["message"] == "primary is healthy again after 1 passed probe(s)"
    assert healthy["data"] == {"healthy": True, "outcome": "ok", "successes": HEALTHY_AFTER}
    assert healthy["id"] > unhealthy["id"]
    assert healthy["at"] == pytest.approx(clock.wall(), abs=1e-6)

    # -- (e) back in rotation: the primary answers again --------------------------------------
    assert await rig.ask(3) == ["primary"] * 3
    assert primary.chats() == chats_before + 3
    m = rig.scrape()
    assert m.attempts("primary", "ok") == 6
    assert m.attempts("backup", "ok") == 11
    assert m.get("failover_requests_total", route="chat", outcome="ok") == 3 + 1 + 10 + 3
    assert m.skipped_unhealthy("primary") == 10
    status = rig.obs.status()
    assert status["routes"]["chat"]["state"] == "ok"
    assert [e["type"] for e in status["events"]] == ["health", "health"]
