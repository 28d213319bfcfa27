"""Prometheus metrics of one router, on a registry of its own.

Counters and histograms are fed by the router's hooks (attempt, request, event); gauges (breaker
state, health, cool-downs, calls in flight, budget tokens) are read from the state store when
Prometheus scrapes, so they are right even when another replica changed the state.

Label values come only from the configuration (route and deployment names known when the
`Metrics` was built) and from fixed vocabularies (`Kind` values, breaker states, event types):
a client asking for a model nobody configured cannot create a time series. Names that are not
known are counted under the label value "_other".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..errors import Kind
from ..events import Event, StreamBreak
from ..resilience.breaker import BreakerState
from ..trace import Attempt, Skip, Trace
from .families import CounterFamily, HistogramFamily
from .saturation import SaturationMetrics
from .slo import SloMetrics

if TYPE_CHECKING:
    from ..config import SloConfig
    from ..health import HealthChecker, ProbeResult
    from ..resilience.admission import Admission, Gate
    from ..router import Router

__all__ = [
    "BREAKER_STATE_VALUES",
    "CONTENT_TYPE",
    "OTHER",
    "AdmissionMetrics",
    "Metrics",
    "WebhookStats",
]

OTHER = "_other"
CONTENT_TYPE = CONTENT_TYPE_LATEST
BREAKER_STATE_VALUES: dict[BreakerState, int] = {
    BreakerState.CLOSED: 0,
    BreakerState.OPEN: 1,
    BreakerState.HALF_OPEN: 2,
    BreakerState.FORCED_OPEN: 3,
    BreakerState.DISABLED: 4,
}
EVENT_TYPES = frozenset({"breaker", "health", "panic", "fallback", "chaos", "config"})
SKIP_REASONS = frozenset(s.value for s in Skip)
BUDGETS = frozenset({"retry", "hedge"})
BREAK_OUTCOMES = frozenset({"continued", "restarted", "failed"})
_KINDS = frozenset(k.value for k in Kind)
_STATES = frozenset(s.value for s in BreakerState)

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


class WebhookStats(Protocol):
    """What the metrics read from a webhook sender (see `alerts.WebhookSender`)."""

    url_label: str
    sent: int
    failed: int
    dropped: int
    suppressed: int


class Metrics:
    """Every Prometheus metric of one router. Build one per gateway; it subscribes itself."""

    def __init__(
        self,
        router: Router,
        *,
        registry: CollectorRegistry | None = None,
        slos: Mapping[str, SloConfig] | None = None,
    ) -> None:
        """`slos`: objectives by route name; default: those of the router's config."""
        self.router = router
        self.registry = registry or CollectorRegistry()
        self.deployment_names = tuple(router.deployments())
        self.route_names = tuple(router.routes)
        # a deployment can be addressed directly as a model name: it is then its own route
        self._routes = frozenset(self.route_names) | frozenset(self.deployment_names)
        self._deployments = frozenset(self.deployment_names)
        self._webhooks: list[WebhookStats] = []
        self._define()
        self.slo = SloMetrics(self.router, self.registry, self.route_names, slos)
        self.registry.register(_LiveState(self))
        # the process's own saturation: loop lag, pools, concurrency, local failures
        self.saturation = SaturationMetrics(
            router, self.registry, self.deployment_names, self.deployment
        )
        self.attach()

    def _define(self) -> None:
        self.requests = self._counter(
            "failover_requests",
            "Requests finished, by route asked for and outcome kind.",
            ["route", "outcome"],
        )
        self.attempts = self._counter(
            "failover_attempts",
            "Calls made to deployments, by route, deployment and outcome kind.",
            ["route", "deployment", "outcome"],
        )
        self.skips = self._counter(
            "failover_skips",
            "Candidates skipped without a call (breaker open, unhealthy, cooling down, "
            "at its concurrency limit, quota spent).",
            ["route", "deployment", "reason"],
        )
        self.failovers = self._counter(
            "failover_failovers",
            "Requests answered by a deployment other than the first one called.",
            ["route"],
        )
        self.fallbacks = self._counter(
            "failover_fallbacks",
            "Requests answered by a fallback route (`to`) instead of the route asked for.",
            ["route", "to"],
        )
        self.retries = self._counter(
            "failover_retries",
            "Calls repeated on a deployment already called for the same request.",
            ["route", "deployment"],
        )
        self.budget_exhausted = self._counter(
            "failover_budget_exhausted",
            "Retries or hedges not made because the route's budget was empty.",
            ["route", "budget"],
        )
        self.stream_breaks = self._counter(
            "failover_stream_breaks",
            "Streams that broke after content reached the caller, by the deployment that "
            "broke, how (kind), and what became of it: continued (assistant prefill) or "
            "restarted (regenerated and matched) on another deployment, or failed.",
            ["route", "deployment", "kind", "outcome"],
        )
        self.transitions = self._counter(
            "failover_breaker_transitions",
            "Circuit breaker state changes.",
            ["deployment", "from", "to"],
        )
        self.events = self._counter("failover_events", "Events emitted, by type.", ["type"])
        self.probes = self._counter(
            "failover_health_probes",
            "Active health probes, by deployment and outcome kind.",
            ["deployment", "outcome"],
        )
        self.latency = self._histogram(
            "failover_attempt_latency_seconds",
            "Duration of successful calls (whole stream for streams), by deployment.",
            ["deployment"],
            buckets=LATENCY_BUCKETS,
        )
        self.ttft = self._histogram(
            "failover_ttft_seconds",
            "Time to the first stream chunk of successful streams, by deployment.",
            ["deployment"],
            buckets=TTFT_BUCKETS,
        )
        self.overhead = self._histogram(
            "failover_gateway_overhead_seconds",
            "Time the gateway adds to a request, upstream time excluded.",
            buckets=OVERHEAD_BUCKETS,
        )
        self.admission = AdmissionMetrics()
        self.registry.register(self.admission)

    def _counter(self, name: str, documentation: str, labels: list[str]) -> CounterFamily:
        family = CounterFamily(name, documentation, labels)
        self.registry.register(family)
        return family

    def _histogram(
        self,
        name: str,
        documentation: str,
        labels: list[str] | None = None,
        *,
        buckets: tuple[float, ...],
    ) -> HistogramFamily:
        family = HistogramFamily(name, documentation, labels or (), buckets=buckets)
        if not labels:
            family.touch()  # its one series is exported from 0, as prometheus_client's would be
        self.registry.register(family)
        return family

    # -- wiring ------------------------------------------------------------------------------

    def attach(self) -> None:
        """Subscribe to the router's hooks (done by the constructor)."""
        hooks = self.router.hooks
        if self.on_attempt not in hooks.attempt:
            hooks.attempt.append(self.on_attempt)
            hooks.request.append(self.on_request)
            hooks.event.append(self.on_event)
            budget_hooks = getattr(hooks, "budget", None)  # see docs/observability.md
            if isinstance(budget_hooks, list):
                budget_hooks.append(self.on_budget_exhausted)
            hooks.stream.append(self.on_stream_break)

    def detach(self) -> None:
        """Stop listening to the router."""
        hooks = self.router.hooks
        _discard(hooks.attempt, self.on_attempt)
        _discard(hooks.request, self.on_request)
        _discard(hooks.event, self.on_event)
        budget_hooks = getattr(hooks, "budget", None)
        if isinstance(budget_hooks, list):
            _discard(budget_hooks, self.on_budget_exhausted)
        _discard(hooks.stream, self.on_stream_break)

    def watch_health(self, checker: HealthChecker) -> None:
        """Count the probes of a health checker."""
        checker.listeners.append(self.on_probe)

    def watch_webhooks(self, senders: Sequence[WebhookStats]) -> None:
        """Export the delivery counters of webhook senders."""
        self._webhooks.extend(senders)

    def watch_admission(self, admission: Admission) -> None:
        """Export a gateway's admission control: in flight against limits, and sheds."""
        self.admission.source = admission

    # -- exposition --------------------------------------------------------------------------

    def render(self) -> bytes:
        """The exposition text for GET /metrics (serve with `CONTENT_TYPE`)."""
        return generate_latest(self.registry)

    def observe_overhead(self, seconds: float) -> None:
        """Record the time the gateway itself spent on one request."""
        self.overhead.observe(seconds)

    # -- listeners ---------------------------------------------------------------------------

    def route(self, name: str) -> str:
        return name if name in self._routes else OTHER

    def deployment(self, name: str | None) -> str:
        return name if name is not None and name in self._deployments else OTHER

    def on_attempt(self, attempt: Attempt) -> None:
        deployment = self.deployment(attempt.deployment)
        outcome = Kind.CANCELLED.value if attempt.cancelled else _kind(attempt.kind)
        self.attempts.inc(self.route(attempt.route), deployment, outcome)
        if attempt.local is not None:
            self.saturation.on_local(deployment, attempt.local)
        if outcome == "ok":
            self.latency.observe(attempt.latency, deployment)
            if attempt.ttft is not None:
                self.ttft.observe(attempt.ttft, deployment)

    def on_request(self, trace: Trace, kind: Kind) -> None:
        route = self.route(trace.route)
        self.requests.inc(route, _kind(kind))
        self.slo.observe(route, trace, kind)
        first: Attempt | None = None
        called: set[tuple[str, str]] = set()
        for attempt in trace.attempts:
            if attempt.skipped is not None:
                reason = attempt.skipped if attempt.skipped in SKIP_REASONS else OTHER
                self.skips.inc(
                    self.route(attempt.route), self.deployment(attempt.deployment), reason
                )
                continue
            first = first or attempt
            key = (attempt.route, attempt.deployment)
            if key in called and not attempt.hedge:
                self.retries.inc(self.route(attempt.route), self.deployment(attempt.deployment))
            called.add(key)
        winner = trace.winner
        if kind is not Kind.OK or winner is None or first is None:
            return
        if winner.deployment != first.deployment:
            self.failovers.inc(route)
        if winner.route != trace.route:
            self.fallbacks.inc(route, self.route(winner.route))

    def on_event(self, event: Event) -> None:
        self.events.inc(event.type if event.type in EVENT_TYPES else OTHER)
        if event.type == "breaker":
            old, new = str(event.data.get("old")), str(event.data.get("new"))
            self.transitions.inc(
                self.deployment(event.deployment),
                old if old in _STATES else OTHER,
                new if new in _STATES else OTHER,
            )

    def on_budget_exhausted(self, route: str, budget: str) -> None:
        """A retry or hedge was refused by the route's budget (router hook `budget`)."""
        self.budget_exhausted.inc(self.route(route), budget if budget in BUDGETS else OTHER)

    def on_stream_break(self, event: StreamBreak) -> None:
        """A committed stream broke: count it with its outcome (router hook `stream`)."""
        outcome = event.outcome if event.outcome in BREAK_OUTCOMES else OTHER
        self.stream_breaks.inc(
            self.route(event.route), self.deployment(event.deployment), _kind(event.kind), outcome
        )

    def on_probe(self, result: ProbeResult) -> None:
        self.probes.inc(self.deployment(result.deployment), _kind(result.kind))

    def __repr__(self) -> str:
        return f"<Metrics routes={len(self.route_names)} deployments={len(self.deployment_names)}>"


