"""What alerts on service level objectives read: the metrics SLOs are measured by, the
objectives themselves, and whether a route can be served at all.

Per route: requests counted `good` (answered) or `bad` (failed for a reason that is not the
caller's), the latency of answered requests in a histogram whose buckets include every
configured latency objective, and the objectives as gauges. So an alert rule or a dashboard
needs no number of its own: `histogram_quantile(0.99, ...)` is exact at the objective, and the
share of requests faster than it is one bucket over the count (the `le` label of
`failover_slo_latency_seconds` names that bucket). Read at scrape time: which deployments
serve which route, and whether the shared state store is degraded.

Routes only take names the `Metrics` knows (configured routes and deployments, else "_other"),
so no client can create a series.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.core import GaugeMetricFamily, Metric

from ..config import SloConfig
from ..errors import Kind
from ..trace import Trace
from .families import CounterFamily, HistogramFamily, go_float

if TYPE_CHECKING:
    from ..router import Router

__all__ = [
    "BAD",
    "GOOD",
    "NOT_COUNTED",
    "REQUEST_LATENCY_BUCKETS",
    "SloMetrics",
    "answer_latency",
    "configured_slos",
    "go_float",
    "latency_buckets",
    "slo_outcome",
]

GOOD, BAD = "good", "bad"
# The caller's doing (a bad request, a prompt too long, content refused on policy) or nobody's
# (the caller went away): such a request tells nothing about the service, so no SLO counts it.
NOT_COUNTED = frozenset(
    {Kind.BAD_REQUEST, Kind.CONTEXT_WINDOW, Kind.CONTENT_FILTER, Kind.CANCELLED}
)
REQUEST_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


def slo_outcome(kind: Kind) -> str | None:
    """`good` for an answer, `bad` for a failure of the service, None for one no SLO counts."""
    if kind is Kind.OK:
        return GOOD
    return None if kind in NOT_COUNTED else BAD


def answer_latency(trace: Trace, now: float) -> float | None:
    """Seconds from the request's start until its answer began: a stream's first content (the
    rest depends on what was asked), else the whole answer; None if the start is unknown."""
    if trace.started is None:
        return None
    for attempt in trace.attempts:
        committed = attempt.recovery is None and not attempt.cancelled and attempt.skipped is None
        if committed and attempt.ttft is not None and attempt.started is not None:
            return attempt.started + attempt.ttft - trace.started
    return now - trace.started


def configured_slos(router: Router) -> dict[str, SloConfig]:
    """The objectives of each route of the router's config that has some."""
    config = router.config
    if config is None:
        return {}
    return {name: slo for name in config.routes if (slo := config.slo_for(name)) is not None}


def latency_buckets(slos: Iterable[SloConfig]) -> tuple[float, ...]:
    """The default buckets plus every latency objective, and a bucket above the longest."""
    objectives = {s for slo in slos if slo.latency for s in slo.latency.objectives().values()}
    bounds = set(REQUEST_LATENCY_BUCKETS) | objectives
    if objectives and max(objectives) >= REQUEST_LATENCY_BUCKETS[-1]:
        # histogram_quantile never answers more than the highest finite bound: with the
        # objective there, a breach would read as exactly the objective
        bounds.add(2 * max(objectives))
    return tuple(sorted(bounds))


class SloMetrics:
    """The SLO families of one router's registry: counts, answer latency and objectives per
    route (`routes`: the configured ones, exported from 0), and the route state gauges."""

    def __init__(
        self,
        router: Router,
        registry: CollectorRegistry,
        routes: Iterable[str],
        slos: Mapping[str, SloConfig] | None = None,
    ) -> None:
        """`slos`: objectives by route name; default: those of the router's config."""
        self.slos = configured_slos(router) if slos is None else dict(slos)
        self.clock = router.clock
        self.requests = CounterFamily(
            "failover_slo_requests",
            "Requests an SLO counts, by route: good (answered) or bad (failed, not the caller's "
            "fault).",
            ["route", "outcome"],
        )
        self.latency = HistogramFamily(
            "failover_request_latency_seconds",
            "Time until answered requests began answering (a stream: its first content), by route.",
            ["route"],
            buckets=latency_buckets(self.slos.values()),
        )
        registry.register(self.requests)
        registry.register(self.latency)
        for route in routes:  # at 0 from the start, so rate() sees the first failure
            for outcome in (GOOD, BAD):
                self.requests.touch(route, outcome)
            self.latency.touch(route)
        self._objectives(registry)
        registry.register(_RouteState(router))

    def observe(self, route: str, trace: Trace, kind: Kind) -> None:
        """Count one finished request of `route` (a bounded label value already)."""
        outcome = slo_outcome(kind)
        if outcome is None:
            return
        self.requests.inc(route, outcome)
        if outcome == GOOD and (seconds := answer_latency(trace, self.clock.now())) is not None:
            self.latency.observe(seconds, route)

    def _objectives(self, registry: CollectorRegistry) -> None:
        objective = Gauge(
            "failover_slo_objective",
            "Objective of a route's SLO: the share of valid requests that must be answered.",
            ["route", "slo"],
            registry=registry,
        )
        latency = Gauge(
            "failover_slo_latency_seconds",
            "Latency objective of a route: at most this long for `quantile` of answered "
            "requests; `le` names the matching bucket of failover_request_latency_seconds.",
            ["route", "quantile", "le"],
            registry=registry,
        )
        window = Gauge(
            "failover_slo_window_seconds",
            "Rolling window a route's error budget is counted over.",
            ["route"],
            registry=registry,
        )
        for route, slo in self.slos.items():
            window.labels(route).set(slo.window)
            if slo.availability is not None:
                objective.labels(route, "availability").set(slo.availability)
            for quantile, seconds in (slo.latency.objectives() if slo.latency else {}).items():
                latency.labels(route, go_float(quantile), go_float(seconds)).set(seconds)

    def __repr__(self) -> str:
        return f"<SloMetrics objectives={sorted(self.slos)}>"


class _RouteState:
    """Gauges read at scrape time: the deployments of each route, the store's health."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def collect(self) -> Iterable[Metric]:
        # which deployments serve which route: PromQL can then filter per-deployment series
        # by route, and tell when every deployment of a route is down
        info = GaugeMetricFamily(
            "failover_route_deployment_info",
            "1 for each deployment of each configured route.",
            labels=["route", "deployment"],
        )
        for name, route in self.router.routes.items():
            for deployment in route.deployments:
                info.add_metric([name, deployment.name], 1.0)
        yield info
        yield GaugeMetricFamily(
            "failover_store_degraded",
            "1 while the shared state store (Redis) cannot be reached and this replica decides "
            "alone, else 0.",
            value=1.0 if self.router.store.degraded else 0.0,
        )
