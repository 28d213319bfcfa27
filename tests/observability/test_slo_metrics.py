"""The metrics SLOs are measured by: requests good or bad per route, the latency of answers in
buckets that hold each objective, the objectives as gauges, and the state of each route."""

from __future__ import annotations

import pytest
from obs_helpers import HI, two_routes
from prometheus_client.parser import text_string_to_metric_families

from failover import AllDeploymentsFailed, FakeClock, Kind, Route, Router, from_config
from failover.config import Config, LatencyObjectives, SloConfig
from failover.observability import Metrics
from failover.observability.slo import answer_latency, latency_buckets, slo_outcome
from failover.state.redis import RedisStore
from failover.testing import ScriptedDeployment, fail, ok
from failover.trace import Attempt, Trace
from redis_server import free_port

SLOS = {"smart": SloConfig(availability=0.999, latency=LatencyObjectives(p50=0.3, p99=1.7))}


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    """The sample `name{labels}` of the exposition, or None if there is none."""
    return metrics.registry.get_sample_value(name, labels)


def bucket_bounds(metrics: Metrics) -> set[str]:
    """The `le` values of failover_request_latency_seconds as /metrics writes them."""
    text = metrics.render().decode()
    return {
        sample.labels["le"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "failover_request_latency_seconds_bucket"
    }


async def test_an_answer_counts_good_with_its_latency(clock: FakeClock) -> None:
    """A request answered after 250 ms counts one good request and lands in the 0.3 s bucket."""
    router = two_routes(clock, primary=[ok(latency=0.25)])
    metrics = Metrics(router, slos=SLOS)
    async with clock.autojump():
        await router.complete("smart", HI)
    assert value(metrics, "failover_slo_requests_total", route="smart", outcome="good") == 1
    assert value(metrics, "failover_slo_requests_total", route="smart", outcome="bad") == 0
    name = "failover_request_latency_seconds"
    assert value(metrics, f"{name}_bucket", route="smart", le="0.25") == 1
    assert value(metrics, f"{name}_sum", route="smart") == pytest.approx(0.25)


async def test_latency_counts_retries_and_failovers(clock: FakeClock) -> None:
    """A request answered by the backup after the primary's two failures is as slow as all three."""
    router = two_routes(clock, primary=[fail(500, latency=0.2)], backup=[ok(latency=0.5)])
    metrics = Metrics(router, slos=SLOS)
    async with clock.autojump():
        await router.complete("smart", HI)
    # two 200 ms failures, up to 100 ms of backoff between them, then the 500 ms answer
    total = value(metrics, "failover_request_latency_seconds_sum", route="smart")
    assert total is not None and 0.9 <= total <= 1.0


async def test_a_failed_request_counts_bad(clock: FakeClock) -> None:
    """A request every deployment failed counts one bad request and no latency."""
    router = Router({"r": Route([ScriptedDeployment("d", fail(503), clock=clock)])}, clock=clock)
    metrics = Metrics(router, slos={"r": SloConfig(availability=0.99)})
    async with clock.autojump():
        with pytest.raises(AllDeploymentsFailed):
            await router.complete("r", HI)
    assert value(metrics, "failover_slo_requests_total", route="r", outcome="bad") == 1
    assert value(metrics, "failover_request_latency_seconds_count", route="r") == 0


async def test_the_callers_mistake_is_not_counted(clock: FakeClock) -> None:
    """A bad request is neither good nor bad for the SLO (it still counts as a request)."""
    router = two_routes(clock, primary=[fail(400)])
    metrics = Metrics(router, slos=SLOS)
    with pytest.raises(Exception, match="scripted"):
        await router.complete("smart", HI)
    assert value(metrics, "failover_slo_requests_total", route="smart", outcome="good") == 0
    assert value(metrics, "failover_slo_requests_total", route="smart", outcome="bad") == 0
    assert value(metrics, "failover_requests_total", route="smart", outcome="bad_request") == 1


@pytest.mark.parametrize(
    ("kind", "outcome"),
    [
        (Kind.OK, "good"),
        (Kind.SERVER_ERROR, "bad"),
        (Kind.TIMEOUT, "bad"),
        (Kind.RATE_LIMITED, "bad"),
        (Kind.AUTH, "bad"),
        (Kind.BAD_REQUEST, None),
        (Kind.CONTEXT_WINDOW, None),
        (Kind.CONTENT_FILTER, None),
        (Kind.CANCELLED, None),
    ],
)
def test_each_kind_has_its_slo_outcome(kind: Kind, outcome: str | None) -> None:
    """Answers are good, the service's failures bad, the caller's doing not counted."""
    assert slo_outcome(kind) == outcome


async def test_a_streams_latency_is_its_first_content(clock: FakeClock) -> None:
    """A stream whose first content came at 0.3 s and its end at 5.3 s is observed at 0.3 s."""
    router = two_routes(clock, primary=[ok(latency=0.3, chunks=("a", "b"), chunk_gap=5.0)])
    metrics = Metrics(router, slos=SLOS)
    async with clock.autojump():
        async for _ in router.stream("smart", HI):
            pass
    total = value(metrics, "failover_request_latency_seconds_sum", route="smart")
    assert total == pytest.approx(0.3)


def test_a_recovered_streams_latency_is_the_committed_attempts() -> None:
    """After a break, the first content of the attempt that committed still counts, not the
    recovery's."""
    trace = Trace("r", started=10.0)
    trace.attempts = [
        Attempt("r", "a", kind=Kind.SERVER_ERROR, started=10.0, latency=0.1),
        Attempt("r", "b", kind=Kind.TIMEOUT, started=10.2, ttft=0.4),
        Attempt("r", "c", started=15.0, ttft=0.2, recovery="continue"),
    ]
    assert answer_latency(trace, now=20.0) == pytest.approx(0.6)


def test_latency_is_unknown_without_a_start() -> None:
    """A trace that never recorded its start gives no latency."""
    assert answer_latency(Trace("r"), now=3.0) is None


async def test_buckets_hold_every_latency_objective(router: Router) -> None:
    """The histogram has a bucket at each objective, written like the objective gauge's le."""
    metrics = Metrics(router, slos=SLOS)
    assert {"0.3", "1.7", "+Inf"} <= bucket_bounds(metrics)
    p99 = {"route": "smart", "quantile": "0.99", "le": "1.7"}
    assert value(metrics, "failover_slo_latency_seconds", **p99) == 1.7


def test_a_bucket_lies_above_the_longest_objective() -> None:
    """An objective at or past the last default bucket gets a finite bucket above it, so
    histogram_quantile can report a breach."""
    slo = SloConfig(latency=LatencyObjectives(p99=300))
    assert latency_buckets([slo])[-2:] == (300.0, 600.0)
    assert latency_buckets([SloConfig(latency=LatencyObjectives(p99=2))])[-1] == 120.0


async def test_objectives_are_exported(router: Router) -> None:
    """Availability, each latency objective and the window are gauges of their route."""
    metrics = Metrics(router, slos=SLOS)
    assert value(metrics, "failover_slo_objective", route="smart", slo="availability") == 0.999
    p50 = {"route": "smart", "quantile": "0.5", "le": "0.3"}
    assert value(metrics, "failover_slo_latency_seconds", **p50) == 0.3
    assert value(metrics, "failover_slo_window_seconds", route="smart") == 30 * 86400
    assert value(metrics, "failover_slo_window_seconds", route="fast") is None


async def test_counts_start_at_zero_for_every_route(router: Router) -> None:
    """Configured routes export good and bad from 0, so rate() sees the first failure."""
    metrics = Metrics(router)
    for route in ("smart", "fast"):
        for outcome in ("good", "bad"):
            assert value(metrics, "failover_slo_requests_total", route=route, outcome=outcome) == 0


async def test_objectives_come_from_the_config() -> None:
    """A router built from config exports its routes' objectives, defaults merged in."""
    config = Config.from_yaml(
        """
providers: {sim: {kind: simulated}}
routes:
  smart: {deployments: [{provider: sim, model: a}], slo: {latency: {p95: 800ms}}}
  fast: {deployments: [{provider: sim, model: b}]}
defaults: {slo: {availability: 99.5%, window: 7d}}
""",
        env={},
    )
    router = from_config(config)
    try:
        metrics = Metrics(router)
        assert value(metrics, "failover_slo_objective", route="fast", slo="availability") == 0.995
        assert value(metrics, "failover_slo_objective", route="smart", slo="availability") == 0.995
        p95 = {"route": "smart", "quantile": "0.95", "le": "0.8"}
        assert value(metrics, "failover_slo_latency_seconds", **p95) == 0.8
        assert value(metrics, "failover_slo_window_seconds", route="fast") == 7 * 86400
    finally:
        await router.aclose()


async def test_each_route_lists_its_deployments(router: Router) -> None:
    """failover_route_deployment_info has one series per deployment of each route."""
    metrics = Metrics(router)
    for route, deployment in (("smart", "primary"), ("smart", "backup"), ("fast", "local")):
        labels = {"route": route, "deployment": deployment}
        assert value(metrics, "failover_route_deployment_info", **labels) == 1
    assert (
        value(metrics, "failover_route_deployment_info", route="fast", deployment="primary") is None
    )


async def test_a_store_in_one_process_is_never_degraded(router: Router) -> None:
    """The memory store reads 0 on failover_store_degraded."""
    assert value(Metrics(router), "failover_store_degraded") == 0


async def test_an_unreachable_redis_reads_degraded(clock: FakeClock) -> None:
    """A Redis store that cannot reach its server reads 1 on failover_store_degraded."""
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", clock=clock, sync_timeout=0.05)
    try:
        await store.start()
        router = two_routes(clock, store=store)
        assert value(Metrics(router), "failover_store_degraded") == 1
    finally:
        await store.close()
