"""Vertex AI adapters against a fake Vertex AI and a fake Google token endpoint: both wire
formats whole and streamed, errors and faults, and failover between clouds."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from failover import BreakerPolicy, Kind, RetryPolicy, Route, Router
from failover.config import Config
from failover.errors import (
    AuthFailed,
    BadRequest,
    ConfigError,
    ConnectionFailed,
    ContextWindowExceeded,
    ModelNotFound,
    Overloaded,
    ProviderError,
    RateLimited,
    ServerError,
)
from failover.providers import AnthropicAdapter, GeminiAdapter, create_adapter
from failover.providers.vertex import (
    NO_CREDENTIALS,
    VertexAdapter,
    VertexAnthropicAdapter,
    VertexGeminiAdapter,
    vertex_base_url,
)
from failover.resilience.streams import Prefill
from failover.transport import Transport
from fakes import Delay, FakeAnthropic, FakeGemini, FakeTokenServer, FakeVertex, Reply

from .conftest import MakeVertex
from .support import USER_HI, check_chunks, check_completion, collect, text_of

BOUND = 5.0  # seconds; only turns a would-be hang into a failure
GEMINI = "gemini-2.0-flash"
CLAUDE = "claude-sonnet-4-5@20250929"
MODEL_PATH = "/v1/projects/fake-project/locations/us-central1/publishers"


@pytest.fixture(params=["gemini", "claude"])
def vertex(request: pytest.FixtureRequest) -> VertexAdapter:
    """Each wire format in turn."""
    adapter: VertexAdapter = request.getfixturevalue(f"vertex_{request.param}")
    return adapter


# -- Gemini on Vertex ------------------------------------------------------------------------


async def test_gemini_posts_generate_content_with_a_bearer_token(
    vertex_gemini: VertexGeminiAdapter, vertex_server: FakeVertex, tokens: FakeTokenServer
) -> None:
    """A Gemini request goes to the project's publisher model with an issued bearer token."""
    await vertex_gemini.complete(USER_HI)
    received = vertex_server.requests[0]
    assert received.path == f"{MODEL_PATH}/google/models/{GEMINI}:generateContent"
    assert vertex_server.bearer(0) in tokens.issued
    assert "x-goog-api-key" not in received.headers
    assert received.json == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


async def test_gemini_answer_is_an_openai_completion(vertex_gemini: VertexGeminiAdapter) -> None:
    """A generateContent answer comes back as a valid OpenAI chat.completion."""
    completion = check_completion((await vertex_gemini.complete(USER_HI)).body)
    assert completion.choices[0].message.content == "Hello from Gemini on Vertex."
    assert completion.usage is not None and completion.usage.total_tokens == 14


async def test_gemini_stream_is_translated(
    vertex_gemini: VertexGeminiAdapter, vertex_server: FakeVertex
) -> None:
    """streamGenerateContent?alt=sse chunks become valid OpenAI chunks."""
    bodies = await collect(vertex_gemini.stream(USER_HI))
    check_chunks(bodies)
    assert text_of(bodies) == "Hello from Gemini on Vertex."
    assert bodies[-1]["choices"][0]["finish_reason"] == "stop"
    received = vertex_server.requests[0]
    assert received.path.endswith(":streamGenerateContent") and received.query == {"alt": "sse"}


# -- Claude on Vertex ------------------------------------------------------------------------


async def test_claude_posts_raw_predict_without_model_in_the_body(
    vertex_claude: VertexAnthropicAdapter, vertex_server: FakeVertex
) -> None:
    """rawPredict carries anthropic_version in the body, the model only in the URL, no API key."""
    await vertex_claude.complete(USER_HI)
    received = vertex_server.requests[0]
    assert received.path == f"{MODEL_PATH}/anthropic/models/{CLAUDE}:rawPredict"
    assert received.json["anthropic_version"] == "vertex-2023-10-16"
    assert "model" not in received.json and received.json["max_tokens"] == 4096
    assert "x-api-key" not in received.headers and "anthropic-version" not in received.headers


