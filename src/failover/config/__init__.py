"""Typed configuration: YAML with ${ENV} interpolation, durations ("250ms", "2s", "5m"),
rates ("50%") and sizes ("10MB"), validated by pydantic into frozen models whose errors name
the field's path (`routes.smart.deployments[1].timeout`).

The top-level keys are `server`, `providers`, `routes`, `defaults`, `state` and
`observability`; a deployment may carry `chaos`, a provider `options` typed by its `kind`.
Every section is checked here, when the config is loaded: what `failover check` accepts,
`failover serve` runs.

One module per section: `server`, `providers`, `routes`, `policies` (retry, breaker,
timeouts, health, hedge), `observability`, `chaos`; `root` holds `Config` and loading;
`base` the strict model, the units and the error messages.
"""

from __future__ import annotations

from .base import (
    Duration,
    Fraction,
    Rate,
    Size,
    StrictModel,
    format_loc,
    format_validation_error,
    parse_duration,
    parse_rate,
    parse_size,
    policy_defaults,
    validate_as,
    validation_lines,
)
from .chaos import (
    BaseFault,
    ChaosConfig,
    CutStreamFault,
    Delay,
    ErrorFault,
    Fault,
    HangFault,
    LatencyFault,
    MalformedEventFault,
    NoTerminatorFault,
    Operation,
    RateLimitFault,
    RefusePrefillFault,
    ResetFault,
    StallStreamFault,
    StreamFault,
)
from .observability import (
    DEFAULT_WEBHOOK_EVENTS,
    EVENT_TYPES,
    EventsConfig,
    EventType,
    LogsConfig,
    ObservabilityConfig,
    WebhookConfig,
)
from .policies import (
    BreakerConfig,
    ConcurrencyConfig,
    HealthConfig,
    HedgeConfig,
    LearningConfig,
    RetryConfig,
    StreamsConfig,
    Timeouts,
)
from .providers import (
    OPTIONS_BY_KIND,
    AnthropicOptions,
    AzureOptions,
    BedrockOptions,
    GeminiOptions,
    HTTPOptions,
    OpenAIOptions,
    ProviderConfig,
    ProviderKind,
    ProviderOptions,
    SimulatedOptions,
    VertexOptions,
)
from .root import Config, DefaultsConfig, interpolate, load_config
from .routes import FALLBACK_FIELDS, DeploymentConfig, RouteConfig
from .server import ServerConfig


__all__ = [
    "DEFAULT_WEBHOOK_EVENTS",
    "EVENT_TYPES",
    "FALLBACK_FIELDS",
    "OPTIONS_BY_KIND",
    "AnthropicOptions",
    "AzureOptions",
    "BaseFault",
    "BedrockOptions",
    "BreakerConfig",
    "ChaosConfig",
    "ConcurrencyConfig",
    "Config",
    "CutStreamFault",
    "DefaultsConfig",
    "Delay",
    "DeploymentConfig",
    "Duration",
    "ErrorFault",
    "EventType",
    "EventsConfig",
    "Fault",
    "Fraction",
    "GeminiOptions",
    "HTTPOptions",
    "HangFault",
    "HealthConfig",
    "HedgeConfig",
    "LatencyFault",
    "LearningConfig",
    "LogsConfig",
    "MalformedEventFault",
    "NoTerminatorFault",
    "ObservabilityConfig",
    "OpenAIOptions",
    "Operation",
    "ProviderConfig",
    "ProviderKind",
    "ProviderOptions",
    "Rate",
    "RateLimitFault",
    "RefusePrefillFault",
    "ResetFault",
    "RetryConfig",
    "RouteConfig",
    "ServerConfig",
    "SimulatedOptions",
    "Size",
    "StallStreamFault",
    "StreamFault",
    "StreamsConfig",
    "StrictModel",
    "Timeouts",
    "VertexOptions",
    "WebhookConfig",
    "format_loc",
    "format_validation_error",
    "interpolate",
    "load_config",
    "parse_duration",
    "parse_rate",
    "parse_size",
    "policy_defaults",
    "validate_as",
    "validation_lines",
]
