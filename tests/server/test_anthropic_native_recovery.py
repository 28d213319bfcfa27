"""/v1/messages streamed from a deployment that speaks Messages, broken mid-answer and finished
on another deployment: the client sees one well-formed Anthropic message, never a splice."""

from __future__ import annotations

import json
from typing import Any

from fakes import FakeAnthropic, FakeOpenAI, Stream, sse

from .harness import CLIENT_KEY, Raw, Stack

HEADERS = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
ARGS = ['{"city"', ': "Par', 'is"}']
MIXED = {
    "routes": {
        "mixed": {
            "deployments": [
                {"provider": "claude", "model": "claude-sonnet-4-5"},
                {"provider": "backup", "model": "gpt-4o-mini"},
            ]
        }
    }
}


def _openai_tool_stream() -> Stream:
    call = {"index": 0, "id": "call_1", "type": "function"}
    chunks = [
        FakeOpenAI.chunk({"role": "assistant", "content": None}),
        FakeOpenAI.chunk(
            {"tool_calls": [{**call, "function": {"name": "get_weather", "arguments": ""}}]}
        ),
        *(
            FakeOpenAI.chunk({"tool_calls": [{"index": 0, "function": {"arguments": a}}]})
            for a in ARGS
        ),
        FakeOpenAI.chunk({}, finish="tool_calls"),
    ]
    return Stream([*(sse(c) for c in chunks), sse("[DONE]")])


def _events(body: bytes) -> list[dict[str, Any]]:
    return [
        json.loads(line[len("data: ") :])
        for line in body.decode().splitlines()
        if line.startswith("data: ")
    ]


def test_a_tool_call_broken_natively_and_restarted_elsewhere_is_one_block(
    make_stack: Any,
) -> None:
    """The spliced tool call reaches the Anthropic client as one tool_use block, whole."""
    stack: Stack = make_stack(MIXED)
    tool = ("toolu_1", "get_weather", ARGS)
    stack.claude.push(Stream(FakeAnthropic.events([], tool=tool), cut_after=3))  # mid-input
    stack.backup.push(_openai_tool_stream())
    body = {
        "model": "mixed",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
    }
    with Raw(stack.port) as http:
        answer = http.post("/v1/messages", body, HEADERS)
    assert answer.status == 200
    events = _events(answer.body)
    assert len(stack.backup.requests) == 1  # the break was recovered by the OpenAI backup
    starts = [e for e in events if e["type"] == "content_block_start"]
    assert [s["content_block"]["name"] for s in starts] == ["get_weather"]
    partial = "".join(
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["index"] == starts[0]["index"]
    )
    assert json.loads(partial) == {"city": "Paris"}
