"""Fixtures for the gateway tests: a background loop, a running gateway, SDK clients."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from .harness import CLIENT_KEY, LoopThread, Raw, Stack, start_stack


@pytest.fixture(scope="session")
def bg() -> Iterator[LoopThread]:
    """One event loop in a thread hosts every fake upstream and gateway of the session."""
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture
def make_stack(bg: LoopThread, tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Start a gateway (with `extra` config merged in, served through `wrap` if given);
    stopped after the test."""
    started: list[Stack] = []

    def make(
        extra: dict[str, Any] | None = None, *, wrap: Callable[[Any], Any] | None = None
    ) -> Stack:
        stack = start_stack(bg, tmp_path, extra, wrap=wrap)
        started.append(stack)
        return stack

    yield make
    for stack in started:
        stack.stop()


@pytest.fixture
def stack(make_stack: Callable[..., Stack]) -> Stack:
    """A gateway with the default test config: routes chat, solo, claude, embed."""
    return make_stack()


@pytest.fixture
def http(stack: Stack) -> Iterator[Raw]:
    """A plain HTTP client (one keep-alive connection) pointed at the gateway."""
    with Raw(stack.port) as client:
        yield client


@pytest.fixture
def oai(stack: Stack) -> Iterator[openai.OpenAI]:
    """The official OpenAI SDK (sync), retries off: failover is the gateway's job."""
    with openai.OpenAI(base_url=f"{stack.url}/v1", api_key=CLIENT_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
async def aoai(stack: Stack) -> Any:
    """The official OpenAI SDK (async), retries off."""
    client = openai.AsyncOpenAI(base_url=f"{stack.url}/v1", api_key=CLIENT_KEY, max_retries=0)
    async with client:
        yield client


@pytest.fixture
def claude(stack: Stack) -> Iterator[anthropic.Anthropic]:
    """The official Anthropic SDK (sync), retries off."""
    with anthropic.Anthropic(base_url=stack.url, api_key=CLIENT_KEY, max_retries=0) as client:
        yield client


@pytest.fixture
async def aclaude(stack: Stack) -> Any:
    """The official Anthropic SDK (async), retries off."""
    client = anthropic.AsyncAnthropic(base_url=stack.url, api_key=CLIENT_KEY, max_retries=0)
    async with client:
        yield client
