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

Durations take the config's usual forms (250ms, 5s, 1m).
"""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, SecretStr, field_validator

from .base import Duration, StrictModel

__all__ = [
    "DEFAULT_WEBHOOK_EVENTS",
    "EVENT_TYPES",
    "EventType",
    "EventsConfig",
    "LogsConfig",
    "ObservabilityConfig",
    "WebhookConfig",
]

# the types of `failover.events.Event` the router, health checker and gateway emit
EventType = Literal["breaker", "health", "panic", "fallback", "chaos", "config"]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
# every event type but "fallback", which fires once per fallen-back request
DEFAULT_WEBHOOK_EVENTS: tuple[EventType, ...] = tuple(t for t in EVENT_TYPES if t != "fallback")


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


class ObservabilityConfig(StrictModel):
    """Metrics, logs, recent events and webhooks of a gateway."""

    metrics: bool = True
    logs: LogsConfig = Field(default_factory=LogsConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
