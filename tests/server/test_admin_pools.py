"""No hidden queue at the gateway: a request waiting for a provider's connection shows in
/admin/status and /metrics while it waits, through the official OpenAI SDK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import openai

from .harness import CLIENT_KEY, Stack

HI = [{"role": "user", "content": "hi"}]
ONE_CONNECTION = {
    "providers": {"primary": {"options": {"max_connections": 1}}},
    "defaults": {"timeouts": {"attempt": "20s", "first_token": "20s", "total": "30s"}},
}
REAL_WAIT = 10.0  # real seconds to see the waiting request before giving up


def traffic_pool(status: dict[str, Any], provider: str) -> dict[str, Any]:
    """A provider's traffic pool in the status document."""
    pools: list[dict[str, Any]] = status["local"]["pools"]
    return next(p for p in pools if (p["provider"], p["pool"]) == (provider, "traffic"))


async def test_a_request_waiting_for_a_connection_is_visible(
    make_stack: Callable[..., Stack],
) -> None:
    """While a stream holds the provider's only connection, the next request shows as waiting
    in the status and the metrics, and is answered once the stream ends."""
    stack = make_stack(ONE_CONNECTION)
    gate = asyncio.Event()
    stack.primary.push(stack.primary.stream(["Hel", "lo"], gates={2: gate}))
    api = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=CLIENT_KEY, max_retries=0)
    async with api, httpx.AsyncClient(base_url=stack.url, timeout=REAL_WAIT) as admin:
        stream = await api.chat.completions.create(model="solo", messages=HI, stream=True)
        await stream.__anext__()  # the stream is open and holds the connection
        second = asyncio.create_task(api.chat.completions.create(model="solo", messages=HI))
        pool = await _waiting(admin)
        metrics = (await admin.get("/metrics")).text
        stack.bg.soon(gate.set)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        answer = await second
    assert (pool["limit"], pool["in_use"], pool["waiting"]) == (1, 1, 1)
    assert 'failover_pool_waiting{pool="traffic",provider="primary"} 1.0' in metrics
    assert text == "Hello" and answer.choices[0].message.content


async def _waiting(admin: httpx.AsyncClient) -> dict[str, Any]:
    """The primary's traffic pool once a request waits for it (polled: the gateway's loop
    runs in another thread)."""
    deadline = time.monotonic() + REAL_WAIT
    while time.monotonic() < deadline:
        pool = traffic_pool((await admin.get("/admin/status")).json(), "primary")
        if pool["waiting"]:
            return pool
        await asyncio.sleep(0.01)
    raise AssertionError("no request ever waited for the primary's connection")
