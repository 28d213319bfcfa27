"""Metrics of the process's own saturation, and of the failures blamed on it instead of a
deployment (see "Local trouble is not a provider failure" in docs/failover.md).

    failover_local_failures_total{deployment,reason}     attempts that failed for our own reasons
    failover_event_loop_lag_seconds, ..._max_seconds      how late the event loop wakes
    failover_concurrency_{limit,in_flight,waiting}        each deployment's adaptive limit
    failover_pool_{limit,connections,waiting}             each provider's connection pools
    failover_pool_wait_seconds                            how long requests waited for one

Gauges are read when Prometheus scrapes. Label values are bounded like every other metric:
deployments and providers known when the metrics were built, fixed vocabularies for `reason`
and `pool`; anything else is counted under "_other".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric

from .._local import LOCAL_LAG, POOL_WAIT_BUCKETS, PoolStats

if TYPE_CHECKING:
    from ..router import Router

__all__ = ["LAG_WINDOW", "LOCAL_REASONS", "POOLS", "SaturationMetrics"]

OTHER = "_other"
LOCAL_REASONS = frozenset({"loop_lag", "pool_wait"})
POOLS = frozenset({"traffic", "probe"})
LAG_WINDOW = 10.0  # seconds over which the worst event-loop lag is reported


class SaturationMetrics:
    """Local failures (fed by the attempt hook) and saturation gauges (read at scrape)."""

    def __init__(
        self,
        router: Router,
        registry: CollectorRegistry,
        deployments: Sequence[str],
        label: Callable[[str | None], str],
    ) -> None:
        """`deployments`: the names to export gauges for; `label`: a name's bounded label."""
        self.router = router
        self.deployments = tuple(deployments)
        self.providers = frozenset(p.provider for p in router.pools())
        self._label = label
        self.local_failures = Counter(
            "failover_local_failures",
            "Attempts that failed while the process itself was saturated (event-loop lag, "
            "waiting for one of our own connections): blamed on no deployment.",
            ["deployment", "reason"],
            registry=registry,
        )
        registry.register(self)

    def on_local(self, deployment: str | None, reason: str) -> None:
        """Count an attempt labelled local."""
        shown = reason if reason in LOCAL_REASONS else OTHER
        self.local_failures.labels(self._label(deployment), shown).inc()

    def collect(self) -> Iterable[Metric]:
        """The gauges, read now (called by the registry at scrape time)."""
        yield from self._lag()
        yield from self._concurrency()
        yield from _pools(self._bounded(self.router.pools()))

    def _lag(self) -> Iterable[Metric]:
        lag = self.router.lag
        yield GaugeMetricFamily(
            "failover_event_loop_lag_seconds",
            "How late the event loop woke at its latest sample (sampled every 0.1 s).",
            value=lag.current,
        )
        yield GaugeMetricFamily(
            "failover_event_loop_lag_max_seconds",
            f"The largest event-loop lag sampled in the last {LAG_WINDOW:g} s; from "
            f"{LOCAL_LAG:g} s, failures are blamed on the process, not the deployments.",
            value=lag.recent(LAG_WINDOW),
        )

    def _concurrency(self) -> Iterable[Metric]:
        limit = GaugeMetricFamily(
            "failover_concurrency_limit",
            "Calls a deployment may have in flight from this process (adaptive).",
            labels=["deployment"],
        )
        in_flight = GaugeMetricFamily(
            "failover_concurrency_in_flight",
            "Calls holding one of a deployment's concurrency slots in this process.",
            labels=["deployment"],
        )
        waiting = GaugeMetricFamily(
            "failover_concurrency_waiting",
            "Calls waiting for a slot of a deployment at its concurrency limit.",
            labels=["deployment"],
        )
        for name in self.deployments:
            state = self.router.concurrency(name)
            limit.add_metric([name], int(state.limit))
            in_flight.add_metric([name], state.in_flight)
            waiting.add_metric([name], state.waiting)
        yield from (limit, in_flight, waiting)

    def _bounded(self, pools: list[PoolStats]) -> list[PoolStats]:
        """The pools with bounded labels: unknown providers and pool kinds summed as _other."""
        merged: dict[tuple[str, str], PoolStats] = {}
        for stats in pools:
            provider = stats.provider if stats.provider in self.providers else OTHER
            pool = stats.pool if stats.pool in POOLS else OTHER
            if (provider, pool) == (stats.provider, stats.pool):
                merged[provider, pool] = stats
                continue
            into = merged.setdefault((provider, pool), PoolStats(provider, pool))
            _add(into, stats)
        return list(merged.values())


def _add(into: PoolStats, stats: PoolStats) -> None:
    into.limit += stats.limit
    into.active += stats.active
    into.waiting += stats.waiting
    into.queued += stats.queued
    into.wait_sum += stats.wait_sum
    into.wait_counts = [a + b for a, b in zip(into.wait_counts, stats.wait_counts, strict=True)]


def _pools(pools: list[PoolStats]) -> Iterable[Metric]:
    labels = ["provider", "pool"]
    limit = GaugeMetricFamily(
        "failover_pool_limit",
        "Connections a provider's pool may hold (0: no limit).",
        labels=labels,
    )
    in_use = GaugeMetricFamily(
        "failover_pool_connections",
        "Connections of a provider's pool in use (open or being opened) by requests.",
        labels=labels,
    )
    waiting = GaugeMetricFamily(
        "failover_pool_waiting",
        "Requests waiting for a connection because the provider's pool is full.",
        labels=labels,
    )
    wait = HistogramMetricFamily(
        "failover_pool_wait_seconds",
        "Time each request waited for a connection of a provider's pool (0: one was free).",
        labels=labels,
    )
    for stats in pools:
        names = [stats.provider, stats.pool]
        limit.add_metric(names, stats.limit)
        in_use.add_metric(names, stats.in_use)
        waiting.add_metric(names, stats.waiting)
        wait.add_metric(names, _buckets(stats), stats.wait_sum)
    yield from (limit, in_use, waiting, wait)


def _buckets(stats: PoolStats) -> list[tuple[str, float]]:
    """Cumulative bucket counts, Prometheus style, ending with +Inf."""
    out, total = [], 0
    for bound, count in zip((*POOL_WAIT_BUCKETS, float("inf")), stats.wait_counts, strict=True):
        total += count
        out.append(("+Inf" if bound == float("inf") else repr(bound), float(total)))
    return out
