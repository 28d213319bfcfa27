"""uvicorn's httptools protocol, with each response's header block and first body part sent
in one write, each request's arrival noted for admission control, and a lost connection told
to the stream being relayed on it.

uvicorn writes the status line and headers the moment the app sends `http.response.start`,
and the body when it sends `http.response.body`: two system calls and, with TCP_NODELAY, two
packets for every answer, even a small JSON one sent in the same instant. `CoalescingTransport`
holds a header block back until the next write (the body, a few microseconds later in the same
event-loop step) and sends both together; if nothing follows within the step (a stream whose
first chunk is not ready yet), the headers go out on the next loop iteration on their own.
Order is never changed and nothing else is delayed. On the benchmark this is worth several
percent of CPU per request, and a stream's first chunk arrives in the same packet as its
headers.

A stream must stop its upstream the moment its client hangs up. An ASGI app learns that from
`receive()`, which takes a task per stream waiting on it for the stream's whole length; here
the connection calls the relay back instead (`scope[DISCONNECT]`, a `Hangup`).

A relayed stream's chunks are written as the upstream's connection reads them, in its
callback, where an ASGI `send` (a coroutine) cannot be awaited: the connection offers its
response body for direct writes (`scope[WIRE]`, a `ConnectionWire`), framed as uvicorn frames
it, and only while uvicorn itself would write at once (otherwise the relay uses `send`).

    uvicorn.Config(app, http=GatewayHttpProtocol, loop="uvloop")
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from .http import DISCONNECT, WIRE, Hangup, Scope, Send

__all__ = ["ARRIVED", "CoalescingTransport", "ConnectionWire", "CycleBody", "GatewayHttpProtocol"]

_STATUS_LINE = b"HTTP/1.1 "
_END_OF_HEADERS = b"\r\n\r\n"


class CoalescingTransport(asyncio.Transport):
    """Wraps a transport: a header block waits for the write after it (at most one loop step)."""

    __slots__ = ("_held", "_loop", "_scheduled", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._scheduled = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + bytes(data))
            return
        if (
            isinstance(data, bytes)
            and data.startswith(_STATUS_LINE)
            and data.endswith(_END_OF_HEADERS)
        ):
            self._held = data
            if not self._scheduled:
                self._scheduled = True
                self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        """Send a held header block now."""
        self._scheduled = False
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()


class CycleBody:
    """One response's body written straight to the connection, chunked as uvicorn's `send`
    writes it, while uvicorn would write it at once (the response started and not complete,
    chunked, the client connected and not behind)."""

    __slots__ = ("_cycle", "_transport")

    def __init__(self, cycle: RequestResponseCycle, transport: asyncio.Transport) -> None:
        self._cycle = cycle
        self._transport = transport

    def writable(self) -> bool:
        cycle = self._cycle
        return (
            cycle.response_started
            and not cycle.response_complete
            and cycle.chunked_encoding is True
            and not cycle.disconnected
            and not cycle.flow.write_paused
            and not self._transport.is_closing()
        )

    def write(self, body: bytes) -> None:
        if body:
            self._transport.write(b"%x\r\n%b\r\n" % (len(body), body))


class ConnectionWire:
    """A connection's `Wire`: the body of the response it is answering now.

    It refers to its connection weakly: each request's scope holds it, and the connection
    holds the scope, so a strong reference would leave every closed connection to the
    cyclic garbage collector.
    """

    __slots__ = ("_protocol",)

    def __init__(self, protocol: GatewayHttpProtocol) -> None:
        self._protocol = weakref.ref(protocol)

    def body(self, scope: Scope, send: Send) -> CycleBody | None:
        protocol = self._protocol()
        if protocol is None:
            return None
        cycle: RequestResponseCycle | None = getattr(protocol, "cycle", None)
        # a pipelined request's cycle may have replaced the one answering: then none; and a
        # `send` wrapped by a middleware (compression, say) must see every part
        if cycle is None or cycle.scope is not scope:
            return None
        owner: object = getattr(send, "__self__", None)
        return CycleBody(cycle, protocol.transport) if owner is cycle else None


ARRIVED = "failover.arrived"  # the scope key: loop time when the request's last byte was read


class GatewayHttpProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` over a `CoalescingTransport`, noting when each request has arrived
    whole (`scope[ARRIVED]`): how long it then waits before the gateway looks at it is the
    process's own queueing, which admission control sheds on (a slow upload is not). Each
    request's `scope[DISCONNECT]` registers a callback for when the connection is lost, and
    its `scope[WIRE]` writes its response body directly."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.hangup = Hangup()
        self.wire = ConnectionWire(self)
        super().connection_made(CoalescingTransport(transport, self.loop))

    def on_message_complete(self) -> None:
        scope = self.scope
        scope[ARRIVED] = self.loop.time()  # type: ignore[literal-required]
        scope[DISCONNECT] = self.hangup  # type: ignore[literal-required]
        scope[WIRE] = self.wire  # type: ignore[literal-required]
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.hangup.fire()
