"""A scriptable fake provider: a real aiohttp server on 127.0.0.1 (random port) that answers
each request with the next scripted behaviour — or the provider's normal answer — and records
what it received.

    async with FakeOpenAI() as server:
        server.push(server.error(429, "slow down", headers={"retry-after": "2"}))
        server.push(server.stream(["Hel", "lo"], gates={1: gate}))   # waits before chunk 1
        ... point an adapter at server.base_url ...
        server.requests[0].json                                          # what arrived

Behaviours: `Reply` (a JSON or raw body), `Stream` (SSE frames, optionally gated or cut),
`Hang` (never answers), `Drop` (closes the socket without a response), `Delay` (a slow
first byte: waits for an event, then behaves like another behaviour).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self

from aiohttp import web
from multidict import CIMultiDict

__all__ = [
    "Behaviour",
    "Delay",
    "Drop",
    "FakeServer",
    "Hang",
    "Received",
    "Reply",
    "Stream",
    "sse",
]


def sse(data: Any, *, event: str | None = None, crlf: bool = False) -> bytes:
    """One SSE frame: an optional `event:` line, a `data:` line (JSON unless bytes/str)."""
    if isinstance(data, bytes):
        payload = data
    elif isinstance(data, str):
        payload = data.encode()
    else:
        payload = json.dumps(data, separators=(",", ":")).encode()
    end = b"\r\n" if crlf else b"\n"
    head = f"event: {event}".encode() + end if event else b""
    return head + b"data: " + payload + end + end


@dataclass
class Received:
    """One request as the fake server saw it."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes
    raw_path: str = ""  # path and query exactly as sent, percent-encoding kept
    peer: Any = None  # the client's end of the connection it came on

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Behaviour(Protocol):
    """How the server answers one request."""

    async def respond(self, request: web.Request, server: FakeServer) -> web.StreamResponse: ...


@dataclass
class Reply:
    """Answer with `body` as JSON (or `raw` bytes as they are) and `status`."""

    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    content_type: str = "application/json"
    indent: int | None = None

    async def respond(self, request: web.Request, server: FakeServer) -> web.StreamResponse:
        data = self.raw if self.raw is not None else json.dumps(self.body, indent=self.indent)
        headers = {"content-type": self.content_type, **self.headers}
        body = data.encode() if isinstance(data, str) else data
        return web.Response(body=body, status=self.status, headers=headers)


@dataclass
class Stream:
    """Answer with SSE `frames`: waits for `gates[i]` before frame i, drops after `cut_after`
    frames; with `stall_at`, falls silent before that frame (after the last one, when it is
    `len(frames)`) for `stall_for` seconds, then drops."""

    frames: list[bytes]
    gates: dict[int, asyncio.Event] = field(default_factory=dict)
    cut_after: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/event-stream; charset=utf-8"
    stall_at: int | None = None
    stall_for: float = 30.0

    async def respond(self, request: web.Request, server: FakeServer) -> web.StreamResponse:
        headers = {"content-type": self.content_type, "cache-control": "no-cache", **self.headers}
        resp = web.StreamResponse(status=200, headers=headers)
        await resp.prepare(request)
        end = len(self.frames)
        if self.cut_after is not None:
            end = min(end, self.cut_after)
        if self.stall_at is not None:
            end = min(end, self.stall_at)
        for i, frame in enumerate(self.frames[:end]):
            if (gate := self.gates.get(i)) is not None:
                await server.wait(gate)
            await resp.write(frame)
            server.frames_sent += 1
        if self.stall_at is not None and end == self.stall_at:
            await server.pause(self.stall_for)  # silent: no frame and no end, then gone
            _hang_up(request)
            return resp
        if self.cut_after is not None:
            _hang_up(request)  # no terminating chunk: the client sees a payload error
            return resp
        await resp.write_eof()
        return resp


@dataclass
class Hang:
    """Accept the request and never answer, until the client hangs up or the server closes."""

    async def respond(self, request: web.Request, server: FakeServer) -> web.StreamResponse:
        await server.wait(asyncio.Event())
        _hang_up(request)
        return web.Response(status=503)


@dataclass
class Drop:
    """Close the connection without sending a response."""

    async def respond(self, request: web.Request, server: FakeServer) -> web.StreamResponse:
        _hang_up(request)
        return web.Response(status=503)


@dataclass
class Delay:
    """Send nothing until `gate` is set (a slow first byte), then answer like `then`."""

    gate: asyncio.Event
    then: Behaviour

    async def respond(self, request: web.Request, server: FakeServer) -> web.StreamResponse:
        await server.wait(self.gate)
        return await self.then.respond(request, server)


class _Closing(Exception):
    """The server is shutting down while a request waits."""


