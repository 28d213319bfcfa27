"""ASGI plumbing the endpoints share: one `Call` per request (the few headers the gateway reads,
parsed in one pass), a bounded body reader, and senders for JSON and Server-Sent Events.

Kept deliberately small: the hot path is a dict lookup, one header scan, one `receive()`, one
`orjson.loads` and two `send()`s, with the upstream's bytes written as they came.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from .controls import HEADERS as CONTROL_HEADERS
from .errors import ClientError, Failure, ascii_header

if TYPE_CHECKING:
    from .auth import Client

__all__ = [
    "DISCONNECT",
    "JSON_TYPE",
    "SSE_HEADERS",
    "WIRE",
    "ASGIApp",
    "Call",
    "DirectBody",
    "Hangup",
    "Headers",
    "Receive",
    "Scope",
    "Send",
    "Wire",
    "ascii_header",
    "new_request_id",
    "too_large",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

# the scope key of a `Hangup`, where the server calls the app back when a request's
# connection is lost (`GatewayHttpProtocol`); elsewhere only `receive()` tells
DISCONNECT = "failover.disconnect"
# the scope key of a `Wire`, where the server offers to write a response body's parts
# straight to the connection (`GatewayHttpProtocol`); elsewhere every part goes by `send`
WIRE = "failover.wire"


class DirectBody(Protocol):
    """A started response's body, written straight to its connection (chunked, as the server
    would), without an ASGI `send` per part: for a stream relayed as its upstream is read."""

    def writable(self) -> bool:
        """Whether a part may be written now: the response is open, its client connected and
        not behind (else it goes by `send`, which waits for the client)."""
        ...

    def write(self, body: bytes) -> None: ...


class Wire(Protocol):
    """A connection's offer of `DirectBody`s."""

    def body(self, scope: Scope, send: Send) -> DirectBody | None:
        """The body of the response to the request of `scope`, if it is the one the
        connection is answering now and `send` is the server's own (a middleware that wraps
        `send` sees every part of the body, so none goes around it)."""
        ...


JSON_TYPE = (b"content-type", b"application/json")
SSE_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),  # tell nginx-style proxies not to buffer the stream
)

# request ids: a random per-process prefix and a counter; unique, and far cheaper than uuid4
_ID_PREFIX = "req_" + os.urandom(6).hex()
_ids = itertools.count(1)
_SANE_ID = re.compile(rb"[\x21-\x7e]{1,128}\Z")  # a client's x-request-id worth echoing


class Hangup:
    """One connection's loss, told to the callback a request registered. It holds no reference
    to the connection or to a scope, so a request leaves no reference cycle behind."""

    __slots__ = ("callback", "lost")

    def __init__(self) -> None:
        self.lost = False
        self.callback: Callable[[], None] | None = None

    def watch(self, callback: Callable[[], None] | None) -> None:
        """Call `callback` once when the connection is lost (at once if it is already), or,
        with None, no longer."""
        if callback is not None and self.lost:
            callback()
            return
        self.callback = callback

    def fire(self) -> None:
        """The connection is lost."""
        self.lost = True
        callback, self.callback = self.callback, None
        if callback is not None:
            callback()


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ids):x}"


class Call:
    """One HTTP request in flight: the ASGI triple plus what the gateway reads from headers."""

    __slots__ = (
        "client",
        "content_length",
        "controls",
        "credential",
        "receive",
        "request_id",
        "rid_bytes",
        "scope",
        "send",
        "started",
    )

    def __init__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.scope = scope
        self.receive = receive
        self.send = send
        self.started = False  # the response's headers went out
        self.client: Client | None = None  # whose key it presented (set by the guard)
        self.content_length = -1
        credential = bearer = rid = controls = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                bearer = value
            elif name == b"x-api-key":
                credential = value
            elif name == b"content-length":
                self.content_length = int(value) if value.isdigit() else -2
            elif name == b"x-request-id":
                rid = value
            elif name in CONTROL_HEADERS:
                if controls is None:
                    controls = {}
                controls[name] = value
        # the x-failover-* headers sent, as sent (`controls.read_controls` reads them)
        self.controls: dict[bytes, bytes] | None = controls
        if bearer is not None and credential is None:
            scheme, _, token = bearer.partition(b" ")
            credential = token.strip() if scheme.lower() == b"bearer" else None
        self.credential: bytes | None = credential
        if rid and _SANE_ID.match(rid):
            self.rid_bytes = rid
            self.request_id = rid.decode("ascii")
        else:
            self.request_id = new_request_id()
            self.rid_bytes = self.request_id.encode("ascii")

    async def body(self, limit: int) -> bytes:
        """The whole request body; `ClientError` 413 past `limit` bytes."""
        if self.content_length > limit:
            raise too_large(limit)
        message = await self.receive()
        body: bytes = message.get("body", b"")
        if len(body) > limit:
            raise too_large(limit)
        if not message.get("more_body", False):
            return body
        parts, size = [body], len(body)
        while message.get("more_body", False):
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise ClientError(Failure(400, "the client went away before sending its body"))
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            parts.append(chunk)
        return b"".join(parts)

    async def json(self, limit: int) -> Any:
        """The body parsed as JSON; `ClientError` 400 when it is not."""
        raw = await self.body(limit)
        if not raw:
            raise ClientError(Failure(400, "the request body is empty: send a JSON object"))
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ClientError(Failure(400, f"the request body is not valid JSON: {exc}")) from None

    def headers(self, *extra: tuple[bytes, bytes]) -> Headers:
        """Response headers every answer carries, plus `extra`."""
        return [(b"x-request-id", self.rid_bytes), *extra]

    async def respond(self, status: int, body: bytes, headers: Headers) -> None:
        """Send a whole response."""
        headers.append((b"content-length", b"%d" % len(body)))
        self.started = True
        await self.send({"type": "http.response.start", "status": status, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})

    async def respond_json(self, status: int, data: Any, *extra: tuple[bytes, bytes]) -> None:
        await self.respond(status, orjson.dumps(data), self.headers(JSON_TYPE, *extra))

    async def start_stream(self, headers: Headers) -> None:
        """Send the headers of an event stream."""
        headers.extend(SSE_HEADERS)
        self.started = True
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})

    async def write(self, data: bytes) -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def end(self, data: bytes = b"") -> None:
        await self.send({"type": "http.response.body", "body": data, "more_body": False})

    def direct_body(self) -> DirectBody | None:
        """The response body written straight to the connection, where the server offers it
        (call after the headers went out)."""
        wire: Wire | None = self.scope.get(WIRE)
        return None if wire is None else wire.body(self.scope, self.send)

    @property
    def hangup(self) -> Hangup | None:
        """Where the server tells this request's connection loss, if it does (else only
        `receive()` tells)."""
        hangup: Hangup | None = self.scope.get(DISCONNECT)
        return hangup

    @property
    def client_host(self) -> str | None:
        client = self.scope.get("client")
        return str(client[0]) if client else None


def too_large(limit: int) -> ClientError:
    return ClientError(
        Failure(
            413,
            f"the request body is larger than the gateway's limit of {limit} bytes",
            code="request_too_large",
            headers=((b"connection", b"close"),),
        )
    )
