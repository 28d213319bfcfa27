"""Relaying a committed stream to the client: however the relay ends, the stream it was
given is closed and its call recorded."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from failover import FakeClock, Route, Router
from failover.server.http import Call
from failover.server.streaming import OpenAIEncoder, relay
from failover.testing import ScriptedDeployment, ok

HI = {"messages": [{"role": "user", "content": "hi"}], "stream": True}


async def never() -> dict[str, Any]:
    """An ASGI receive whose client sends nothing more."""
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def gone(message: Any) -> None:
    """An ASGI send on a closed connection: the spec lets a server raise an OSError."""
    raise ConnectionResetError("the client is gone")


async def test_a_stream_whose_headers_cannot_be_sent_gives_back_its_call(
    clock: FakeClock,
) -> None:
    """When the response headers cannot be sent, the upstream stream's slot is given back."""
    router = Router(
        {"chat": Route([ScriptedDeployment("primary", ok("x"), clock=clock)])}, clock=clock
    )
    reply = await router.open_stream("chat", HI)
    call = Call({"type": "http", "headers": []}, never, gone)
    with pytest.raises(ConnectionResetError):
        await relay(call, reply, OpenAIEncoder(), [])
    assert router.concurrency("primary").in_flight == 0
