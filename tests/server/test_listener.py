"""The gateway's listener accepts every waiting connection at each loop iteration, however
busy the loop is."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest
import uvloop

from failover.server.listener import Listener


class Counted(asyncio.Protocol):
    """Counts the connections made."""

    made = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        Counted.made += 1


def bound() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


def work(seconds: float) -> None:
    """Keep the CPU busy, as relaying other streams would."""
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        pass


async def iterations(n: int, busy: float) -> None:
    """Let the loop run `n` iterations that each do `busy` seconds of other work."""
    loop = asyncio.get_running_loop()
    for _ in range(n):
        loop.call_soon(work, busy)
        await asyncio.sleep(0)


def test_a_busy_uvloop_accepts_every_waiting_connection_at_once() -> None:
    """On uvloop (the gateway's loop), 300 connections waiting in the backlog are all served
    within a few iterations of a loop that spends 10 ms on other work in each; uvloop's own
    server would take 300 iterations."""

    async def main() -> int:
        Counted.made = 0
        listener = Listener(bound(), Counted, backlog=1024)
        port = listener.sockets[0].getsockname()[1]
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(300)]
        try:
            await iterations(5, 0.01)
            return Counted.made
        finally:
            listener.close()
            await listener.wait_closed()
            for client in clients:
                client.close()

    assert uvloop.run(main()) == 300


async def test_close_stops_accepting() -> None:
    """After close the port refuses connections and the listener says it is not serving."""
    listener = Listener(bound(), Counted, backlog=16)
    port = listener.sockets[0].getsockname()[1]
    assert listener.is_serving()
    listener.close()
    await listener.wait_closed()
    assert not listener.is_serving()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=1)
