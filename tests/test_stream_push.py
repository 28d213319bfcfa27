"""A committed stream relayed as its source pushes its chunks (`StreamReply.write_directly`):
pushed chunks go to the caller's direct write alone, and finish reasons, a caller that falls
behind, silences and failures go back to the ordinary loop, which handles them as before."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable

import pytest

from failover import FakeClock, Kind, RetryPolicy, Route, Router, StreamInterrupted, Timeouts
from failover.errors import ConnectionFailed
from failover.openai_shapes import ChunkMaker
from failover.reply import Heartbeat, StreamReply
from failover.resilience.streams import Prefill, Resume, StreamPolicy
from failover.testing import ScriptedDeployment, ok
from failover.types import BaseDeployment, Chunk, Completion, Request

HI = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
MAKER = ChunkMaker(id="chatcmpl-pushed", model="pushed", created=0)


def word(text: str) -> Chunk:
    return MAKER.chunk({"content": text})


FINISH = MAKER.chunk({}, finish_reason="stop")

Take = Callable[[list[Chunk]], bool]


class Push:
    """One push in progress: `take` is handed each read until it answers False."""

    def __init__(self, take: Take, loop: asyncio.AbstractEventLoop) -> None:
        self.take = take
        self.future: asyncio.Future[bool] = loop.create_future()

    def stop(self) -> None:
        if not self.future.done():
            self.future.cancel()


class Upstream:
    """One upstream stream whose reads the test makes: handed to a push in progress, else kept
    for `__anext__` (as `ChatStream` does, it does not push while chunks read earlier wait)."""

    def __init__(self, *first: Chunk) -> None:
        self.buffered: deque[Chunk | BaseException | None] = deque(first)
        self.arrived = asyncio.Event()
        self.pushing: Push | None = None
        self.pushed = asyncio.Event()  # a push began
        self.asked = asyncio.Event()  # the caller asked for more: a push, or a read waiting
        self.pushes = 0
        self.closed = False

    def __aiter__(self) -> Upstream:
        return self

    async def __anext__(self) -> Chunk:
        while not self.buffered:
            self.asked.set()
            self.arrived.clear()
            await self.arrived.wait()
        item = self.buffered.popleft()
        if item is None:
            raise StopAsyncIteration
        if isinstance(item, BaseException):
            raise item
        return item

    async def aclose(self) -> None:
        self.closed = True

    def push(self, take: Take, loop: asyncio.AbstractEventLoop) -> Push | None:
        if self.buffered:
            return None
        self.pushing = Push(take, loop)
        self.pushes += 1
        self.pushed.set()
        self.asked.set()
        return self.pushing

    def _push_on(self) -> Push | None:
        pushing = self.pushing
        return pushing if pushing is not None and not pushing.future.done() else None

    def read(self, *chunks: Chunk) -> None:
        """One read of the connection: handed on in this call while a push is on."""
        pushing = self._push_on()
        if pushing is None:
            self.buffered.extend(chunks)
            self.arrived.set()
            return
        try:
            more = pushing.take(list(chunks))
        except Exception as exc:
            pushing.future.set_exception(exc)
            return
        if not more:
            pushing.future.set_result(True)

    def end(self) -> None:
        """The stream's end is read."""
        pushing = self._push_on()
        if pushing is not None:
            pushing.future.set_result(False)
        self.buffered.append(None)
        self.arrived.set()

    def fail(self, exc: BaseException) -> None:
        """The connection fails."""
        pushing = self._push_on()
        if pushing is not None:
            pushing.future.set_exception(exc)
        else:
            self.buffered.append(exc)
            self.arrived.set()


class Pushable(BaseDeployment):
    """A deployment whose stream is `upstream`."""

    def __init__(self, name: str, upstream: Upstream) -> None:
        self.name = self.model = name
        self.upstream = upstream

    async def complete(self, request: Request) -> Completion:
        raise NotImplementedError

    def stream(self, request: Request) -> Upstream:
        return self.upstream


def router(clock: FakeClock, *deployments: BaseDeployment, resume: Resume = Resume.OFF) -> Router:
    return Router(
        {"chat": Route(list(deployments), retry=RetryPolicy(attempts=1))},
        clock=clock,
        timeouts=Timeouts(stall=5.0, learn=None),
        streams=StreamPolicy(resume=resume),
    )


def texts(chunks: list[Chunk]) -> list[str]:
    return [c.body["choices"][0]["delta"].get("content") or "" for c in chunks if c.body["choices"]]


class Caller:
    """Reads a reply's `events()` in a task and, when `direct`, writes directly into
    `written`; the direct write takes at most `room` chunks when that is set. `received`:
    every chunk in the order the caller got it, either way."""

    def __init__(self, reply: StreamReply, *, room: int | None = None, direct: bool = True) -> None:
        self.written: list[Chunk] = []
        self.yielded: list[Chunk] = []
        self.received: list[Chunk] = []
        self.room = room
        if direct:
            reply.write_directly(self.write)
        self.task = asyncio.ensure_future(self._read(reply))

    def write(self, chunks: list[Chunk]) -> int:
        taken = chunks if self.room is None else chunks[: self.room]
        self.written.extend(taken)
        self.received.extend(taken)
        return len(taken)

    async def _read(self, reply: StreamReply) -> None:
        async with contextlib.aclosing(reply.events()) as events:
            async for item in events:
                if not isinstance(item, Heartbeat):
                    self.yielded.append(item)
                    self.received.append(item)


