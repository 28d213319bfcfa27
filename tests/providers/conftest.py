"""Fixtures for the adapter tests: fake provider servers, one shared transport, adapters."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from failover.clock import FakeClock
from failover.providers import (
    AnthropicAdapter,
    AzureOpenAIAdapter,
    GeminiAdapter,
    HTTPAdapter,
    OpenAIAdapter,
)
from failover.providers.bedrock import BedrockAdapter
from failover.providers.vertex import VertexAdapter
from failover.transport import Transport
from fakes import (
    FakeAnthropic,
    FakeBedrock,
    FakeGemini,
    FakeOpenAI,
    FakeServer,
    FakeTokenServer,
    FakeVertex,
)
from fakes.bedrock_server import ACCESS_KEY, SECRET_KEY

API_KEY = "sk-test-SECRET-7f3a9c1e5b"


@pytest.fixture
async def transport() -> AsyncIterator[Transport]:
    async with Transport() as shared:
        yield shared


@pytest.fixture
async def openai_server() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(api_key=API_KEY) as server:
        yield server


@pytest.fixture
async def anthropic_server() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic(api_key=API_KEY) as server:
        yield server


@pytest.fixture
async def gemini_server() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(api_key=API_KEY) as server:
        yield server


@pytest.fixture
async def bedrock_server() -> AsyncIterator[FakeBedrock]:
    async with FakeBedrock() as server:
        yield server


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An AWS environment of test credentials only: no ~/.aws, no instance metadata service.

    Returns the folder where tests may write `config` and `credentials` files.
    """
    for var in [v for v in os.environ if v.startswith("AWS_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    return tmp_path


@pytest.fixture
def bedrock(bedrock_server: FakeBedrock, transport: Transport, aws_env: Path) -> BedrockAdapter:
    return BedrockAdapter(
        model="anthropic.claude-sonnet-4-5-20250929-v1:0",
        region="us-east-1",
        base_url=bedrock_server.base_url,
        control_url=bedrock_server.base_url,
        transport=transport,
        provider_name="bedrock",
    )


@pytest.fixture
def openai(openai_server: FakeOpenAI, transport: Transport) -> OpenAIAdapter:
    return OpenAIAdapter(
        model="gpt-4o-mini",
        api_key=API_KEY,
        base_url=openai_server.base_url,
        transport=transport,
        provider_name="openai",
    )


@pytest.fixture
def azure(openai_server: FakeOpenAI, transport: Transport) -> AzureOpenAIAdapter:
    return AzureOpenAIAdapter(
        model="my-gpt4o",
        api_key=API_KEY,
        base_url=openai_server.url,
        api_version="2024-10-21",
        transport=transport,
        provider_name="azure",
    )


@pytest.fixture
def anthropic(anthropic_server: FakeAnthropic, transport: Transport) -> AnthropicAdapter:
    return AnthropicAdapter(
        model="claude-sonnet-4-5",
        api_key=API_KEY,
        base_url=anthropic_server.base_url,
        transport=transport,
        provider_name="anthropic",
    )


@pytest.fixture
def gemini(gemini_server: FakeGemini, transport: Transport) -> GeminiAdapter:
    return GeminiAdapter(
        model="gemini-2.0-flash",
        api_key=API_KEY,
        base_url=gemini_server.base_url,
        transport=transport,
        provider_name="gemini",
    )


class Pair(NamedTuple):
    """An adapter and the fake server it talks to."""

    adapter: HTTPAdapter
    server: FakeServer


@pytest.fixture
def pair(request: pytest.FixtureRequest) -> Pair:
    """Indirectly parametrized with an adapter fixture name: "openai", "anthropic", ..."""
    kind = str(request.param)
    server = "openai_server" if kind == "azure" else f"{kind}_server"
    return Pair(request.getfixturevalue(kind), request.getfixturevalue(server))


# -- Google Cloud: an OAuth token endpoint, a service-account file naming it, Vertex AI --------


@pytest.fixture
async def tokens(clock: FakeClock) -> AsyncIterator[FakeTokenServer]:
    """The token endpoint; the tokens it issues expire on the test's fake clock."""
    async with FakeTokenServer(clock=clock) as server:
        yield server


@pytest.fixture
def service_account(tmp_path: Path, tokens: FakeTokenServer) -> Path:
    """A service-account key file whose token_uri is the fake token endpoint."""
    return tokens.write_service_account(tmp_path / "service-account.json")


@pytest.fixture
async def vertex_server(tokens: FakeTokenServer) -> AsyncIterator[FakeVertex]:
    async with FakeVertex(tokens) as server:
        yield server


MakeVertex = Callable[..., Any]


@pytest.fixture
async def make_vertex(
    vertex_server: FakeVertex, service_account: Path, transport: Transport, clock: FakeClock
) -> AsyncIterator[MakeVertex]:
    """Build Vertex adapters for a model against the fake (settings overridable); all closed."""
    made: list[VertexAdapter] = []

    def make(model: str, **overrides: Any) -> Any:
        settings: dict[str, Any] = {
            "project": "fake-project",
            "location": "us-central1",
            "credentials_file": str(service_account),
            "base_url": vertex_server.base_url,
            "transport": transport,
            "provider_name": "vertex",
            "clock": clock,
        }
        made.append(VertexAdapter.for_model(model=model, **{**settings, **overrides}))
        return made[-1]

    yield make
    for adapter in made:
        await adapter.aclose()


@pytest.fixture
def vertex_gemini(make_vertex: MakeVertex) -> Any:
    """Gemini on the fake Vertex, with tokens from the fake token endpoint."""
    return make_vertex("gemini-2.0-flash")


@pytest.fixture
def vertex_claude(make_vertex: MakeVertex) -> Any:
    """Claude on the fake Vertex (a versioned model id, as Vertex names them)."""
    return make_vertex("claude-sonnet-4-5@20250929")
