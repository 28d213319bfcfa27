"""A request's own controls: deadline, no fallback routes, no stream recovery, priority."""

from __future__ import annotations

import pytest

from failover import FakeClock, Route, Router, StreamInterrupted
from failover.controls import Controls, Priority
from failover.errors import AllDeploymentsFailed, DeadlineExceeded
from failover.resilience.streams import Prefill, Resume
from failover.testing import ScriptedDeployment, fail, hang, ok

HI = {"messages": [{"role": "user", "content": "hi"}]}
WORDS = ("one ", "two ", "three.")


def routes(clock: FakeClock) -> tuple[Router, ScriptedDeployment]:
    primary = ScriptedDeployment("primary", fail(500), clock=clock)
    spare = ScriptedDeployment("spare", ok("from the fallback"), clock=clock)
    router = Router(
        {"chat": Route([primary], fallbacks=["spare"]), "spare": Route([spare])}, clock=clock
    )
    return router, spare


async def test_fallbacks_off_keeps_the_request_on_its_route(clock: FakeClock) -> None:
    """With fallbacks=False the fallback route is not tried; the trace says why."""
    router, spare = routes(clock)
    async with clock.autojump():
        with pytest.raises(AllDeploymentsFailed) as caught:
            await router.complete("chat", HI, fallbacks=False)
        assert spare.calls == 0
        assert caught.value.trace.controls == {"fallbacks": False}
        assert (await router.complete("chat", HI)).text == "from the fallback"


async def test_a_request_deadline_replaces_the_route_total(clock: FakeClock) -> None:
    """`timeout` bounds this request whatever the route's total says."""
    slow = ScriptedDeployment("slow", hang(), clock=clock)
    router = Router({"chat": Route([slow])}, clock=clock)
    async with clock.autojump():
        start = clock.now()
        with pytest.raises(DeadlineExceeded):
            await router.complete("chat", HI, timeout=2.5)
    assert clock.now() - start == pytest.approx(2.5)


async def test_resume_off_for_one_stream(clock: FakeClock) -> None:
    """A stream asked not to resume ends in an error at its break, though the route could."""
    from failover.kinds import Kind

    primary = ScriptedDeployment(
        "primary", fail(Kind.CONNECTION, after_chunks=1, chunks=WORDS), clock=clock
    )
    backup = ScriptedDeployment("backup", ok(chunks=WORDS), clock=clock, prefill=Prefill.ASSISTANT)
    router = Router({"chat": Route([primary, backup])}, clock=clock)
    reply = await router.open_stream("chat", {**HI, "stream": True}, resume="off")
    with pytest.raises(StreamInterrupted):
        async for _ in reply:
            pass
    assert backup.calls == 0
    assert reply.trace.controls == {"resume": "off"}


def test_controls_echo_only_what_differs() -> None:
    """A trace echoes the controls a request set, not the defaults."""
    controls = Controls(timeout=3, resume=Resume.RESTART, priority=Priority.LOW)
    assert controls.to_dict() == {"timeout_s": 3, "resume": "restart", "priority": "low"}
    assert Controls().to_dict() == {}


async def test_unknown_controls_are_refused(clock: FakeClock) -> None:
    """A misspelt control is a TypeError naming it, not silently ignored."""
    router, _ = routes(clock)
    with pytest.raises(TypeError, match="fallback"):
        await router.complete("chat", HI, fallback=False)
    with pytest.raises(ValueError):
        await router.complete("chat", HI, priority="urgent")
