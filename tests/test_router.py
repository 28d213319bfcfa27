"""The router: failover, retries, fallbacks, deadlines, rate limits, panic and traces."""

from __future__ import annotations

import pytest

from failover import (
    AllDeploymentsFailed,
    BreakerPolicy,
    BreakerState,
    DeadlineExceeded,
    FakeClock,
    Kind,
    RequestRejected,
    RetryPolicy,
    Route,
    Router,
    Timeouts,
    UnknownRoute,
)
from failover.testing import ScriptedDeployment, fail, hang, ok

HI = {"messages": [{"role": "user", "content": "hi"}]}


def make(clock: FakeClock, *deployments: ScriptedDeployment, **route_kw: object) -> Router:
    return Router(
        {"chat": Route(list(deployments), **route_kw)},  # type: ignore[arg-type]
        clock=clock,
        retry=RetryPolicy(attempts=2, base=0.1, max_backoff=1.0),
        breaker=BreakerPolicy(consecutive_failures=3, open_for=30),
    )


async def test_first_healthy_deployment_answers(clock: FakeClock) -> None:
    """With a healthy primary, the primary answers and the backup is never called."""
    primary = ScriptedDeployment("primary", ok("from primary"), clock=clock)
    backup = ScriptedDeployment("backup", clock=clock)
    reply = await make(clock, primary, backup).complete("chat", HI)
    assert reply.text == "from primary"
    assert reply.deployment == "primary"
    assert backup.calls == 0
    assert [a.kind for a in reply.trace.attempts] == [Kind.OK]


async def test_server_error_is_retried_then_fails_over(clock: FakeClock) -> None:
    """A 500 is retried once on the same deployment (attempts=2), then the backup answers."""
    primary = ScriptedDeployment("primary", fail(500), clock=clock)
    backup = ScriptedDeployment("backup", ok("from backup"), clock=clock)
    async with clock.autojump():
        reply = await make(clock, primary, backup).complete("chat", HI)
    assert reply.text == "from backup"
    assert primary.calls == 2
    kinds = [(a.deployment, a.kind) for a in reply.trace.attempts]
    assert kinds == [
        ("primary", Kind.SERVER_ERROR),
        ("primary", Kind.SERVER_ERROR),
        ("backup", Kind.OK),
    ]
    assert 0 <= reply.trace.attempts[1].waited <= 0.1


async def test_timeout_fails_over_without_retry(clock: FakeClock) -> None:
    """A hung deployment times out after the attempt timeout and is not retried."""
    primary = ScriptedDeployment("primary", hang(), clock=clock)
    backup = ScriptedDeployment("backup", ok(), clock=clock)
    router = make(clock, primary, backup, timeouts=Timeouts(attempt=2, total=10))
    async with clock.autojump():
        start = clock.now()
        reply = await router.complete("chat", HI)
    assert clock.now() - start == pytest.approx(2.0)
    assert primary.calls == 1 and primary.cancelled == 1
    assert reply.trace.attempts[0].kind is Kind.TIMEOUT


async def test_bad_request_is_returned_at_once(clock: FakeClock) -> None:
    """A 400 is the caller's fault: no retry, no failover, RequestRejected with the trace."""
    primary = ScriptedDeployment("primary", fail(400, message="bad tool schema"), clock=clock)
    backup = ScriptedDeployment("backup", clock=clock)
    with pytest.raises(RequestRejected) as info:
        await make(clock, primary, backup).complete("chat", HI)
    assert info.value.kind is Kind.BAD_REQUEST
    assert info.value.status == 400
    assert "bad tool schema" in str(info.value)
    assert backup.calls == 0 and primary.calls == 1


async def test_all_failed_carries_every_attempt(clock: FakeClock) -> None:
    """When every deployment fails, AllDeploymentsFailed lists each attempt in order."""
    a = ScriptedDeployment("a", fail(503), clock=clock)
    b = ScriptedDeployment("b", fail(401), clock=clock)
    async with clock.autojump():
        with pytest.raises(AllDeploymentsFailed) as info:
            await make(clock, a, b).complete("chat", HI)
    trace = info.value.trace
    assert [(x.deployment, x.kind) for x in trace.attempts] == [
        ("a", Kind.OVERLOADED),
        ("a", Kind.OVERLOADED),
        ("b", Kind.AUTH),
    ]
    assert info.value.kind is Kind.AUTH
    assert "a:overloaded" in trace.summary()


