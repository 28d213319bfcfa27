"""Prompt, deterministic recovery: a deployment that comes back is used again within seconds."""

from __future__ import annotations

from typing import Any

import pytest

from failover import FakeClock, Route, Router
from failover.config import HealthConfig
from failover.errors import Overloaded
from failover.health import HealthChecker
from failover.resilience.breaker import BreakerState
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
