"""Provider error responses mapped to the error tree, Retry-After through the adapters, and
credentials kept out of every error and repr."""

from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import pytest

from failover.clock import FakeClock
from failover.errors import (
    AuthFailed,
    BadRequest,
    ConnectionFailed,
    ContentFiltered,
    ContextWindowExceeded,
    ModelNotFound,
    Overloaded,
    ProviderError,
    RateLimited,
    ServerError,
)
from failover.providers import AnthropicAdapter, AzureOpenAIAdapter, GeminiAdapter, OpenAIAdapter
from failover.providers._http import HTTPAdapter
from failover.transport import Transport
from fakes import FakeAnthropic, FakeGemini, FakeOpenAI, Reply

from .conftest import API_KEY, Pair
from .support import USER_HI

NOW = 1_700_000_000.0

OPENAI_ERRORS = [
    (
        FakeOpenAI.error(
            400, "maximum context length is 8192 tokens", code="context_length_exceeded"
        ),
        ContextWindowExceeded,
    ),
    (FakeOpenAI.error(400, "'messages' is a required property"), BadRequest),
    (
        FakeOpenAI.error(400, "flagged by our content filter", code="content_filter"),
        ContentFiltered,
    ),
    (FakeOpenAI.error(401, "Incorrect API key provided", code="invalid_api_key"), AuthFailed),
    (FakeOpenAI.error(403, "Project does not have access"), AuthFailed),
    (
        FakeOpenAI.error(404, "The model `gpt-9` does not exist", code="model_not_found"),
        ModelNotFound,
    ),
    (
        FakeOpenAI.error(429, "Rate limit reached", type="requests", code="rate_limit_exceeded"),
        RateLimited,
    ),
    (FakeOpenAI.error(500, "The server had an error", type="server_error"), ServerError),
    (FakeOpenAI.error(503, "The engine is currently overloaded", type="server_error"), Overloaded),
]
ANTHROPIC_ERRORS = [
    (
        FakeAnthropic.error(
            400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"
        ),
        ContextWindowExceeded,
    ),
    (FakeAnthropic.error(400, "invalid_request_error", "messages: field required"), BadRequest),
    (FakeAnthropic.error(401, "authentication_error", "invalid x-api-key"), AuthFailed),
    (FakeAnthropic.error(403, "permission_error", "no access to this model"), AuthFailed),
    (FakeAnthropic.error(404, "not_found_error", "model: claude-9"), ModelNotFound),
    (
        FakeAnthropic.error(413, "request_too_large", "Request exceeds the maximum size"),
        ContextWindowExceeded,
    ),
    (
        FakeAnthropic.error(429, "rate_limit_error", "Number of request tokens has exceeded"),
        RateLimited,
    ),
    (FakeAnthropic.error(500, "api_error", "Internal server error"), ServerError),
    (FakeAnthropic.overloaded(), Overloaded),
]
GEMINI_ERRORS = [
    (FakeGemini.bad_key(), AuthFailed),
    (
        FakeGemini.error(
            400,
            "INVALID_ARGUMENT",
            "The input token count (1200000) exceeds the maximum number of tokens allowed",
        ),
        ContextWindowExceeded,
    ),
    (FakeGemini.error(400, "INVALID_ARGUMENT", "Invalid JSON payload received."), BadRequest),
    (
        FakeGemini.error(403, "PERMISSION_DENIED", "Permission denied on resource project"),
        AuthFailed,
    ),
    (
        FakeGemini.error(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta"),
        ModelNotFound,
    ),
    (FakeGemini.rate_limited(), RateLimited),
    (FakeGemini.error(500, "INTERNAL", "An internal error has occurred."), ServerError),
    (
        FakeGemini.error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        Overloaded,
    ),
]


def _cases(kind: str, table: list[tuple[Reply, type[ProviderError]]]) -> list[Any]:
    return [
        pytest.param(kind, reply, cls, id=f"{kind}-{reply.status}-{cls.__name__}")
        for reply, cls in table
    ]


@pytest.mark.parametrize(
    ("pair", "reply", "expected"),
    _cases("openai", OPENAI_ERRORS)
    + _cases("anthropic", ANTHROPIC_ERRORS)
    + _cases("gemini", GEMINI_ERRORS),
    indirect=["pair"],
)
async def test_error_mapping(pair: Pair, reply: Reply, expected: type[ProviderError]) -> None:
    """Each provider error response raises its error class, keeping status and message."""
    pair.server.push(reply)
    with pytest.raises(ProviderError) as caught:
        await pair.adapter.complete(USER_HI)
    error = caught.value
    assert type(error) is expected
    assert error.status == reply.status and error.deployment == pair.adapter.name
    assert _provider_message(reply) in error.message


def _provider_message(reply: Reply) -> str:
    return str(reply.body["error"]["message"])


async def test_stream_open_errors_are_mapped_too(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """An error status answering a stream request maps like a non-stream one."""
    anthropic_server.push(FakeAnthropic.overloaded())
    with pytest.raises(Overloaded):
        async for _ in anthropic.stream(USER_HI):
            pass


def _adapter(cls: type[HTTPAdapter], base_url: str, transport: Transport) -> HTTPAdapter:
    return cls(
        model="m",
        api_key=API_KEY,
        base_url=base_url,
        transport=transport,
        clock=FakeClock(wall_start=NOW),
    )


def _stamp(seconds_from_now: float) -> str:
    return datetime.fromtimestamp(NOW + seconds_from_now, UTC).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"x-ratelimit-reset-requests": "6m0s", "x-ratelimit-reset-tokens": "1s"}, 360.0),
        ({"retry-after": "Tue, 14 Nov 2023 22:14:00 GMT"}, 40.0),  # NOW is 22:13:20
    ],
)
async def test_openai_retry_after(
    headers: dict[str, str], expected: float, openai_server: FakeOpenAI, transport: Transport
) -> None:
    """OpenAI's 429 headers give RateLimited.retry_after in seconds."""
    openai_server.push(FakeOpenAI.error(429, "Rate limit reached", headers=headers))
    with pytest.raises(RateLimited) as caught:
        await _adapter(OpenAIAdapter, openai_server.base_url, transport).complete(USER_HI)
    assert caught.value.retry_after == pytest.approx(expected)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"anthropic-ratelimit-tokens-reset": _stamp(30)}, 30.0),
        (
            {
                "anthropic-ratelimit-requests-reset": _stamp(5),
                "anthropic-ratelimit-tokens-reset": _stamp(12),
            },
            12.0,
        ),
    ],
)
async def test_anthropic_retry_after(
    headers: dict[str, str],
    expected: float,
    anthropic_server: FakeAnthropic,
    transport: Transport,
) -> None:
    """Anthropic's retry-after and anthropic-ratelimit-*-reset headers give retry_after."""
    anthropic_server.push(
        FakeAnthropic.error(429, "rate_limit_error", "slow down", headers=headers)
    )
    with pytest.raises(RateLimited) as caught:
        await _adapter(AnthropicAdapter, anthropic_server.base_url, transport).complete(USER_HI)
    assert caught.value.retry_after == pytest.approx(expected)


