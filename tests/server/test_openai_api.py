"""The OpenAI-compatible API, driven by the official `openai` SDK (sync and async) against a
real gateway in front of fake upstreams; answers validated against OpenAI's OpenAPI schema."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest

from fakes import Drop, FakeOpenAI, Hang
from fakes.server import Reply
from openapi_schema import validate

from .harness import CLIENT_KEY, Raw, Stack

HI = [{"role": "user", "content": "hi"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def sse_data(body: bytes) -> list[bytes]:
    """The `data:` payloads of an event stream, in order."""
    return [
        line.removeprefix(b"data: ") for line in body.split(b"\n") if line.startswith(b"data: ")
    ]


def test_completion_passes_through_and_fits_the_schema(oai: openai.OpenAI) -> None:
    """A whole completion comes back as the upstream sent it, valid per OpenAI's schema."""
    raw = oai.chat.completions.with_raw_response.create(model="chat", messages=HI)
    body = json.loads(raw.content)
    validate("CreateChatCompletionResponse", body)
    assert raw.parse().choices[0].message.content == "Hello from the fake OpenAI."
    assert raw.headers["x-failover-route"] == "chat"
    assert raw.headers["x-failover-deployment"] == "primary/gpt-4o"
    assert raw.headers["x-failover-attempts"] == "1"
    assert raw.headers["x-request-id"]


def test_stream_chunks_fit_the_schema(stack: Stack, http: Raw) -> None:
    """Every chunk of a stream is a valid OpenAI chunk, ending with [DONE]."""
    answer = http.post("/v1/chat/completions", {"model": "chat", "messages": HI, "stream": True})
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    payloads = sse_data(answer.body)
    assert payloads[-1] == b"[DONE]"
    for payload in payloads[:-1]:
        validate("CreateChatCompletionStreamResponse", json.loads(payload))
    assert answer.headers["x-failover-deployment"] == "primary/gpt-4o"


def test_sync_sdk_stream(oai: openai.OpenAI) -> None:
    """The sync SDK reads a streamed answer through the gateway."""
    stream = oai.chat.completions.create(model="chat", messages=HI, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "Hello from the fake OpenAI."


async def test_async_sdk_completion_and_stream(aoai: openai.AsyncOpenAI) -> None:
    """The async SDK gets whole and streamed answers."""
    whole = await aoai.chat.completions.create(model="chat", messages=HI)
    assert whole.choices[0].finish_reason == "stop"
    stream = await aoai.chat.completions.create(model="chat", messages=HI, stream=True)
    pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(pieces) == "Hello from the fake OpenAI."


def test_tool_calls_round_trip(stack: Stack, oai: openai.OpenAI) -> None:
    """Tools go upstream unchanged and tool calls come back to the SDK."""
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    stack.primary.push(
        stack.primary.reply(None, tool_calls=[call], finish_reason="tool_calls"),
    )
    answer = oai.chat.completions.create(
        model="chat", messages=HI, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    calls = answer.choices[0].message.tool_calls
    assert calls is not None and calls[0].function.name == "get_weather"
    sent = stack.primary.requests[-1].json
    assert sent["tools"] == [WEATHER_TOOL]
    assert sent["model"] == "gpt-4o"


async def test_embeddings_and_models(stack: Stack, aoai: openai.AsyncOpenAI) -> None:
    """Embeddings go through the route; /v1/models lists the routes in OpenAI's format."""
    embedded = await aoai.embeddings.create(model="embed", input=["a", "b"])
    assert len(embedded.data) == 2
    models = await aoai.models.with_raw_response.list()
    validate("ListModelsResponse", json.loads(models.content))
    names = [m.id for m in models.parse().data]
    assert names == ["chat", "solo", "claude", "embed"]
    one = await aoai.models.retrieve("chat")
    assert one.id == "chat"


def test_provider_slash_model_addresses_one_deployment(oai: openai.OpenAI) -> None:
    """`provider/model` as the model calls that deployment only."""
    raw = oai.chat.completions.with_raw_response.create(model="backup/gpt-4o-mini", messages=HI)
    assert raw.headers["x-failover-deployment"] == "backup/gpt-4o-mini"
    assert raw.parse().choices[0].message.content == "Hello from the backup."


def test_openai_client_over_an_anthropic_upstream(oai: openai.OpenAI) -> None:
    """An OpenAI client reaches an Anthropic deployment; the answer is OpenAI-shaped."""
    raw = oai.chat.completions.with_raw_response.create(model="claude", messages=HI)
    validate("CreateChatCompletionResponse", json.loads(raw.content))
    assert raw.parse().choices[0].message.content == "Hello from the fake Claude."


# -- failover -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(lambda f: FakeOpenAI.error(500, "boom", type="server_error"), id="500"),
        pytest.param(lambda f: Drop(), id="reset"),
        pytest.param(lambda f: Hang(), id="hang"),
    ],
)
def test_primary_failure_fails_over_invisibly(stack: Stack, oai: openai.OpenAI, fault: Any) -> None:
    """When the primary errors, resets or hangs, the backup answers: no client error."""
    stack.primary.push(fault(stack.primary))
    raw = oai.chat.completions.with_raw_response.create(model="chat", messages=HI)
    assert raw.parse().choices[0].message.content == "Hello from the backup."
    assert raw.headers["x-failover-deployment"] == "backup/gpt-4o-mini"
    assert raw.headers["x-failover-attempts"] == "2"


