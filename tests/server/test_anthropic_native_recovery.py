"""/v1/messages streamed from a deployment that speaks Messages, broken mid-answer and finished
on another deployment: the client sees one well-formed Anthropic message, never a splice."""

from __future__ import annotations

import json
from typing import Any

from fakes import FakeAnthropic, FakeOpenAI, Stream, sse

from .harness import CLIENT_KEY, Raw, Stack

HEADERS = {"x-api-key": CLIENT_KEY, "anthropic-version": "2023-06-01"}
HI = [{"role": "user", "content": "Hi."}]
THINKING = {"type": "enabled", "budget_tokens": 1024}
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


def _ask(stack: Stack, **extra: Any) -> str:
    """Stream one answer from route `claude` through /v1/messages; the text the client got."""
    body = {"model": "claude", "max_tokens": 2048, "stream": True, "messages": HI, **extra}
    with Raw(stack.port) as http:
        answer = http.post("/v1/messages", body, HEADERS)
    assert answer.status == 200
    return "".join(
        e["delta"]["text"]
        for e in _events(answer.body)
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "text_delta"
    )


def _prefilled(stack: Stack) -> list[bool]:
    """For each request Claude got, whether it ended with an assistant message (a prefill)."""
    return [
        json.loads(r.body)["messages"][-1]["role"] == "assistant" for r in stack.claude.requests
    ]


def test_a_thinking_answer_broken_natively_restarts_instead_of_prefilling(stack: Stack) -> None:
    """Thinking streamed before a break counts as delivered reasoning: the answer is finished
    by a restart, never by a prefill Anthropic refuses while thinking is on."""
    pieces = stack.claude.split(stack.claude.text)
    thinking = stack.claude.stream(pieces, thinking=["Let me ", "think."])
    text = [i for i, frame in enumerate(thinking.frames) if b'"text_delta"' in frame]
    thinking.cut_after = text[0] + 1  # dropped after the first piece of text
    stack.claude.push(thinking)
    assert _ask(stack, thinking=THINKING) == stack.claude.text
    assert _prefilled(stack) == [False, False]


def test_a_prefill_refused_for_thinking_is_not_learned_for_the_deployment(stack: Stack) -> None:
    """A prefill refused because the request enables thinking is that request's: the next
    break, in a request without thinking, is still continued by a prefill."""
    pieces = stack.claude.split(stack.claude.text)
    # the first answer thinks nothing before its text, as a model may
    stack.claude.push(stack.claude.stream(pieces, cut_after=stack.claude.after(1)))
    assert _ask(stack, thinking=THINKING) == stack.claude.text
    assert _prefilled(stack) == [False, True, False]  # refused, then restarted
    stack.claude.push(stack.claude.stream(pieces, cut_after=stack.claude.after(1)))
    assert _ask(stack) == stack.claude.text
    assert _prefilled(stack)[3:] == [False, True]
