"""Prometheus metrics fed by the router's hooks, on a registry per gateway."""

from __future__ import annotations

import pytest
from obs_helpers import HI, two_routes
from prometheus_client.parser import text_string_to_metric_families

from failover import (
    BreakerState,
    FakeClock,
    Kind,
    RetryPolicy,
    Route,
    Router,
    Timeouts,
    UnknownRoute,
)
from failover.config import HealthConfig
from failover.health import HealthChecker
from failover.observability import Metrics
from failover.observability.metrics import OTHER
from failover.testing import ScriptedDeployment, fail, hang, ok


def value(metrics: Metrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def label_values(metrics: Metrics, label: str) -> set[str]:
    text = metrics.render().decode()
    return {
        sample.labels[label]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if label in sample.labels
    }


async def test_exposition_parses(router: Router) -> None:
    """The /metrics text parses with Prometheus' own parser and holds every family."""
    metrics = Metrics(router)
    await router.complete("smart", HI)
    metrics.observe_overhead(0.0002)
    families = {f.name for f in text_string_to_metric_families(metrics.render().decode())}
    assert {
        "failover_requests",
        "failover_attempts",
        "failover_attempt_latency_seconds",
        "failover_gateway_overhead_seconds",
        "failover_breaker_state",
        "failover_deployment_healthy",
        "failover_deployment_cooling_down",
        "failover_in_flight",
        "failover_budget_tokens",
    } <= families


async def test_success_counts_a_request_and_an_attempt(router: Router) -> None:
    """A request answered at once counts one ok request and one ok attempt."""
    metrics = Metrics(router)
    await router.complete("smart", HI)
    assert value(metrics, "failover_requests_total", route="smart", outcome="ok") == 1
    labels = {"route": "smart", "deployment": "primary", "outcome": "ok"}
    assert value(metrics, "failover_attempts_total", **labels) == 1
    assert value(metrics, "failover_failovers_total", route="smart") == 0


async def test_failover_and_retry_are_counted(clock: FakeClock) -> None:
    """A 500 retried once then answered by the backup: one retry, one failover."""
    router = two_routes(clock, primary=[fail(500)])
    metrics = Metrics(router)
    async with clock.autojump():
        await router.complete("smart", HI)
    failed = {"route": "smart", "deployment": "primary", "outcome": "server_error"}
    assert value(metrics, "failover_attempts_total", **failed) == 2
    assert value(metrics, "failover_retries_total", route="smart", deployment="primary") == 1
    assert value(metrics, "failover_failovers_total", route="smart") == 1
    assert value(metrics, "failover_fallbacks_total", route="smart", to="fast") == 0


async def test_fallback_to_another_route_is_counted(clock: FakeClock) -> None:
    """When every deployment of a route fails, the fallback route's answer counts a fallback."""
    router = two_routes(clock, primary=[fail(401)], backup=[fail(404)])
    metrics = Metrics(router)
    reply = await router.complete("smart", HI)
    assert reply.route == "smart" and reply.deployment == "local"
    assert value(metrics, "failover_fallbacks_total", route="smart", to="fast") == 1
    assert value(metrics, "failover_requests_total", route="smart", outcome="ok") == 1
    assert value(metrics, "failover_events_total", type="fallback") == 1


async def test_failed_request_is_counted_by_kind(clock: FakeClock) -> None:
    """A request rejected as a bad request counts under outcome bad_request."""
    router = two_routes(clock, primary=[fail(400)])
    metrics = Metrics(router)
    with pytest.raises(Exception, match="scripted"):
        await router.complete("smart", HI)
    assert value(metrics, "failover_requests_total", route="smart", outcome="bad_request") == 1


async def test_unknown_model_creates_no_label(clock: FakeClock) -> None:
    """An unknown model name never becomes a label; resolver-made routes count as _other."""
    extra = ScriptedDeployment("made-up/model", ok(), clock=clock)
    router = two_routes(clock, resolver=lambda name: extra if name == "made-up/model" else None)
    metrics = Metrics(router)
    with pytest.raises(UnknownRoute):
        await router.complete("nobody-configured-this", HI)
    await router.complete("made-up/model", HI)
    routes = label_values(metrics, "route")
    deployments = label_values(metrics, "deployment")
    assert "nobody-configured-this" not in routes and "made-up/model" not in routes
    assert "made-up/model" not in deployments
    assert value(metrics, "failover_requests_total", route=OTHER, outcome="ok") == 1
    assert value(metrics, "failover_attempts_total", route=OTHER, deployment=OTHER, outcome="ok")


async def test_deployment_addressed_directly_keeps_its_name(router: Router) -> None:
    """A configured deployment asked for by name is labelled with that (bounded) name."""
    metrics = Metrics(router)
    await router.complete("backup", HI)
    assert value(metrics, "failover_requests_total", route="backup", outcome="ok") == 1


async def test_breaker_state_gauge_and_transitions(clock: FakeClock) -> None:
    """Three failures open the primary's breaker: gauge 1 and one closed->open transition."""
    router = two_routes(clock, primary=[fail(401)])
    metrics = Metrics(router)
    for _ in range(3):
        await router.complete("smart", HI)
    assert router.breaker("primary").state is BreakerState.OPEN
    assert value(metrics, "failover_breaker_state", deployment="primary") == 1
    assert value(metrics, "failover_breaker_state", deployment="backup") == 0
    moved = {"deployment": "primary", "from": "closed", "to": "open"}
    assert value(metrics, "failover_breaker_transitions_total", **moved) == 1


async def test_forced_open_and_disabled_have_their_own_values(router: Router) -> None:
    """The state gauge reads 3 for forced_open and 4 for disabled."""
    metrics = Metrics(router)
    router.breaker("primary").force_open()
    router.breaker("backup").disable()
    assert value(metrics, "failover_breaker_state", deployment="primary") == 3
    assert value(metrics, "failover_breaker_state", deployment="backup") == 4


async def test_skipped_candidates_are_counted_by_reason(clock: FakeClock) -> None:
    """A request that skips an open breaker counts a skip with reason open."""
    router = two_routes(clock, primary=[fail(401)])
    metrics = Metrics(router)
    for _ in range(4):
        await router.complete("smart", HI)
    skip = {"route": "smart", "deployment": "primary", "reason": "open"}
    assert value(metrics, "failover_skips_total", **skip) == 1


async def test_health_gauge_follows_the_store(router: Router) -> None:
    """The health gauge reads 0 once a deployment is marked unhealthy."""
    metrics = Metrics(router)
    assert value(metrics, "failover_deployment_healthy", deployment="backup") == 1
    router.store.set_healthy("backup", False)
    assert value(metrics, "failover_deployment_healthy", deployment="backup") == 0


async def test_cooling_down_gauge_after_a_rate_limit(clock: FakeClock) -> None:
    """A 429 with Retry-After puts the deployment in a cool-down the gauge shows."""
    router = two_routes(clock, primary=[fail(429, retry_after=60)])
    metrics = Metrics(router)
    await router.complete("smart", HI)
    assert value(metrics, "failover_deployment_cooling_down", deployment="primary") == 1


async def test_in_flight_gauge_counts_running_calls(clock: FakeClock) -> None:
    """While a call hangs, the in-flight gauge of its deployment reads 1."""
    import asyncio

    router = two_routes(clock, primary=[hang()], timeouts=Timeouts(attempt=10, total=20))
    metrics = Metrics(router)
    task = asyncio.ensure_future(router.complete("smart", HI))
    await clock.advance(1)
    assert value(metrics, "failover_in_flight", deployment="primary") == 1
    await clock.advance(10)
    await task
    assert value(metrics, "failover_in_flight", deployment="primary") == 0


async def test_latency_histogram_observes_successful_calls(clock: FakeClock) -> None:
    """A 250ms answer lands in the primary's latency histogram."""
    router = two_routes(clock, primary=[ok(latency=0.25)])
    metrics = Metrics(router)
    async with clock.autojump():
        await router.complete("smart", HI)
    name = "failover_attempt_latency_seconds"
    assert value(metrics, f"{name}_count", deployment="primary") == 1
    assert value(metrics, f"{name}_sum", deployment="primary") == pytest.approx(0.25)
    assert value(metrics, f"{name}_bucket", deployment="primary", le="0.1") == 0
    assert value(metrics, f"{name}_bucket", deployment="primary", le="0.25") == 1


async def test_ttft_histogram_observes_streams(clock: FakeClock) -> None:
    """A stream's time to first chunk lands in the TTFT histogram when it ends."""
    router = two_routes(clock, primary=[ok(latency=0.3, chunks=("a", "b"))])
    metrics = Metrics(router)
    async with clock.autojump():
        async for _ in router.stream("smart", HI):
            pass
    assert value(metrics, "failover_ttft_seconds_count", deployment="primary") == 1
    assert value(metrics, "failover_ttft_seconds_sum", deployment="primary") == pytest.approx(0.3)


async def test_overhead_histogram(router: Router) -> None:
    """observe_overhead feeds the gateway overhead histogram."""
    metrics = Metrics(router)
    metrics.observe_overhead(0.0003)
    metrics.observe_overhead(0.002)
    assert value(metrics, "failover_gateway_overhead_seconds_count") == 2
    assert value(metrics, "failover_gateway_overhead_seconds_bucket", le="0.0005") == 1


async def test_budget_exhaustion_is_counted(router: Router) -> None:
    """A refused retry or hedge counts per route and budget; unknown names stay bounded."""
    metrics = Metrics(router)
    metrics.on_budget_exhausted("smart", "retry")
    metrics.on_budget_exhausted("smart", "hedge")
    metrics.on_budget_exhausted("who?", "weird")
    assert value(metrics, "failover_budget_exhausted_total", route="smart", budget="retry") == 1
    assert value(metrics, "failover_budget_exhausted_total", route="smart", budget="hedge") == 1
    assert value(metrics, "failover_budget_exhausted_total", route=OTHER, budget=OTHER) == 1


async def test_budget_tokens_gauge_per_route(router: Router) -> None:
    """Every configured route exports the tokens left in its retry budget."""
    metrics = Metrics(router)
    assert value(metrics, "failover_budget_tokens", route="smart", budget="retry") == 10
    assert value(metrics, "failover_budget_tokens", route="fast", budget="retry") == 10


async def test_registries_are_independent(clock: FakeClock) -> None:
    """Two gateways in one process keep separate registries and counts."""
    first, second = two_routes(clock), two_routes(clock)
    m1, m2 = Metrics(first), Metrics(second)
    await first.complete("smart", HI)
    assert value(m1, "failover_requests_total", route="smart", outcome="ok") == 1
    assert value(m2, "failover_requests_total", route="smart", outcome="ok") == 0


async def test_detach_stops_counting(router: Router) -> None:
    """After detach(), requests are no longer counted."""
    metrics = Metrics(router)
    metrics.detach()
    await router.complete("smart", HI)
    assert value(metrics, "failover_requests_total", route="smart", outcome="ok") == 0
    assert not router.hooks.request


async def test_health_probes_are_counted(clock: FakeClock) -> None:
    """watch_health counts every probe by deployment and outcome."""
    router = Router({"r": Route([ScriptedDeployment("d", clock=clock)])}, clock=clock)
    metrics = Metrics(router)
    checker = HealthChecker(router, HealthConfig(interval=5, jitter=0))
    metrics.watch_health(checker)
    await checker.check_all()
    await checker.check_all()
    assert value(metrics, "failover_health_probes_total", deployment="d", outcome="ok") == 2


async def test_hedge_loser_counts_as_cancelled(clock: FakeClock) -> None:
    """A hedge race's loser is counted under outcome cancelled, not as a failure."""
    from failover import HedgePolicy

    slow = ScriptedDeployment("slow", ok(latency=5.0), clock=clock)
    fast = ScriptedDeployment("fast", ok(latency=0.1), clock=clock)
    router = Router(
        {"r": Route([slow, fast], hedge=HedgePolicy(delay=0.5, max_hedges=1))}, clock=clock
    )
    metrics = Metrics(router)
    async with clock.autojump():
        reply = await router.complete("r", HI)
    assert reply.deployment == "fast"
    lost = {"route": "r", "deployment": "slow", "outcome": Kind.CANCELLED.value}
    assert value(metrics, "failover_attempts_total", **lost) == 1
    assert value(metrics, "failover_failovers_total", route="r") == 1
    assert value(metrics, "failover_retries_total", route="r", deployment="fast") == 0


async def test_router_reports_an_empty_retry_budget(clock: FakeClock) -> None:
    """With the retry budget spent, the router's refused retry is counted."""
    router = two_routes(
        clock,
        primary=[fail(500)],
        retry=RetryPolicy(attempts=3, base=0.1, budget=0, budget_min_per_second=0, budget_burst=1),
    )
    metrics = Metrics(router)
    async with clock.autojump():
        await router.complete("smart", HI)  # spends the one token on a retry
        await router.complete("smart", HI)  # none left: the retry is refused
    exhausted = {"route": "smart", "budget": "retry"}
    assert value(metrics, "failover_budget_exhausted_total", **exhausted) >= 1
