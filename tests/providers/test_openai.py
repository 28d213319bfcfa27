"""The OpenAI and Azure OpenAI adapters: a pass-through fast path over the wire format."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable

import pytest

from failover.errors import AuthFailed, ConfigError, ConnectionFailed, RateLimited, ServerError
from failover.providers import AzureOpenAIAdapter, OpenAIAdapter
from failover.providers.openai import ChatStream
from failover.transport import Transport
from failover.types import Chunk
from fakes import FakeOpenAI, Reply, Stream, sse

from .conftest import API_KEY
from .support import USER_HI, collect, text_of, unreadable

REQUEST = {
    "model": "whatever-the-client-said",
    "messages": [{"role": "user", "content": "Hi"}],
    "temperature": 0.3,
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "metadata": {"x": "y"},
}


async def test_complete_sends_the_request_unchanged_except_model(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """The upstream body is the caller's request with only `model` replaced."""
    await openai.complete(REQUEST)
    assert openai_server.requests[0].json == {**REQUEST, "model": "gpt-4o-mini"}


async def test_complete_returns_upstream_bytes_untouched(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """The completion holds the exact bytes the provider sent."""
    raw = json.dumps(FakeOpenAI.completion("exact"), indent=3).encode()
    openai_server.push(Reply(raw=raw))
    completion = await openai.complete(USER_HI)
    assert completion.raw == raw and completion.text == "exact"


async def test_complete_does_not_mutate_the_request(openai: OpenAIAdapter) -> None:
    """The caller's request dict is left exactly as it was."""
    request = copy.deepcopy({**REQUEST, "stream": True})
    await openai.complete(request)
    assert request == {**REQUEST, "stream": True}


async def test_complete_drops_a_stream_flag(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """complete() asks for a whole answer even when the request carried stream=true."""
    await openai.complete({**USER_HI, "stream": True, "stream_options": {"include_usage": True}})
    sent = openai_server.requests[0].json
    assert "stream" not in sent and "stream_options" not in sent


async def test_complete_sends_the_bearer_key(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """The API key travels as `Authorization: Bearer`."""
    await openai.complete(USER_HI)
    assert openai_server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


async def test_organization_and_project_headers(
    openai_server: FakeOpenAI, transport: Transport
) -> None:
    """options.organization and options.project become OpenAI's headers."""
    adapter = OpenAIAdapter(
        model="m",
        api_key=API_KEY,
        base_url=openai_server.base_url,
        options={"organization": "org-1", "project": "proj-1"},
        transport=transport,
    )
    await adapter.complete(USER_HI)
    headers = openai_server.requests[0].headers
    assert (headers["openai-organization"], headers["openai-project"]) == ("org-1", "proj-1")


async def test_non_json_success_body_is_a_server_error(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """A 200 whose body is an HTML page counts as a server failure."""
    openai_server.push(Reply(raw=b"<html>maintenance</html>", content_type="text/html"))
    with pytest.raises(ServerError):
        await openai.complete(USER_HI)


async def test_stream_yields_each_data_line_as_raw_bytes(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """Each chunk holds the bytes of one SSE data line, unparsed."""
    sent = [json.dumps(c).encode() for c in FakeOpenAI.chunks(["Hel", "lo"])]  # spaced JSON
    openai_server.push(Stream([*(sse(line) for line in sent), sse("[DONE]")]))
    chunks = [chunk async for chunk in openai.stream(USER_HI)]
    assert [c.raw for c in chunks] == sent


async def test_stream_sets_stream_and_adds_nothing_else(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """The streamed request is the caller's plus stream=true; no stream_options invented."""
    await collect(openai.stream(USER_HI))
    assert openai_server.requests[0].json == {**USER_HI, "model": "gpt-4o-mini", "stream": True}


async def test_stream_without_done_after_its_finish_is_whole(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """A stream that ends after its finish reason but without `data: [DONE]` ends normally."""
    openai_server.push(openai_server.stream(["a", "b"], done=False))
    bodies = await collect(openai.stream(USER_HI))
    assert text_of(bodies) == "ab"
    assert bodies[-1]["choices"][0]["finish_reason"] == "stop"


async def test_stream_without_done_keeps_the_usage_chunk(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """The usage chunk after the finish reason arrives even when [DONE] never does."""
    openai_server.push(openai_server.stream(["a"], done=False, usage=True))
    request = {**USER_HI, "stream_options": {"include_usage": True}}
    bodies = await collect(openai.stream(request))
    assert bodies[-1]["choices"] == [] and bodies[-1]["usage"]["completion_tokens"] == 1


async def test_stream_ending_before_its_finish_is_connection_failed(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """A stream that ends cleanly before its finish reason (and [DONE]) was cut short."""
    frames = openai_server.stream(["a", "b"], done=False).frames
    openai_server.push(Stream(frames[:-1]))
    with pytest.raises(ConnectionFailed, match="finish reason"):
        await collect(openai.stream(USER_HI))


async def test_stream_with_non_json_data_yields_an_unreadable_chunk(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """A data line that is not JSON is passed on as a chunk whose body does not parse (the
    router skips and counts it), and the stream goes on."""
    frames = openai_server.stream(["a"]).frames
    openai_server.push(Stream([frames[0], sse("not json at all"), *frames[1:]]))
    chunks = [chunk async for chunk in openai.stream(USER_HI)]
    assert chunks[1].raw == b"not json at all"
    assert unreadable(chunks[1])
    assert text_of([c.body for c in chunks[2:]]) == "a"


async def test_stream_error_event_raises_the_classified_error(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """An error object inside a 200 stream raises the matching ProviderError."""
    error = {"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}}
    first = FakeOpenAI.chunk({"role": "assistant", "content": ""})
    openai_server.push(Stream([sse(first), sse(error)]))
    with pytest.raises(RateLimited, match="Rate limit reached"):
        await collect(openai.stream(USER_HI))


async def test_stream_http_error_raises_before_any_chunk(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """A non-2xx answer to a stream request raises the mapped error."""
    openai_server.push(FakeOpenAI.error(401, "bad key", code="invalid_api_key"))
    with pytest.raises(AuthFailed):
        await collect(openai.stream(USER_HI))


async def test_embeddings_pass_through(openai: OpenAIAdapter, openai_server: FakeOpenAI) -> None:
    """Embeddings go to /embeddings with the deployment's model and come back untouched."""
    payload = await openai.embeddings({"input": ["a", "b"], "model": "x"})
    received = openai_server.requests[0]
    assert received.path == "/v1/embeddings" and received.json["model"] == "gpt-4o-mini"
    assert len(payload.body["data"]) == 2


async def test_probe_lists_models(openai: OpenAIAdapter, openai_server: FakeOpenAI) -> None:
    """The health probe is a GET of /models."""
    await openai.probe()
    received = openai_server.requests[0]
    assert (received.method, received.path) == ("GET", "/v1/models")


async def test_probe_with_a_bad_key_is_auth_failed(
    openai_server: FakeOpenAI, transport: Transport
) -> None:
    """A probe rejected with 401 raises AuthFailed."""
    adapter = OpenAIAdapter(
        model="m", api_key="sk-wrong-key", base_url=openai_server.base_url, transport=transport
    )
    with pytest.raises(AuthFailed):
        await adapter.probe()


async def test_azure_uses_the_deployment_url_and_api_key_header(
    azure: AzureOpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """Azure requests go to the deployment's URL with api-version, the key in `api-key`."""
    await azure.complete(USER_HI)
    received = openai_server.requests[0]
    assert received.path == "/openai/deployments/my-gpt4o/chat/completions"
    assert received.query == {"api-version": "2024-10-21"}
    assert received.headers["api-key"] == API_KEY and "authorization" not in received.headers


async def test_azure_streams(azure: AzureOpenAIAdapter, openai_server: FakeOpenAI) -> None:
    """Azure streams use the same deployment URL and SSE pass-through."""
    chunks = await collect(azure.stream(USER_HI))
    assert openai_server.requests[0].path.endswith("/my-gpt4o/chat/completions")
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


async def test_azure_embeddings_use_the_deployment_url(
    azure: AzureOpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """Azure embeddings go to the deployment's /embeddings."""
    await azure.embeddings({"input": "a"})
    assert openai_server.requests[0].path == "/openai/deployments/my-gpt4o/embeddings"


async def test_azure_probe_lists_models(
    azure: AzureOpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """The Azure probe is a GET of /openai/models?api-version=..."""
    await azure.probe()
    received = openai_server.requests[0]
    assert (received.method, received.path) == ("GET", "/openai/models")
    assert received.query == {"api-version": "2024-10-21"}


def test_azure_needs_a_base_url() -> None:
    """An Azure adapter without base_url is a configuration error."""
    with pytest.raises(ConfigError, match="base_url"):
        AzureOpenAIAdapter(model="dep", api_key="k")


def test_azure_accepts_a_base_url_ending_in_openai() -> None:
    """https://NAME.openai.azure.com/openai is the same resource as without /openai."""
    adapter = AzureOpenAIAdapter(model="dep", base_url="https://x.openai.azure.com/openai/")
    assert adapter.url("chat/completions").startswith("https://x.openai.azure.com/openai/deploy")


async def test_a_trailing_assistant_message_goes_upstream_as_it_is(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """A request ending in an assistant message reaches the provider unchanged."""
    messages = [*USER_HI["messages"], {"role": "assistant", "content": "The quick"}]
    await collect(openai.stream({"messages": messages}))
    assert openai_server.requests[0].json["messages"] == messages


# -- ChatStream.push: chunks handed on as the connection reads them ----------------------------


async def opened(adapter: OpenAIAdapter) -> tuple[ChatStream, Chunk]:
    """A stream opened by reading its first chunk (a stream pushes once it is open)."""
    stream = adapter.stream(USER_HI)
    assert isinstance(stream, ChatStream)
    return stream, await anext(stream)


def into(taken: list[Chunk]) -> Callable[[list[Chunk]], bool]:
    """A `take` that keeps every chunk handed on and asks for more."""

    def take(chunks: list[Chunk]) -> bool:
        taken.extend(chunks)
        return True

    return take


async def test_pushed_chunks_hold_the_upstream_bytes(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """Each pushed chunk holds the bytes of one SSE data line as the provider sent them."""
    sent = [json.dumps(c).encode() for c in FakeOpenAI.chunks(["Hel", "lo"])]  # spaced JSON
    gate = asyncio.Event()
    openai_server.push(Stream([*(sse(line) for line in sent), sse("[DONE]")], gates={1: gate}))
    stream, first = await opened(openai)
    taken: list[Chunk] = []
    pushing = stream.push(into(taken), asyncio.get_running_loop())
    assert pushing is not None
    gate.set()
    ended = await pushing.future
    await stream.aclose()
    assert ([first.raw, *(c.raw for c in taken)], ended) == (sent, False)


async def test_an_error_event_ends_a_push_with_the_providers_error(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """An error object read while pushing stops the push, and the next read raises the
    matching ProviderError, as it would reading a chunk at a time."""
    error = {"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}}
    first = FakeOpenAI.chunk({"role": "assistant", "content": ""})
    gate = asyncio.Event()
    openai_server.push(Stream([sse(first), sse(error)], gates={1: gate}))
    stream, _ = await opened(openai)
    pushing = stream.push(into([]), asyncio.get_running_loop())
    assert pushing is not None
    gate.set()
    assert await pushing.future is True
    with pytest.raises(RateLimited, match="Rate limit reached"):
        await anext(stream)
    await stream.aclose()


async def test_a_pushed_stream_with_its_finish_but_no_done_ends_normally(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """After a push that read the end of a stream whose finish reason arrived without [DONE],
    the next read is the stream's normal end."""
    gate = asyncio.Event()
    openai_server.push(openai_server.stream(["a", "b"], done=False, gates={1: gate}))
    stream, _ = await opened(openai)
    pushing = stream.push(into([]), asyncio.get_running_loop())
    assert pushing is not None
    gate.set()
    assert await pushing.future is False
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_a_pushed_stream_ending_before_its_finish_is_connection_failed(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """After a push that read the end of a stream with neither finish reason nor [DONE], the
    next read raises ConnectionFailed."""
    gate = asyncio.Event()
    frames = openai_server.stream(["a", "b"], done=False).frames
    openai_server.push(Stream(frames[:-1], gates={1: gate}))
    stream, _ = await opened(openai)
    pushing = stream.push(into([]), asyncio.get_running_loop())
    assert pushing is not None
    gate.set()
    assert await pushing.future is False
    with pytest.raises(ConnectionFailed, match="finish reason"):
        await anext(stream)


async def test_a_push_hands_on_chunks_read_earlier_first(
    openai: OpenAIAdapter, openai_server: FakeOpenAI
) -> None:
    """Chunks read with the first one are the first a push hands on, at once, and those read
    later follow in order."""
    frames = openai_server.stream(["a", "b"]).frames
    gate = asyncio.Event()
    openai_server.push(Stream([frames[0] + frames[1], *frames[2:]], gates={1: gate}))
    stream, _ = await opened(openai)
    taken: list[Chunk] = []
    pushing = stream.push(into(taken), asyncio.get_running_loop())
    assert pushing is not None
    assert text_of([c.body for c in taken]) == "a"
    gate.set()
    assert await pushing.future is False
    assert text_of([c.body for c in taken]) == "ab"
    await stream.aclose()


async def test_a_pushed_stream_that_read_its_end_gives_its_connection_back(
    openai: OpenAIAdapter, openai_server: FakeOpenAI, transport: Transport
) -> None:
    """A stream whose push read its [DONE] has ended, and closing it hands its connection to
    the next request."""
    gate = asyncio.Event()
    openai_server.push(openai_server.stream(["a", "b"], gates={1: gate}), openai_server.reply())
    stream, _ = await opened(openai)
    pushing = stream.push(into([]), asyncio.get_running_loop())
    assert pushing is not None
    assert not stream.ended
    gate.set()
    assert await pushing.future is False
    assert stream.ended
    await stream.aclose()
    await transport.client("openai").settle()  # its last bytes may trail its [DONE]
    await openai.complete(USER_HI)
    assert len(openai_server.peers) == 1
