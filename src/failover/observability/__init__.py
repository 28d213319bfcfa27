"""Observability: Prometheus metrics, structured logs, recent events, webhooks and status.

Everything here listens to a router's hooks (`router.hooks`); nothing here is on the request
path except those listeners, which are quick and never raise into the router.
"""

from .alerts import WebhookSender
from .config import EventsConfig, LogsConfig, ObservabilityConfig, WebhookConfig
from .hub import Observability
from .logs import JsonFormatter, RequestLogger, TextFormatter, configure_logging, redact
from .metrics import CONTENT_TYPE, Metrics
from .recent import EventLog
from .status import snapshot

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
    "WebhookConfig",
    "WebhookSender",
    "configure_logging",
    "redact",
    "snapshot",
]
