"""The Gemini adapter against a fake Gemini API: requests, answers, streams, embeddings."""

from __future__ import annotations

import base64
import struct

import pytest
from openai.types import CreateEmbeddingResponse

from failover.errors import ConnectionFailed, ContentFiltered, RateLimited
from failover.providers import GeminiAdapter
from fakes import FakeGemini, Reply, Stream, sse

from .conftest import API_KEY
from .support import USER_HI, check_chunks, check_completion, collect, text_of

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TOOL_REQUEST = {"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [TOOL]}
CALL = {"name": "get_weather", "args": {"city": "Paris"}}


async def test_complete_calls_generate_content(
    gemini: GeminiAdapter, gemini_server: FakeGemini
) -> None:
    """The request goes to models/{model}:generateContent with x-goog-api-key."""
    await gemini.complete(USER_HI)
    received = gemini_server.requests[0]
    assert received.path == "/v1beta/models/gemini-2.0-flash:generateContent"
    assert received.headers["x-goog-api-key"] == API_KEY and "key" not in received.query
    assert received.json == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


async def test_complete_returns_an_openai_completion(gemini: GeminiAdapter) -> None:
    """A text answer comes back as a valid OpenAI chat.completion with usage."""
    completion = check_completion((await gemini.complete(USER_HI)).body)
    assert completion.choices[0].message.content == "Hello from the fake Gemini."
    assert completion.usage is not None and completion.usage.prompt_tokens == 8
    assert completion.id == "resp_fake01"


async def test_complete_function_call_becomes_tool_calls(
    gemini: GeminiAdapter, gemini_server: FakeGemini
) -> None:
    """A functionCall answer becomes tool_calls and finish_reason tool_calls."""
    gemini_server.push(Reply(FakeGemini.response(None, calls=[CALL])))
    completion = check_completion((await gemini.complete(TOOL_REQUEST)).body)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.tool_calls is not None
    assert choice.message.tool_calls[0].function.arguments == '{"city":"Paris"}'  # type: ignore[union-attr]
    declared = gemini_server.requests[0].json["tools"][0]["functionDeclarations"][0]
    assert declared["name"] == "get_weather"


async def test_blocked_prompt_raises_content_filtered(
    gemini: GeminiAdapter, gemini_server: FakeGemini
) -> None:
    """promptFeedback.blockReason raises ContentFiltered with the reason as code."""
    gemini_server.push(FakeGemini.blocked("PROHIBITED_CONTENT"))
    with pytest.raises(ContentFiltered) as caught:
        await gemini.complete(USER_HI)
    assert caught.value.code == "PROHIBITED_CONTENT"


async def test_safety_finish_is_content_filter(
    gemini: GeminiAdapter, gemini_server: FakeGemini
) -> None:
    """A candidate stopped for SAFETY finishes with content_filter."""
    gemini_server.push(Reply(FakeGemini.response(None, finish="SAFETY")))
    completion = check_completion((await gemini.complete(USER_HI)).body)
    assert completion.choices[0].finish_reason == "content_filter"


async def test_stream_translates_chunks(gemini: GeminiAdapter, gemini_server: FakeGemini) -> None:
    """SSE chunks (CRLF framed) become valid OpenAI chunks, the first with the role."""
    gemini_server.push(gemini_server.stream(["Hel", "lo", "!"]))
    bodies = await collect(gemini.stream(USER_HI))
    chunks = check_chunks(bodies)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text_of(bodies) == "Hello!"
    assert chunks[-1].choices[0].finish_reason == "stop"
    received = gemini_server.requests[0]
    assert received.path.endswith(":streamGenerateContent") and received.query == {"alt": "sse"}


async def test_stream_function_call_becomes_tool_call_deltas(
    gemini: GeminiAdapter, gemini_server: FakeGemini
) -> None:
    """A streamed functionCall becomes a whole tool_calls delta; the finish is tool_calls."""
    gemini_server.push(gemini_server.stream([], calls=[CALL, {**CALL, "args": {"city": "Rome"}}]))
    bodies = await collect(gemini.stream(TOOL_REQUEST))
    check_chunks(bodies)
    calls = [t for b in bodies for c in b["choices"] for t in c["delta"].get("tool_calls") or []]
    assert [(c["index"], c["function"]["name"]) for c in calls] == [
        (0, "get_weather"),
        (1, "get_weather"),
    ]
    assert calls[1]["function"]["arguments"] == '{"city":"Rome"}'
    assert bodies[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_stream_include_usage_adds_a_usage_chunk(gemini: GeminiAdapter) -> None:
    """With stream_options.include_usage the last chunk carries usageMetadata as usage."""
    bodies = await collect(gemini.stream({**USER_HI, "stream_options": {"include_usage": True}}))
    check_chunks(bodies)
    assert bodies[-1]["choices"] == [] and bodies[-1]["usage"]["total_tokens"] == 14


async def test_stream_without_finish_reason_is_connection_failed(
    gemini: GeminiAdapter, gemini_server: FakeGemini
) -> None:
    """A stream that ends before any finishReason was cut short."""
    chunks = FakeGemini.chunks(["Hel", "lo"])[:-1]
    gemini_server.push(Stream([sse(c, crlf=True) for c in chunks]))
    with pytest.raises(ConnectionFailed, match="finishReason"):
        await collect(gemini.stream(USER_HI))


async def test_stream_error_chunk_raises_the_classified_error(
    gemini: GeminiAdapter, gemini_server: FakeGemini
) -> None:
    """An error object inside the stream raises the matching ProviderError."""
    error = {
        "error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}
    }
    gemini_server.push(
        Stream([sse(FakeGemini.chunks(["Hel"])[0], crlf=True), sse(error, crlf=True)])
    )
    with pytest.raises(RateLimited, match="Resource exhausted"):
        await collect(gemini.stream(USER_HI))


async def test_stream_blocked_prompt_raises_content_filtered(
    gemini: GeminiAdapter, gemini_server: FakeGemini
) -> None:
    """A streamed promptFeedback.blockReason raises ContentFiltered."""
    gemini_server.push(Stream([sse({"promptFeedback": {"blockReason": "SAFETY"}}, crlf=True)]))
    with pytest.raises(ContentFiltered):
        await collect(gemini.stream(USER_HI))


async def test_embeddings_translate_to_openai_shape(
    gemini: GeminiAdapter, gemini_server: FakeGemini
) -> None:
    """batchEmbedContents answers become an OpenAI embeddings list."""
    payload = await gemini.embeddings({"input": ["a", "b"], "dimensions": 3})
    response = CreateEmbeddingResponse.model_validate(payload.body)
    assert [d.embedding for d in response.data] == [[0.25, -0.5, 1.0]] * 2
    sent = gemini_server.requests[0].json["requests"][0]
    assert sent == {
        "model": "models/gemini-2.0-flash",
        "content": {"parts": [{"text": "a"}]},
        "outputDimensionality": 3,
    }


async def test_embeddings_as_base64_are_little_endian_float32(gemini: GeminiAdapter) -> None:
    """encoding_format=base64 packs each vector as OpenAI does."""
    payload = await gemini.embeddings({"input": "a", "encoding_format": "base64"})
    packed = base64.b64decode(payload.body["data"][0]["embedding"])
    assert struct.unpack("<3f", packed) == (0.25, -0.5, 1.0)


async def test_probe_gets_the_model(gemini: GeminiAdapter, gemini_server: FakeGemini) -> None:
    """The probe is a GET of the model resource."""
    await gemini.probe()
    received = gemini_server.requests[0]
    assert (received.method, received.path) == ("GET", "/v1beta/models/gemini-2.0-flash")


def test_tuned_model_paths_are_used_as_given() -> None:
    """A model named tunedModels/x is addressed by that path."""
    adapter = GeminiAdapter(model="tunedModels/my-model", base_url="https://g.example/v1beta")
    assert adapter.model_url == "https://g.example/v1beta/tunedModels/my-model"


async def test_image_parts_reach_the_provider_as_inline_data(
    gemini: GeminiAdapter, gemini_server: FakeGemini
) -> None:
    """A data: image arrives as an inlineData part next to the text."""
    content = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGRg=="}},
    ]
    await gemini.complete({"messages": [{"role": "user", "content": content}]})
    parts = gemini_server.requests[0].json["contents"][0]["parts"]
    assert parts == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
    ]
