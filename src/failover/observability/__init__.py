"""Observability: Prometheus metrics, structured logs, recent events, webhooks, status and
OpenTelemetry traces.

Everything here listens to a router's hooks (`router.hooks`); nothing here is on the request
path except those listeners, which are quick and never raise into the router. Traces live in
`failover.observability.tracing` (and the SDK set-up in `.otlp`), imported only when used, so
the package imports without OpenTelemetry installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import EventsConfig, LogsConfig, ObservabilityConfig, TracingConfig, WebhookConfig
from .alerts import WebhookSender
from .hub import Observability
from .logs import JsonFormatter, RequestLogger, TextFormatter, configure_logging, redact
from .metrics import CONTENT_TYPE, Metrics
from .recent import EventLog
from .status import snapshot

if TYPE_CHECKING:
    from ..config import Config

__all__ = [
    "CONTENT_TYPE",
    "EventLog",
    "EventsConfig",
    "JsonFormatter",
    "LogsConfig",
    "Metrics",
    "Observability",
    "ObservabilityConfig",
    "RequestLogger",
    "TextFormatter",
    "TracingConfig",
    "WebhookConfig",
    "WebhookSender",
    "configure_logging",
    "configure_logging_for",
    "redact",
    "snapshot",
]


def configure_logging_for(config: Config, level: str | None = None) -> str:
    """Logging as `config.observability.logs` says (`level` overrides); the level in force."""
    logs = config.observability.logs
    level = level or logs.level
    configure_logging(level, json=logs.format == "json", batch=True)
    return level