async def test_rate_limited_deployment_cools_down_for_retry_after(clock: FakeClock) -> None:
    """A 429 with Retry-After fails over at once and the deployment is skipped for that long."""
    primary = ScriptedDeployment("primary", fail(429, retry_after=7.0), ok("p"), clock=clock)
    backup = ScriptedDeployment("backup", ok("b"), clock=clock)
    router = make(clock, primary, backup)
    first = await router.complete("chat", HI)
    assert first.text == "b" and primary.calls == 1
    await clock.advance(6.9)
    second = await router.complete("chat", HI)
    assert second.text == "b" and primary.calls == 1
    assert second.trace.attempts[0].skipped == "cooling_down"
    await clock.advance(0.2)
    third = await router.complete("chat", HI)
    assert third.text == "p" and primary.calls == 2


async def test_rate_limit_is_waited_out_when_nothing_else_answers(clock: FakeClock) -> None:
    """If every candidate is rate limited, the shortest Retry-After within the cap is waited."""
    only = ScriptedDeployment("only", fail(429, retry_after=2.0), ok("later"), clock=clock)
    router = make(clock, only)
    async with clock.autojump():
        start = clock.now()
        reply = await router.complete("chat", HI)
    assert reply.text == "later"
    assert clock.now() - start == pytest.approx(2.0)
    assert reply.trace.attempts[-1].waited == pytest.approx(2.0)


async def test_retry_after_beyond_cap_is_not_waited(clock: FakeClock) -> None:
    """A Retry-After longer than retry_after_max fails instead of waiting."""
    only = ScriptedDeployment("only", fail(429, retry_after=120.0), clock=clock)
    with pytest.raises(AllDeploymentsFailed) as info:
        await make(clock, only).complete("chat", HI)
    assert info.value.kind is Kind.RATE_LIMITED
    assert only.calls == 1


async def test_deadline_bounds_retries_and_attempts(clock: FakeClock) -> None:
    """The total deadline cuts the attempt short and raises DeadlineExceeded."""
    slow = ScriptedDeployment("slow", hang(), clock=clock)
    slower = ScriptedDeployment("slower", hang(), clock=clock)
    router = make(clock, slow, slower, timeouts=Timeouts(attempt=3, total=4))
    async with clock.autojump():
        start = clock.now()
        with pytest.raises(DeadlineExceeded) as info:
            await router.complete("chat", HI)
    assert clock.now() - start == pytest.approx(4.0)
    assert [a.deployment for a in info.value.trace.calls] == ["slow", "slower"]


async def test_per_request_timeout_overrides_total(clock: FakeClock) -> None:
    """A timeout passed to complete() replaces the route's total deadline."""
    slow = ScriptedDeployment("slow", hang(), clock=clock)
    router = make(clock, slow)
    async with clock.autojump():
        start = clock.now()
        with pytest.raises(DeadlineExceeded):
            await router.complete("chat", HI, timeout=0.5)
    assert clock.now() - start == pytest.approx(0.5)


async def test_fallback_route_answers_when_route_fails(clock: FakeClock) -> None:
    """When every deployment of a route fails, its fallback route is tried."""
    main = ScriptedDeployment("main", fail(500), clock=clock)
    cheap = ScriptedDeployment("cheap", ok("fallback"), clock=clock)
    router = Router(
        {"smart": Route([main], fallbacks=["fast"]), "fast": Route([cheap])},
        clock=clock,
        retry=RetryPolicy(attempts=1),
    )
    reply = await router.complete("smart", HI)
    assert reply.text == "fallback"
    assert reply.route == "smart" and reply.deployment == "cheap"
    assert [a.route for a in reply.trace.attempts] == ["smart", "fast"]


async def test_context_window_goes_to_its_own_fallback(clock: FakeClock) -> None:
    """context_window skips ordinary fallbacks and goes to context_window_fallbacks."""
    small = ScriptedDeployment("small", fail(Kind.CONTEXT_WINDOW), clock=clock)
    other = ScriptedDeployment("other", clock=clock)
    big = ScriptedDeployment("big", ok("big window"), clock=clock)
    router = Router(
        {
            "chat": Route([small], fallbacks=["other"], context_window_fallbacks=["long"]),
            "other": Route([other]),
            "long": Route([big]),
        },
        clock=clock,
    )
    reply = await router.complete("chat", HI)
    assert reply.text == "big window"
    assert other.calls == 0


async def test_context_window_without_fallback_is_rejected(clock: FakeClock) -> None:
    """Without a context_window fallback the error goes back to the caller, untried elsewhere."""
    small = ScriptedDeployment("small", fail(Kind.CONTEXT_WINDOW), clock=clock)
    other = ScriptedDeployment("other", clock=clock)
    with pytest.raises(RequestRejected) as info:
        await make(clock, small, other).complete("chat", HI)
    assert info.value.kind is Kind.CONTEXT_WINDOW
    assert other.calls == 0


