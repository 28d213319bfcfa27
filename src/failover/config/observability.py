"""The `observability:` section: metrics, logs, recent events and webhooks.

    observability:
      metrics: true
      logs: {level: info, format: json, requests: true}
      events: {keep: 500}
      webhooks:
        - url: https://hooks.example.com/failover
          name: oncall                          # label in metrics; default: the URL's host
          events: [breaker, health, panic]     # default: every type but "fallback"
          headers: {Authorization: "Bearer ${HOOK_TOKEN}"}
          timeout: 5s
          attempts: 3
          backoff: 1s
          repeat_after: 60s
          queue: 1000
      tracing:
        enabled: true                           # OpenTelemetry traces over OTLP/HTTP
        endpoint: http://collector:4318/v1/traces
        service_name: failover
        sample_ratio: 10%
        headers: {Authorization: "Bearer ${OTLP_TOKEN}"}

Durations take the config's usual forms (250ms, 5s, 1m). Tracing needs the `otel` extra
(`pip install 'failover[otel]'`); this schema only checks that it is installed.
"""

from __future__ import annotations

from importlib import metadata
from typing import Literal, get_args

from pydantic import Field, SecretStr, field_validator, model_validator

from .base import Duration, Fraction, StrictModel

__all__ = [
    "DEFAULT_WEBHOOK_EVENTS",
    "EVENT_TYPES",
    "OTEL_PACKAGES",
    "EventType",
    "EventsConfig",
    "LogsConfig",
    "ObservabilityConfig",
    "TracingConfig",
    "WebhookConfig",
    "missing_otel_packages",
]

# the types of `failover.events.Event` the router, health checker and gateway emit
EventType = Literal["breaker", "health", "panic", "fallback", "chaos", "config"]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
# every event type but "fallback", which fires once per fallen-back request
DEFAULT_WEBHOOK_EVENTS: tuple[EventType, ...] = tuple(t for t in EVENT_TYPES if t != "fallback")
# what `observability.tracing` needs installed: the `otel` extra
OTEL_PACKAGES = ("opentelemetry-api", "opentelemetry-sdk", "opentelemetry-exporter-otlp-proto-http")


class LogsConfig(StrictModel):
    """Structured logs: level, JSON lines or text, and whether to log every request."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"
    requests: bool = True

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class EventsConfig(StrictModel):
    """The ring of recent events served at /admin/events."""

    keep: int = Field(500, ge=1, le=100_000)


class WebhookConfig(StrictModel):
    """One URL that receives events as JSON POSTs."""

    url: str
    name: str | None = None  # label in metrics and logs; default: the URL's host
    events: list[EventType] = Field(default_factory=lambda: list(DEFAULT_WEBHOOK_EVENTS))
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout: Duration = Field(5.0, gt=0)
    attempts: int = Field(3, ge=1, le=10)
    backoff: Duration = 1.0
    repeat_after: Duration = 60.0  # the same event again within this time is not re-sent
    queue: int = Field(1000, ge=1)

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("a webhook url must start with http:// or https://")
        return value


def missing_otel_packages() -> list[str]:
    """The distributions of the `otel` extra that are not installed (nothing is imported)."""
    missing = []
    for name in OTEL_PACKAGES:
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


class TracingConfig(StrictModel):
    """OpenTelemetry traces over OTLP/HTTP: a span per request and one per attempt.

    Fields left unset are read by the OpenTelemetry SDK from its environment variables
    (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, ...);
    `OTEL_SDK_DISABLED=true` turns tracing off whatever this says.
    """

    enabled: bool = False
    endpoint: str | None = None  # the full URL, /v1/traces included
    service_name: str | None = Field(None, min_length=1)  # default: OTEL_SERVICE_NAME, "failover"
    sample_ratio: Fraction | None = None  # share of new traces kept; a client's choice is kept
    headers: dict[str, SecretStr] = Field(default_factory=dict)  # sent with every export
    propagate: bool = True  # send the W3C trace context (traceparent) to providers

    @field_validator("endpoint")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("the OTLP endpoint must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _installed(self) -> TracingConfig:
        if self.enabled and (missing := missing_otel_packages()):
            verb = "is" if len(missing) == 1 else "are"
            raise ValueError(
                f"tracing needs OpenTelemetry, and {', '.join(missing)} {verb} not installed: "
                "pip install 'failover[otel]'"
            )
        return self


class ObservabilityConfig(StrictModel):
    """Metrics, logs, recent events, webhooks and traces of a gateway."""

    metrics: bool = True
    logs: LogsConfig = Field(default_factory=LogsConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    tracing: TracingConfig = Field(default_factory=TracingConfig)
