"""Running a hedged route: the first attempt races later ones started after the hedge delay.

The first success wins; the losers are cancelled (their connections closed) and their outcomes
are not held against their deployments. A loser that answered in the same turn as the winner is
let go the same way: a stream it opened is closed. A failure starts the next candidate at once
when no other attempt is still running (plain failover). Hedges are bounded by `max_hedges` and
by the route's hedge budget, so hedging cannot double the load during a slowdown.
"""

from __future__ import annotations

import asyncio
from typing import Any, Generic, TypeVar

from ._attempt import Attempts, NothingAvailable, Skipped
from ._request import RequestState
from .errors import ProviderError
from .route import Plan, Slot

__all__ = ["HedgeRace"]

T = TypeVar("T")


class HedgeRace(Generic[T]):
    """One hedged request over one route's candidates."""

    def __init__(
        self, attempts: Attempts, state: RequestState[T], plan: Plan, slots: list[Slot]
    ) -> None:
        assert plan.hedge is not None and plan.hedge_budget is not None
        self.attempts = attempts
        self.state = state
        self.plan = plan
        self.policy = plan.hedge
        self.budget = plan.hedge_budget
        self.queue = list(slots)
        self.pending: dict[asyncio.Task[T], Slot] = {}
        self.hedges = 0
        self.primary: Slot | None = None

    async def run(self) -> tuple[T, Slot]:
        """The first answer and the slot that gave it; the route's last failure if none did."""
        self.budget.deposit()
        self._launch(hedge=False)
        failed: ProviderError | None = None
        try:
            while self.pending:
                done = await self._wait(self._hedge_delay())
                if not done:
                    self._hedge()
                    continue
                for task in done:
                    slot = self.pending.pop(task)
                    try:
                        return task.result(), slot
                    except Skipped:
                        continue
                    except ProviderError as err:
                        failed = self.state.last = err
                        if not err.kind.policy.tries_next:  # no other candidate will help
                            raise
                if not self.pending:
                    self._launch(hedge=False)
            if failed is None:
                raise NothingAvailable
            raise failed
        finally:
            failed = None  # its traceback holds this frame: kept here, the two make a cycle
            await self._cancel_pending()

    def _launch(self, *, hedge: bool) -> bool:
        while self.queue:
            slot = self.queue.pop(0)
            if not self.attempts.available(self.state, self.plan, slot):
                continue
            coro = self.attempts.send(self.state, self.plan, slot, hedge=hedge)
            self.pending[asyncio.ensure_future(coro)] = slot
            self.primary = self.primary or slot
            return True
        return False

    def _hedge_delay(self) -> float | None:
        if not self.queue or self.hedges >= self.policy.max_hedges:
            return None
        assert self.primary is not None
        stats = self.attempts.store.stats(self.primary.name)
        return self.policy.delay_for(stats.p95, stats.samples)

    def _hedge(self) -> None:
        if self.budget.spend():
            self.hedges += self._launch(hedge=True)
        else:
            self.hedges = self.policy.max_hedges  # budget spent: no more hedges for this request
            hooks = self.attempts.hooks
            if hooks.budget:
                hooks.exhausted(self.plan.name, "hedge")

    async def _wait(self, delay: float | None) -> set[asyncio.Task[T]]:
        waiters: set[asyncio.Future[Any]] = set(self.pending)
        timer = None
        if delay is not None:
            timer = asyncio.ensure_future(self.attempts.clock.sleep(delay))
            waiters.add(timer)
        try:
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if timer is not None:
                timer.cancel()
        return {t for t in done if t is not timer}  # type: ignore[misc]

    async def _cancel_pending(self) -> None:
        for task in self.pending:
            task.cancel()
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)
        for task in self.pending:
            await self._let_go(task)
        self.pending.clear()

    async def _let_go(self, task: asyncio.Task[T]) -> None:
        """A loser that answered in the same turn as the winner, too late to be cancelled:
        its answer (an open stream) is let go, not held against its deployment."""
        if task.cancelled() or task.exception() is not None:
            return
        call = await self.state.operation.discard(task.result())
        if call is not None:
            await self.attempts.record_cancelled(call)