async def test_anthropic_529_keeps_its_retry_after(
    anthropic_server: FakeAnthropic, transport: Transport
) -> None:
    """A 529 overloaded answer is Overloaded and carries its retry-after."""
    reply = FakeAnthropic.error(529, "overloaded_error", "Overloaded", headers={"retry-after": "3"})
    anthropic_server.push(reply)
    with pytest.raises(Overloaded) as caught:
        await _adapter(AnthropicAdapter, anthropic_server.base_url, transport).complete(USER_HI)
    assert (caught.value.status, caught.value.retry_after) == (529, 3.0)


async def test_gemini_retry_info_gives_retry_after(
    gemini_server: FakeGemini, transport: Transport
) -> None:
    """Gemini's google.rpc.RetryInfo retryDelay gives retry_after when no header does."""
    gemini_server.push(FakeGemini.rate_limited("27s"))
    with pytest.raises(RateLimited) as caught:
        await _adapter(GeminiAdapter, gemini_server.base_url, transport).complete(USER_HI)
    assert caught.value.retry_after == 27.0


async def test_server_errors_ignore_rate_limit_headers(
    openai_server: FakeOpenAI, transport: Transport
) -> None:
    """A 500 carrying x-ratelimit-reset headers is not told to wait."""
    headers = {"x-ratelimit-reset-requests": "20s"}
    openai_server.push(FakeOpenAI.error(500, "boom", type="server_error", headers=headers))
    with pytest.raises(ServerError) as caught:
        await _adapter(OpenAIAdapter, openai_server.base_url, transport).complete(USER_HI)
    assert caught.value.retry_after is None


def _texts(error: BaseException) -> str:
    """Everything an error could show: str, repr, message, body, and its whole cause chain."""
    parts: list[str] = []
    seen: BaseException | None = error
    while seen is not None:
        parts += [str(seen), repr(seen), str(getattr(seen, "body", "")), str(vars(seen))]
        seen = seen.__cause__ or seen.__context__
    return "\n".join(parts)


@pytest.mark.parametrize("pair", ["openai", "azure", "anthropic", "gemini"], indirect=True)
def test_repr_shows_name_and_base_url_only(pair: Pair) -> None:
    """An adapter's repr names it and its base_url, never its key."""
    adapter = pair.adapter
    assert API_KEY not in repr(adapter) and API_KEY not in str(adapter)
    assert adapter.name in repr(adapter) and adapter.base_url in repr(adapter)


@pytest.mark.parametrize(
    ("pair", "echo"),
    [
        ("openai", FakeOpenAI.error(401, f"Incorrect API key provided: {API_KEY}.")),
        ("anthropic", FakeAnthropic.error(401, "authentication_error", f"bad key {API_KEY}")),
        ("gemini", FakeGemini.error(400, "INVALID_ARGUMENT", f"API key not valid: {API_KEY}")),
    ],
    indirect=["pair"],
)
async def test_keys_echoed_by_a_provider_are_redacted(pair: Pair, echo: Reply) -> None:
    """A provider echoing the key in its error body does not put it in our error."""
    pair.server.push(echo)
    with pytest.raises(AuthFailed) as caught:
        await pair.adapter.complete(USER_HI)
    assert API_KEY not in _texts(caught.value)
    assert "***" in caught.value.message


@pytest.mark.parametrize(
    "cls", [OpenAIAdapter, AzureOpenAIAdapter, AnthropicAdapter, GeminiAdapter]
)
async def test_connection_errors_do_not_carry_the_key(
    cls: type[HTTPAdapter], transport: Transport
) -> None:
    """A refused connection's error, and its cause chain, never show the key."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    adapter = _adapter(cls, f"http://127.0.0.1:{port}", transport)
    with pytest.raises(ConnectionFailed) as caught:
        await adapter.complete(USER_HI)
    assert API_KEY not in _texts(caught.value)