async def test_content_filter_fallback_only_when_configured(clock: FakeClock) -> None:
    """content_filter is returned unless content_filter_fallbacks names a route."""
    strict = ScriptedDeployment("strict", fail(Kind.CONTENT_FILTER), clock=clock)
    lenient = ScriptedDeployment("lenient", ok("answered"), clock=clock)
    router = Router(
        {"chat": Route([strict], content_filter_fallbacks=["alt"]), "alt": Route([lenient])},
        clock=clock,
    )
    assert (await router.complete("chat", HI)).text == "answered"
    plain = Router({"chat": Route([strict]), "alt": Route([lenient])}, clock=clock)
    with pytest.raises(RequestRejected):
        await plain.complete("chat", HI)


async def test_open_breaker_skips_deployment(clock: FakeClock) -> None:
    """After consecutive_failures the breaker opens and the deployment is skipped."""
    primary = ScriptedDeployment("primary", fail(500), clock=clock)
    backup = ScriptedDeployment("backup", clock=clock)
    router = Router(
        {"chat": Route([primary, backup], retry=RetryPolicy(attempts=1))},
        clock=clock,
        breaker=BreakerPolicy(consecutive_failures=3, open_for=30),
    )
    for _ in range(5):
        await router.complete("chat", HI)
    assert primary.calls == 3
    assert router.breaker("primary").state is BreakerState.OPEN


async def test_breaker_probes_after_open_period(clock: FakeClock) -> None:
    """After open_for, one probe goes to the primary; success closes the breaker."""
    primary = ScriptedDeployment("primary", fail(500), clock=clock)
    backup = ScriptedDeployment("backup", clock=clock)
    router = Router(
        {"chat": Route([primary, backup], retry=RetryPolicy(attempts=1))},
        clock=clock,
        breaker=BreakerPolicy(consecutive_failures=3, open_for=30, jitter=0),
    )
    for _ in range(3):
        await router.complete("chat", HI)
    primary.script(ok("recovered"))
    await clock.advance(30)
    reply = await router.complete("chat", HI)
    assert reply.text == "recovered"
    assert router.breaker("primary").state is BreakerState.CLOSED


async def test_panic_tries_unhealthy_deployments(clock: FakeClock) -> None:
    """When health checks mark every candidate unhealthy, they are tried anyway."""
    a = ScriptedDeployment("a", ok("still works"), clock=clock)
    router = make(clock, a)
    events: list[str] = []
    router.hooks.event.append(lambda e: events.append(e.type))
    router.store.set_healthy("a", False)
    reply = await router.complete("chat", HI)
    assert reply.text == "still works"
    assert events == ["panic"]
    assert reply.trace.attempts[0].skipped == "unhealthy"


async def test_no_panic_when_disabled(clock: FakeClock) -> None:
    """With panic off, an all-unhealthy route fails without calling anyone."""
    a = ScriptedDeployment("a", clock=clock)
    router = make(clock, a, panic=False)
    router.store.set_healthy("a", False)
    with pytest.raises(AllDeploymentsFailed):
        await router.complete("chat", HI)
    assert a.calls == 0


async def test_unhealthy_deployment_is_skipped(clock: FakeClock) -> None:
    """Routing avoids a deployment the health checker marked unhealthy."""
    a = ScriptedDeployment("a", clock=clock)
    b = ScriptedDeployment("b", ok("b"), clock=clock)
    router = make(clock, a, b)
    router.store.set_healthy("a", False)
    assert (await router.complete("chat", HI)).text == "b"
    assert a.calls == 0


async def test_unknown_route_names_known_routes(clock: FakeClock) -> None:
    """Asking for an unknown route raises UnknownRoute listing the known ones."""
    router = make(clock, ScriptedDeployment("a", clock=clock))
    with pytest.raises(UnknownRoute, match="chat"):
        await router.complete("nope", HI)


async def test_single_deployment_addressed_by_name(clock: FakeClock) -> None:
    """A deployment's own name works as a model name: that deployment alone."""
    a = ScriptedDeployment("a", ok("a"), clock=clock)
    b = ScriptedDeployment("b", ok("b"), clock=clock)
    router = make(clock, a, b)
    reply = await router.complete("b", HI)
    assert reply.text == "b" and a.calls == 0


