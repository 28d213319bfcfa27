"""/v1/messages passes through to deployments that speak Anthropic's Messages API, through
the official Anthropic SDK: prompt caching, documents and thinking reach them unchanged, and
their answers come back byte for byte."""

from __future__ import annotations

import json

import anthropic

from fakes import FakeAnthropic
from fakes.server import Reply

from .harness import Stack

SYSTEM = [{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}}]
DOCUMENT = {
    "type": "document",
    "source": {"type": "text", "media_type": "text/plain", "data": "The memo."},
    "citations": {"enabled": True},
    "cache_control": {"type": "ephemeral"},
}
MESSAGES = [{"role": "user", "content": [DOCUMENT, {"type": "text", "text": "Summarise it."}]}]


def test_a_cached_document_request_reaches_anthropic_unchanged(
    stack: Stack, claude: anthropic.Anthropic
) -> None:
    """cache_control and a document block go upstream as sent; the answer is the provider's
    own bytes."""
    answer = json.dumps(FakeAnthropic.message("A memo, summarised."), indent=2).encode()
    stack.claude.push(Reply(raw=answer))
    raw = claude.messages.with_raw_response.create(
        model="claude",
        max_tokens=100,
        system=SYSTEM,  # type: ignore[arg-type]
        messages=MESSAGES,  # type: ignore[arg-type]
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )
    assert raw.http_response.content == answer
    assert raw.parse().content[0].text == "A memo, summarised."  # type: ignore[union-attr]
    sent = stack.claude.requests[-1]
    body = json.loads(sent.body)
    assert body["system"] == SYSTEM
    assert body["messages"] == MESSAGES
    assert "prompt-caching-2024-07-31" in sent.headers["anthropic-beta"]


def test_a_native_stream_relays_anthropic_events(stack: Stack, claude: anthropic.Anthropic) -> None:
    """Streamed, the client reads Anthropic's own events, thinking deltas included."""
    stack.claude.push(stack.claude.stream(["Hel", "lo"]))
    with claude.messages.stream(model="claude", max_tokens=50, messages=MESSAGES) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "Hello"
    assert final.stop_reason == "end_turn"
    assert json.loads(stack.claude.requests[-1].body)["messages"] == MESSAGES