def _discard(listeners: list[Any], listener: object) -> None:
    if listener in listeners:
        listeners.remove(listener)


# a label value by kind (and by its text, which a StrEnum's member equals): a dict lookup where
# `Kind.X.value` is a descriptor call, on every attempt and request
_KIND_LABELS: dict[object, str] = {kind: kind.value for kind in Kind}


def _kind(kind: object) -> str:
    found = _KIND_LABELS.get(kind)
    if found is not None:
        return found
    value = str(kind)
    return value if value in _KINDS else OTHER


class _LiveState:
    """Gauges read from the state store at scrape time."""

    def __init__(self, metrics: Metrics) -> None:
        self.m = metrics

    def collect(self) -> Iterable[Metric]:
        router = self.m.router
        store, now = router.store, router.clock.now()
        breaker = GaugeMetricFamily(
            "failover_breaker_state",
            "Breaker state: 0 closed, 1 open, 2 half_open, 3 forced_open, 4 disabled.",
            labels=["deployment"],
        )
        healthy = GaugeMetricFamily(
            "failover_deployment_healthy",
            "1 while active health checks pass (or are off), 0 when marked unhealthy.",
            labels=["deployment"],
        )
        cooling = GaugeMetricFamily(
            "failover_deployment_cooling_down",
            "1 while a deployment waits out a rate limit (Retry-After), else 0.",
            labels=["deployment"],
        )
        in_flight = GaugeMetricFamily(
            "failover_in_flight", "Calls in flight, by deployment.", labels=["deployment"]
        )
        for name in self.m.deployment_names:
            state = router.breaker(name).state
            breaker.add_metric([name], BREAKER_STATE_VALUES.get(state, -1))
            healthy.add_metric([name], 1.0 if store.is_healthy(name) else 0.0)
            cooling.add_metric([name], 1.0 if store.cooldown_until(name) > now else 0.0)
            in_flight.add_metric([name], store.stats(name).in_flight)
        yield from (breaker, healthy, cooling, in_flight)
        yield self._budgets()
        yield from self._webhooks()

    def _budgets(self) -> Metric:
        tokens = GaugeMetricFamily(
            "failover_budget_tokens",
            "Tokens left in a route's retry or hedge budget (one retry or hedge costs 1).",
            labels=["route", "budget"],
        )
        for name in self.m.route_names:
            plan = self.m.router.plan(name)
            tokens.add_metric([name, "retry"], plan.budget.tokens)
            if plan.hedge_budget is not None:
                tokens.add_metric([name, "hedge"], plan.hedge_budget.tokens)
        return tokens

    def _webhooks(self) -> Iterable[Metric]:
        if not self.m._webhooks:
            return
        deliveries = CounterMetricFamily(
            "failover_webhook_deliveries",
            "Webhook posts by outcome: sent, failed (after retries), dropped (queue full), "
            "suppressed (repeat within repeat_after).",
            labels=["webhook", "outcome"],
        )
        for sender in self.m._webhooks:
            for outcome in ("sent", "failed", "dropped", "suppressed"):
                deliveries.add_metric([sender.url_label, outcome], getattr(sender, outcome))
        yield deliveries


