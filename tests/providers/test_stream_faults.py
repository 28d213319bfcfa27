"""Faults every adapter must survive the same way: slow, cut, malformed and hung streams, and
the quirks of real streams (no terminator after the finish, one garbled event, error events).

Each test runs against OpenAI, Anthropic, Gemini and Bedrock (the quirks against Azure too).
Timing is driven by events the fake server waits on; `asyncio.wait_for(..., BOUND)` only turns
a would-be hang into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, cast

import pytest

from failover import Kind, RetryPolicy, Route, Router
from failover.errors import ConnectionFailed, ProviderError
from failover.transport import Transport
from failover.types import Chunk
from fakes import Delay, Drop, FakeAnthropic, FakeBedrock, FakeGemini, FakeOpenAI, Hang, Stream

from .conftest import Pair
from .support import USER_HI, collect, text_of, unreadable

BOUND = 5.0  # seconds; a correct adapter needs milliseconds
KINDS = ["openai", "anthropic", "gemini", "bedrock"]
QUIRK_KINDS = ["openai", "azure", "anthropic", "gemini", "bedrock"]


def _text_stream(server: Any, pieces: list[str], **kwargs: Any) -> Stream:
    stream: Stream = server.stream(pieces, **kwargs)
    return stream


def _gate_index(server: Any) -> int:
    """The frame index of the second text piece in each provider's stream."""
    if isinstance(server, FakeAnthropic):
        return 4  # message_start, block_start, ping, delta 1, [delta 2]
    if isinstance(server, FakeBedrock):
        return 2  # messageStart, delta 1, [delta 2]
    return 2 if isinstance(server, FakeOpenAI) else 1  # OpenAI leads with a role chunk


@pytest.mark.parametrize("pair", KINDS, indirect=True)
async def test_first_chunk_arrives_before_the_second_is_sent(pair: Pair) -> None:
    """The first text chunk reaches the caller while the provider still holds the second."""
    gate = asyncio.Event()
    gate_at = _gate_index(pair.server)
    pair.server.push(_text_stream(pair.server, ["first", "second"], gates={gate_at: gate}))
    stream = cast(AsyncGenerator[Chunk, None], pair.adapter.stream(USER_HI))
    async with contextlib.aclosing(stream):
        seen: list[dict[str, Any]] = []
        while "first" not in text_of(seen):
            seen.append((await asyncio.wait_for(anext(stream), BOUND)).body)
        assert not gate.is_set() and pair.server.frames_sent == gate_at
        gate.set()
        rest = await asyncio.wait_for(collect(stream), BOUND)
    assert text_of(seen + rest) == "firstsecond"


@pytest.mark.parametrize("pair", KINDS, indirect=True)
async def test_mid_stream_disconnect_is_connection_failed(pair: Pair) -> None:
    """A connection lost after the first chunks raises ConnectionFailed, never ends quietly."""
    pair.server.push(_text_stream(pair.server, ["a", "b", "c"], cut_after=3))
    with pytest.raises(ConnectionFailed):
        await asyncio.wait_for(collect(pair.adapter.stream(USER_HI)), BOUND)