async def test_retry_budget_stops_retry_storm(clock: FakeClock) -> None:
    """With the retry budget spent, failures fail over instead of retrying."""
    primary = ScriptedDeployment("primary", fail(500), clock=clock)
    backup = ScriptedDeployment("backup", clock=clock)
    router = Router(
        {"chat": Route([primary, backup])},
        clock=clock,
        retry=RetryPolicy(
            attempts=3,
            base=0.0,
            max_backoff=0.0,
            budget=0.0,
            budget_min_per_second=0.0,
            budget_burst=2,
        ),
        breaker=BreakerPolicy(consecutive_failures=0, min_calls=1000),
    )
    for _ in range(10):
        await router.complete("chat", HI)
    assert primary.calls == 10 + 2  # one call each, plus the two retries the burst allowed


async def test_hooks_see_attempts_and_requests(clock: FakeClock) -> None:
    """Attempt and request listeners are called with the trace entries and final kind."""
    primary = ScriptedDeployment("primary", fail(502), clock=clock)
    backup = ScriptedDeployment("backup", clock=clock)
    router = Router({"chat": Route([primary, backup], retry=RetryPolicy(attempts=1))}, clock=clock)
    attempts: list[tuple[str, Kind]] = []
    finished: list[Kind] = []
    router.hooks.attempt.append(lambda a: attempts.append((a.deployment, a.kind)))
    router.hooks.request.append(lambda trace, kind: finished.append(kind))
    await router.complete("chat", HI)
    assert attempts == [("primary", Kind.SERVER_ERROR), ("backup", Kind.OK)]
    assert finished == [Kind.OK]


async def test_failing_listener_never_fails_request(clock: FakeClock) -> None:
    """An exception in a listener is logged and swallowed."""
    router = make(clock, ScriptedDeployment("a", clock=clock))

    def broken(*args: object) -> None:
        raise RuntimeError("observer bug")

    router.hooks.attempt.append(broken)
    reply = await router.complete("chat", HI)
    assert reply.text == "ok"


async def test_plain_exception_from_callable_is_classified(clock: FakeClock) -> None:
    """An unknown exception counts as server_error and fails over."""
    from failover import Deployment

    def boom(request: dict[str, object]) -> str:
        raise ConnectionResetError("peer reset")

    router = Router(
        {
            "chat": Route(
                [Deployment("broken", boom), Deployment("fine", lambda r: "fine")],
                retry=RetryPolicy(attempts=1),
            )
        },
        clock=clock,
    )
    reply = await router.complete("chat", HI)
    assert reply.text == "fine"
    assert reply.trace.attempts[0].kind is Kind.CONNECTION


async def test_deployments_by_name_are_bounded(clock: FakeClock) -> None:
    """Client-chosen `provider/model` names cannot grow the router without bound."""
    from failover import Deployment
    from failover._plans import MAX_SINGLE_PLANS

    made: list[str] = []

    def resolve(name: str) -> Deployment:
        made.append(name)
        return Deployment(name, lambda r: "ok")

    router = Router(
        {"chat": Route([ScriptedDeployment("a", clock=clock)])}, clock=clock, resolver=resolve
    )
    for i in range(MAX_SINGLE_PLANS):
        await router.complete(f"p/m{i}", HI)
    with pytest.raises(UnknownRoute, match="too many distinct deployments"):
        await router.complete("p/one-more", HI)
    assert (await router.complete("p/m0", HI)).text == "ok"  # known ones keep working


async def test_open_breakers_fail_fast_in_default_panic(clock: FakeClock) -> None:
    """With panic "health" (the default), open breakers hold: nothing is called."""
    a = ScriptedDeployment("a", fail(500), clock=clock)
    router = Router(
        {"chat": Route([a], retry=RetryPolicy(attempts=1))},
        clock=clock,
        breaker=BreakerPolicy(consecutive_failures=1, open_for=60),
    )
    with pytest.raises(AllDeploymentsFailed):
        await router.complete("chat", HI)
    with pytest.raises(AllDeploymentsFailed):
        await router.complete("chat", HI)
    assert a.calls == 1


async def test_panic_all_calls_open_deployments(clock: FakeClock) -> None:
    """With panic "all", even open breakers are called when nothing else is left."""
    a = ScriptedDeployment("a", fail(500), ok("back"), clock=clock)
    router = Router(
        {"chat": Route([a], retry=RetryPolicy(attempts=1), panic="all")},
        clock=clock,
        breaker=BreakerPolicy(consecutive_failures=1, open_for=60),
    )
    with pytest.raises(AllDeploymentsFailed):
        await router.complete("chat", HI)
    reply = await router.complete("chat", HI)
    assert reply.text == "back" and a.calls == 2
    assert router.breaker("a").state is BreakerState.OPEN  # a forced call is not a probe


def test_panic_mode_must_be_known() -> None:
    """An unknown panic mode is refused when the router is built."""
    with pytest.raises(ValueError, match="panic"):
        Router({"chat": Route([ScriptedDeployment("a")], panic="sometimes")})
