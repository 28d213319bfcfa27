"""Prompt, deterministic recovery: a deployment that comes back is used again within seconds."""

from __future__ import annotations

from typing import Any

import pytest

from failover import BreakerPolicy, FakeClock, Route, Router
from failover.config import HealthConfig
from failover.errors import Overloaded
from failover.health import HealthChecker
from failover.resilience.breaker import BreakerState, Result
from failover.testing import ScriptedDeployment
from failover.types import Completion

HI = {"messages": [{"role": "user", "content": "hi"}]}


class Outage(ScriptedDeployment):
    """Answers 503 to every completion until `back_at`; its models list never fails."""

    def __init__(self, name: str, clock: FakeClock, back_at: float) -> None:
        super().__init__(name, clock=clock)
        self.back_at = back_at
        self.answered: list[float] = []

    async def complete(self, request: dict[str, Any]) -> Completion:
        if self.clock.now() < self.back_at:
            self.calls += 1
            raise Overloaded("503 from the provider", status=503)
        reply = await super().complete(request)
        self.answered.append(self.clock.now())
        return reply


async def drive(clock: FakeClock, every: float, outage: float, run: float) -> tuple[Outage, Any]:
    start = clock.now()
    primary = Outage("primary", clock, back_at=start + outage)
    backup = ScriptedDeployment("backup", clock=clock)
    router = Router({"chat": Route([primary, backup])}, clock=clock)
    opened: list[float] = []  # each open period of the primary's breaker
    router.store.subscribe(lambda e: opened.append(e.open_for) if e.open_for else None)
    made = answered = 0
    async with clock.autojump(), HealthChecker(router, HealthConfig(), clock=clock):
        while clock.now() - start < run:
            made += 1
            reply = await router.complete("chat", HI)
            answered += reply.text == "ok"
            await clock.sleep(every)
    return primary, (router, (made, answered), start, opened)


@pytest.mark.parametrize("outage", [60.0, 63.0, 66.0, 69.0, 72.0])
async def test_a_recovered_primary_serves_again_within_ten_seconds(outage: float) -> None:
    """503 for a minute or so, one request every 1.2 s, defaults: every request is answered,
    and whenever in the probe cycle the primary comes back, it answers again within 10 s."""
    clock = FakeClock()
    primary, (router, (made, answered), start, _) = await drive(
        clock, every=1.2, outage=outage, run=outage + 40
    )
    assert made > 80 and answered == made
    first_back = primary.answered[0] - (start + outage)
    assert 0 <= first_back <= 10
    assert router.breaker("primary").state is BreakerState.CLOSED


async def test_failed_trials_do_not_push_the_open_period_to_minutes(clock: FakeClock) -> None:
    """While chat fails but the models list answers, canary probes keep the breaker from
    half-opening into failing trials, so its open period does not grow."""
    primary, (_, _, _, opened) = await drive(clock, every=4.0, outage=240, run=250)
    assert max(opened) <= 30 * 1.2  # never doubled: no trial failed
    assert primary.answered  # and it was used again once it came back


async def test_a_breaker_opened_between_probes_is_probed_within_the_recovery_interval(
    clock: FakeClock,
) -> None:
    """Opened 1 s after a regular probe, the breaker gets its canary 3 s later, not at 15 s."""
    primary = ScriptedDeployment("primary", clock=clock)  # answers fine: it has recovered
    router = Router(
        {"chat": Route([primary])}, clock=clock, breaker=BreakerPolicy(consecutive_failures=3)
    )
    config = HealthConfig(interval=15.0, jitter=0.0, recovery_interval=3.0)
    async with HealthChecker(router, config, clock=clock):
        await clock.advance(1.0)  # the regular probe ran at t=0; the next is due at t=15
        breaker = router.breaker("primary")
        for _ in range(3):  # traffic failed: the breaker opens (for 30 s)
            breaker.record(breaker.try_acquire(), Result.FAILURE)  # type: ignore[attr-defined]
        assert breaker.state is BreakerState.OPEN
        await clock.advance(4.0)  # well past one recovery_interval
        assert primary.calls == 1  # the canary completion
        assert breaker.state is BreakerState.HALF_OPEN


async def test_a_drained_deployment_gets_no_recovery_canaries(clock: FakeClock) -> None:
    """A minute of draining sends no completion to the drained deployment."""
    drained = ScriptedDeployment("drained", clock=clock)
    router = Router({"chat": Route([drained])}, clock=clock)
    router.breaker("drained").force_open()
    async with HealthChecker(router, HealthConfig(jitter=0.0), clock=clock):
        for _ in range(60):
            await clock.advance(1.0)
    assert drained.calls == 0
