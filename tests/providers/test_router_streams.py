"""Real adapters behind the router: the commit rule over real HTTP streams."""

from __future__ import annotations

import pytest

from failover import BreakerPolicy, Kind, RetryPolicy, Route, Router, StreamInterrupted
from failover.providers import AnthropicAdapter, OpenAIAdapter
from failover.resilience.streams import Resume, StreamPolicy
from fakes import Drop, FakeAnthropic, FakeOpenAI

from .support import USER_HI, text_of


def _router(
    openai: OpenAIAdapter, anthropic: AnthropicAdapter, streams: StreamPolicy | None = None
) -> Router:
    return Router(
        {"chat": Route([openai, anthropic], retry=RetryPolicy(attempts=1), streams=streams)},
        breaker=BreakerPolicy(consecutive_failures=5),
    )


async def test_failure_before_first_chunk_fails_over_to_anthropic(
    openai: OpenAIAdapter,
    anthropic: AnthropicAdapter,
    openai_server: FakeOpenAI,
    anthropic_server: FakeAnthropic,
) -> None:
    """An OpenAI 500 before any chunk is invisible: the Anthropic stream is translated."""
    openai_server.push(openai_server.error(500, "upstream broke"))
    anthropic_server.push(anthropic_server.stream(["from ", "claude"]))
    reply = await _router(openai, anthropic).open_stream("chat", {**USER_HI, "stream": True})
    chunks = [c.body async for c in reply]
    assert text_of(chunks) == "from claude"
    assert reply.deployment == anthropic.name
    assert [a.kind for a in reply.trace.attempts] == [Kind.SERVER_ERROR, Kind.OK]


async def test_disconnect_after_first_chunk_is_interrupted(
    openai: OpenAIAdapter,
    anthropic: AnthropicAdapter,
    openai_server: FakeOpenAI,
    anthropic_server: FakeAnthropic,
) -> None:
    """A connection cut after chunks were delivered, with recovery off, raises
    StreamInterrupted: no switch."""
    openai_server.push(openai_server.stream(["a", "b", "c"], cut_after=3))
    router = _router(openai, anthropic, streams=StreamPolicy(resume=Resume.OFF))
    reply = await router.open_stream("chat", {**USER_HI, "stream": True})
    with pytest.raises(StreamInterrupted) as info:
        async for _ in reply:
            pass
    assert info.value.kind is Kind.CONNECTION
    assert anthropic_server.requests == []
    assert router.breaker(openai.name).counts() == (1, 1)


async def test_dropped_connection_fails_over(
    openai: OpenAIAdapter,
    anthropic: AnthropicAdapter,
    openai_server: FakeOpenAI,
) -> None:
    """A socket closed before any response fails over like any connection error."""
    openai_server.push(Drop())
    reply = await _router(openai, anthropic).complete("chat", USER_HI)
    assert reply.deployment == anthropic.name
    assert reply.trace.attempts[0].kind is Kind.CONNECTION


@pytest.mark.parametrize(
    "bad", [{"temperature": []}, {"stop": 5}, {"max_tokens": "x"}, {"tools": [{"function": 5}]}]
)
async def test_malformed_fields_are_bad_requests_not_breaker_failures(
    anthropic: AnthropicAdapter, bad: dict[str, object]
) -> None:
    """A request field that breaks translation is the caller's fault: 400, breaker untouched."""
    from failover import RequestRejected

    router = Router({"chat": Route([anthropic])}, breaker=BreakerPolicy(consecutive_failures=1))
    for _ in range(3):
        with pytest.raises(RequestRejected) as info:
            await router.complete("chat", {**USER_HI, **bad})
        assert info.value.kind is Kind.BAD_REQUEST
    assert router.breaker(anthropic.name).counts() == (0, 0)
