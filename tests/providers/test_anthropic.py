"""The Anthropic adapter against a fake Messages API: requests, answers and streams."""

from __future__ import annotations

import pytest

from failover.errors import BadRequest, ConnectionFailed, Overloaded
from failover.providers import AnthropicAdapter
from failover.transport import Transport
from fakes import FakeAnthropic, Stream

from .conftest import API_KEY
from .support import USER_HI, check_chunks, check_completion, collect, text_of, unreadable

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TOOL_REQUEST = {"messages": [{"role": "user", "content": "Weather in Paris?"}], "tools": [TOOL]}


async def test_complete_sends_a_messages_request(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """The request goes to /v1/messages with x-api-key and anthropic-version."""
    await anthropic.complete(USER_HI)
    received = anthropic_server.requests[0]
    assert received.path == "/v1/messages"
    assert received.headers["x-api-key"] == API_KEY
    assert received.headers["anthropic-version"] == "2023-06-01"
    assert received.json["model"] == "claude-sonnet-4-5" and received.json["max_tokens"] == 4096


async def test_complete_returns_an_openai_completion(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """A text answer comes back as a valid OpenAI chat.completion."""
    completion = check_completion((await anthropic.complete(USER_HI)).body)
    assert completion.choices[0].message.content == "Hello from the fake Claude."
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens == 19


async def test_complete_tool_use_becomes_tool_calls(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """A tool_use answer becomes tool_calls with JSON-string arguments."""
    anthropic_server.push(
        anthropic_server.reply(
            None, tool_uses=[("toolu_01", "get_weather", {"city": "Paris"})], stop_reason="tool_use"
        )
    )
    completion = check_completion((await anthropic.complete(TOOL_REQUEST)).body)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert call.function.arguments == '{"city":"Paris"}'  # type: ignore[union-attr]
    assert anthropic_server.requests[0].json["tools"][0]["name"] == "get_weather"


async def test_stream_translates_text_events(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """Text deltas become content chunks, ending with finish_reason stop; all valid chunks."""
    anthropic_server.push(anthropic_server.stream(["Hel", "lo", "!"]))
    bodies = await collect(anthropic.stream(USER_HI))
    chunks = check_chunks(bodies)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text_of(bodies) == "Hello!"
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert {c.id for c in chunks} == {"msg_fake01"}
    assert anthropic_server.requests[0].json["stream"] is True


async def test_stream_translates_tool_use_deltas(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """A tool_use block streams as tool_calls deltas: id and name first, then arguments."""
    tool = ("toolu_01", "get_weather", ['{"ci', 'ty": "Pa', 'ris"}'])
    anthropic_server.push(anthropic_server.stream(["Checking."], tool=tool))
    bodies = await collect(anthropic.stream(TOOL_REQUEST))
    check_chunks(bodies)
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in bodies
        if "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_01",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert "".join(c["function"]["arguments"] for c in calls) == '{"city": "Paris"}'
    assert {c["index"] for c in calls} == {0}
    assert bodies[-1]["choices"][0]["finish_reason"] == "tool_calls"


async def test_stream_include_usage_adds_a_usage_chunk(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """With stream_options.include_usage the last chunk has no choices and the usage."""
    request = {**USER_HI, "stream_options": {"include_usage": True}}
    bodies = await collect(anthropic.stream(request))
    check_chunks(bodies)
    assert bodies[-1]["choices"] == []
    assert bodies[-1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 15, "total_tokens": 27}


async def test_stream_without_usage_request_has_no_usage(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """Without include_usage no chunk carries usage, as with OpenAI."""
    bodies = await collect(anthropic.stream(USER_HI))
    assert all("usage" not in b for b in bodies)


async def test_stream_error_event_raises_overloaded(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """An `event: error` overloaded_error inside the stream raises Overloaded."""
    frames = FakeAnthropic.events(["Hel"])[:3]
    anthropic_server.push(
        Stream([*frames, FakeAnthropic.error_event("overloaded_error", "Overloaded")])
    )
    with pytest.raises(Overloaded, match="Overloaded"):
        await collect(anthropic.stream(USER_HI))


async def test_stream_ending_before_its_stop_reason_is_connection_failed(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """A stream that ends cleanly before message_delta's stop reason was cut short."""
    anthropic_server.push(Stream(FakeAnthropic.events(["Hel", "lo"])[:-2]))
    with pytest.raises(ConnectionFailed, match="stop reason"):
        await collect(anthropic.stream(USER_HI))


async def test_stream_without_message_stop_after_its_stop_reason_is_whole(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """After message_delta's stop reason the answer is whole: no message_stop is no break."""
    anthropic_server.push(anthropic_server.stream(["Hel", "lo"], message_stop=False))
    bodies = await collect(anthropic.stream(USER_HI))
    assert text_of(bodies) == "Hello"
    assert bodies[-1]["choices"][0]["finish_reason"] == "stop"


async def test_usage_goes_out_with_the_stop_reason(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """The usage chunk follows message_delta at once, so a stream missing message_stop still
    has it."""
    anthropic_server.push(anthropic_server.stream(["Hel", "lo"], message_stop=False))
    request = {**USER_HI, "stream_options": {"include_usage": True}}
    bodies = await collect(anthropic.stream(request))
    assert bodies[-2]["choices"][0]["finish_reason"] == "stop"
    assert bodies[-1]["usage"] == {"prompt_tokens": 12, "completion_tokens": 15, "total_tokens": 27}


async def test_stream_with_malformed_event_yields_an_unreadable_chunk(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """An event whose data is not JSON becomes a chunk whose body does not parse; the
    translation goes on after it."""
    anthropic_server.push(anthropic_server.stream(["Hel", "lo"], malformed_after=1))
    chunks = [chunk async for chunk in anthropic.stream(USER_HI)]
    skipped = [c for c in chunks if unreadable(c)]
    assert len(skipped) == 1 and skipped[0].raw.startswith(b'{"type":"content_block_delta"')
    assert text_of([c.body for c in chunks if c is not skipped[0]]) == "Hello"


async def test_trailing_assistant_message_is_sent_as_the_final_turn(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """A request ending in an assistant message goes upstream ending in that assistant turn,
    which Anthropic continues (prefill): only the rest of the answer comes back."""
    anthropic_server.text = "The quick brown fox"
    prefilled = {"messages": [*USER_HI["messages"], {"role": "assistant", "content": "The quick"}]}
    bodies = await collect(anthropic.stream(prefilled))
    sent = anthropic_server.requests[0].json["messages"][-1]
    assert sent == {"role": "assistant", "content": [{"type": "text", "text": "The quick"}]}
    assert text_of(bodies) == " brown fox"


async def test_invalid_request_is_refused_before_any_io(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """A request that cannot be translated raises BadRequest without calling the provider."""
    with pytest.raises(BadRequest):
        await anthropic.complete({**USER_HI, "n": 3})
    assert anthropic_server.requests == []


async def test_probe_lists_one_model(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """The probe is GET /v1/models?limit=1, which costs no tokens."""
    await anthropic.probe()
    received = anthropic_server.requests[0]
    assert (received.method, received.path, received.query) == ("GET", "/v1/models", {"limit": "1"})


async def test_embeddings_are_not_supported(anthropic: AnthropicAdapter) -> None:
    """Anthropic has no embeddings endpoint: BadRequest names the provider kind."""
    with pytest.raises(BadRequest, match=r"anthropic.* does not serve embeddings"):
        await anthropic.embeddings({"input": "x"})


def test_base_url_may_end_in_v1() -> None:
    """https://api.anthropic.com/v1 and https://api.anthropic.com address the same API."""
    assert AnthropicAdapter(model="m", base_url="https://api.anthropic.com/v1").base_url == (
        "https://api.anthropic.com"
    )


async def test_beta_option_sets_the_beta_header(
    anthropic_server: FakeAnthropic, transport: Transport
) -> None:
    """options.beta is sent as the anthropic-beta header."""
    adapter = AnthropicAdapter(
        model="m",
        api_key=API_KEY,
        base_url=anthropic_server.base_url,
        options={"beta": ["a-2025", "b-2025"]},
        transport=transport,
    )
    await adapter.complete(USER_HI)
    assert anthropic_server.requests[0].headers["anthropic-beta"] == "a-2025,b-2025"


async def test_image_parts_reach_the_provider_as_image_blocks(
    anthropic: AnthropicAdapter, anthropic_server: FakeAnthropic
) -> None:
    """A data: image and an http image arrive as base64 and url image blocks."""
    content = [
        {"type": "text", "text": "Compare these."},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.jpg"}},
    ]
    await anthropic.complete({"messages": [{"role": "user", "content": content}]})
    blocks = anthropic_server.requests[0].json["messages"][0]["content"]
    assert [b["type"] for b in blocks] == ["text", "image", "image"]
    assert [b["source"]["type"] for b in blocks[1:]] == ["base64", "url"]
