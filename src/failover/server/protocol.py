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

    uvicorn.Config(app, http=GatewayHttpProtocol, loop="uvloop")
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .http import DISCONNECT, Hangup

__all__ = ["ARRIVED", "CoalescingTransport", "GatewayHttpProtocol"]

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


ARRIVED = "failover.arrived"  # the scope key: loop time when the request's last byte was read


class GatewayHttpProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` over a `CoalescingTransport`, noting when each request has arrived
    whole (`scope[ARRIVED]`): how long it then waits before the gateway looks at it is the
    process's own queueing, which admission control sheds on (a slow upload is not). Each
    request's `scope[DISCONNECT]` registers a callback for when the connection is lost."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.hangup = Hangup(self.loop)
        super().connection_made(CoalescingTransport(transport, self.loop))

    def on_message_complete(self) -> None:
        scope = self.scope
        scope[ARRIVED] = self.loop.time()  # type: ignore[literal-required]
        scope[DISCONNECT] = self.hangup  # type: ignore[literal-required]
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.hangup.fire()
