"""The coalescing transport: a response's headers and first body part leave in one write."""

from __future__ import annotations

import asyncio
from typing import Any

from failover.server.protocol import CoalescingTransport

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recorder(asyncio.Transport):
    """A transport that records writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


async def test_headers_and_body_leave_together() -> None:
    """Headers then body in the same loop step: one write."""
    raw = Recorder()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    transport.write(HEAD)
    assert raw.writes == []
    transport.write(b"ok")
    assert raw.writes == [HEAD + b"ok"]
    await asyncio.sleep(0)
    assert raw.writes == [HEAD + b"ok"]


async def test_lone_headers_go_out_on_the_next_step() -> None:
    """Headers with nothing after them (a stream still waiting) are not held longer."""
    raw = Recorder()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    transport.write(HEAD)
    await asyncio.sleep(0)
    assert raw.writes == [HEAD]
    transport.write(b"data")
    assert raw.writes == [HEAD, b"data"]


async def test_close_flushes_first_and_other_writes_pass_through() -> None:
    """Nothing is lost or reordered by close; bodies are never held."""
    raw = Recorder()
    transport = CoalescingTransport(raw, asyncio.get_running_loop())
    transport.write(b"chunk")
    transport.write(HEAD)
    transport.close()
    assert raw.writes == [b"chunk", HEAD] and raw.closed and transport.is_closing()
