"""The relay sends chunks that follow one another at once in one write, and every other
chunk the moment it arrives."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from failover import FakeClock, Route, Router, Timeouts
from failover.providers import OpenAIAdapter
from failover.server.http import Headers
from failover.server.streaming import OpenAIEncoder, relay
from failover.testing import ScriptedDeployment, ok
from failover.transport import Transport
from failover.types import Chunk
from fakes import FakeOpenAI, Stream, sse

HI = {"messages": [{"role": "user", "content": "hi"}], "stream": True}


class Recorder:
    """The parts of a gateway `Call` a relay uses; it records each write."""

    request_id = "req-test"

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.ended = False

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()  # the client never hangs up
        raise AssertionError

    hangup = None  # a server that tells a hang-up through `receive()` alone
    direct: Body | None = None  # nor offers direct writes, unless given a body

    def direct_body(self) -> Body | None:
        return self.direct

    async def start_stream(self, headers: Headers) -> None:
        return None

    async def write(self, data: bytes) -> None:
        self.writes.append(data)

    async def end(self, data: bytes = b"") -> None:
        self.writes.append(data)
        self.ended = True


class Body:
    """A response body written directly: each write is recorded with the call's writes."""

    def __init__(self, call: Recorder) -> None:
        self.call = call
        self.writes: list[bytes] = []

    def writable(self) -> bool:
        return not self.call.ended

    def write(self, body: bytes) -> None:
        if body:
            self.writes.append(body)
            self.call.writes.append(body)


async def relayed(clock: FakeClock, **step: Any) -> list[bytes]:
    deployment = ScriptedDeployment("d", ok(**step), clock=clock)
    router = Router({"chat": Route([deployment])}, clock=clock, timeouts=Timeouts(learn=None))
    call = Recorder()
    async with clock.autojump():
        reply = await router.open_stream("chat", HI)
        await relay(call, reply, OpenAIEncoder(), [])  # type: ignore[arg-type]
    assert call.ended
    return call.writes


async def test_the_role_and_first_content_leave_in_one_write(clock: FakeClock) -> None:
    """A role-only chunk held back until content arrived goes out with that content."""
    first, *_ = await relayed(clock, chunks=("Hello", " world"), chunk_gap=1.0, role_chunk=True)
    assert first.count(b"data: ") == 2
    assert b'"role":"assistant"' in first and b'"content":"Hello"' in first


async def test_the_last_chunk_leaves_with_the_terminator(clock: FakeClock) -> None:
    """The finish reason and `[DONE]` end the stream in one write."""
    *_, last = await relayed(clock, chunks=("Hello", " world"), chunk_gap=1.0)
    assert last.endswith(b"data: [DONE]\n\n")
    assert b'"finish_reason":"stop"' in last and last.count(b"data: ") == 2


async def test_chunks_apart_in_time_each_leave_at_once(clock: FakeClock) -> None:
    """Content arriving a second apart is written chunk by chunk, never held back."""
    writes = await relayed(clock, chunks=("a", " b", " c", " d"), chunk_gap=1.0)
    assert [w.count(b"data: ") for w in writes] == [1, 1, 1, 1, 2]


class Unencodable(OpenAIEncoder):
    """OpenAI's stream, except that a chunk saying "BAD" cannot be encoded; the first chunk it
    encodes opens `gate`."""

    def __init__(self, gate: asyncio.Event) -> None:
        self.gate = gate

    def chunk(self, chunk: Chunk) -> bytes:
        self.gate.set()
        if b'"BAD"' in chunk.raw:
            raise ValueError("cannot encode this chunk")
        return super().chunk(chunk)


async def test_a_chunk_the_encoder_cannot_write_directly_ends_the_stream_unblamed(
    clock: FakeClock,
) -> None:
    """A chunk the encoder fails on while chunks are written directly ends the stream with an
    error event after the chunks before it, and is not counted against the deployment."""
    pushing, never = asyncio.Event(), asyncio.Event()
    async with FakeOpenAI() as upstream, Transport() as transport:
        # the rest is sent once the relay has begun, so it is read while chunks are pushed;
        # the finish never comes
        frames = upstream.stream(["a", "b", "BAD", "c"]).frames
        upstream.push(Stream(frames, gates={2: pushing, 5: never}))
        adapter = OpenAIAdapter(
            model="gpt-4o", api_key="k", base_url=upstream.base_url, transport=transport
        )
        router = Router({"chat": Route([adapter])}, clock=clock, timeouts=Timeouts(learn=None))
        call = Recorder()
        body = call.direct = Body(call)
        reply = await router.open_stream("chat", HI)
        await relay(call, reply, Unencodable(pushing), [])  # type: ignore[arg-type]
    assert [b'"content":"b"' in write for write in body.writes] == [True]
    sent = b"".join(call.writes)
    assert b'"content":"a"' in sent and b'"content":"c"' not in sent
    error = json.loads(sent.rsplit(b"data: ", 1)[1])["error"]
    assert call.ended and error["code"] == "stream_interrupted"
    assert error["message"].endswith("could not be relayed: cannot encode this chunk")
    assert router.breaker(adapter.name).counts() == (0, 0)


class GatedRecorder(Recorder):
    """A `Recorder` that opens `gate` once the relay has written its first chunk."""

    def __init__(self, gate: asyncio.Event) -> None:
        super().__init__()
        self.gate = gate

    async def write(self, data: bytes) -> None:
        await super().write(data)
        self.gate.set()


async def relayed_with_an_error_after_the_finish(*, direct: bool) -> bytes:
    """A stream whose last read carries its last content, its finish reason and then an
    error event, relayed with or without direct writes."""
    gate = asyncio.Event()
    error = {"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded"}}
    async with FakeOpenAI() as upstream, Transport() as transport:
        role, first, last, finish = upstream.stream(["a", "b"], done=False).frames
        upstream.push(Stream([role, first, last + finish + sse(error)], gates={2: gate}))
        adapter = OpenAIAdapter(
            model="gpt-4o", api_key="k", base_url=upstream.base_url, transport=transport
        )
        router = Router({"chat": Route([adapter])}, timeouts=Timeouts(learn=None))
        call = GatedRecorder(gate)
        if direct:
            call.direct = Body(call)
        reply = await router.open_stream("chat", HI)
        await relay(call, reply, OpenAIEncoder(), [])  # type: ignore[arg-type]
    return b"".join(call.writes)


async def test_an_error_event_read_after_the_finish_reason_leaves_the_answer_whole() -> None:
    """Content, a finish reason and an error event in one read: relayed directly, the answer is
    as whole as when it is read a chunk at a time (the error after the finish is never read)."""
    pushed = await relayed_with_an_error_after_the_finish(direct=True)
    pulled = await relayed_with_an_error_after_the_finish(direct=False)
    assert pushed == pulled
    assert pushed.endswith(b"data: [DONE]\n\n")
    assert b'"error"' not in pushed
