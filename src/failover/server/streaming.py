"""Relaying a committed stream to the client as Server-Sent Events.

By the time a `StreamReply` exists the router has the first content in hand (every failure
before it failed over invisibly). A break after it is recovered by the router where the route
allows; meanwhile the client gets keep-alives (an SSE comment, or Anthropic's `ping` event),
and a spliced stream ends with a comment saying so (`: failover recovered ...`) before its
terminator. A break that cannot be recovered ends the stream with an error event in its own
format naming the original cause. A client that hangs up stops the upstream stream at once
(not counted against the deployment).

Chunks that follow one another at once (the role and the first content, the last chunk and
the terminator) leave in one write, with the headers or with the end: one system call and
one packet where there were two.

In between, where the server offers the response body for direct writes (`Call.direct_body`),
each upstream read's chunks are written in the upstream connection's callback as it reads
them (`StreamReply.write_directly`): no task is woken and no `send` awaited per chunk, which
is most of a long stream's cost. A client that falls behind, and everything else, goes the
usual way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Protocol

from ..clock import running_loop
from ..errors import StreamInterrupted
from ..reply import Heartbeat, StreamReply, Write
from ..trace import Trace
from ..types import Chunk, NativeChunk
from .anthropic_format import PING, StreamTranslator
from .errors import Failure, anthropic_event, ascii_header, failure_from, openai_event
from .http import Call, DirectBody, Headers, Receive

__all__ = [
    "AnthropicEncoder",
    "Encoder",
    "OpenAIEncoder",
    "relay",
    "routing_headers",
]

log = logging.getLogger("failover.server")


class Encoder(Protocol):
    """Turns chunks into bytes of one API's event stream."""

    def chunk(self, chunk: Chunk) -> bytes: ...

    def heartbeat(self) -> bytes: ...

    def done(self) -> bytes: ...

    def error(self, failure: Failure) -> bytes: ...


KEEP_ALIVE = b": keep-alive\n\n"


class OpenAIEncoder:
    """OpenAI's stream: the upstream chunk bytes as they came, `data: [DONE]` at the end."""

    __slots__ = ()

    def chunk(self, chunk: Chunk) -> bytes:
        return b"data: " + chunk.raw + b"\n\n"

    def heartbeat(self) -> bytes:
        return KEEP_ALIVE

    def done(self) -> bytes:
        return b"data: [DONE]\n\n"

    def error(self, failure: Failure) -> bytes:
        return openai_event(failure)


class AnthropicEncoder:
    """Anthropic's stream, translated chunk by chunk."""

    __slots__ = ("_translator",)

    def __init__(self, model: str) -> None:
        self._translator = StreamTranslator(model)

    def chunk(self, chunk: Chunk) -> bytes:
        if isinstance(chunk, NativeChunk):  # the deployment's own Anthropic events
            self._translator.adopt(chunk.native)
            return chunk.native
        return self._translator.feed(chunk.body)

    def heartbeat(self) -> bytes:
        return PING

    def done(self) -> bytes:
        return self._translator.finish()

    def error(self, failure: Failure) -> bytes:
        return anthropic_event(failure)


@functools.lru_cache(maxsize=4096)
def name_header(name: str) -> bytes:
    return ascii_header(name, 256)


def routing_headers(route: str, deployment: str, trace: Trace) -> tuple[tuple[bytes, bytes], ...]:
    """x-failover-route, -deployment and -attempts (calls made, skips not counted)."""
    calls = 0
    for attempt in trace.attempts:
        if attempt.skipped is None:
            calls += 1
    return (
        (b"x-failover-route", name_header(route)),
        (b"x-failover-deployment", name_header(deployment)),
        (b"x-failover-attempts", b"%d" % calls),
    )


async def relay(call: Call, reply: StreamReply, encoder: Encoder, headers: Headers) -> None:
    """Send `reply` to the client as an event stream, ending it cleanly whatever happens."""
    headers.extend(routing_headers(reply.route, reply.deployment, reply.trace))
    try:
        await call.start_stream(headers)
    except BaseException:  # the client is gone (or the task cancelled) before the headers
        await reply.aclose()
        raise
    watch = _DisconnectWatch(call)
    body = call.direct_body()
    if body is not None:
        reply.write_directly(_writer(body, encoder))
    pending = b""  # chunks that follow one another at once leave in one write
    try:
        async for item in reply.events():
            data = encoder.heartbeat() if isinstance(item, Heartbeat) else encoder.chunk(item)
            if reply.ready:  # the role and first content, the last chunk and the end
                pending += data
            elif data or pending:
                await call.write(pending + data)
                pending = b""
        watch.finished = True
        await call.end(pending + _spliced(reply) + encoder.done())
    except StreamInterrupted as exc:
        watch.finished = True
        await call.end(pending + encoder.error(failure_from(exc)))
    except Exception as exc:  # a chunk the encoder could not read: end the stream, loudly
        log.warning("stream %s via %s broke: %r", call.request_id, reply.deployment, exc)
        watch.finished = True
        await reply.aclose()
        message = f"the stream from {reply.deployment} could not be relayed: {exc}"
        await call.end(pending + encoder.error(Failure(502, message, code="stream_interrupted")))
    except asyncio.CancelledError:
        await reply.aclose()
        if not watch.fired:
            raise
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()  # the client left: nothing to answer, nobody to tell
    finally:
        watch.stop()


def _writer(body: DirectBody, encoder: Encoder) -> Write:
    """Writes chunks straight to the response body: as many as it can encode, in one write."""
    encode = encoder.chunk

    def write(chunks: list[Chunk]) -> int:
        if not body.writable():
            return 0
        parts = []
        for chunk in chunks:
            try:
                parts.append(encode(chunk))
            except Exception:  # left to the relay, which ends the stream on it
                break
        try:
            body.write(b"".join(parts))
        except Exception:  # the connection closing under it: left to the relay, unblamed
            return 0
        return len(parts)

    return write


def _spliced(reply: StreamReply) -> bytes:
    """A comment before the end of a stream that another deployment finished, for callers
    who read the raw stream (SDKs skip comments)."""
    if not reply.recoveries:
        return b""
    return (
        f": failover recovered this stream {reply.recoveries} time(s); "
        f"began on {reply.first_deployment}, finished on {reply.deployment}\n\n"
    ).encode("ascii", "replace")


class _DisconnectWatch:
    """Cancels the current task when the client disconnects before the stream is over.

    Told by the server's connection where it offers that (`Call.hangup`: nothing runs
    meanwhile), else by a task waiting on `receive()` for `http.disconnect`.
    """

    __slots__ = ("_hangup", "_task", "_watcher", "finished", "fired")

    def __init__(self, call: Call) -> None:
        self.finished = False
        self.fired = False
        self._hangup = hangup = call.hangup
        task = asyncio.current_task(running_loop())
        assert task is not None
        self._task = task
        self._watcher: asyncio.Future[None] | None = None
        if hangup is not None:
            hangup.watch(self._fire)
        else:
            self._watcher = asyncio.ensure_future(self._wait(call.receive))

    def _fire(self) -> None:
        if not self.finished:
            self.fired = True
            self._task.cancel()

    async def _wait(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
        self._fire()

    def stop(self) -> None:
        self.finished = True
        watcher = self._watcher
        if watcher is None:
            if self._hangup is not None:
                self._hangup.watch(None)
        elif not watcher.done():
            watcher.cancel()
        else:
            with contextlib.suppress(BaseException):
                watcher.result()
