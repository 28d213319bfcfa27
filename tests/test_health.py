"""The active health checker: thresholds, jitter, timeouts, no pile-up, events, breakers."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from failover import (
    BreakerState,
    Event,
    FakeClock,
    Kind,
    MemoryStore,
    Route,
    Router,
)
from failover.config import HealthConfig
from failover.errors import error_for
from failover.health import HealthChecker
from failover.openai_shapes import completion_from_text
from failover.resilience.breaker import Result
from failover.testing import ScriptedDeployment, ok
from failover.types import BaseDeployment, Completion, Request

HI = {"messages": [{"role": "user", "content": "hi"}]}


class Probed(BaseDeployment):
    """A deployment whose probes follow a script: "ok", a Kind to raise, "hang", or a latency."""

    def __init__(self, name: str, clock: FakeClock, *script: Any) -> None:
        self.name = name
        self.model = name
        self.clock = clock
        self.script: list[Any] = list(script) or ["ok"]
        self.starts: list[float] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.completions: list[Request] = []

    def then(self, *script: Any) -> None:
        """Replace the script from the next probe on."""
        self.script = list(script)
        self._offset = len(self.starts)

    _offset = 0

    async def probe(self) -> None:
        step = self.script[min(len(self.starts) - self._offset, len(self.script) - 1)]
        self.starts.append(self.clock.now())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if step == "hang":
                await self.clock.sleep(1e9)
            elif isinstance(step, int | float):
                await self.clock.sleep(step)
            elif isinstance(step, Kind):
                raise error_for(step, f"probe says {step.value}")
            elif isinstance(step, Exception):
                raise step
        finally:
            self.in_flight -= 1

    async def complete(self, request: Request) -> Completion:
        self.completions.append(request)
        return completion_from_text("p", model=self.name)

    def stream(self, request: Request) -> Any:
        raise NotImplementedError


def checker_for(
    clock: FakeClock, *deployments: Any, events: list[Event] | None = None, **config: Any
) -> tuple[HealthChecker, Router]:
    router = Router({"chat": Route(list(deployments))}, clock=clock)
    if events is not None:
        router.hooks.event.append(events.append)
    settings: dict[str, Any] = {"interval": 10.0, "timeout": 2.0, "jitter": 0.0}
    settings.update(config)
    checker = HealthChecker(router, HealthConfig(**settings), rng=random.Random(7))
    return checker, router


async def run_for(clock: FakeClock, checker: HealthChecker, seconds: float) -> None:
    await checker.start()
    await clock.advance(0)
    await clock.advance(seconds)


async def test_unhealthy_after_consecutive_failures(clock: FakeClock) -> None:
    """A deployment is marked unhealthy only once `unhealthy_after` probes in a row failed."""
    dep = Probed("a", clock, Kind.SERVER_ERROR)
    checker, router = checker_for(clock, dep, unhealthy_after=3)
    await run_for(clock, checker, 15)  # probes at 0 and 10
    assert router.store.is_healthy("a")
    await clock.advance(10)  # third failure at 20
    assert not router.store.is_healthy("a")
    await checker.stop()


async def test_healthy_again_after_consecutive_successes(clock: FakeClock) -> None:
    """An unhealthy deployment comes back after `healthy_after` passed probes in a row."""
    dep = Probed("a", clock, Kind.CONNECTION)
    checker, router = checker_for(clock, dep, unhealthy_after=1, healthy_after=2)
    await run_for(clock, checker, 1)
    assert not router.store.is_healthy("a")
    dep.then("ok")
    await clock.advance(10)
    assert not router.store.is_healthy("a")
    await clock.advance(10)
    assert router.store.is_healthy("a")
    await checker.stop()


async def test_a_pass_between_failures_resets_the_count(clock: FakeClock) -> None:
    """Failures must be consecutive: a passed probe in between starts the count again."""
    dep = Probed("a", clock, Kind.SERVER_ERROR, "ok", Kind.SERVER_ERROR, "ok")
    checker, router = checker_for(clock, dep, unhealthy_after=2)
    await run_for(clock, checker, 35)
    assert len(dep.starts) == 4
    assert router.store.is_healthy("a")
    await checker.stop()


async def test_rate_limited_probe_does_not_count_as_unhealthy(clock: FakeClock) -> None:
    """A 429 from a probe proves the deployment is up: it never marks it unhealthy."""
    dep = Probed("a", clock, Kind.RATE_LIMITED)
    checker, router = checker_for(clock, dep, unhealthy_after=1)
    await run_for(clock, checker, 45)
    assert len(dep.starts) == 5
    assert router.store.is_healthy("a")
    last = checker.last("a")
    assert last is not None and last.ok is None and last.kind is Kind.RATE_LIMITED
    await checker.stop()


async def test_probe_timeout_counts_as_failure(clock: FakeClock) -> None:
    """A probe that does not answer within `timeout` fails with kind timeout."""
    dep = Probed("a", clock, "hang")
    checker, router = checker_for(clock, dep, unhealthy_after=1, timeout=2.0)
    await run_for(clock, checker, 2.5)
    assert not router.store.is_healthy("a")
    last = checker.last("a")
    assert last is not None and last.kind is Kind.TIMEOUT
    assert last.latency == pytest.approx(2.0)
    await checker.stop()


async def test_interval_jitter_stays_within_bounds(clock: FakeClock) -> None:
    """Gaps between probe starts are uniform in interval * (1 +- jitter), and do vary."""
    dep = Probed("a", clock, "ok")
    checker, _ = checker_for(clock, dep, interval=10.0, jitter=0.2)
    await run_for(clock, checker, 1000)
    gaps = [b - a for a, b in zip(dep.starts, dep.starts[1:], strict=False)]
    assert len(gaps) > 60
    assert all(8.0 - 1e-9 <= gap <= 12.0 + 1e-9 for gap in gaps)
    assert max(gaps) - min(gaps) > 2.0
    await checker.stop()


async def test_first_probe_waits_at_most_the_jitter(clock: FakeClock) -> None:
    """The first probe starts within interval * jitter of start(), spreading probes out."""
    deps = [Probed(f"d{i}", clock, "ok") for i in range(5)]
    checker, _ = checker_for(clock, *deps, interval=10.0, jitter=0.3)
    start = clock.now()
    await run_for(clock, checker, 3.01)
    firsts = [d.starts[0] - start for d in deps]
    assert all(0 <= t <= 3.0 for t in firsts)
    assert len(set(firsts)) > 1
    await checker.stop()


async def test_slow_probe_is_never_overlapped(clock: FakeClock) -> None:
    """A probe slower than the interval delays the next one: one in flight at a time."""
    dep = Probed("a", clock, 3.0)
    checker, router = checker_for(clock, dep, interval=1.0, timeout=10.0)
    await run_for(clock, checker, 10)
    assert dep.max_in_flight == 1
    assert dep.starts == [pytest.approx(t) for t in (1000, 1003, 1006, 1009)]
    assert router.store.is_healthy("a")
    await checker.stop()


async def test_hung_probe_is_retried_only_after_its_timeout(clock: FakeClock) -> None:
    """A hung probe is not started again before its timeout has ended it."""
    dep = Probed("a", clock, "hang")
    checker, _ = checker_for(clock, dep, interval=1.0, timeout=5.0)
    await run_for(clock, checker, 12)
    assert dep.max_in_flight == 1
    assert dep.starts == [pytest.approx(t) for t in (1000, 1005, 1010)]
    await checker.stop()


async def test_passed_probe_half_opens_an_open_breaker(clock: FakeClock) -> None:
    """A passed probe lets an OPEN breaker go HALF_OPEN before open_for is up."""
    dep = Probed("a", clock, "ok")
    checker, router = checker_for(clock, dep)
    breaker = router.breaker("a")
    for _ in range(3):
        permit = await breaker.acquire()
        assert permit is not None
        await breaker.release(permit, Result.FAILURE)
    assert breaker.state is BreakerState.OPEN
    await run_for(clock, checker, 1)
    assert breaker.state is BreakerState.HALF_OPEN
    await checker.stop()


async def test_health_events_only_on_changes(clock: FakeClock) -> None:
    """One "health" event per healthy <-> unhealthy change, none for repeated probes."""
    events: list[Event] = []
    dep = Probed("a", clock, Kind.SERVER_ERROR)
    checker, _ = checker_for(clock, dep, events=events, unhealthy_after=2)
    await run_for(clock, checker, 45)
    dep.then("ok")
    await clock.advance(30)
    health = [e for e in events if e.type == "health"]
    assert [e.data["healthy"] for e in health] == [False, True]
    assert health[0].deployment == "a"
    assert health[0].data["outcome"] == "server_error"
    assert "unhealthy" in health[0].message
    await checker.stop()


async def test_canary_probe_sends_a_one_token_completion(clock: FakeClock) -> None:
    """With probe: canary, the checker sends a tiny chat request instead of calling probe()."""
    dep = Probed("a", clock, Kind.SERVER_ERROR)
    checker, router = checker_for(clock, dep, probe="canary", unhealthy_after=1)
    await run_for(clock, checker, 1)
    assert dep.starts == []
    assert dep.completions[0]["max_tokens"] == 1
    assert router.store.is_healthy("a")
    await checker.stop()


async def test_stop_ends_every_probe_loop(clock: FakeClock) -> None:
    """After stop(), no probe starts again, and a probe in flight is cancelled."""
    dep = Probed("a", clock, 5.0)
    checker, _ = checker_for(clock, dep, interval=1.0, timeout=10.0)
    await run_for(clock, checker, 1)
    assert dep.in_flight == 1
    await checker.stop()
    await clock.advance(100)
    assert len(dep.starts) == 1 and dep.in_flight == 0
    assert not checker.running


async def test_unexpected_exception_counts_as_failure(clock: FakeClock) -> None:
    """A probe raising something other than a ProviderError fails, and probing goes on."""
    dep = Probed("a", clock, RuntimeError("bug in adapter"))
    checker, router = checker_for(clock, dep, unhealthy_after=2)
    await run_for(clock, checker, 25)
    assert len(dep.starts) == 3
    assert not router.store.is_healthy("a")
    last = checker.last("a")
    assert last is not None and "bug in adapter" in last.message
    await checker.stop()


async def test_failing_listener_does_not_stop_probing(clock: FakeClock) -> None:
    """A probe listener that raises is logged, and the loop keeps probing."""
    dep = Probed("a", clock, "ok")
    checker, _ = checker_for(clock, dep)

    def broken(result: object) -> None:
        raise ValueError("listener bug")

    checker.listeners.append(broken)
    await run_for(clock, checker, 25)
    assert len(dep.starts) == 3
    await checker.stop()


async def test_disabled_checker_never_probes(clock: FakeClock) -> None:
    """With enabled: false, start() starts nothing."""
    dep = Probed("a", clock, "ok")
    checker, _ = checker_for(clock, dep, enabled=False)
    await run_for(clock, checker, 100)
    assert dep.starts == [] and not checker.running
    await checker.stop()


async def test_check_waits_for_a_probe_in_flight(clock: FakeClock) -> None:
    """check() during a running probe shares its result instead of starting a second one."""
    import asyncio

    dep = Probed("a", clock, 3.0)
    checker, _ = checker_for(clock, dep)
    first = asyncio.ensure_future(checker.check("a"))
    await clock.advance(1)
    second = asyncio.ensure_future(checker.check("a"))
    await clock.advance(3)
    assert (await first) is (await second)
    assert len(dep.starts) == 1


async def test_check_all_probes_every_deployment_once(clock: FakeClock) -> None:
    """check_all() probes each deployment once and reports each result."""
    a, b = Probed("a", clock, "ok"), Probed("b", clock, Kind.AUTH)
    checker, _ = checker_for(clock, a, b)
    results = await checker.check_all()
    assert {name: r.ok for name, r in results.items()} == {"a": True, "b": False}
    assert results["b"].kind is Kind.AUTH


async def test_router_skips_a_deployment_marked_unhealthy(clock: FakeClock) -> None:
    """Once the checker marks the primary unhealthy, requests go to the backup without a call."""
    primary = ScriptedDeployment("primary", ok("primary"), clock=clock)
    primary.probe = Probed("p", clock, Kind.CONNECTION).probe  # type: ignore[method-assign]
    backup = ScriptedDeployment("backup", ok("backup"), clock=clock)
    checker, router = checker_for(clock, primary, backup, unhealthy_after=1)
    await run_for(clock, checker, 1)
    reply = await router.complete("chat", HI)
    assert reply.deployment == "backup" and primary.calls == 0
    assert reply.trace.attempts[0].skipped == "unhealthy"
    await checker.stop()


async def test_deployments_without_probe_are_not_probed(clock: FakeClock) -> None:
    """In models mode, a deployment that offers no probe() is left alone (always healthy)."""

    class NoProbe(BaseDeployment):
        name = model = "plain"

        async def complete(self, request: Request) -> Completion:
            return completion_from_text("x", model="plain")

        def stream(self, request: Request) -> Any:
            raise NotImplementedError

    checker, _ = checker_for(clock, NoProbe(), Probed("a", clock))
    assert checker.names() == ["a"]


async def test_checker_over_plain_deployments_needs_a_store(clock: FakeClock) -> None:
    """Given deployments rather than a router, the checker marks health in the given store."""
    dep = Probed("a", clock, Kind.SERVER_ERROR)
    store = MemoryStore(clock=clock)
    with pytest.raises(ValueError):
        HealthChecker([dep], HealthConfig())
    checker = HealthChecker(
        [dep], HealthConfig(unhealthy_after=1, jitter=0), store=store, clock=clock
    )
    await run_for(clock, checker, 1)
    assert not store.is_healthy("a")
    await checker.stop()


async def test_status_reports_counters_and_last_probe(clock: FakeClock) -> None:
    """status() is JSON-able: probe mode, counters and the last result."""
    dep = Probed("a", clock, Kind.OVERLOADED)
    checker, _ = checker_for(clock, dep, unhealthy_after=5)
    await run_for(clock, checker, 15)
    status = checker.status("a")
    assert status is not None
    assert status["consecutive_failures"] == 2 and status["probes"] == 2
    assert status["last"]["outcome"] == "overloaded"
    assert checker.status("nope") is None
    assert math.isfinite(status["last"]["latency_ms"])
    await checker.stop()


async def test_shared_store_lease_decides_who_probes(clock: FakeClock) -> None:
    """With a store that hands out leases, a replica without the lease does not probe."""

    class LeasedStore(MemoryStore):
        held = False
        asked: list[tuple[str, float]] = []

        async def try_lease(self, key: str, ttl: float) -> bool:
            self.asked.append((key, ttl))
            return self.held

    dep = Probed("a", clock, "ok")
    store = LeasedStore(clock=clock)
    config = HealthConfig(interval=10, timeout=2, jitter=0)
    checker = HealthChecker([dep], config, store=store, clock=clock)
    await run_for(clock, checker, 25)
    assert dep.starts == [] and len(store.asked) == 3
    assert store.asked[0] == ("health:a", pytest.approx(13.0))
    store.held = True
    await clock.advance(10)
    assert len(dep.starts) == 1
    await checker.stop()