async def test_outage_mid_test_zero_client_errors(stack: Stack, aoai: openai.AsyncOpenAI) -> None:
    """Traffic keeps flowing while the primary goes down mid-test and comes back."""
    before = [aoai.chat.completions.create(model="chat", messages=HI) for _ in range(5)]
    stack.primary.push(*[FakeOpenAI.error(503, "down", type="server_error")] * 10)
    during = [aoai.chat.completions.create(model="chat", messages=HI) for _ in range(10)]
    streams = [_stream_text(aoai) for _ in range(5)]
    results = await asyncio.gather(*before, *during)
    texts = await asyncio.gather(*streams)
    assert all(r.choices[0].message.content for r in results)
    assert all(t.startswith("Hello from the") for t in texts)


async def _stream_text(client: openai.AsyncOpenAI) -> str:
    stream = await client.chat.completions.create(model="chat", messages=HI, stream=True)
    return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])


def test_stream_fails_over_before_the_first_chunk(stack: Stack, oai: openai.OpenAI) -> None:
    """A stream whose primary fails before any chunk is served by the backup."""
    stack.primary.push(FakeOpenAI.error(500, "boom", type="server_error"))
    raw = oai.chat.completions.with_raw_response.create(model="chat", messages=HI, stream=True)
    assert raw.headers["x-failover-deployment"] == "backup/gpt-4o-mini"
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == "Hello from the backup."


def test_failure_after_the_first_chunk_is_an_error_event(stack: Stack, http: Raw) -> None:
    """A stream cut after it started that no deployment can finish (the backup says something
    else) ends with an OpenAI error event naming the cut (no [DONE])."""
    stack.primary.push(stack.primary.stream(["Hel", "lo"], cut_after=2))
    stack.backup.push(stack.backup.stream(["Goodbye"]))
    stack.primary.push(stack.primary.stream(["Bye"]))
    answer = http.post("/v1/chat/completions", {"model": "chat", "messages": HI, "stream": True})
    payloads = sse_data(answer.body)
    assert payloads[-1] != b"[DONE]"
    error = json.loads(payloads[-1])
    validate("ErrorResponse", error)
    assert error["error"]["code"] == "stream_interrupted"
    assert "primary/gpt-4o" in error["error"]["message"]
    for payload in payloads[:-1]:
        validate("CreateChatCompletionStreamResponse", json.loads(payload))


def test_sdk_raises_on_a_mid_stream_error(stack: Stack, oai: openai.OpenAI) -> None:
    """The SDK turns the mid-stream error event into an APIError."""
    stack.primary.push(stack.primary.stream(["Hel", "lo"], cut_after=2))
    stack.backup.push(stack.backup.stream(["Goodbye"]))
    stack.primary.push(stack.primary.stream(["Bye"]))
    stream = oai.chat.completions.create(model="chat", messages=HI, stream=True)
    with pytest.raises(openai.APIError, match="broke after"):
        for _ in stream:
            pass


# -- errors ---------------------------------------------------------------------------------


def test_unknown_model_is_404_model_not_found(oai: openai.OpenAI) -> None:
    """An unknown model gets OpenAI's 404 with code model_not_found."""
    with pytest.raises(openai.NotFoundError) as caught:
        oai.chat.completions.create(model="nope", messages=HI)
    body = caught.value.response.json()
    validate("ErrorResponse", body)
    assert body["error"]["code"] == "model_not_found"
    assert "chat" in body["error"]["message"]  # names the routes that exist


