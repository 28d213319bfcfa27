"""The Anthropic-compatible API (/v1/messages), driven by the official `anthropic` SDK (sync
and async) against a real gateway whose upstreams speak OpenAI's (and Anthropic's) format."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from fakes import FakeOpenAI

from .harness import Raw, Stack

HI: Any = [{"role": "user", "content": "hi"}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
CALL = {
    "id": "call_42",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}


def events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) of each Anthropic stream event."""
    out = []
    for block in body.decode().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_sync_message(stack: Stack, claude: anthropic.Anthropic) -> None:
    """A whole answer comes back as an Anthropic message."""
    raw = claude.messages.with_raw_response.create(
        model="chat", max_tokens=100, system="Be brief.", messages=HI
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from the fake OpenAI."
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (9, 12)
    assert raw.headers["x-failover-deployment"] == "primary/gpt-4o"
    sent = stack.primary.requests[-1].json
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["max_tokens"] == 100


async def test_async_stream(aclaude: anthropic.AsyncAnthropic) -> None:
    """The async SDK's stream helper assembles the translated events."""
    async with aclaude.messages.stream(model="chat", max_tokens=100, messages=HI) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == "Hello from the fake OpenAI."
    assert final.stop_reason == "end_turn"
    assert final.content[0].type == "text"


def test_a_translated_stream_reports_its_usage(stack: Stack, claude: anthropic.Anthropic) -> None:
    """Streamed from an OpenAI deployment (asked for its usage chunk), the final message
    carries that usage: 9 prompt tokens, one completion token per piece."""
    with claude.messages.stream(model="chat", max_tokens=50, messages=HI) as stream:
        final = stream.get_final_message()
    assert stack.primary.requests[-1].json["stream_options"] == {"include_usage": True}
    pieces = len(stack.primary.split(stack.primary.text))
    assert (final.usage.input_tokens, final.usage.output_tokens) == (9, pieces)


def test_stream_event_sequence(http: Raw) -> None:
    """The events follow Anthropic's order: start, block start/deltas/stop, delta, stop."""
    body = {"model": "chat", "max_tokens": 50, "messages": HI, "stream": True}
    answer = http.post("/v1/messages", body)
    names = [name for name, _ in events(answer.body)]
    assert names[0] == "message_start"
    assert names[1] == "content_block_start"
    assert set(names[2:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_tool_use_whole(stack: Stack, claude: anthropic.Anthropic) -> None:
    """Tool calls become tool_use blocks with parsed input; tools go upstream as functions."""
    stack.primary.push(stack.primary.reply(None, tool_calls=[CALL], finish_reason="tool_calls"))
    message = claude.messages.create(
        model="chat",
        max_tokens=100,
        messages=HI,
        tools=[WEATHER],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    block = message.content[0]
    assert block.type == "tool_use"
    assert (block.id, block.name, block.input) == ("call_42", "get_weather", {"city": "Paris"})
    assert message.stop_reason == "tool_use"
    sent = stack.primary.requests[-1].json
    assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}


def test_tool_use_streamed(stack: Stack, claude: anthropic.Anthropic) -> None:
    """Streamed tool calls arrive as a tool_use block with input_json_delta pieces."""
    chunks = [
        FakeOpenAI.chunk({"role": "assistant", "content": None}),
        FakeOpenAI.chunk(
            {
                "tool_calls": [
                    {"index": 0, **CALL, "function": {"name": "get_weather", "arguments": ""}}
                ]
            }
        ),
        FakeOpenAI.chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
        FakeOpenAI.chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        FakeOpenAI.chunk({}, finish="tool_calls"),
    ]
    from fakes import Stream, sse

    stack.primary.push(Stream([*(sse(c) for c in chunks), sse("[DONE]")]))
    with claude.messages.stream(
        model="chat",
        max_tokens=100,
        messages=HI,
        tools=[WEATHER],  # type: ignore[list-item]
    ) as stream:
        final = stream.get_final_message()
    block = final.content[0]
    assert block.type == "tool_use"
    assert block.input == {"city": "Paris"}
    assert final.stop_reason == "tool_use"


def test_tool_results_go_upstream_as_tool_messages(
    stack: Stack, claude: anthropic.Anthropic
) -> None:
    """A tool_result block becomes an OpenAI `tool` message after the assistant's call."""
    claude.messages.create(
        model="chat",
        max_tokens=100,
        tools=[WEATHER],  # type: ignore[list-item]
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {
                        "type": "tool_use",
                        "id": "call_42",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_42", "content": "18C, sunny"},
                    {"type": "text", "text": "Thanks!"},
                ],
            },
        ],
    )
    sent = stack.primary.requests[-1].json["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city":"Paris"}',
    }
    assert sent[2] == {"role": "tool", "tool_call_id": "call_42", "content": "18C, sunny"}
    assert sent[3] == {"role": "user", "content": "Thanks!"}


