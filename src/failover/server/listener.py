"""A listening socket whose waiting connections are all accepted each time it is ready.

uvloop's servers accept one connection per event-loop iteration (libuv does so since 1.45,
to be fair to other events). A gateway relaying a thousand streams runs iterations of tens
of milliseconds, so it then accepts a few dozen connections a second: new clients wait in
the listen backlog for seconds before their first byte, and a burst beyond the backlog is
refused. `Listener` accepts every connection waiting (up to `backlog`) each time the socket
is readable, as asyncio's own event loop does, and hands each to the loop as an accepted
socket. It offers what uvicorn asks of a server: `sockets`, `close` and `wait_closed`.

    listener = Listener(config.bind_socket(), protocol_factory, backlog=2048)
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable

__all__ = ["Listener"]

log = logging.getLogger("failover.server")

RETRY_AFTER = 1.0  # seconds without accepting after the process ran out of file descriptors
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class Listener:
    """Accepts all waiting connections of one listening socket at each readiness event."""

    def __init__(
        self,
        sock: socket.socket,
        protocol_factory: Callable[[], asyncio.Protocol],
        *,
        backlog: int,
    ) -> None:
        self._sock = sock
        self._factory = protocol_factory
        self._backlog = backlog
        self._loop = asyncio.get_running_loop()
        self._handing: set[asyncio.Task[None]] = set()  # accepted, being wrapped in a transport
        self._serving = False
        sock.setblocking(False)
        sock.listen(backlog)
        self._resume()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        """The listening socket (uvicorn reads its port from it)."""
        return (self._sock,)

    def is_serving(self) -> bool:
        """Whether connections are being accepted."""
        return self._serving

    def close(self) -> None:
        """Stop accepting and close the listening socket; open connections stay open."""
        if self._sock.fileno() < 0:
            return
        self._pause()
        self._sock.close()

    async def wait_closed(self) -> None:
        """Wait until connections accepted before `close` have their transports."""
        if self._handing:
            await asyncio.gather(*self._handing, return_exceptions=True)

    def _accept(self) -> None:
        for _ in range(self._backlog):
            try:
                conn, _ = self._sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while it waited: nothing to serve
            except OSError as exc:
                if exc.errno not in _RESOURCE_ERRORS:
                    raise
                # out of descriptors: stop for a moment rather than spin on a ready socket
                log.warning("cannot accept connections (%s); retrying in %gs", exc, RETRY_AFTER)
                self._pause()
                self._loop.call_later(RETRY_AFTER, self._resume)
                return
            conn.setblocking(False)
            task = self._loop.create_task(self._serve(conn))
            self._handing.add(task)
            task.add_done_callback(self._handing.discard)

    async def _serve(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn)
        except OSError:
            conn.close()  # reset before it could be served

    def _pause(self) -> None:
        if self._serving:
            self._serving = False
            self._loop.remove_reader(self._sock.fileno())

    def _resume(self) -> None:
        if not self._serving and self._sock.fileno() >= 0:
            self._serving = True
            self._loop.add_reader(self._sock.fileno(), self._accept)

    def __repr__(self) -> str:
        state = "serving" if self._serving else "paused" if self._sock.fileno() >= 0 else "closed"
        return f"<Listener {self._sock.getsockname() if state != 'closed' else ''} {state}>"