async def started(clock: FakeClock, upstream: Upstream, **caller: int) -> tuple[Caller, Router]:
    """The stream opened on `upstream` and its caller reading, with a push begun."""
    r = router(clock, Pushable("pushed", upstream))
    reader = Caller(await r.open_stream("chat", HI), **caller)
    await upstream.pushed.wait()
    return reader, r


async def test_pushed_chunks_go_to_the_direct_write_alone(clock: FakeClock) -> None:
    """Chunks pushed while nothing else is pending reach the direct write and are not also
    yielded by `events()`."""
    upstream = Upstream(word("The"))
    caller, _ = await started(clock, upstream)
    upstream.read(word(" quick"))
    upstream.read(word(" brown"), word(" fox"))
    upstream.read(FINISH)
    upstream.end()
    await caller.task
    assert texts(caller.written) == [" quick", " brown", " fox"]
    assert texts(caller.yielded) == ["The", ""]


async def test_the_read_with_the_finish_reason_is_yielded(clock: FakeClock) -> None:
    """The chunks of the read that carries the finish reason are yielded by `events()`, not
    written directly, so the stream's end leaves with them."""
    upstream = Upstream(word("The"))
    caller, _ = await started(clock, upstream)
    upstream.read(word(" quick"))
    upstream.read(word(" fox"), FINISH)
    upstream.end()
    await caller.task
    assert texts(caller.written) == [" quick"]
    assert caller.yielded[-1] is FINISH
    assert texts(caller.yielded) == ["The", " fox", ""]


async def test_a_caller_that_falls_behind_gets_the_rest_from_events(clock: FakeClock) -> None:
    """A direct write that takes fewer chunks than given leaves the rest, in order, and every
    later chunk to `events()`: the source is not pushed again."""
    upstream = Upstream(word("The"))
    caller, _ = await started(clock, upstream, room=1)
    upstream.asked.clear()
    upstream.read(word(" quick"), word(" brown"), word(" fox"))
    await upstream.asked.wait()  # the caller had what was read and asks for more
    upstream.read(word(" jumps"))
    upstream.read(FINISH)
    upstream.end()
    await caller.task
    assert texts(caller.written) == [" quick"]
    assert texts(caller.yielded) == ["The", " brown", " fox", " jumps", ""]
    assert upstream.pushes == 1


async def test_reads_while_pushing_keep_a_stream_within_its_silence_limit(
    clock: FakeClock,
) -> None:
    """Reads 4 s apart under a 5 s silence limit never cut a pushed stream."""
    upstream = Upstream(word("The"))
    caller, _ = await started(clock, upstream)
    for piece in (" quick", " brown", " fox"):
        await clock.advance(4.0)
        upstream.read(word(piece))
    await clock.advance(4.0)
    upstream.read(FINISH)
    upstream.end()
    await caller.task
    assert texts(caller.written) == [" quick", " brown", " fox"]


async def test_a_silence_while_pushing_is_a_stall(clock: FakeClock) -> None:
    """A pushed stream silent past its deployment's limit since its last read breaks as a
    stall; without recovery the caller gets StreamInterrupted."""
    upstream = Upstream(word("The"))
    caller, r = await started(clock, upstream)
    await clock.advance(3.0)
    upstream.read(word(" quick"))
    await clock.advance(4.9)
    assert not caller.task.done()
    await clock.advance(0.2)
    with pytest.raises(StreamInterrupted, match="stalled: no chunk for 5s") as caught:
        await caller.task
    assert caught.value.kind is Kind.TIMEOUT
    assert texts(caller.written) == [" quick"]
    assert upstream.closed
    assert r.breaker("pushed").counts() == (1, 1)


@pytest.mark.parametrize(
    "failure",
    [ConnectionFailed("the provider closed the connection"), ConnectionResetError("reset")],
    ids=["provider-error", "other-exception"],
)
@pytest.mark.parametrize("pushed", [True, False], ids=["pushed", "read"])
async def test_a_pushed_source_that_fails_is_recovered_like_one_read(
    clock: FakeClock, pushed: bool, failure: Exception
) -> None:
    """A connection failure told by a push is recovered on the backup as it is when told by
    a read: the same answer, the same trace."""
    upstream = Upstream(word("The"))
    backup = ScriptedDeployment(
        "backup",
        ok(chunks=("The", " quick", " brown fox.")),
        clock=clock,
        prefill=Prefill.ASSISTANT,
    )
    r = router(clock, Pushable("pushed", upstream), backup, resume=Resume.CONTINUE)
    reply = await r.open_stream("chat", HI)
    caller = Caller(reply, direct=pushed)  # without a direct write, chunks are read one by one
    if pushed:
        await upstream.pushed.wait()
    upstream.read(word(" quick"))
    upstream.fail(failure)
    await caller.task
    assert "".join(texts(caller.received)) == "The quick brown fox."
    assert [(a.deployment, a.kind) for a in reply.trace.attempts] == [
        ("pushed", Kind.CONNECTION),
        ("backup", Kind.OK),
    ]
    assert backup.requests[0]["messages"][-1] == {"role": "assistant", "content": "The quick"}
