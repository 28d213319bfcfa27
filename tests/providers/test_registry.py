"""`create_adapter`: from a deployment and its provider's config to the right adapter."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from failover.clock import FakeClock
from failover.config import Config, DeploymentConfig, ProviderConfig
from failover.errors import ConfigError
from failover.providers import (
    AnthropicAdapter,
    AzureOpenAIAdapter,
    GeminiAdapter,
    OpenAIAdapter,
    create_adapter,
)
from failover.providers.simulated import SimulatedProvider
from failover.transport import Transport
from failover.types import BaseDeployment

DEP = DeploymentConfig(provider="p", model="m-1", weight=2.5, timeout="30s")


@pytest.mark.parametrize(
    ("kind", "cls"),
    [
        ("openai", OpenAIAdapter),
        ("azure", AzureOpenAIAdapter),
        ("anthropic", AnthropicAdapter),
        ("gemini", GeminiAdapter),
    ],
)
def test_each_kind_builds_its_adapter(kind: str, cls: type) -> None:
    """The provider's kind picks the adapter; the deployment gives name, model, weight, timeout."""
    provider = ProviderConfig.model_validate(
        {"kind": kind, "base_url": "https://example.test", "api_key": "k"}
    )
    adapter = create_adapter(DEP, provider, provider_name="p", transport=Transport())
    assert type(adapter) is cls and isinstance(adapter, BaseDeployment)
    assert (adapter.name, adapter.model, adapter.weight, adapter.timeout) == (
        "p/m-1",
        "m-1",
        2.5,
        30,
    )


def test_simulated_kind_builds_a_simulated_provider() -> None:
    """kind: simulated builds the network-free SimulatedProvider with the deployment's fields."""
    provider = ProviderConfig(kind="simulated")
    adapter = create_adapter(DEP, provider, provider_name="p", transport=Transport())
    assert isinstance(adapter, SimulatedProvider)
    assert (adapter.name, adapter.model, adapter.weight, adapter.timeout) == (
        "p/m-1",
        "m-1",
        2.5,
        30,
    )


async def test_the_router_clock_paces_simulated_providers() -> None:
    """A clock passed to create_adapter is the one a simulated provider waits on."""
    clock = FakeClock()
    provider = ProviderConfig(kind="simulated", options={"latency": "10ms"})
    adapter = create_adapter(DEP, provider, provider_name="p", transport=Transport(), clock=clock)
    start = clock.now()
    async with clock.autojump():
        await adapter.complete({"messages": [{"role": "user", "content": "x"}]})
    assert clock.now() - start == pytest.approx(0.01)


def test_unknown_kind_is_a_config_error() -> None:
    """A kind no adapter serves is reported with the provider's config path."""
    provider = ProviderConfig.model_construct(kind="nonesuch")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"providers\.p\.kind.*nonesuch"):
        create_adapter(DEP, provider, provider_name="p", transport=Transport())


def test_provider_settings_reach_the_adapter() -> None:
    """base_url, api_version, headers and options of the provider config are used."""
    provider = ProviderConfig(
        kind="azure",
        base_url="https://res.openai.azure.com",
        api_key="k",
        api_version="2025-01-01-preview",
        headers={"x-team": "search"},
    )
    adapter = create_adapter(DEP, provider, provider_name="p", transport=Transport())
    assert isinstance(adapter, AzureOpenAIAdapter)
    assert adapter.url("chat/completions").endswith("?api-version=2025-01-01-preview")
    assert adapter.base_url == "https://res.openai.azure.com"


def test_deployments_of_one_provider_share_a_pool() -> None:
    """Two deployments of one provider use the same connection pool of the shared transport."""
    transport = Transport()
    provider = ProviderConfig(kind="openai", api_key="k")
    first = create_adapter(DEP, provider, provider_name="p", transport=transport)
    other = DeploymentConfig(provider="p", model="m-2")
    second = create_adapter(other, provider, provider_name="p", transport=transport)
    assert isinstance(first, OpenAIAdapter) and isinstance(second, OpenAIAdapter)
    assert first._http is second._http is transport.client("p")


def test_a_yaml_config_builds_every_adapter() -> None:
    """The docs' config example loads and builds an adapter per deployment."""
    config = Config.from_yaml(
        """
providers:
  openai: {kind: openai, api_key: "${OPENAI_API_KEY}"}
  claude: {kind: anthropic, api_key: "${ANTHROPIC_API_KEY}"}
  gemini: {kind: gemini, api_key: "${GEMINI_API_KEY}"}
routes:
  smart:
    deployments:
      - {provider: openai, model: gpt-4o}
      - {provider: claude, model: claude-sonnet-4-5}
      - {provider: gemini, model: gemini-2.5-flash}
""",
        env={"OPENAI_API_KEY": "a", "ANTHROPIC_API_KEY": "b", "GEMINI_API_KEY": "c"},
    )
    transport = Transport()
    built = [
        create_adapter(
            d, config.providers[d.provider], provider_name=d.provider, transport=transport
        )
        for d in config.routes["smart"].deployments
    ]
    assert [type(a) for a in built] == [OpenAIAdapter, AnthropicAdapter, GeminiAdapter]


DOC = Path(__file__).resolve().parents[2] / "docs" / "providers.md"


@pytest.mark.parametrize(
    "block", re.findall(r"```yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
)
def test_every_config_example_in_the_docs_builds(block: str) -> None:
    """Each YAML example of docs/providers.md validates and builds its adapters."""
    config = Config.from_yaml(block, env={})
    transport = Transport()
    for route in config.routes.values():
        for dep in route.deployments:
            provider = config.providers[dep.provider]
            create_adapter(dep, provider, provider_name=dep.provider, transport=transport)
