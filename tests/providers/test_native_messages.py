"""Anthropic's Messages API as a dialect: passed through to deployments that speak it,
translated for the others, with failover and stream recovery across both."""

from __future__ import annotations

import json
from typing import Any

from failover import BreakerPolicy, Kind, RetryPolicy, Route, Router
from failover.providers import AnthropicAdapter, OpenAIAdapter
from failover.server.anthropic_format import ANTHROPIC
from failover.types import NativeChunk
from fakes import FakeAnthropic, FakeOpenAI
from fakes.server import Reply

CACHED = {
    "model": "claude",
    "max_tokens": 100,
    "system": [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {
                    "type": "document",
                    "source": {"type": "text", "media_type": "text/plain", "data": "A memo."},
                    "citations": {"enabled": True},
                },
                {"type": "text", "text": "Summarise it.", "cache_control": {"type": "ephemeral"}},
            ],
        }
    ],
    "thinking": {"type": "enabled", "budget_tokens": 1024},
}
BETA = {"anthropic-beta": "prompt-caching-2024-07-31"}


def router(*deployments: Any) -> Router:
    return Router(
        {"chat": Route(list(deployments), retry=RetryPolicy(attempts=1))},
        breaker=BreakerPolicy(consecutive_failures=5),
    )


async def test_a_messages_request_reaches_anthropic_unchanged(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """cache_control, a document block, thinking and the beta header go upstream as they are,
    and the answer comes back byte for byte."""
    answer = json.dumps(FakeAnthropic.message("A memo, summarised."), indent=3).encode()
    anthropic_server.push(Reply(raw=answer))
    reply = await router(anthropic).complete("chat", CACHED, dialect=ANTHROPIC, headers=BETA)
    sent = anthropic_server.requests[-1]
    assert json.loads(sent.body) == {**CACHED, "model": anthropic.model}
    assert sent.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert reply.completion.raw == answer


async def test_failover_to_another_format_translates(
    anthropic: AnthropicAdapter,
    openai: OpenAIAdapter,
    anthropic_server: FakeAnthropic,
    openai_server: FakeOpenAI,
) -> None:
    """Anthropic overloaded (529): the OpenAI deployment answers, translated to a Message."""
    anthropic_server.push(anthropic_server.error(529, "overloaded_error", "Overloaded"))
    request = {**CACHED, "messages": [{"role": "user", "content": "hi"}]}
    request.pop("thinking")
    reply = await router(anthropic, openai).complete("chat", request, dialect=ANTHROPIC)
    message = json.loads(reply.completion.raw)
    assert message["type"] == "message" and message["content"][0]["type"] == "text"
    assert [a.kind for a in reply.trace.attempts] == [Kind.OVERLOADED, Kind.OK]
    chat = json.loads(openai_server.requests[-1].body)
    assert chat["messages"][0] == {"role": "system", "content": "You are terse."}


async def test_an_untranslatable_request_says_why(
    anthropic: AnthropicAdapter,
    openai: OpenAIAdapter,
    anthropic_server: FakeAnthropic,
) -> None:
    """A document block cannot go to an OpenAI deployment: a 400 naming the translation."""
    anthropic_server.push(anthropic_server.error(529, "overloaded_error", "Overloaded"))
    reply_error = None
    try:
        await router(anthropic, openai).complete("chat", CACHED, dialect=ANTHROPIC)
    except Exception as exc:  # the error is what is under test
        reply_error = exc
    assert reply_error is not None
    assert "cannot translate this Messages request" in str(reply_error)


async def test_a_native_stream_relays_anthropic_events(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """Streamed, every chunk carries Anthropic's own event bytes and its OpenAI meaning."""
    anthropic_server.push(anthropic_server.stream(["Hel", "lo"]))
    request = {**CACHED, "stream": True}
    reply = await router(anthropic).open_stream("chat", request, dialect=ANTHROPIC)
    chunks = [chunk async for chunk in reply]
    assert all(isinstance(c, NativeChunk) for c in chunks)
    names = [c.native.split(b"\n", 1)[0] for c in chunks]  # type: ignore[attr-defined]
    assert names[0] == b"event: message_start"
    text = "".join(
        (choice.get("delta") or {}).get("content") or ""
        for c in chunks
        for choice in c.body.get("choices") or ()
    )
    assert text == "Hello"
