"""aiohttp's connection pool, reusing the connection released last.

Since 3.11 aiohttp reuses the keep-alive connection that has been idle longest (FIFO). After a
burst has opened hundreds of connections to a provider, a FIFO pool keeps all of them in
turn: none idles long enough to expire, and each request goes out on the coldest one. Measured
with the overload benchmark's whole answers (a burst of 1,280 connections opened ~800 upstream
ones), the gateway then served 4-9% less per CPU-second at its best concurrency than before
the burst, for as long as traffic lasted, and 1-9% less during the overload itself. Reusing
the connection released last (as urllib3 and Go's net/http do) keeps the few that are needed
warm and lets the rest expire after the pool's keep-alive timeout.
"""

from __future__ import annotations

from typing import Any

import aiohttp

__all__ = ["WarmFirstConnector"]


class WarmFirstConnector(aiohttp.TCPConnector):
    """A `TCPConnector` whose next request takes the connection released last."""

    def _release(self, key: Any, protocol: Any, *, should_close: bool = False) -> None:
        super()._release(key, protocol, should_close=should_close)
        # aiohttp appends a connection it keeps to the right of its deque and takes the next
        # one from the left: move this one to the left
        conns = self._conns.get(key)
        if conns and conns[-1][0] is protocol:
            conns.rotate(1)