def test_anthropic_client_to_anthropic_upstream(claude: anthropic.Anthropic) -> None:
    """Anthropic in, Anthropic out: translated both ways, the text survives."""
    message = claude.messages.create(model="claude", max_tokens=100, messages=HI)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from the fake Claude."
    with claude.messages.stream(model="claude", max_tokens=100, messages=HI) as stream:
        assert "".join(stream.text_stream) == "Hello from the fake Claude."


def test_failover_with_an_anthropic_client(stack: Stack, claude: anthropic.Anthropic) -> None:
    """The primary failing is invisible to an Anthropic client too."""
    stack.primary.push(FakeOpenAI.error(500, "boom", type="server_error"))
    stack.primary.push(FakeOpenAI.error(500, "boom", type="server_error"))
    message = claude.messages.create(model="chat", max_tokens=100, messages=HI)
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from the backup."
    with claude.messages.stream(model="chat", max_tokens=100, messages=HI) as stream:
        assert "".join(stream.text_stream) == "Hello from the backup."


def test_errors_in_anthropic_format(claude: anthropic.Anthropic, http: Raw) -> None:
    """Unknown models and bad requests get Anthropic's error shape and the SDK's classes."""
    with pytest.raises(anthropic.NotFoundError) as caught:
        claude.messages.create(model="nope", max_tokens=10, messages=HI)
    body = caught.value.response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == "not_found_error"
    answer = http.post("/v1/messages", {"model": "chat", "messages": HI})
    assert answer.status == 400
    assert answer.json["error"] == {
        "type": "invalid_request_error",
        "message": "'max_tokens' is required and must be a positive integer",
    }


def test_mid_stream_failure_is_an_error_event(
    stack: Stack, http: Raw, claude: anthropic.Anthropic
) -> None:
    """A stream cut after it started that no deployment can finish ends with `event: error`;
    the SDK raises it."""
    stack.primary.push(stack.primary.stream(["Hel", "lo"], cut_after=2))
    stack.backup.push(stack.backup.stream(["Goodbye"]))
    stack.primary.push(stack.primary.stream(["Bye"]))
    body = {"model": "chat", "max_tokens": 50, "messages": HI, "stream": True}
    answer = http.post("/v1/messages", body)
    name, data = events(answer.body)[-1]
    assert name == "error"
    assert data["type"] == "error" and data["error"]["type"] == "api_error"
    stack.primary.push(stack.primary.stream(["Hel", "lo"], cut_after=2))
    stack.backup.push(stack.backup.stream(["Goodbye"]))
    stack.primary.push(stack.primary.stream(["Bye"]))
    with (
        pytest.raises(anthropic.APIStatusError),
        claude.messages.stream(model="chat", max_tokens=50, messages=HI) as stream,
    ):
        for _ in stream:
            pass


async def test_async_message_and_failover(stack: Stack, aclaude: anthropic.AsyncAnthropic) -> None:
    """The async SDK gets whole answers, from the backup when the primary resets."""
    from fakes import Drop

    first = await aclaude.messages.create(model="chat", max_tokens=20, messages=HI)
    assert first.content[0].type == "text"
    stack.primary.push(Drop())
    second = await aclaude.messages.with_raw_response.create(
        model="chat", max_tokens=20, messages=HI
    )
    assert second.headers["x-failover-attempts"] == "2"
    block = (await second.parse()).content[0]
    assert block.type == "text" and block.text == "Hello from the backup."
