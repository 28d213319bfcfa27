"""The process's own saturation in /metrics and /admin/status: event-loop lag, concurrency
limits, connection pools, and the failures blamed on them instead of a deployment."""

from __future__ import annotations

import asyncio

from obs_helpers import HI, two_routes

from failover import FakeClock, Route, Router
from failover._local import LOCAL_LAG, POOL_WAIT_BUCKETS, PoolStats
from failover.kinds import Kind
from failover.observability import Metrics, snapshot
from failover.observability.metrics import OTHER
from failover.resilience.concurrency import ConcurrencyPolicy
from failover.testing import ScriptedDeployment, fail, ok


def value(metrics: Metrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def lagging(router: Router) -> None:
    """A lag sample of 2 s inside every call made from now on."""
    router.lag.note(asyncio.get_running_loop().time() + 60, 2.0)


def with_pools(clock: FakeClock, *pools: PoolStats) -> Router:
    """A router that reports `pools` as its transport's."""
    route = Route([ScriptedDeployment("only", ok("x"), clock=clock)])
    return Router({"chat": route}, clock=clock, pools=lambda: pools)


async def test_a_local_failure_is_counted_with_its_reason(clock: FakeClock) -> None:
    """An attempt that failed while the loop lagged counts in failover_local_failures_total."""
    router = two_routes(clock, primary=[fail(Kind.TIMEOUT)])
    metrics = Metrics(router)
    lagging(router)
    await router.complete("smart", HI)
    found = value(metrics, "failover_local_failures_total", deployment="primary", reason="loop_lag")
    assert found == 1.0
    assert value(metrics, "failover_attempts_total", route="smart", deployment="primary",
                 outcome="timeout") == 1.0  # fmt: skip


async def test_a_provider_failure_is_not_counted_as_local(clock: FakeClock) -> None:
    """The same timeout on a process that is not saturated leaves the counter alone."""
    router = two_routes(clock, primary=[fail(Kind.TIMEOUT)])
    metrics = Metrics(router)
    await router.complete("smart", HI)
    found = value(metrics, "failover_local_failures_total", deployment="primary", reason="loop_lag")
    assert found is None


async def test_loop_lag_gauges_show_the_latest_and_the_worst(router: Router) -> None:
    """The lag gauges show the latest sample and the largest of the last 10 seconds."""
    metrics = Metrics(router)
    for at, late in [(100.0, 0.8), (105.0, 0.3), (106.0, 0.02)]:
        router.lag.note(at, late)
    assert value(metrics, "failover_event_loop_lag_seconds") == 0.02
    assert value(metrics, "failover_event_loop_lag_max_seconds") == 0.8


async def test_concurrency_gauges_show_limit_in_flight_and_waiting(clock: FakeClock) -> None:
    """A deployment at its concurrency limit shows its limit, the call in flight, and the
    call waiting for a slot."""
    only = ScriptedDeployment("only", ok("x", latency=10), clock=clock)
    policy = ConcurrencyPolicy(initial=1, min_limit=1)
    router = Router({"chat": Route([only])}, clock=clock, concurrency=policy)
    metrics = Metrics(router)
    calls = [asyncio.create_task(router.complete("chat", HI)) for _ in range(2)]
    for _ in range(20):
        await asyncio.sleep(0)
    seen = {
        name: value(metrics, f"failover_concurrency_{name}", deployment="only")
        for name in ("limit", "in_flight", "waiting")
    }
    async with clock.autojump():
        await asyncio.gather(*calls)
    assert seen == {"limit": 1.0, "in_flight": 1.0, "waiting": 1.0}


def test_pool_gauges_and_wait_histogram(clock: FakeClock) -> None:
    """Each pool shows its limit, connections in use, waiters, and a cumulative histogram of
    the time requests waited for a connection."""
    pool = PoolStats("openai", "traffic", limit=2, active=3, waiting=1)
    for seconds in (0.0, 0.0, 0.2):
        pool.waited(seconds)
    metrics = Metrics(with_pools(clock, pool))
    labels = {"provider": "openai", "pool": "traffic"}
    assert value(metrics, "failover_pool_limit", **labels) == 2
    assert value(metrics, "failover_pool_connections", **labels) == 2
    assert value(metrics, "failover_pool_waiting", **labels) == 1
    assert value(metrics, "failover_pool_wait_seconds_count", **labels) == 3
    assert value(metrics, "failover_pool_wait_seconds_sum", **labels) == 0.2
    first = {**labels, "le": repr(POOL_WAIT_BUCKETS[0])}
    assert value(metrics, "failover_pool_wait_seconds_bucket", **first) == 2
    assert value(metrics, "failover_pool_wait_seconds_bucket", **labels, le="0.25") == 3


def test_pools_made_after_the_metrics_are_summed_as_other(clock: FakeClock) -> None:
    """A pool of a provider unknown when the metrics were built is exported as `_other`."""
    pools = [PoolStats("openai", waiting=1)]
    router = Router(
        {"chat": Route([ScriptedDeployment("only", ok("x"), clock=clock)])},
        clock=clock,
        pools=lambda: pools,
    )
    metrics = Metrics(router)
    pools += [PoolStats("new-a", waiting=2), PoolStats("new-b", waiting=3)]
    assert value(metrics, "failover_pool_waiting", provider=OTHER, pool="traffic") == 5
    assert value(metrics, "failover_pool_waiting", provider="openai", pool="traffic") == 1


async def test_status_shows_loop_lag_and_pools(clock: FakeClock) -> None:
    """The status document's `local` section holds the loop lag and each pool's state."""
    router = with_pools(clock, PoolStats("openai", "probe", limit=4, active=1))
    router.lag.note(10.0, 0.25)
    local = snapshot(router)["local"]
    assert local["loop_lag"] == {
        "sampling": False,
        "lag_ms": 250.0,
        "max_ms": 250.0,
        "window_s": 10.0,
        "threshold_ms": LOCAL_LAG * 1000,
    }
    assert local["pools"] == [
        {
            "provider": "openai",
            "pool": "probe",
            "limit": 4,
            "in_use": 1,
            "waiting": 0,
            "queued": 0,
            "wait_total_s": 0.0,
        }
    ]


async def test_status_shows_each_deployments_concurrency(router: Router) -> None:
    """Every deployment's status holds its concurrency limit, calls in flight and waiting."""
    status = snapshot(router)
    primary = status["routes"]["smart"]["deployments"][0]
    assert primary["concurrency"] == {"limit": 32, "in_flight": 0, "waiting": 0}


async def test_a_skip_at_the_concurrency_limit_is_counted_as_saturated(clock: FakeClock) -> None:
    """A candidate passed over at its concurrency limit counts under reason `saturated`."""
    primary = ScriptedDeployment("primary", ok("p", latency=10), clock=clock)
    backup = ScriptedDeployment("backup", ok("b", latency=10), clock=clock)
    policy = ConcurrencyPolicy(initial=1, min_limit=1)
    router = Router({"chat": Route([primary, backup])}, clock=clock, concurrency=policy)
    metrics = Metrics(router)
    async with clock.autojump():
        await asyncio.gather(*(router.complete("chat", HI) for _ in range(2)))
    labels = {"route": "chat", "deployment": "primary", "reason": "saturated"}
    assert value(metrics, "failover_skips_total", **labels) == 1.0
