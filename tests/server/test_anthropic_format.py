"""Anthropic Messages <-> OpenAI translation rules, one at a time (no I/O)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from failover.server.anthropic_format import (
    StreamTranslator,
    to_anthropic_message,
    to_openai_request,
)
from failover.server.errors import ClientError, Failure

BASE: dict[str, Any] = {
    "model": "smart",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
}


def request(**changes: Any) -> dict[str, Any]:
    return to_openai_request({**BASE, **changes})[1]


def test_plain_request() -> None:
    """Model, max_tokens and messages map directly; nothing else is invented."""
    model, out, stream = to_openai_request(BASE)
    assert (model, stream) == ("smart", False)
    assert out == {
        "model": "smart",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 64,
    }


def test_system_blocks_become_one_system_message() -> None:
    """A list of system text blocks is joined into the first message."""
    out = request(system=[{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])
    assert out["messages"][0] == {"role": "system", "content": "a\nb"}


def test_sampling_stop_and_user() -> None:
    """temperature/top_p pass, stop_sequences become stop, metadata.user_id becomes user."""
    out = request(
        temperature=0.2, top_p=0.9, top_k=5, stop_sequences=["END"], metadata={"user_id": "u1"}
    )
    assert (out["temperature"], out["top_p"], out["stop"], out["user"]) == (0.2, 0.9, ["END"], "u1")
    assert "top_k" not in out


def test_stream_asks_for_usage() -> None:
    """A streamed request asks the upstream for usage, which message_delta reports."""
    out = request(stream=True)
    assert out["stream"] is True and out["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        ({"type": "tool", "name": "f"}, {"type": "function", "function": {"name": "f"}}),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any) -> None:
    """Each Anthropic tool_choice has its OpenAI counterpart."""
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    assert request(tools=tools, tool_choice=choice)["tool_choice"] == expected


def test_disable_parallel_tool_use() -> None:
    """disable_parallel_tool_use turns parallel tool calls off."""
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    out = request(tools=tools, tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    assert out["parallel_tool_calls"] is False


def test_images_and_thinking_blocks() -> None:
    """Images become image_url parts (data: URLs for base64); thinking blocks are dropped."""
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "AAA"},
    }
    out = request(
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "see"}, image]},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm"},
                    {"type": "text", "text": "ok"},
                ],
            },
        ]
    )
    assert out["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AAA"},
    }
    assert out["messages"][1] == {"role": "assistant", "content": "ok"}


def test_error_tool_results_say_so() -> None:
    """is_error tool results are marked for the model."""
    out = request(
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "is_error": True,
                        "content": [{"type": "text", "text": "boom"}],
                    }
                ],
            },
        ]
    )
    assert out["messages"] == [{"role": "tool", "tool_call_id": "t1", "content": "Error: boom"}]


@pytest.mark.parametrize(
    "body",
    [
        [],
        {"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
        {**BASE, "max_tokens": "5"},
        {**BASE, "max_tokens": 0},
        {**BASE, "messages": []},
        {**BASE, "messages": "hi"},
        {**BASE, "messages": [{"role": "system", "content": "x"}]},
        {**BASE, "messages": [{"role": "user", "content": 5}]},
        {**BASE, "messages": [{"role": "user", "content": [{"type": "video"}]}]},
        {**BASE, "messages": [{"role": "user", "content": [{"text": "no type"}]}]},
        {**BASE, "system": 5},
        {**BASE, "tools": {"name": "f"}},
        {**BASE, "tools": [{"name": "f"}]},
        {**BASE, "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
        {**BASE, "tool_choice": "auto"},
        {**BASE, "tool_choice": {"type": "sometimes"}},
        {**BASE, "stop_sequences": "END"},
        {**BASE, "temperature": "hot"},
        {**BASE, "stream": "yes"},
    ],
)
def test_invalid_requests_are_400(body: Any) -> None:
    """Malformed requests raise a 400 with a message, never anything else."""
    with pytest.raises(ClientError) as caught:
        to_openai_request(body)
    assert caught.value.failure.status == 400
    assert caught.value.failure.message


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
    ],
)
def test_finish_reasons(finish: str, stop: str) -> None:
    """OpenAI finish reasons map onto Anthropic stop reasons."""
    completion = {
        "id": "chatcmpl-1",
        "choices": [{"message": {"content": "x"}, "finish_reason": finish}],
    }
    assert to_anthropic_message(completion, "smart")["stop_reason"] == stop


def test_message_with_text_and_tool_calls() -> None:
    """Text then tool_use blocks; arguments parsed into `input`; usage mapped."""
    completion = {
        "id": "chatcmpl-abc",
        "model": "gpt-4o",
        "choices": [
            {
                "message": {
                    "content": "Checking.",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a": 1}'},
                        },
                        {
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "g", "arguments": "not json"},
                        },
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 3,
            "completion_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": 2},
        },
    }
    message = to_anthropic_message(completion, "smart")
    assert message["id"] == "msg_abc"
    assert message["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "c1", "name": "f", "input": {"a": 1}},
        {"type": "tool_use", "id": "c2", "name": "g", "input": {"_raw_arguments": "not json"}},
    ]
    assert message["usage"]["input_tokens"] == 3
    assert message["usage"]["cache_read_input_tokens"] == 2


def parse(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in data.decode().strip().split("\n\n"):
        head, body = block.split("\n", 1)
        out.append((head.removeprefix("event: "), json.loads(body.removeprefix("data: "))))
    return out


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "id": "chatcmpl-s",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }


def test_stream_text_then_tool_then_usage() -> None:
    """Text block, then a tool_use block, then message_delta with stop reason and usage."""
    t = StreamTranslator("smart")
    out = t.feed(chunk({"role": "assistant", "content": ""}))
    out += t.feed(chunk({"content": "Hi"}))
    out += t.feed(
        chunk(
            {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}]}
        )
    )
    out += t.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}))
    out += t.feed(chunk({}, "tool_calls"))
    out += t.feed(
        {"id": "chatcmpl-s", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 7}}
    )
    out += t.finish()
    names = [name for name, _ in parse(out)]
    assert names == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    events = parse(out)
    assert events[4][1]["content_block"] == {
        "type": "tool_use",
        "id": "c1",
        "name": "f",
        "input": {},
    }
    assert events[4][1]["index"] == 1
    assert events[7][1]["delta"]["stop_reason"] == "tool_use"
    assert events[7][1]["usage"] == {"input_tokens": 5, "output_tokens": 7}


def test_stream_that_ends_without_chunks_still_closes() -> None:
    """An empty stream still yields a well-formed message."""
    names = [name for name, _ in parse(StreamTranslator("smart").finish())]
    assert names == ["message_start", "message_delta", "message_stop"]


def test_stream_error_event() -> None:
    """A failure mid-stream is an `event: error` in Anthropic's shape."""
    data = StreamTranslator("smart").error(Failure(502, "cut", code="stream_interrupted"))
    [(name, body)] = parse(data)
    assert name == "error"
    assert body["type"] == "error" and body["error"] == {"type": "api_error", "message": "cut"}
