"""docs/config.md describes the schema as it is: every YAML example loads and builds a router,
and each table lists exactly the fields of the model it documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from failover import from_config
from failover.config import (
    AdmissionConfig,
    AnthropicOptions,
    ApiKeyConfig,
    AzureOptions,
    BedrockOptions,
    BreakerConfig,
    ChaosConfig,
    ConcurrencyConfig,
    Config,
    CutStreamFault,
    Delay,
    DeploymentConfig,
    ErrorFault,
    EventsConfig,
    GeminiOptions,
    HangFault,
    HealthConfig,
    HedgeConfig,
    HTTPOptions,
    LatencyFault,
    LatencyObjectives,
    LearningConfig,
    LimitsConfig,
    LogsConfig,
    MalformedEventFault,
    NoTerminatorFault,
    ObservabilityConfig,
    OpenAIOptions,
    ProviderConfig,
    RateLimitFault,
    RefusePrefillFault,
    ResetFault,
    RetryConfig,
    RouteConfig,
    ServerConfig,
    ShedConfig,
    SimulatedOptions,
    SloConfig,
    StallStreamFault,
    StreamsConfig,
    Timeouts,
    TracingConfig,
    VertexOptions,
    WebhookConfig,
)

DOC = (Path(__file__).resolve().parents[1] / "docs" / "config.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(r"```yaml\n(.*?)```", DOC, re.S)
FAULTS = (
    ErrorFault,
    LatencyFault,
    HangFault,
    ResetFault,
    RateLimitFault,
    CutStreamFault,
    StallStreamFault,
    MalformedEventFault,
    NoTerminatorFault,
    RefusePrefillFault,
)


def fields(*models: type[BaseModel]) -> set[str]:
    """The field names of `models` together."""
    return {name for model in models for name in model.model_fields}


def own(model: type[BaseModel], base: type[BaseModel]) -> set[str]:
    """The fields `model` adds to `base`."""
    return fields(model) - fields(base)


# heading of the table in docs/config.md -> the fields it must list
TABLES: dict[str, set[str]] = {
    "## `server`": fields(ServerConfig),
    "### `server.api_keys[i]`": fields(ApiKeyConfig),
    "### `server.admission`": fields(AdmissionConfig),
    "### `server.admission.shed`": fields(ShedConfig),
    "### `server.admission.routes.<name>`": fields(LimitsConfig),
    "## `providers.<name>`": fields(ProviderConfig),
    "### `options` of every HTTP kind": fields(HTTPOptions),
    "### `options` of `kind: openai`": own(OpenAIOptions, HTTPOptions),
    "### `options` of `kind: azure`": own(AzureOptions, HTTPOptions) - {"organization", "project"},
    "### `options` of `kind: anthropic`": own(AnthropicOptions, HTTPOptions),
    "### `options` of `kind: bedrock`": own(BedrockOptions, HTTPOptions),
    "### `options` of `kind: vertex`": own(VertexOptions, HTTPOptions),
    "### `options` of `kind: simulated`": fields(SimulatedOptions),
    "## `routes.<name>`": fields(RouteConfig),
    "### `routes.<name>.deployments[i]`": fields(DeploymentConfig),
    "### `routes.<name>.hedge`": fields(HedgeConfig),
    "### `routes.<name>.slo`": fields(SloConfig),
    "### `routes.<name>.slo.latency`": fields(LatencyObjectives),
    "## Chaos": fields(ChaosConfig),
    "### Faults": fields(*FAULTS),
    "### Delays": fields(Delay),
    "### `defaults.retry`": fields(RetryConfig),
    "### `defaults.breaker`": fields(BreakerConfig),
    "### `defaults.timeouts`": fields(Timeouts),
    "### `defaults.timeouts.learn`": fields(LearningConfig),
    "### `defaults.streams`": fields(StreamsConfig),
    "### `defaults.concurrency`": fields(ConcurrencyConfig),
    "### `defaults.health`": fields(HealthConfig),
    "## `observability`": fields(ObservabilityConfig),
    "### `observability.logs`": fields(LogsConfig),
    "### `observability.events`": fields(EventsConfig),
    "### `observability.webhooks[i]`": fields(WebhookConfig),
    "### `observability.tracing`": fields(TracingConfig),
}


def table_keys(heading: str) -> set[str]:
    """The backquoted names in the first column of the table under `heading`."""
    section = DOC.split(f"\n{heading}", 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {key for row in rows for key in re.findall(r"`([a-z_][a-z0-9_]*)`", row.split("|")[1])}


def test_the_docs_have_examples() -> None:
    """docs/config.md holds YAML examples for these tests to load."""
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("block", EXAMPLES)
async def test_every_yaml_example_loads_and_builds(block: str) -> None:
    """Each YAML example of docs/config.md validates and builds a router."""
    router = from_config(Config.from_yaml(block, env={}))
    await router.aclose()


@pytest.mark.parametrize("heading", sorted(TABLES))
def test_every_table_lists_its_model_fields(heading: str) -> None:
    """The table under each heading lists exactly the fields of its model."""
    assert table_keys(heading) == TABLES[heading]


def test_every_provider_kind_has_an_options_table() -> None:
    """Each kind's options are documented under a heading of their own."""
    for kind in ("openai", "azure", "anthropic", "gemini", "vertex", "simulated"):
        assert f"\n### `options` of `kind: {kind}`" in DOC
    assert own(GeminiOptions, HTTPOptions) == set()
