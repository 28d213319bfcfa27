"""The gateway's OpenTelemetry SDK: a `TracerProvider` exporting over OTLP/HTTP in batches,
built from `observability.tracing` and the standard `OTEL_*` environment variables.

    provider = tracer_provider(config.observability.tracing)   # None: OTEL_SDK_DISABLED=true
    ...
    provider.shutdown()                                         # flushes what is queued

The config's fields win; what it leaves unset the SDK reads as it always does:
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (else `OTEL_EXPORTER_OTLP_ENDPOINT` + `/v1/traces`),
`OTEL_EXPORTER_OTLP_(TRACES_)HEADERS`, `..._TIMEOUT`, `..._COMPRESSION`, `OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`, and the
`OTEL_BSP_*` batch settings. The provider is the gateway's own, not the process-global one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased

from ..config import TracingConfig

__all__ = ["DEFAULT_SERVICE_NAME", "sdk_disabled", "tracer_provider"]

DEFAULT_SERVICE_NAME = "failover"


def sdk_disabled(env: Mapping[str, str] | None = None) -> bool:
    """Whether `OTEL_SDK_DISABLED=true` switches OpenTelemetry off."""
    env = os.environ if env is None else env
    return env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"


def tracer_provider(config: TracingConfig) -> TracerProvider | None:
    """A provider exporting to `config.endpoint` in batches; None when the SDK is disabled."""
    if sdk_disabled():
        return None
    provider = TracerProvider(
        sampler=_sampler(config), resource=_resource(config), shutdown_on_exit=False
    )
    provider.add_span_processor(BatchSpanProcessor(_exporter(config)))
    return provider


def _resource(config: TracingConfig) -> Resource:
    """`service.name`: the config's, else OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES),
    else "failover" rather than the SDK's `unknown_service`."""
    resource = Resource.create({SERVICE_NAME: config.service_name} if config.service_name else {})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def _sampler(config: TracingConfig) -> Sampler | None:
    """Keep `sample_ratio` of new traces and follow a caller's decision; None lets the SDK
    read OTEL_TRACES_SAMPLER (default: parent-based, always on)."""
    if config.sample_ratio is None:
        return None
    return ParentBased(TraceIdRatioBased(config.sample_ratio))


def _exporter(config: TracingConfig) -> OTLPSpanExporter:
    headers = {name: value.get_secret_value() for name, value in config.headers.items()}
    return OTLPSpanExporter(endpoint=config.endpoint, headers=headers or None)
