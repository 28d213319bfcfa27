"""`Observability`: metrics, logs, recent events, webhooks and traces wired to one router, for
a gateway.

    obs = Observability(router, ObservabilityConfig.model_validate(raw), health=checker)
    await obs.start()            # webhook workers and the health checker's probe loops
    obs.metrics_text()           # GET /metrics
    obs.status()                 # GET /admin/status
    obs.events.recent(100)       # GET /admin/events
    obs.tracing                  # OpenTelemetry traces, when `tracing.enabled` (else None)
    await obs.stop()             # probes and webhooks stop
    await obs.aclose()           # once the router is done: the last spans are exported

The server owns the HTTP side; this object owns what the endpoints serve. OpenTelemetry is
imported only when tracing is on.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from ..config import ObservabilityConfig
from .alerts import WebhookSender
from .logs import RequestLogger
from .metrics import CONTENT_TYPE, Metrics
from .recent import EventLog
from .status import snapshot

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from ..health import HealthChecker
    from ..router import Router
    from .tracing import Tracing

__all__ = ["Observability"]


class Observability:
    """Everything a gateway observes about one router, subscribed to its hooks."""

    content_type = CONTENT_TYPE

    def __init__(
        self,
        router: Router,
        config: ObservabilityConfig | None = None,
        *,
        health: HealthChecker | None = None,
        registry: CollectorRegistry | None = None,
        events: EventLog | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        """`events`: an earlier ring to keep (on a config reload), else a new one.
        `tracer_provider`: where traces go when tracing is enabled, instead of the OTLP
        exporter the config describes (the caller shuts it down)."""
        self.router = router
        self.config = config = config or ObservabilityConfig()
        self.health = health
        self.events = (events or EventLog(config.events.keep)).attach(router)
        self.logger = RequestLogger(router, requests=config.logs.requests)
        self.webhooks = [
            WebhookSender.from_config(hook, clock=router.clock).attach(router)
            for hook in config.webhooks
        ]
        self.metrics: Metrics | None = None
        if config.metrics:
            self.metrics = Metrics(router, registry=registry)
            self.metrics.watch_webhooks(self.webhooks)
            if health is not None:
                self.metrics.watch_health(health)
        self._provider: TracerProvider | None = None  # built here, so shut down here
        self.tracing: Tracing | None = None
        if config.tracing.enabled:
            self.tracing = self._trace(tracer_provider)

    def _trace(self, provider: TracerProvider | None) -> Tracing | None:
        from opentelemetry.trace import SpanKind

        from .otlp import tracer_provider
        from .tracing import Tracing

        if provider is None:
            provider = self._provider = tracer_provider(self.config.tracing)
            if provider is None:  # OTEL_SDK_DISABLED
                return None
        return Tracing(
            self.router, provider, kind=SpanKind.SERVER, propagate=self.config.tracing.propagate
        )

    async def start(self) -> None:
        """Start webhook delivery and the health checker (when one was given)."""
        for sender in self.webhooks:
            await sender.start()
        if self.health is not None:
            await self.health.start()

    async def stop(self) -> None:
        """Stop probing, deliver what is queued (briefly), close webhook sessions."""
        if self.health is not None:
            await self.health.stop()
        for sender in self.webhooks:
            await sender.stop()

    async def aclose(self) -> None:
        """Stop tracing once the router has no more requests: the spans still queued are
        exported (the flush blocks, so it runs in a thread)."""
        if self.tracing is not None:
            self.tracing.close()
        provider, self._provider = self._provider, None
        if provider is not None:
            await asyncio.to_thread(provider.shutdown)

    def status(self, *, event_limit: int = 50) -> dict[str, Any]:
        """The /admin/status document."""
        return snapshot(self.router, self.health, events=self.events, event_limit=event_limit)

    def metrics_text(self) -> bytes:
        """The /metrics exposition (empty when metrics are off)."""
        return self.metrics.render() if self.metrics is not None else b""

    def observe_overhead(self, seconds: float) -> None:
        """Record the gateway's own time for one request (no-op when metrics are off)."""
        if self.metrics is not None:
            self.metrics.observe_overhead(seconds)

    def __repr__(self) -> str:
        return (
            f"<Observability metrics={self.metrics is not None} events={len(self.events)} "
            f"webhooks={len(self.webhooks)} tracing={self.tracing is not None}>"
        )
