"""Turning tracing on and off: the gateway's `Observability` subscribes a `Tracing` only when
the config enables it, and builds an OTLP/HTTP `TracerProvider` from the config and the
standard `OTEL_*` variables."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from obs_helpers import HI, two_routes
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from failover import FakeClock, Router
from failover.config import TracingConfig
from failover.observability import Observability, ObservabilityConfig
from failover.observability.otlp import tracer_provider
from failover.observability.tracing import Tracing
from failover.transport import Transport
from fakes import FakeServer, Reply
from otlp_receiver import OTLPReceiver

OTEL_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without OTEL_* variables of the machine's."""
    for name in OTEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def receiver() -> AsyncIterator[OTLPReceiver]:
    """An OTLP/HTTP trace receiver on 127.0.0.1."""
    async with OTLPReceiver() as found:
        yield found


Observe = Callable[..., Observability]


@pytest.fixture
async def observe() -> AsyncIterator[Observe]:
    """Build an `Observability`; each one built is closed after the test."""
    built: list[Observability] = []

    def make(*args: Any, **kwargs: Any) -> Observability:
        built.append(Observability(*args, **kwargs))
        return built[-1]

    yield make
    for obs in built:
        await obs.aclose()


def enabled(**fields: object) -> ObservabilityConfig:
    return ObservabilityConfig(tracing=TracingConfig(enabled=True, **fields))  # type: ignore[arg-type]


def tracing_listeners(router: Router) -> list[object]:
    """The router's hook listeners that belong to a `Tracing`."""
    hooks = router.hooks
    listeners = [*hooks.start, *hooks.attempt, *hooks.request, *hooks.stream]
    return [f for f in listeners if isinstance(getattr(f, "__self__", None), Tracing)]


async def traceparent_sent(provider: TracerProvider) -> str | None:
    """The traceparent a provider call receives when made inside an active span."""
    async with FakeServer() as server, Transport() as transport:
        server.push(Reply({}))
        with provider.get_tracer("test").start_as_current_span("caller"):
            await transport.client("t").request("GET", server.url, headers={})
    return server.requests[0].headers.get("traceparent")


# -- off --------------------------------------------------------------------------------------


async def test_tracing_off_subscribes_nothing(
    observe: Observe, clock: FakeClock, provider: TracerProvider
) -> None:
    """Without `tracing.enabled`, no listener is attached and no header is sent upstream."""
    router = two_routes(clock)
    obs = observe(router, tracer_provider=provider)
    assert obs.tracing is None
    assert router.hooks.start == [] and tracing_listeners(router) == []
    assert await traceparent_sent(provider) is None


async def test_otel_sdk_disabled_wins_over_the_config(
    observe: Observe, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_SDK_DISABLED=true leaves tracing off even when the config enables it."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    router = two_routes(clock)
    obs = observe(router, enabled())
    assert obs.tracing is None and tracing_listeners(router) == []


# -- on ---------------------------------------------------------------------------------------


async def test_tracing_on_traces_requests_as_server_spans(
    observe: Observe, clock: FakeClock, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    """Enabled, the gateway's request spans are SERVER spans over CLIENT attempt spans."""
    router = two_routes(clock)
    observe(router, enabled(), tracer_provider=provider)
    await router.complete("smart", HI)
    kinds = sorted(s.kind.name for s in exporter.get_finished_spans())
    assert kinds == [SpanKind.CLIENT.name, SpanKind.SERVER.name]


async def test_aclose_unsubscribes(
    observe: Observe, clock: FakeClock, provider: TracerProvider
) -> None:
    """After `aclose` nothing of tracing is left on the router or the transport."""
    router = two_routes(clock)
    obs = observe(router, enabled(), tracer_provider=provider)
    assert len(tracing_listeners(router)) == 4
    assert await traceparent_sent(provider) is not None
    await obs.aclose()
    assert tracing_listeners(router) == []
    assert await traceparent_sent(provider) is None


async def test_propagation_can_be_turned_off(
    observe: Observe, clock: FakeClock, provider: TracerProvider
) -> None:
    """With `propagate: false` providers are sent no traceparent."""
    observe(two_routes(clock), enabled(propagate=False), tracer_provider=provider)
    assert await traceparent_sent(provider) is None


async def test_aclose_flushes_to_the_configured_endpoint(
    observe: Observe, receiver: OTLPReceiver
) -> None:
    """The gateway's own provider batches spans; `aclose` exports them over OTLP/HTTP."""
    router = two_routes(FakeClock())
    config = enabled(endpoint=receiver.endpoint, headers={"Authorization": "Bearer t0k"})
    obs = observe(router, config)
    await router.complete("smart", HI)
    assert receiver.spans == []  # batched, not sent yet
    await obs.aclose()
    assert sorted(s.name for s in receiver.spans) == ["chat primary", "chat smart"]
    assert receiver.headers[0]["authorization"] == "Bearer t0k"
    assert receiver.resources[0]["service.name"] == "failover"


# -- the SDK set-up ---------------------------------------------------------------------------


def built(config: TracingConfig) -> TracerProvider:
    found = tracer_provider(config)
    assert found is not None
    found.shutdown()
    return found


def test_service_name_from_the_config() -> None:
    """`service_name` names the spans' service."""
    provider = built(TracingConfig(service_name="failover-eu"))
    assert provider.resource.attributes["service.name"] == "failover-eu"


def test_service_name_defaults_to_failover() -> None:
    """Without a name anywhere the service is "failover", not the SDK's unknown_service."""
    assert built(TracingConfig()).resource.attributes["service.name"] == "failover"


def test_service_name_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SERVICE_NAME names the service when the config does not."""
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    assert built(TracingConfig()).resource.attributes["service.name"] == "from-env"


def test_sample_ratio_follows_the_parent() -> None:
    """`sample_ratio` keeps that share of new traces and a caller's decision on the rest."""
    description = built(TracingConfig(sample_ratio=0.25)).sampler.get_description()
    assert description.startswith("ParentBased{root:TraceIdRatioBased{0.25}")


def test_sampler_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without `sample_ratio`, OTEL_TRACES_SAMPLER decides."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "always_off")
    assert built(TracingConfig()).sampler.get_description() == "AlwaysOffSampler"


def test_sdk_disabled_builds_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_SDK_DISABLED=true: no provider."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "TRUE")
    assert tracer_provider(TracingConfig(enabled=True)) is None


async def test_endpoint_from_the_environment(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without `endpoint`, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT says where spans go."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint)
    provider = tracer_provider(TracingConfig())
    assert provider is not None
    provider.get_tracer("test").start_span("hello").end()
    await asyncio.to_thread(provider.shutdown)  # the export blocks: the receiver needs the loop
    assert [s.name for s in receiver.spans] == ["hello"]


BLOCK_OTEL = """
import sys

class NoOpenTelemetry:
    def find_spec(self, name, path=None, target=None):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            raise ImportError(f"{name} is blocked")
        return None

sys.meta_path.insert(0, NoOpenTelemetry())
import failover, failover.observability, failover.server, failover.cli, failover.transport
from failover.config import Config
config = Config.model_validate({"observability": {"tracing": {"enabled": False}}})
failover.observability.Observability(failover.from_config(config))
print("imported", sorted(m for m in sys.modules if m.startswith("opentelemetry")))
"""


def test_the_library_works_without_opentelemetry() -> None:
    """With OpenTelemetry impossible to import, failover, its gateway and a tracing-off
    observability hub still import and build."""
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_OTEL], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported []"