@pytest.mark.parametrize("pair", KINDS, indirect=True)
async def test_truncated_event_is_connection_failed(pair: Pair) -> None:
    """A stream whose body ends in the middle of an event raises ConnectionFailed."""
    frames = _text_stream(pair.server, ["a", "b"]).frames
    pair.server.push(Stream([*frames[:2], frames[2][: len(frames[2]) // 2]]))
    with pytest.raises(ConnectionFailed):
        await asyncio.wait_for(collect(pair.adapter.stream(USER_HI)), BOUND)


@pytest.mark.parametrize("pair", KINDS, indirect=True)
async def test_garbage_instead_of_events_is_connection_failed(pair: Pair) -> None:
    """An HTML page served as an event stream raises ConnectionFailed."""
    pair.server.push(Stream([b"<html><body>502 Bad Gateway</body></html>\n"]))
    with pytest.raises(ConnectionFailed):
        await asyncio.wait_for(collect(pair.adapter.stream(USER_HI)), BOUND)


@pytest.mark.parametrize("pair", KINDS, indirect=True)
async def test_dropped_connection_is_connection_failed(pair: Pair) -> None:
    """A provider that hangs up without answering raises ConnectionFailed."""
    pair.server.push(Drop())
    with pytest.raises(ConnectionFailed):
        await asyncio.wait_for(pair.adapter.complete(USER_HI), BOUND)


@pytest.mark.parametrize("pair", KINDS, indirect=True)
async def test_slow_first_byte_is_waited_for(pair: Pair) -> None:
    """The adapter imposes no deadline of its own: a late answer is still an answer."""
    gate = asyncio.Event()
    pair.server.push(Delay(gate, _text_stream(pair.server, ["late"])))
    task = asyncio.create_task(collect(pair.adapter.stream(USER_HI)))
    await asyncio.wait_for(pair.server.wait_for_requests(1), BOUND)
    assert not task.done()
    gate.set()
    assert text_of(await asyncio.wait_for(task, BOUND)) == "late"


@pytest.mark.parametrize("pair", KINDS, indirect=True)
async def test_cancelling_a_hung_request_hangs_up(pair: Pair) -> None:
    """When the router cancels an attempt on a hung provider, the connection is closed."""
    pair.server.push(Hang())
    task = asyncio.create_task(pair.adapter.complete(USER_HI))
    await asyncio.wait_for(pair.server.wait_for_requests(1), BOUND)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.wait_for(pair.server.client_gone.wait(), BOUND)


@pytest.mark.parametrize("pair", KINDS, indirect=True)
async def test_cancelling_a_stalled_stream_hangs_up(pair: Pair) -> None:
    """Cancelling a stream stalled between chunks closes its connection."""
    gate = asyncio.Event()
    gate_at = _gate_index(pair.server)
    pair.server.push(_text_stream(pair.server, ["a", "b"], gates={gate_at: gate}))

    async def consume() -> None:
        async for _ in pair.adapter.stream(USER_HI):
            pass

    task = asyncio.create_task(consume())
    await asyncio.wait_for(pair.server.wait_for_requests(1), BOUND)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.wait_for(pair.server.client_gone.wait(), BOUND)
    assert not gate.is_set()


@pytest.mark.parametrize("pair", KINDS, indirect=True)
async def test_finished_streams_reuse_the_connection(pair: Pair, transport: Transport) -> None:
    """Two streams in a row travel over one keep-alive connection."""
    for _ in range(2):
        await collect(pair.adapter.stream(USER_HI))
        await transport.client(pair.adapter.name.partition("/")[0]).settle()
    assert len(pair.server.peers) == 1


# -- quirks: what real streams do that must not cost the answer --------------------------------


def _unterminated(server: Any, pieces: list[str]) -> Stream:
    """A whole answer without the end-of-stream event that follows its finish reason."""
    if isinstance(server, FakeOpenAI):
        return server.stream(pieces, done=False)  # no `data: [DONE]`
    if isinstance(server, FakeAnthropic):
        return server.stream(pieces, message_stop=False)
    if isinstance(server, FakeBedrock):
        return server.stream(pieces, metadata=False)
    return _text_stream(server, pieces)  # Gemini has none: its body ends after the finish


def _error_event(server: Any) -> tuple[bytes, Kind]:
    """An error event as the provider sends it inside a 200 stream, and its kind."""
    if isinstance(server, FakeOpenAI):
        message = "The server had an error while processing your request."
        return FakeOpenAI.error_event(message), Kind.SERVER_ERROR
    if isinstance(server, FakeAnthropic):
        return FakeAnthropic.error_event("overloaded_error", "Overloaded"), Kind.OVERLOADED
    if isinstance(server, FakeBedrock):
        return FakeBedrock.stream_throttled(), Kind.RATE_LIMITED
    return FakeGemini.error_event(503, "UNAVAILABLE", "The model is overloaded."), Kind.OVERLOADED


@pytest.mark.parametrize("pair", QUIRK_KINDS, indirect=True)
async def test_a_stream_missing_its_terminator_after_the_finish_ends_normally(pair: Pair) -> None:
    """An answer whose finish reason arrived is whole without [DONE] / message_stop /
    metadata: the adapter ends normally, finish reason included."""
    pair.server.push(_unterminated(pair.server, ["Hel", "lo"]))
    bodies = await asyncio.wait_for(collect(pair.adapter.stream(USER_HI)), BOUND)
    assert text_of(bodies) == "Hello"
    assert [c["finish_reason"] for b in bodies for c in b["choices"]][-1] == "stop"


@pytest.mark.parametrize("pair", QUIRK_KINDS, indirect=True)
async def test_a_malformed_event_is_yielded_as_an_unreadable_chunk(pair: Pair) -> None:
    """One garbled event does not end the stream: it comes out as a chunk whose body does not
    parse, and every event after it is read."""
    pair.server.push(_text_stream(pair.server, ["Hel", "lo"], malformed_after=1))
    chunks = await asyncio.wait_for(_chunks(pair.adapter.stream(USER_HI)), BOUND)
    readable = [c.body for c in chunks if not unreadable(c)]
    assert len(chunks) - len(readable) == 1
    assert text_of(readable) == "Hello"


@pytest.mark.parametrize("pair", QUIRK_KINDS, indirect=True)
async def test_the_router_skips_a_malformed_event(pair: Pair) -> None:
    """Behind the router the garbled event is skipped: the caller gets the whole answer."""
    pair.server.push(_text_stream(pair.server, ["Hel", "lo"], malformed_after=1))
    router = Router({"chat": Route([pair.adapter], retry=RetryPolicy(attempts=1))})
    bodies = [c.body async for c in router.stream("chat", {**USER_HI, "stream": True})]
    assert text_of(bodies) == "Hello"
    assert [r for r in pair.server.requests if r.method == "POST"][1:] == []


@pytest.mark.parametrize("pair", QUIRK_KINDS, indirect=True)
async def test_a_stream_ending_before_its_finish_is_connection_failed(pair: Pair) -> None:
    """A body that ends cleanly after some text but before the finish reason was cut."""
    frames = _text_stream(pair.server, ["Hel", "lo"]).frames
    pair.server.push(Stream(frames[: pair.server.after(2)]))
    with pytest.raises(ConnectionFailed):
        await asyncio.wait_for(collect(pair.adapter.stream(USER_HI)), BOUND)


@pytest.mark.parametrize("pair", QUIRK_KINDS, indirect=True)
async def test_an_error_event_raises_its_kind(pair: Pair) -> None:
    """An error event after content raises the error it stands for, classified."""
    frames = _text_stream(pair.server, ["Hel", "lo"]).frames
    error, kind = _error_event(pair.server)
    pair.server.push(Stream([*frames[: pair.server.after(1)], error]))
    with pytest.raises(ProviderError) as info:
        await asyncio.wait_for(collect(pair.adapter.stream(USER_HI)), BOUND)
    assert info.value.kind is kind


async def _chunks(stream: AsyncIterator[Chunk]) -> list[Chunk]:
    return [chunk async for chunk in stream]
