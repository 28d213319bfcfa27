"""A stream relayed end to end as its upstream connection reads it: most of its chunks are
written straight to the client's connection, without an ASGI `send` each (except where a
middleware wraps `send`: it sees every part), and the stream still reaches a client that
falls behind, or pipelines its requests, whole and in order."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from failover.server import Gateway
from failover.server.http import Receive, Scope, Send
from failover.server.protocol import GatewayHttpProtocol

from .harness import Stack

HI = [{"role": "user", "content": "Tell me a story."}]

MakeStack = Callable[..., Stack]


class Sends:
    """The body messages of chat streams sent through uvicorn's own `send` (`bodies`); `sent`
    is set at the first, `behind` at one sent while the client's connection is paused for
    writing (the client does not read)."""

    def __init__(self) -> None:
        self.bodies = 0
        self.sent = asyncio.Event()
        self.behind = asyncio.Event()


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> Sends:
    """Counts what goes through uvicorn's `send`, which stays the cycle's own bound method:
    the gateway still writes directly."""
    seen = Sends()
    send = RequestResponseCycle.send

    async def counted(cycle: RequestResponseCycle, message: Any) -> None:
        if message["type"] == "http.response.body" and cycle.scope["path"].endswith(
            "/chat/completions"
        ):
            seen.bodies += 1
            seen.sent.set()
            if cycle.flow.write_paused:
                seen.behind.set()
        await send(cycle, message)

    monkeypatch.setattr(RequestResponseCycle, "send", counted)
    return seen


class Kept:
    """A middleware in front of the gateway that wraps `send` and keeps every response body
    part it is given (`sent`: set at the first)."""

    def __init__(self, app: Gateway) -> None:
        self.app = app
        self.parts: list[bytes] = []
        self.sent = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def keep(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                self.parts.append(message.get("body", b""))
                self.sent.set()
            await send(message)

        await self.app(scope, receive, keep if scope["type"] == "http" else send)


def request() -> bytes:
    """A stream request to the one-deployment route, as raw HTTP/1.1."""
    body = json.dumps({"model": "solo", "messages": HI, "stream": True}).encode()
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
    )
    return head + body


async def connect(
    port: int, *, receive_buffer: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A client connection to the gateway, with a fixed small receive buffer if given."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return await asyncio.open_connection(sock=sock)


async def read_response(reader: asyncio.StreamReader) -> bytes:
    """One chunked 200 response's body, read off the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 ")
    assert b"\r\ntransfer-encoding: chunked\r\n" in head.lower()
    body = bytearray()
    while size := int((await reader.readline()).strip(), 16):
        body += await reader.readexactly(size)
        assert await reader.readexactly(2) == b"\r\n"
    assert await reader.readexactly(2) == b"\r\n"  # the last chunk, no trailers
    return bytes(body)


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    await writer.wait_closed()


async def stream_once(stack: Stack) -> bytes:
    """The body of one chat stream through the gateway."""
    reader, writer = await connect(stack.port)
    writer.write(request())
    try:
        return await read_response(reader)
    finally:
        await close(writer)


def test_a_long_stream_leaves_in_two_sends(stack: Stack, sends: Sends) -> None:
    """A 200-chunk stream reaches the client whole and in order with two ASGI body messages:
    the first content, and the end; every chunk in between is written directly."""
    # the rest waits for the first content to leave, so that it is read while the relay pumps
    upstream = stack.primary.stream([f" word{i}" for i in range(200)], gates={2: sends.sent})
    stack.primary.push(upstream)
    assert stack.run(stream_once(stack)) == b"".join(upstream.frames)
    assert sends.bodies == 2


def test_a_middleware_that_wraps_send_sees_every_part_of_a_stream(make_stack: MakeStack) -> None:
    """Behind a middleware that wraps `send`, no part of a stream's body is written around it:
    it passes on all of it, and the client gets that."""
    kept: list[Kept] = []

    def wrap(gateway: Gateway) -> Kept:
        kept.append(Kept(gateway))
        return kept[0]

    stack = make_stack(wrap=wrap)
    # as above: the rest is read once the first content has left, while the relay pumps
    upstream = stack.primary.stream([f" word{i}" for i in range(200)], gates={2: kept[0].sent})
    stack.primary.push(upstream)
    body = stack.run(stream_once(stack))
    assert b"".join(kept[0].parts) == body == b"".join(upstream.frames)


def test_a_client_that_stops_reading_gets_every_byte_once_it_reads_again(
    stack: Stack, sends: Sends
) -> None:
    """A client that reads nothing until the gateway is behind it (8 MiB of 64 KiB chunks)
    then gets the whole stream, in order, ending with [DONE]."""
    pieces = [f"{i:04d}" + "x" * (64 * 1024 - 4) for i in range(128)]
    upstream = stack.primary.stream(pieces)
    stack.primary.push(upstream)

    async def ask() -> bytes:
        reader, writer = await connect(stack.port, receive_buffer=64 * 1024)
        writer.write(request())
        try:
            await sends.behind.wait()  # the client's buffers are full: the gateway waits on it
            return await read_response(reader)
        finally:
            await close(writer)

    body = stack.run(ask(), timeout=60)
    assert body.endswith(b"data: [DONE]\n\n")
    assert body == b"".join(upstream.frames)


def test_pipelined_streams_are_each_answered_whole_and_in_order(stack: Stack) -> None:
    """Two stream requests written at once on one connection get their own streams, whole,
    one after the other."""
    first = stack.primary.stream([f" first{i}" for i in range(100)])
    second = stack.primary.stream([f" second{i}" for i in range(100)])
    stack.primary.push(first, second)

    async def ask() -> list[bytes]:
        reader, writer = await connect(stack.port)
        writer.write(request() + request())
        try:
            return [await read_response(reader), await read_response(reader)]
        finally:
            await close(writer)

    assert stack.run(ask()) == [b"".join(first.frames), b"".join(second.frames)]


def test_a_request_pipelined_behind_a_stream_being_written_directly(
    stack: Stack, sends: Sends, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request read while the stream before it on the connection is being written directly
    does not take that stream's writes: both arrive whole and in order, each in two ASGI body
    messages (the rest of each written directly)."""
    read = asyncio.Event()  # the gateway has read the pipelined request
    requests = 0
    complete = GatewayHttpProtocol.on_message_complete

    def counted(protocol: GatewayHttpProtocol) -> None:
        nonlocal requests
        complete(protocol)
        requests += 1
        if requests == 2:
            read.set()

    monkeypatch.setattr(GatewayHttpProtocol, "on_message_complete", counted)
    # the first stream's middle waits until the second request has been read
    first = stack.primary.stream([f" first{i}" for i in range(100)], gates={50: read})
    second = stack.primary.stream([f" second{i}" for i in range(100)])
    stack.primary.push(first, second)

    async def ask() -> list[bytes]:
        reader, writer = await connect(stack.port)
        writer.write(request())
        await sends.sent.wait()  # the first stream has started
        writer.write(request())
        try:
            return [await read_response(reader), await read_response(reader)]
        finally:
            await close(writer)

    assert stack.run(ask()) == [b"".join(first.frames), b"".join(second.frames)]
    assert sends.bodies == 4
