"""The `observability:` section of the config: metrics, logs, recent events and webhooks.

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

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ..config import Duration

__all__ = [
    "DEFAULT_WEBHOOK_EVENTS",
    "EventsConfig",
    "LogsConfig",
    "ObservabilityConfig",
    "WebhookConfig",
]

# every event type the core emits except "fallback", which fires once per fallen-back request
DEFAULT_WEBHOOK_EVENTS = ("breaker", "health", "panic", "chaos", "config")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogsConfig(_Model):
    """Structured logs: level, JSON lines or text, and whether to log every request."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "text"] = "json"
    requests: bool = True

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class EventsConfig(_Model):
    """The ring of recent events served at /admin/events."""

    keep: int = Field(500, ge=1, le=100_000)


class WebhookConfig(_Model):
    """One URL that receives events as JSON POSTs."""

    url: str
    name: str | None = None  # label in metrics and logs; default: the URL's host
    events: list[str] = Field(default_factory=lambda: list(DEFAULT_WEBHOOK_EVENTS))
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


class ObservabilityConfig(_Model):
    """Metrics, logs, recent events and webhooks of a gateway."""

    metrics: bool = True
    logs: LogsConfig = Field(default_factory=LogsConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