class AdmissionMetrics:
    """The gateway's admission control, read at scrape time: requests and streams in flight
    against their limits (the process's, each limited route's and key's, and the line it holds
    while saturated) and requests shed. Families without a watched admission are exported
    empty (the loop lag is `SaturationMetrics`')."""

    def __init__(self) -> None:
        self.source: Admission | None = None

    def collect(self) -> Iterable[Metric]:
        kind = ["kind"]
        in_flight = GaugeMetricFamily(
            "failover_admission_in_flight",
            "Requests (kind=requests) and streams (kind=streams) in flight in the process.",
            labels=kind,
        )
        limit = GaugeMetricFamily(
            "failover_admission_limit",
            "The process's limit of requests or streams in flight (server.admission).",
            labels=kind,
        )
        route_in_flight = GaugeMetricFamily(
            "failover_admission_route_in_flight",
            "Requests or streams in flight on a route with admission limits of its own.",
            labels=["route", *kind],
        )
        route_limit = GaugeMetricFamily(
            "failover_admission_route_limit",
            "A route's limit of requests or streams in flight (server.admission.routes).",
            labels=["route", *kind],
        )
        key_in_flight = GaugeMetricFamily(
            "failover_admission_key_in_flight",
            "Requests or streams in flight for a client key with a quota of its own.",
            labels=["key", *kind],
        )
        key_limit = GaugeMetricFamily(
            "failover_admission_key_limit",
            "A client key's quota of requests or streams in flight (server.api_keys).",
            labels=["key", *kind],
        )
        shed = CounterMetricFamily(
            "failover_admission_shed",
            "Requests shed (answered 503/529, or 429 over a key's quota) before routing, by "
            "route asked for, priority and reason: the limit met, or loop_lag.",
            labels=["route", "priority", "reason"],
        )
        saturation = GaugeMetricFamily(
            "failover_admission_saturation_limit",
            "While the process is saturated (its CPU used, late past target_lag), the whole "
            "requests or streams in flight it takes on at most; no sample when it is not.",
            labels=kind,
        )
        pending = GaugeMetricFamily(
            "failover_admission_retry_pending",
            "Shed clients told to come back (Retry-After) that are not due yet: the backlog "
            "whose drain time a shed client is told to wait at least.",
        )
        admission = self.source
        if admission is not None:
            pending.add_metric([], admission.backlog.pending(admission.clock.now()))
            for name, gate in (("requests", admission.requests), ("streams", admission.streams)):
                in_flight.add_metric([name], gate.in_flight)
                limit.add_metric([name], gate.limit)
            for name, line in (("requests", admission.line), ("streams", admission.stream_line)):
                if line is not None:
                    saturation.add_metric([name], line.limit)
            _gate_pairs(admission.routes, route_in_flight, route_limit)
            _gate_pairs(admission.keys, key_in_flight, key_limit)
            for labels, count in admission.shed_counts.items():
                shed.add_metric(list(labels), count)
        yield from (in_flight, limit, route_in_flight, route_limit, key_in_flight, key_limit)
        yield from (shed, saturation, pending)


def _gate_pairs(
    pairs: dict[str, tuple[Gate | None, Gate | None]],
    in_flight: GaugeMetricFamily,
    limit: GaugeMetricFamily,
) -> None:
    for name, pair in pairs.items():
        for kind, gate in zip(("requests", "streams"), pair, strict=True):
            if gate is not None:
                in_flight.add_metric([name, kind], gate.in_flight)
                limit.add_metric([name, kind], gate.limit)
