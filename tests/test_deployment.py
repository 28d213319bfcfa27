"""Your own callables as deployments, and the sync wrapper — the seed's patterns."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import failover
from failover import Deployment, Route, Router, SyncRouter

HI = {"messages": [{"role": "user", "content": "hi"}]}


class Provider:
    """Stands in for the seed's provider objects with a blocking `generate`."""

    def __init__(self, name: str, *, down: bool = False) -> None:
        self.name = name
        self.down = down
        self.calls = 0

    def generate(self, prompt: str) -> str:
        self.calls += 1
        if self.down:
            raise RuntimeError(f"{self.name} is down")
        return f"{self.name}: {prompt}"


def wrap(p: Provider) -> Deployment:
    return Deployment(p.name, lambda r: p.generate(r["messages"][-1]["content"]))


async def test_round_robin_over_providers() -> None:
    """round_robin spreads requests across providers, like MultiProviderFailover."""
    providers = [Provider("a"), Provider("b"), Provider("c")]
    router = Router({"chat": Route([wrap(p) for p in providers], strategy="round_robin")})
    answers = [await router.ask("chat", "hi") for _ in range(6)]
    assert [p.calls for p in providers] == [2, 2, 2]
    assert answers[:3] == ["a: hi", "b: hi", "c: hi"]


async def test_all_providers_failed_message() -> None:
    """When every provider fails, the error names each one's failure."""
    providers = [Provider("a", down=True), Provider("b", down=True)]
    router = Router(
        {"chat": Route([wrap(p) for p in providers])}, retry=failover.RetryPolicy(attempts=1)
    )
    with pytest.raises(failover.AllDeploymentsFailed, match="all deployments failed") as info:
        await router.ask("chat", "hi")
    assert [a.deployment for a in info.value.trace.attempts] == ["a", "b"]
    assert "b is down" in info.value.trace.attempts[1].message


async def test_async_callable_returning_dict() -> None:
    """An async callable returning an OpenAI-shaped dict is passed through."""
    body = {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hey"},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
    }

    async def call(request: dict[str, Any]) -> dict[str, Any]:
        await asyncio.sleep(0)
        return body

    router = Router({"chat": Route([Deployment("d", call)])})
    reply = await router.complete("chat", HI)
    assert reply.body is body and reply.text == "hey"


async def test_sdk_model_result_is_dumped() -> None:
    """A pydantic result such as the openai SDK's ChatCompletion becomes a dict."""
    from openai.types.chat import ChatCompletion

    sdk = ChatCompletion.model_validate(
        {
            "id": "c",
            "object": "chat.completion",
            "created": 1,
            "model": "gpt",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "from sdk"},
                }
            ],
        }
    )
    router = Router({"chat": Route([Deployment("sdk", lambda r: sdk)])})
    assert (await router.complete("chat", HI)).text == "from sdk"


async def test_stream_from_text_pieces() -> None:
    """A stream callable yielding text pieces becomes OpenAI chunks, role first, and its end
    is the answer's end (a finish reason follows the last piece)."""

    async def pieces(request: dict[str, Any]) -> Any:
        for piece in ("Hel", "lo"):
            yield piece

    router = Router({"chat": Route([Deployment("s", stream=pieces)])})
    chunks = [c.body async for c in router.stream("chat", HI)]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hel"}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Hello"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert (await router.complete("chat", HI)).text == "Hello"


async def test_stream_made_from_complete() -> None:
    """Without a stream callable, a stream is made of the complete answer."""
    router = Router({"chat": Route([Deployment("c", lambda r: "whole")])})
    chunks = [c.body async for c in router.stream("chat", HI)]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "whole"


def test_deployment_needs_a_callable() -> None:
    """A deployment with neither callable is refused at once."""
    with pytest.raises(ValueError, match="needs a complete or a stream"):
        Deployment("empty")


def test_sync_router_for_sync_callers() -> None:
    """SyncRouter blocks until the answer, and streams as a plain iterator."""
    primary, backup = Provider("primary", down=True), Provider("backup")
    router = Router(
        {"chat": Route([wrap(primary), wrap(backup)])}, retry=failover.RetryPolicy(attempts=1)
    )
    with SyncRouter(router) as sync:
        assert sync.ask("chat", "hi") == "backup: hi"
        reply = sync.complete("chat", HI)
        assert reply.deployment == "backup"
        chunks = list(sync.stream("chat", HI))
        assert chunks[-1].body["choices"][0]["finish_reason"] == "stop"
