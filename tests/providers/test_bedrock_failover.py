"""Bedrock in routes: the same Claude on two clouds (Anthropic -> Bedrock), Bedrock across
regions, and Bedrock's errors driving retries, failover and context-window fallbacks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from failover import BreakerPolicy, Kind, RetryPolicy, Route, Router
from failover.providers import AnthropicAdapter
from failover.providers.bedrock import BedrockAdapter
from failover.transport import Transport
from fakes import FakeAnthropic, FakeBedrock

from .support import USER_HI, check_chunks, check_completion, text_of

ONCE = RetryPolicy(attempts=1)


@pytest.fixture
async def west() -> AsyncIterator[FakeBedrock]:
    """A second Bedrock region, checking signatures scoped to us-west-2."""
    async with FakeBedrock(region="us-west-2", text="Hello from us-west-2.") as server:
        yield server


def _bedrock_in(server: FakeBedrock, transport: Transport, region: str) -> BedrockAdapter:
    return BedrockAdapter(
        model="us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        name=f"bedrock-{region}",
        region=region,
        base_url=server.base_url,
        transport=transport,
        provider_name=f"bedrock-{region}",
    )


def _router(*routes: tuple[str, Route]) -> Router:
    return Router(dict(routes), breaker=BreakerPolicy(consecutive_failures=5))


async def test_anthropic_overloaded_fails_over_to_claude_on_bedrock(
    anthropic: AnthropicAdapter,
    bedrock: BedrockAdapter,
    anthropic_server: FakeAnthropic,
) -> None:
    """A 529 from Anthropic's API sends the request to Claude on Bedrock, which answers."""
    anthropic_server.push(FakeAnthropic.overloaded())
    router = _router(("claude", Route([anthropic, bedrock], retry=ONCE)))
    reply = await router.complete("claude", USER_HI)
    assert reply.deployment == bedrock.name
    assert [a.kind for a in reply.trace.attempts] == [Kind.OVERLOADED, Kind.OK]
    completion = check_completion(reply.body)
    assert completion.choices[0].message.content == "Hello from the fake Bedrock."


async def test_anthropic_overloaded_stream_fails_over_to_bedrock(
    anthropic: AnthropicAdapter,
    bedrock: BedrockAdapter,
    anthropic_server: FakeAnthropic,
    bedrock_server: FakeBedrock,
) -> None:
    """Before any content a 529 is invisible: the client streams Bedrock's translated answer."""
    anthropic_server.push(FakeAnthropic.overloaded())
    bedrock_server.push(bedrock_server.stream(["from ", "bedrock"]))
    router = _router(("claude", Route([anthropic, bedrock], retry=ONCE)))
    reply = await router.open_stream("claude", {**USER_HI, "stream": True})
    bodies = [chunk.body async for chunk in reply]
    check_chunks(bodies)
    assert text_of(bodies) == "from bedrock" and reply.deployment == bedrock.name


async def test_bedrock_throttling_fails_over_to_another_region(
    bedrock: BedrockAdapter,
    bedrock_server: FakeBedrock,
    west: FakeBedrock,
    transport: Transport,
) -> None:
    """A ThrottlingException in one region fails over at once to Bedrock in another."""
    bedrock_server.push(FakeBedrock.throttled())
    other = _bedrock_in(west, transport, "us-west-2")
    router = _router(("claude", Route([bedrock, other], retry=ONCE)))
    reply = await router.complete("claude", USER_HI)
    assert reply.deployment == other.name and west.verified == 1
    assert [a.kind for a in reply.trace.attempts] == [Kind.RATE_LIMITED, Kind.OK]
    assert reply.body["choices"][0]["message"]["content"] == "Hello from us-west-2."


async def test_bedrock_throttling_stream_fails_over_to_anthropic(
    bedrock: BedrockAdapter,
    anthropic: AnthropicAdapter,
    bedrock_server: FakeBedrock,
    anthropic_server: FakeAnthropic,
) -> None:
    """A throttled ConverseStream falls over to Anthropic's API before any content."""
    bedrock_server.push(FakeBedrock.throttled())
    anthropic_server.push(anthropic_server.stream(["from ", "claude"]))
    router = _router(("claude", Route([bedrock, anthropic], retry=ONCE)))
    reply = await router.open_stream("claude", {**USER_HI, "stream": True})
    assert text_of([chunk.body async for chunk in reply]) == "from claude"
    assert [a.kind for a in reply.trace.attempts] == [Kind.RATE_LIMITED, Kind.OK]


async def test_model_not_ready_is_retried_on_the_same_deployment(
    bedrock: BedrockAdapter, bedrock_server: FakeBedrock
) -> None:
    """ModelNotReadyException is an overload: retried on the same Bedrock deployment."""
    bedrock_server.push(FakeBedrock.model_not_ready())
    no_wait = RetryPolicy(attempts=2, base=0.0, max_backoff=0.0)  # backoff is not tested here
    router = _router(("claude", Route([bedrock], retry=no_wait)))
    reply = await router.complete("claude", USER_HI)
    assert [a.kind for a in reply.trace.attempts] == [Kind.OVERLOADED, Kind.OK]
    assert reply.deployment == bedrock.name and len(bedrock_server.requests) == 2


async def test_input_too_long_goes_to_the_context_window_fallback(
    bedrock: BedrockAdapter,
    bedrock_server: FakeBedrock,
    west: FakeBedrock,
    transport: Transport,
    aws_env: Path,
) -> None:
    """An "input is too long" answer goes to the context-window fallback route."""
    bedrock_server.push(FakeBedrock.input_too_long())
    big = _bedrock_in(west, transport, "us-west-2")
    router = _router(
        ("small", Route([bedrock], retry=ONCE, context_window_fallbacks=["big"])),
        ("big", Route([big], retry=ONCE)),
    )
    reply = await router.complete("small", USER_HI)
    assert reply.deployment == big.name
    assert [a.kind for a in reply.trace.attempts] == [Kind.CONTEXT_WINDOW, Kind.OK]