def _hang_up(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.close()


class FakeServer:
    """Base of the fake providers: scripting, recording, start/close. Subclasses answer.

    A request whose last message is the assistant's is answered as a model that supports
    prefill answers it (`prefill = "continue"`: the text after that prefix), or refused with
    the provider's real 400 (`prefill = "refuse"`).
    """

    lead: ClassVar[int] = 0  # frames of a normal stream before the one with its first piece
    malformed: ClassVar[bytes] = b'data: {"broken\n\n'  # one event that does not parse

    def __init__(self) -> None:
        self.text = ""
        self.by_words = False
        self.prefill = "continue"
        self.requests: list[Received] = []
        self.frames_sent = 0
        self.disconnects = 0  # requests whose client went away before the answer was done
        self.client_gone = asyncio.Event()
        self.peers: set[Any] = set()  # distinct client connections seen
        self._script: list[tuple[str | None, Behaviour]] = []
        self._arrived = asyncio.Condition()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """What to configure as the provider's base_url."""
        return self.url

    def push(self, *behaviours: Behaviour, path: str | None = None) -> Self:
        """Answer the next requests (whose path contains `path`, if given) with `behaviours`."""
        self._script.extend((path, b) for b in behaviours)
        return self

    def answer(self, received: Received) -> Behaviour:
        """The provider's normal answer to a request nothing was scripted for."""
        return Reply({"error": "not found"}, status=404)

    # -- the normal answer's text ------------------------------------------------------------

    def split(self, text: str) -> list[str]:
        """The pieces a normal streamed answer sends: word by word with `by_words`, else in
        two halves."""
        if self.by_words:
            return re.findall(r"\s*\S+(?:\s+$)?", text) or [text]
        return [text[:5], text[5:]]

    def continued(self, prefix: str | None) -> str:
        """The text answering a request whose last message is the assistant's `prefix` (None:
        there is none): like a model, the text after what was prefilled."""
        if prefix is None or not self.text.startswith(prefix):
            return self.text
        return self.text[len(prefix) :]

    # -- streams with faults -----------------------------------------------------------------

    def shaped(
        self,
        frames: list[bytes],
        *,
        malformed_after: int | None = None,
        stall_after: int | None = None,
        stall_for: float = 30.0,
        gates: dict[int, asyncio.Event] | None = None,
        cut_after: int | None = None,
        **options: Any,
    ) -> Stream:
        """A `Stream` of a whole answer's `frames` (piece i in frame `lead + i`), with faults
        placed by pieces sent: an unreadable event after `malformed_after` pieces, a silence of
        `stall_for` seconds then a drop after `stall_after`. `gates` and `cut_after` count
        frames of the final list."""
        stall_at = None if stall_after is None else self.lead + stall_after
        if malformed_after is not None:
            at = self.lead + malformed_after
            frames = [*frames[:at], self.malformed, *frames[at:]]
            if stall_at is not None and stall_at >= at:
                stall_at += 1
        return Stream(
            frames,
            gates=gates or {},
            cut_after=cut_after,
            stall_at=stall_at,
            stall_for=stall_for,
            **options,
        )

    def after(self, pieces: int) -> int:
        """The index of the frame that carries piece `pieces` (for `cut_after` and `gates`)."""
        return self.lead + pieces

    async def wait(self, gate: asyncio.Event) -> None:
        """Wait for `gate`; when the server closes first, give up on the request (hang up)."""
        closing = asyncio.ensure_future(self._closing.wait())
        opened = asyncio.ensure_future(gate.wait())
        try:
            await asyncio.wait({closing, opened}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            opened.cancel()
        if not gate.is_set():
            raise _Closing

    async def pause(self, seconds: float) -> None:
        """Stay silent for `seconds`, less if the server closes first (a client that hangs
        up cancels the request's handler, and so the pause)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    async def wait_for_requests(self, count: int = 1) -> Received:
        """The `count`-th request, once it has arrived."""
        async with self._arrived:
            await self._arrived.wait_for(lambda: len(self.requests) >= count)
        return self.requests[count - 1]

    async def start(self) -> Self:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a client that hangs up cancels its handler, which we record
        self._runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def close(self) -> None:
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        received = Received(
            request.method,
            request.path,
            dict(request.query),
            CIMultiDict(request.headers),
            await request.read(),
            raw_path=request.raw_path,
            peer=request.transport and request.transport.get_extra_info("peername"),
        )
        if received.peer is not None:
            self.peers.add(received.peer)
        async with self._arrived:
            self.requests.append(received)
            self._arrived.notify_all()
        try:
            return await self._next(received).respond(request, self)
        except _Closing:
            _hang_up(request)
            return web.Response(status=503)
        except (asyncio.CancelledError, ConnectionError):
            self.disconnects += 1
            self.client_gone.set()
            raise

    def _next(self, received: Received) -> Behaviour:
        for i, (path, behaviour) in enumerate(self._script):
            if path is None or path in received.path:
                del self._script[i]
                return behaviour
        return self.answer(received)
