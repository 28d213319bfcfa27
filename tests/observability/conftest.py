"""Fixtures for the observability tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from obs_helpers import two_routes
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from failover import FakeClock, Router


@pytest.fixture
def router(clock: FakeClock) -> Router:
    """Route "smart" (primary, backup) falling back to "fast" (local); everything answers."""
    return two_routes(clock)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    """Where finished spans land."""
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    """A tracer provider exporting every span at once to `exporter`."""
    found = TracerProvider(shutdown_on_exit=False)
    found.add_span_processor(SimpleSpanProcessor(exporter))
    yield found
    found.shutdown()
