"""Header hooks: headers added to every outgoing provider request, and only while registered."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator

import pytest

from failover.transport import Transport, add_header_hook, remove_header_hook
from fakes import FakeServer, Reply, Stream, sse

TAG: contextvars.ContextVar[str | None] = contextvars.ContextVar("tag", default=None)


def tag_hook(headers: dict[str, str]) -> None:
    """Send the calling task's tag, when it has one."""
    if (tag := TAG.get()) is not None:
        headers["x-tag"] = tag


@pytest.fixture
def hooked() -> Iterator[None]:
    """`tag_hook` registered for one test."""
    add_header_hook(tag_hook)
    yield
    remove_header_hook(tag_hook)


async def test_a_hook_adds_headers_to_whole_requests(hooked: None, transport: Transport) -> None:
    """A registered hook's header reaches the provider, next to the caller's own."""
    TAG.set("abc")
    async with FakeServer() as server:
        server.push(Reply({}))
        await transport.client("t").request("GET", server.url, headers={"x-own": "1"})
    assert (server.requests[0].headers["x-tag"], server.requests[0].headers["x-own"]) == (
        "abc",
        "1",
    )


async def test_a_hook_adds_headers_to_streams(hooked: None, transport: Transport) -> None:
    """Streaming requests go through the hooks too."""
    TAG.set("xyz")
    async with FakeServer() as server:
        server.push(Stream([sse({"a": 1}), sse("[DONE]")]))
        async with transport.client("t").stream("POST", server.url, headers={}) as resp:
            [event async for event in resp.events()]
    assert server.requests[0].headers["x-tag"] == "xyz"


async def test_a_hook_sees_the_callers_context(hooked: None, transport: Transport) -> None:
    """The hook runs in the sending task: a task without the tag sends none."""
    async with FakeServer() as server:
        server.push(Reply({}))
        await transport.client("t").request("GET", server.url, headers={})
    assert "x-tag" not in server.requests[0].headers


async def test_a_removed_hook_adds_nothing(transport: Transport) -> None:
    """After `remove_header_hook`, requests go out as the caller wrote them."""
    add_header_hook(tag_hook)
    remove_header_hook(tag_hook)
    TAG.set("abc")
    async with FakeServer() as server:
        server.push(Reply({}))
        await transport.client("t").request("GET", server.url, headers={})
    assert "x-tag" not in server.requests[0].headers


async def test_a_failing_hook_does_not_fail_the_call(transport: Transport) -> None:
    """A hook that raises is logged and skipped; the request is sent anyway."""

    def broken(headers: dict[str, str]) -> None:
        raise RuntimeError("boom")

    add_header_hook(broken)
    try:
        async with FakeServer() as server:
            server.push(Reply({"ok": True}))
            resp = await transport.client("t").request("GET", server.url, headers={})
    finally:
        remove_header_hook(broken)
    assert resp.status == 200


def test_removing_a_hook_never_added_is_harmless() -> None:
    """Removing an unknown hook does nothing (closing twice is safe)."""
    remove_header_hook(tag_hook)
