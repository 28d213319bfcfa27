"""However a recovered stream ends, every call it opened is given back: a caller who leaves or
closes the stream while a break is being recovered leaves the recovering deployment's
concurrency slot and breaker permit free, and its stream closed."""

from __future__ import annotations

import asyncio

from failover import BreakerPolicy, FakeClock, Kind, RetryPolicy, Route, Router, Timeouts
from failover.reply import Heartbeat
from failover.resilience.breaker import BreakerState, Result
from failover.testing import ScriptedDeployment, Step, fail, ok

HI = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
WORDS = ("The ", "quick ", "brown ", "fox ", "jumps ", "over ", "the ", "lazy ", "dog.")


def router(clock: FakeClock, cut: int, backup: Step, *, first_token: float = 60) -> Router:
    """Primary cut after `cut` words, then a backup that cannot prefill (so it restarts)."""
    primary = ScriptedDeployment(
        "primary", fail(Kind.CONNECTION, after_chunks=cut, chunks=WORDS), clock=clock
    )
    return Router(
        {
            "chat": Route(
                [primary, ScriptedDeployment("backup", backup, clock=clock)],
                retry=RetryPolicy(attempts=1),
            )
        },
        clock=clock,
        timeouts=Timeouts(learn=None, first_token=first_token),
        breaker=BreakerPolicy(consecutive_failures=5),
    )


async def cancel_while_matching(router: Router) -> None:
    """Read the stream in a task and cancel it while the backup's restart is held back."""
    reply = await router.open_stream("chat", HI)

    async def consume() -> None:
        async for _ in reply:
            pass

    task = asyncio.ensure_future(consume())
    for _ in range(50):  # let it read the cut, and the restart's first chunk
        await asyncio.sleep(0)
    backup = router.deployments()["backup"]
    assert isinstance(backup, ScriptedDeployment)
    assert backup.calls == 1 and not task.done()  # held back, matching, the caller waiting
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_cancelled_restart_gives_back_its_concurrency_slot(clock: FakeClock) -> None:
    """Cancelling the caller during restart-and-match releases the backup's concurrency slot."""
    r = router(clock, 3, ok(chunks=WORDS, chunk_gap=1.0))
    await cancel_while_matching(r)
    assert r.concurrency("backup").in_flight == 0


async def test_cancelled_restart_gives_back_its_half_open_permit(clock: FakeClock) -> None:
    """A half-open backup whose only probe was a cancelled recovery admits the next call."""
    r = router(clock, 3, ok(chunks=WORDS, chunk_gap=1.0))
    breaker = r.breaker("backup")
    for _ in range(5):  # five failures open it, then a health probe half-opens it
        permit = await breaker.acquire()
        assert permit is not None
        await breaker.release(permit, Result.FAILURE)
    breaker.probe_succeeded()
    assert breaker.state is BreakerState.HALF_OPEN
    await cancel_while_matching(r)
    assert breaker.would_admit()  # the cancelled trial proved nothing: another may go


async def test_aclose_while_recovering_stops_the_recovery(clock: FakeClock) -> None:
    """After aclose during a recovery, the backup's late answer holds no concurrency slot."""
    r = router(clock, 2, ok(chunks=WORDS, latency=8.0), first_token=30)
    reply = await r.open_stream("chat", HI)
    events = reply.events()
    seen = [await anext(events), await anext(events)]  # the two words before the cut
    pending = asyncio.ensure_future(anext(events))
    await clock.advance(0)  # the cut is read and the recovery starts on the backup
    await clock.advance(5.0)  # the recovery waits for the backup: a heartbeat goes out
    assert isinstance(await pending, Heartbeat) and len(seen) == 2
    await reply.aclose()  # the caller gives up
    await clock.advance(10.0)  # long after the backup would have answered
    assert r.concurrency("backup").in_flight == 0