async def test_claude_answer_is_an_openai_completion(vertex_claude: VertexAnthropicAdapter) -> None:
    """A Messages answer from rawPredict comes back as a valid OpenAI chat.completion."""
    completion = check_completion((await vertex_claude.complete(USER_HI)).body)
    assert completion.choices[0].message.content == "Hello from Claude on Vertex."
    assert completion.choices[0].finish_reason == "stop"


async def test_claude_stream_uses_stream_raw_predict(
    vertex_claude: VertexAnthropicAdapter, vertex_server: FakeVertex
) -> None:
    """streamRawPredict's Messages events become valid OpenAI chunks."""
    bodies = await collect(
        vertex_claude.stream({**USER_HI, "stream_options": {"include_usage": True}})
    )
    check_chunks(bodies)
    assert text_of(bodies) == "Hello from Claude on Vertex."
    assert bodies[-1]["usage"]["total_tokens"] == 27
    received = vertex_server.requests[0]
    assert received.path.endswith(":streamRawPredict") and received.json["stream"] is True


async def test_claude_beta_option_is_sent_as_a_header(
    make_vertex: MakeVertex, vertex_server: FakeVertex
) -> None:
    """options.beta reaches Vertex as the anthropic-beta header."""
    adapter = make_vertex(CLAUDE, options={"beta": ["context-1m-2025-08-07"]})
    await adapter.complete(USER_HI)
    assert vertex_server.requests[0].headers["anthropic-beta"] == "context-1m-2025-08-07"


def test_claude_on_vertex_continues_a_prefilled_answer(
    vertex_claude: VertexAnthropicAdapter, vertex_gemini: VertexGeminiAdapter
) -> None:
    """Stream recovery may continue on Claude on Vertex as on Anthropic; Gemini restarts."""
    assert vertex_claude.prefill is Prefill.ASSISTANT
    assert vertex_gemini.prefill is Prefill.NONE


# -- choosing the format, the URL and the project --------------------------------------------


@pytest.mark.parametrize(
    ("model", "fmt", "expected"),
    [
        ("gemini-2.5-pro", None, VertexGeminiAdapter),
        ("claude-opus-4-1@20250805", None, VertexAnthropicAdapter),
        ("my-claude-distill", "anthropic", VertexAnthropicAdapter),
        ("claude-lookalike", "gemini", VertexGeminiAdapter),
    ],
)
def test_the_format_follows_the_model_unless_configured(
    model: str, fmt: str | None, expected: type
) -> None:
    """claude-* speaks the Anthropic format, other models Gemini's; `format` overrides."""
    adapter = VertexAdapter.for_model(model=model, project="p", format=fmt)
    assert type(adapter) is expected


def test_an_unknown_format_is_a_config_error() -> None:
    """A format other than gemini or anthropic is refused, naming the option."""
    with pytest.raises(ConfigError, match=r"options\.format"):
        VertexAdapter.for_model(model=GEMINI, project="p", format="openai")


@pytest.mark.parametrize(
    ("location", "url"),
    [
        ("us-central1", "https://us-central1-aiplatform.googleapis.com/v1"),
        ("europe-west4", "https://europe-west4-aiplatform.googleapis.com/v1"),
        ("global", "https://aiplatform.googleapis.com/v1"),
    ],
)
def test_the_location_picks_the_host(location: str, url: str) -> None:
    """Regional locations have their own host; `global` uses aiplatform.googleapis.com."""
    adapter = VertexAdapter.for_model(model=GEMINI, project="p", location=location)
    assert vertex_base_url(location) == adapter.base_url == url
    assert adapter.model_url.startswith(f"{url}/projects/p/locations/{location}/")


