"""The `observability.tracing` section: off by default, checked at load like every section."""

from __future__ import annotations

import pytest

import failover.config.observability as schema
from failover.config import Config, TracingConfig, missing_otel_packages
from failover.errors import ConfigError


def load(tracing: str) -> TracingConfig:
    """The tracing section of a config holding only `observability: {tracing: ...}`."""
    return Config.from_yaml(f"observability: {{tracing: {tracing}}}", env={}).observability.tracing


def test_tracing_is_off_by_default() -> None:
    """A config that says nothing about tracing has it off."""
    assert Config().observability.tracing.enabled is False


def test_the_otel_extra_is_installed_for_the_tests() -> None:
    """The dev extra brings the otel extra: nothing reported missing."""
    assert missing_otel_packages() == []


def test_enabled_without_the_packages_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the OpenTelemetry packages missing, enabling tracing fails at load and says what
    to install."""
    monkeypatch.setattr(schema, "OTEL_PACKAGES", ("opentelemetry-not-installed",))
    with pytest.raises(ConfigError) as caught:
        load("{enabled: true}")
    message = str(caught.value)
    assert "observability.tracing" in message
    assert "opentelemetry-not-installed is not installed" in message
    assert "pip install 'failover[otel]'" in message


def test_disabled_without_the_packages_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tracing left off never asks for the packages."""
    monkeypatch.setattr(schema, "OTEL_PACKAGES", ("opentelemetry-not-installed",))
    assert load("{enabled: false, endpoint: 'http://c:4318/v1/traces'}").enabled is False


def test_every_field_is_read() -> None:
    """Endpoint, service name, sample ratio (a percentage too), headers and propagation."""
    tracing = load(
        "{enabled: true, endpoint: 'https://c:4318/v1/traces', service_name: eu,"
        " sample_ratio: 10%, headers: {Authorization: Bearer t}, propagate: false}"
    )
    assert (tracing.endpoint, tracing.service_name, tracing.sample_ratio) == (
        "https://c:4318/v1/traces",
        "eu",
        0.1,
    )
    assert tracing.headers["Authorization"].get_secret_value() == "Bearer t"
    assert tracing.propagate is False


def test_headers_are_kept_secret() -> None:
    """Export headers (tokens) never show in the config's repr."""
    assert "tok-123" not in repr(load("{headers: {Authorization: tok-123}}"))


@pytest.mark.parametrize(
    ("tracing", "says"),
    [
        ("{endpoint: 'collector:4318'}", "must start with http:// or https://"),
        ("{sample_ratio: 1.5}", "sample_ratio"),
        ("{service_name: ''}", "service_name"),
        ("{exporter: zipkin}", "exporter"),
    ],
)
def test_bad_values_are_rejected_at_load(tracing: str, says: str) -> None:
    """A bad endpoint, ratio, empty name or unknown key is a config error naming it."""
    with pytest.raises(ConfigError, match=says):
        load(tracing)
