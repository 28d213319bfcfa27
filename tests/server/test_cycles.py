"""Requests relayed by the gateway leave no reference cycles of failover's own: what a request
allocated is freed by reference counting as it ends, not left for the cycle collector, whose
collections cost CPU and pause the event loop in proportion to everything alive.

Each test relays one request of a kind to warm up, then the same again, and counts what that
one left only the cycle collector could free (`cycles.cyclic_garbage`). Cycles the libraries
underneath make are not counted (aiohttp keeps a cut response's exception on its reader, and
asyncio's selector transports hold their own bound methods); the fakes' are not either.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from cycles import cyclic_garbage, ours
from fakes import Hang

from .harness import Answer, Raw, Stack

MakeStack = Callable[..., Stack]
HI = [{"role": "user", "content": "Hi"}]
ASKS: dict[str, tuple[str, dict[str, Any]]] = {
    "openai": ("/v1/chat/completions", {"model": "chat", "messages": HI}),
    "anthropic": ("/v1/chat/completions", {"model": "claude", "messages": HI}),
    "messages": ("/v1/messages", {"model": "claude", "max_tokens": 64, "messages": HI}),
    "messages-from-openai": ("/v1/messages", {"model": "chat", "max_tokens": 64, "messages": HI}),
}
CHAT = ASKS["openai"][1]
BACKUP = "backup/gpt-4o-mini"


def settle(stack: Stack) -> None:
    """Wait until the gateway has finished its requests (their last records and closes)."""

    async def idle() -> None:
        while stack.gateway.in_flight():  # noqa: ASYNC110  (no event tells of it)
            await asyncio.sleep(0.001)
        for _ in range(10):  # what their ends set off: closes, a stream's trailing bytes read
            await asyncio.sleep(0)

    stack.run(idle())


def relay(stack: Stack, body: dict[str, Any], path: str = "/v1/chat/completions") -> Answer:
    with Raw(stack.port) as http:
        answer = http.post(path, body)
    settle(stack)
    return answer


def left_by(
    stack: Stack, body: dict[str, Any], path: str = "/v1/chat/completions", *, before: Any = None
) -> tuple[Answer, Counter[str]]:
    """The answer to `body` relayed a second time, and failover's own objects that this
    second request left in cycles; `before` is called before each of the two."""
    for warm in (True, False):
        if before is not None:
            before()
        if warm:
            relay(stack, body, path)
            stack.bg.settle()  # gateways of earlier tests stop on the same loop
            continue
        with cyclic_garbage() as garbage:
            answer = relay(stack, body, path)
    return answer, ours(garbage)


@pytest.mark.parametrize("api", list(ASKS))
def test_a_stream_leaves_no_cycles(stack: Stack, api: str) -> None:
    """A stream relayed to its end leaves nothing of ours for the cycle collector."""
    path, body = ASKS[api]
    answer, left = left_by(stack, {**body, "stream": True}, path)
    ends = (b"data: [DONE]", b'data: {"type":"message_stop"}')
    assert answer.status == 200 and answer.body.rstrip().endswith(ends)
    assert not left


@pytest.mark.parametrize("api", list(ASKS))
def test_a_whole_answer_leaves_no_cycles(stack: Stack, api: str) -> None:
    """A whole answer leaves nothing of ours for the cycle collector."""
    path, body = ASKS[api]
    answer, left = left_by(stack, body, path)
    assert answer.status == 200
    assert not left


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_retries_and_a_failover_leave_no_cycles(make_stack: MakeStack, stream: bool) -> None:
    """A request whose first deployment failed twice (a retry), answered by the second,
    leaves none of its failures for the cycle collector."""
    # a breaker that stays closed: an open one would skip the retry
    defaults = {"retry": {"attempts": 2, "base": "1ms"}, "breaker": {"consecutive_failures": 10}}
    stack = make_stack({"defaults": defaults})
    primary = stack.primary

    def fail_twice() -> None:
        primary.push(primary.error(500, "boom", type="server_error"))
        primary.push(primary.error(500, "boom", type="server_error"))

    answer, left = left_by(stack, {**CHAT, "stream": stream}, before=fail_twice)
    assert answer.status == 200 and answer.headers["x-failover-deployment"] == BACKUP
    assert not left


def test_a_failed_request_leaves_no_cycles(stack: Stack) -> None:
    """A request every deployment failed is answered with the error, and leaves none of its
    failures for the cycle collector."""
    primary = stack.primary

    def fail() -> None:
        primary.push(primary.error(500, "boom", type="server_error"))

    answer, left = left_by(stack, {**CHAT, "model": "solo"}, before=fail)
    assert answer.status == 502
    assert not left


def test_an_attempt_timeout_leaves_no_cycles(make_stack: MakeStack) -> None:
    """An attempt cut by its timeout, the request answered by the next deployment, leaves
    nothing of ours for the cycle collector."""
    stack = make_stack({"defaults": {"timeouts": {"attempt": "200ms", "first_token": "200ms"}}})
    answer, left = left_by(stack, CHAT, before=lambda: stack.primary.push(Hang()))
    assert answer.status == 200 and answer.headers["x-failover-deployment"] == BACKUP
    assert not left


def test_a_hedged_attempt_timeout_leaves_no_cycles(make_stack: MakeStack) -> None:
    """On a hedged route, an attempt cut by its timeout (in a task of its own) leaves nothing
    of ours for the cycle collector."""
    hedged = {**ASKS["openai"][1], "model": "hedged"}
    stack = make_stack(
        {
            "routes": {
                "hedged": {
                    "deployments": [
                        {"provider": "primary", "model": "gpt-4o"},
                        {"provider": "backup", "model": "gpt-4o-mini"},
                    ],
                    "hedge": {"delay": "5s", "max_hedges": 1},
                }
            },
            "defaults": {"timeouts": {"attempt": "200ms", "first_token": "200ms"}},
        }
    )
    answer, left = left_by(stack, hedged, before=lambda: stack.primary.push(Hang()))
    assert answer.status == 200 and answer.headers["x-failover-deployment"] == BACKUP
    assert not left


def test_a_recovered_stream_leaves_no_cycles(stack: Stack) -> None:
    """A stream cut after its first words and finished by the second deployment leaves
    nothing of ours for the cycle collector."""
    primary, backup = stack.primary, stack.backup
    backup.text = primary.text

    def cut() -> None:
        pieces = primary.split(primary.text)
        primary.push(primary.stream(pieces, cut_after=primary.after(1)))

    answer, left = left_by(stack, {**CHAT, "stream": True}, before=cut)
    assert answer.status == 200 and b"\n: failover recovered" in answer.body
    assert not left