def test_the_project_is_required(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a project option or GOOGLE_CLOUD_PROJECT the config is refused."""
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    with pytest.raises(ConfigError, match=r"providers\.vx\.options\.project.*GOOGLE_CLOUD_PROJECT"):
        VertexAdapter.for_model(model=GEMINI, provider_name="vx")


def test_the_project_may_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """GOOGLE_CLOUD_PROJECT stands in for the project option."""
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "env-project")
    assert VertexAdapter.for_model(model=GEMINI).project == "env-project"


@pytest.mark.parametrize("field", ["project", "location"])
def test_path_characters_are_refused_in_project_and_location(field: str) -> None:
    """A project or location that would change the URL path is a config error."""
    with pytest.raises(ConfigError, match=field):
        VertexAdapter.for_model(model=GEMINI, **{"project": "p", field: "p/../x"})


def test_an_api_key_is_refused() -> None:
    """Vertex takes Google credentials; an api_key is a config mistake, said so."""
    with pytest.raises(ConfigError, match="not api_key"):
        VertexAdapter.for_model(model=GEMINI, project="p", api_key="AIza-something")


# -- probe, embeddings -----------------------------------------------------------------------


async def test_probe_reads_the_model_garden_entry(
    vertex: VertexAdapter, vertex_server: FakeVertex, tokens: FakeTokenServer
) -> None:
    """The probe fetches a token and GETs the publisher model (version suffix dropped)."""
    await vertex.probe()
    received = vertex_server.requests[0]
    publisher = "google/models/gemini-2.0-flash"
    if isinstance(vertex, VertexAnthropicAdapter):
        publisher = "anthropic/models/claude-sonnet-4-5"
    assert (received.method, received.path) == ("GET", f"/v1/publishers/{publisher}")
    assert len(tokens.requests) == 1


async def test_probe_of_an_unknown_model_is_not_found(make_vertex: MakeVertex) -> None:
    """A model Vertex does not list fails the probe as not_found."""
    with pytest.raises(ModelNotFound):
        await make_vertex("gemini-9-ultra").probe()


async def test_embeddings_are_refused(vertex_gemini: VertexGeminiAdapter) -> None:
    """Embeddings are not offered on Vertex yet: a BadRequest, no call made."""
    with pytest.raises(BadRequest, match="embeddings"):
        await vertex_gemini.embeddings({"input": "a"})


# -- errors and faults -----------------------------------------------------------------------

GOOGLE_ERRORS = [
    (FakeVertex.rate_limited(), RateLimited),
    (FakeVertex.unavailable(), Overloaded),
    (FakeVertex.error(500, "INTERNAL", "Internal error encountered."), ServerError),
    (FakeVertex.context_too_long(), ContextWindowExceeded),
    (FakeVertex.error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), BadRequest),
    (FakeVertex.permission_denied("projects/x"), AuthFailed),
    (FakeVertex.error(404, "NOT_FOUND", "Publisher Model `x` was not found"), ModelNotFound),
]
CLAUDE_ERRORS = [
    (FakeAnthropic.overloaded(), Overloaded),
    (
        FakeAnthropic.error(400, "invalid_request_error", "prompt is too long"),
        ContextWindowExceeded,
    ),
    (FakeAnthropic.error(429, "rate_limit_error", "Number of request tokens"), RateLimited),
]


@pytest.mark.parametrize(("reply", "expected"), GOOGLE_ERRORS)
async def test_google_errors_map_to_kinds(
    vertex: VertexAdapter, vertex_server: FakeVertex, reply: Reply, expected: type
) -> None:
    """Vertex's google.rpc error bodies map onto the error tree, in both formats."""
    vertex_server.push(reply)
    with pytest.raises(ProviderError) as caught:
        await vertex.complete(USER_HI)
    assert type(caught.value) is expected and caught.value.status == reply.status
    assert caught.value.message.startswith(f"vertex {reply.status}: ")


@pytest.mark.parametrize(("reply", "expected"), CLAUDE_ERRORS)
async def test_claude_errors_map_like_anthropic(
    vertex_claude: VertexAnthropicAdapter, vertex_server: FakeVertex, reply: Reply, expected: type
) -> None:
    """Anthropic error bodies relayed by rawPredict, 529 included, map as Anthropic's do."""
    vertex_server.push(reply)
    with pytest.raises(expected):
        await vertex_claude.complete(USER_HI)


async def test_a_stream_cut_midway_is_connection_failed(
    vertex: VertexAdapter, vertex_server: FakeVertex
) -> None:
    """A connection lost after the first chunks raises ConnectionFailed, never ends quietly."""
    if isinstance(vertex, VertexAnthropicAdapter):
        vertex_server.push(FakeVertex.claude_stream(["a", "b", "c"], cut_after=4))
    else:
        vertex_server.push(FakeVertex.gemini_stream(["a", "b", "c"], cut_after=2))
    with pytest.raises(ConnectionFailed):
        await asyncio.wait_for(collect(vertex.stream(USER_HI)), BOUND)


async def test_a_slow_first_byte_is_waited_for(
    vertex: VertexAdapter, vertex_server: FakeVertex
) -> None:
    """The adapter sets no deadline of its own: a late stream is still read whole."""
    gate = asyncio.Event()
    late = (
        FakeVertex.claude_stream(["late"])
        if isinstance(vertex, VertexAnthropicAdapter)
        else FakeVertex.gemini_stream(["late"])
    )
    vertex_server.push(Delay(gate, late))
    task = asyncio.create_task(collect(vertex.stream(USER_HI)))
    await asyncio.wait_for(vertex_server.wait_for_requests(1), BOUND)
    assert not task.done()
    gate.set()
    assert text_of(await asyncio.wait_for(task, BOUND)) == "late"


# -- failover between clouds -----------------------------------------------------------------


def _router(*deployments: Any) -> Router:
    return Router(
        {"chat": Route(list(deployments), retry=RetryPolicy(attempts=1))},
        breaker=BreakerPolicy(consecutive_failures=5),
    )


@pytest.fixture
async def ai_studio(transport: Transport) -> AsyncIterator[tuple[GeminiAdapter, FakeGemini]]:
    async with FakeGemini(api_key="AIza-test") as server:
        adapter = GeminiAdapter(
            model=GEMINI, api_key="AIza-test", base_url=server.base_url, transport=transport
        )
        yield adapter, server


@pytest.fixture
async def anthropic_api(
    transport: Transport,
) -> AsyncIterator[tuple[AnthropicAdapter, FakeAnthropic]]:
    async with FakeAnthropic(api_key="sk-ant-test") as server:
        adapter = AnthropicAdapter(
            model="claude-sonnet-4-5",
            api_key="sk-ant-test",
            base_url=server.base_url,
            transport=transport,
        )
        yield adapter, server


async def test_ai_studio_503_fails_over_to_gemini_on_vertex(
    ai_studio: tuple[GeminiAdapter, FakeGemini], vertex_gemini: VertexGeminiAdapter
) -> None:
    """Gemini overloaded on AI Studio is answered by the same model on Vertex."""
    studio, server = ai_studio
    server.push(FakeGemini.error(503, "UNAVAILABLE", "The model is overloaded."))
    reply = await _router(studio, vertex_gemini).complete("chat", USER_HI)
    check_completion(reply.body)
    assert reply.deployment == vertex_gemini.name
    assert [a.kind for a in reply.trace.attempts] == [Kind.OVERLOADED, Kind.OK]


async def test_anthropic_529_fails_over_to_claude_on_vertex_in_a_stream(
    anthropic_api: tuple[AnthropicAdapter, FakeAnthropic], vertex_claude: VertexAnthropicAdapter
) -> None:
    """Anthropic's 529 before the first chunk switches the stream to Claude on Vertex."""
    direct, server = anthropic_api
    server.push(FakeAnthropic.overloaded())
    reply = await _router(direct, vertex_claude).open_stream("chat", {**USER_HI, "stream": True})
    bodies = [chunk.body async for chunk in reply]
    check_chunks(bodies)
    assert text_of(bodies) == "Hello from Claude on Vertex."
    assert reply.deployment == vertex_claude.name
    assert [a.kind for a in reply.trace.attempts] == [Kind.OVERLOADED, Kind.OK]


# -- configuration and `failover check` ------------------------------------------------------

VERTEX_CONFIG = """
providers:
  vertex:
    kind: vertex
    base_url: {base_url}
    options: {{project: fake-project, location: us-central1, credentials_file: "{sa}"}}
routes:
  chat:
    deployments:
      - {{provider: vertex, model: gemini-2.0-flash}}
      - {{provider: vertex, model: claude-sonnet-4-5@20250929}}
"""


def test_a_config_builds_one_adapter_per_model_format(transport: Transport) -> None:
    """kind: vertex builds the Gemini or the Anthropic format from each deployment's model."""
    config = Config.from_yaml(VERTEX_CONFIG.format(base_url="https://vx.test/v1", sa="sa.json"))
    built = [
        create_adapter(d, config.providers["vertex"], provider_name="vertex", transport=transport)
        for d in config.routes["chat"].deployments
    ]
    assert [type(a) for a in built] == [VertexGeminiAdapter, VertexAnthropicAdapter]
    assert built[1].name == "vertex/claude-sonnet-4-5@20250929"


def test_an_unknown_vertex_option_is_a_config_error() -> None:
    """A misspelt option (credential_file) is refused when the config loads, not ignored."""
    options = {"project": "p", "credential_file": "x"}
    with pytest.raises(ConfigError, match=r"providers\.vx\.options\.credential_file"):
        Config.from_dict({"providers": {"vx": {"kind": "vertex", "options": options}}})


@pytest.mark.parametrize("bad", [{"location": "us/../x"}, {"format": "openai"}])
def test_bad_vertex_options_are_config_errors(bad: dict[str, str]) -> None:
    """A location that would change the URL path, or an unknown format, fails the load."""
    options = {"project": "p", **bad}
    with pytest.raises(ConfigError, match=rf"providers\.vx\.options\.{next(iter(bad))}"):
        Config.from_dict({"providers": {"vx": {"kind": "vertex", "options": options}}})


async def _failover_check(config: Path, **env: str) -> tuple[int, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_"))}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "failover.cli",
        "check",
        "-c",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**clean, "COLUMNS": "250", **env},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def test_failover_check_probes_vertex_deployments(
    tmp_path: Path, vertex_server: FakeVertex, service_account: Path
) -> None:
    """`failover check` gets a token and reads each model's entry: both deployments pass."""
    config = tmp_path / "failover.yaml"
    config.write_text(VERTEX_CONFIG.format(base_url=vertex_server.base_url, sa=service_account))
    code, out = await _failover_check(config)
    assert code == 0, out
    assert out.count(" ok ") == 2 and "vertex/claude-sonnet-4-5@20250929" in out


async def test_failover_check_says_how_to_provide_missing_credentials(tmp_path: Path) -> None:
    """Where no Google credentials exist, the probe says where they are looked for."""
    config = tmp_path / "failover.yaml"
    config.write_text(VERTEX_CONFIG.replace(', credentials_file: "{sa}"', "").format(base_url=""))
    no_gcloud = tmp_path / "gcloud"
    no_gcloud.mkdir()
    # NO_GCE_CHECK: google-auth would otherwise ask the GCE metadata server off this machine
    code, out = await _failover_check(config, CLOUDSDK_CONFIG=str(no_gcloud), NO_GCE_CHECK="true")
    assert code == 1
    assert out.count(f"auth: {NO_CREDENTIALS}") == 2, out