def test_all_rate_limited_is_429_with_retry_after(stack: Stack, oai: openai.OpenAI) -> None:
    """Every deployment rate limited: 429, Retry-After, and the trace in the body."""
    limited = FakeOpenAI.error(
        429, "slow down", code="rate_limit_exceeded", headers={"retry-after": "60"}
    )
    stack.primary.push(limited)
    stack.backup.push(limited)
    with pytest.raises(openai.RateLimitError) as caught:
        oai.chat.completions.create(model="chat", messages=HI)
    response = caught.value.response
    assert response.headers["retry-after"] == "60"
    assert response.headers["x-failover-attempts"] == "2"
    assert "rate_limited" in response.headers["x-failover-trace"]
    body = response.json()
    validate("ErrorResponse", body)
    attempts = body["failover"]["attempts"]
    assert [a["outcome"] for a in attempts] == ["rate_limited", "rate_limited"]


def test_all_failed_is_502_with_the_trace(stack: Stack, oai: openai.OpenAI) -> None:
    """Every deployment failing with server errors gives 502 naming each attempt."""
    stack.primary.push(FakeOpenAI.error(500, "primary broke", type="server_error"))
    stack.backup.push(FakeOpenAI.error(500, "backup broke", type="server_error"))
    with pytest.raises(openai.InternalServerError) as caught:
        oai.chat.completions.create(model="chat", messages=HI)
    assert caught.value.status_code == 502
    message = caught.value.response.json()["error"]["message"]
    assert "primary/gpt-4o:server_error" in message
    assert "backup/gpt-4o-mini:server_error" in message


def test_timeouts_are_504(make_stack: Any) -> None:
    """A hang on the only deployment is a 504."""
    stack = make_stack(
        {"defaults": {"timeouts": {"attempt": "200ms", "first_token": "200ms", "total": "5s"}}}
    )
    stack.primary.push(Hang())
    with Raw(stack.port) as http:
        answer = http.post("/v1/chat/completions", {"model": "solo", "messages": HI})
    assert answer.status == 504
    assert answer.json["failover"]["attempts"][0]["outcome"] == "timeout"


def test_bad_request_is_returned_not_failed_over(stack: Stack, oai: openai.OpenAI) -> None:
    """A 400 from the provider comes back as a 400, and the backup is not bothered."""
    stack.primary.push(FakeOpenAI.error(400, "temperature must be <= 2", param="temperature"))
    with pytest.raises(openai.BadRequestError, match="temperature must be"):
        oai.chat.completions.create(model="chat", messages=HI, temperature=1.0)
    assert stack.backup.requests == []


def test_context_window_is_400_context_length_exceeded(stack: Stack, oai: openai.OpenAI) -> None:
    """A prompt too long for the model is a 400 with code context_length_exceeded."""
    stack.primary.push(
        FakeOpenAI.error(
            400, "maximum context length is 8192 tokens", code="context_length_exceeded"
        )
    )
    with pytest.raises(openai.BadRequestError) as caught:
        oai.chat.completions.create(model="chat", messages=HI)
    assert caught.value.code == "context_length_exceeded"


def test_provider_keys_never_reach_the_client(stack: Stack, http: Raw) -> None:
    """An upstream that echoes its key in an error does not leak it through the gateway."""
    stack.primary.push(
        FakeOpenAI.error(401, "Incorrect API key provided: sk-provider-SECRET-1b2c3d")
    )
    stack.backup.push(FakeOpenAI.error(500, "down", type="server_error"))
    answer = http.post("/v1/chat/completions", {"model": "chat", "messages": HI})
    assert answer.status == 502
    assert b"SECRET" not in answer.body
    assert "SECRET" not in json.dumps(answer.headers)


def test_a_deployment_short_of_tokens_is_passed_over(make_stack: Any) -> None:
    """After the primary said it has 10 tokens left, a 1000-token request goes to the backup."""
    stack = make_stack()
    low_on_tokens = {
        "x-ratelimit-remaining-requests": "500",
        "x-ratelimit-remaining-tokens": "10",
        "x-ratelimit-reset-requests": "60s",
        "x-ratelimit-reset-tokens": "60s",
    }
    stack.primary.push(Reply(FakeOpenAI.completion("first"), headers=low_on_tokens))
    auth = {"authorization": f"Bearer {CLIENT_KEY}"}
    request = {"model": "chat", "max_tokens": 1000, "messages": [{"role": "user", "content": "hi"}]}
    with Raw(stack.port) as http:
        first = http.post("/v1/chat/completions", request, auth)
        second = http.post("/v1/chat/completions", request, auth)
    assert first.status == second.status == 200
    assert first.headers["x-failover-deployment"].startswith("primary")
    assert second.headers["x-failover-deployment"].startswith("backup")
