"""Webhooks against a real HTTP server on 127.0.0.1: delivery, retries, drops, filters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from failover import Event
from failover.config import WebhookConfig
from failover.observability import WebhookSender


class Hook:
    """A webhook receiver: answers the scripted statuses in turn (the last one repeats)."""

    def __init__(self) -> None:
        self.statuses = [200]
        self.delay = 0.0
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.calls = 0
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        status = self.statuses[min(self.calls, len(self.statuses) - 1)]
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if status < 300:
            self.received.append(orjson.loads(await request.read()))
            self.headers.append(dict(request.headers))
        return web.Response(status=status)

    @property
    def url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/hook"))


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    """A receiver listening on a random port of 127.0.0.1."""
    receiver = Hook()
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    receiver.server = TestServer(app, host="127.0.0.1")
    await receiver.server.start_server()
    yield receiver
    await receiver.server.close()


def breaker_event(message: str = "breaker closed -> open: 3 consecutive failures") -> Event:
    return Event(
        "breaker",
        1_700_000_000.0,
        message,
        deployment="openai/gpt-4o",
        data={"old": "closed", "new": "open"},
    )


async def until(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_event_is_posted_as_json(hook: Hook) -> None:
    """An event reaches the URL as JSON with a chat-friendly text and the event itself."""
    sender = WebhookSender(hook.url, backoff=0.01)
    await sender.start()
    assert sender.submit(breaker_event())
    await until(lambda: sender.sent == 1)
    await sender.stop()
    (body,) = hook.received
    assert body["text"].startswith("[failover] breaker closed -> open")
    assert body["event"]["type"] == "breaker"
    assert body["event"]["deployment"] == "openai/gpt-4o"
    assert body["event"]["data"] == {"old": "closed", "new": "open"}


async def test_server_errors_are_retried(hook: Hook) -> None:
    """A 500 then a 503 are retried with backoff until the post succeeds."""
    hook.statuses = [500, 503, 200]
    sender = WebhookSender(hook.url, attempts=3, backoff=0.01)
    await sender.start()
    sender.submit(breaker_event())
    await until(lambda: sender.sent == 1)
    await sender.stop()
    assert hook.calls == 3 and sender.failed == 0


async def test_gives_up_after_the_last_try(hook: Hook) -> None:
    """A URL that keeps failing is tried `attempts` times, then counted as failed."""
    hook.statuses = [502]
    sender = WebhookSender(hook.url, attempts=2, backoff=0.01)
    await sender.start()
    sender.submit(breaker_event())
    await until(lambda: sender.failed == 1)
    await sender.stop()
    assert hook.calls == 2 and sender.sent == 0


async def test_client_errors_are_not_retried(hook: Hook) -> None:
    """A 404 means the URL is wrong: one try, counted as failed."""
    hook.statuses = [404]
    sender = WebhookSender(hook.url, attempts=3, backoff=0.01)
    await sender.start()
    sender.submit(breaker_event())
    await until(lambda: sender.failed == 1)
    await sender.stop()
    assert hook.calls == 1


async def test_slow_receiver_times_out_and_is_retried(hook: Hook) -> None:
    """A receiver slower than `timeout` counts as a failed try."""
    hook.delay = 0.5
    sender = WebhookSender(hook.url, timeout=0.05, attempts=2, backoff=0.01)
    await sender.start()
    sender.submit(breaker_event())
    await until(lambda: sender.failed == 1)
    await sender.stop(drain=0)
    assert hook.calls == 2


async def test_unreachable_url_counts_as_failed() -> None:
    """A refused connection is retried, then counted as failed, without raising."""
    sender = WebhookSender("http://127.0.0.1:9/hook", attempts=2, backoff=0.01)
    await sender.start()
    sender.submit(breaker_event())
    await until(lambda: sender.failed == 1)
    await sender.stop()


async def test_full_queue_drops_and_counts(hook: Hook) -> None:
    """Submitting never waits: past the queue bound, events are dropped and counted."""
    sender = WebhookSender(hook.url, queue=2, repeat_after=0)
    accepted = [sender.submit(breaker_event(f"event {i}")) for i in range(5)]
    assert accepted == [True, True, False, False, False]
    assert sender.dropped == 3 and sender.pending == 2
    await sender.start()
    await until(lambda: sender.sent == 2)
    await sender.stop()


async def test_types_not_subscribed_are_not_sent(hook: Hook) -> None:
    """By default fallback events (one per request during an outage) are not posted."""
    sender = WebhookSender(hook.url)
    assert not sender.submit(Event("fallback", 1.0, "falling back to fast", route="fast"))
    assert sender.pending == 0
    only_health = WebhookSender(hook.url, events=["health"])
    assert not only_health.submit(breaker_event())


async def test_repeats_within_the_window_are_suppressed(hook: Hook) -> None:
    """The same event again within repeat_after is not re-sent, and is counted."""
    from failover import FakeClock

    clock = FakeClock()
    sender = WebhookSender(hook.url, repeat_after=60, clock=clock)
    assert sender.submit(breaker_event())
    assert not sender.submit(breaker_event())
    assert sender.submit(breaker_event("something else"))
    clock.advance_sync(61)
    assert sender.submit(breaker_event())
    assert sender.suppressed == 1


async def test_configured_headers_are_sent(hook: Hook) -> None:
    """Headers from the config (an Authorization token) go with every post."""
    config = WebhookConfig(url=hook.url, headers={"Authorization": "Bearer t0ken"}, backoff=0.01)
    sender = WebhookSender.from_config(config)
    assert sender.url_label == "127.0.0.1"
    await sender.start()
    sender.submit(breaker_event())
    await until(lambda: sender.sent == 1)
    await sender.stop()
    assert hook.headers[0]["Authorization"] == "Bearer t0ken"


async def test_stop_delivers_what_is_queued(hook: Hook) -> None:
    """stop() lets the queued events go out before closing."""
    sender = WebhookSender(hook.url, repeat_after=0)
    for i in range(3):
        sender.submit(breaker_event(f"e{i}"))
    await sender.start()
    await sender.stop()
    assert [b["event"]["message"] for b in hook.received] == ["e0", "e1", "e2"]


def test_webhook_url_must_be_http() -> None:
    """The config rejects a webhook URL that is not http(s)."""
    with pytest.raises(ValueError, match="http"):
        WebhookConfig(url="ftp://example.com/hook")
