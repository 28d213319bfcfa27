"""Webhooks: events POSTed as JSON to a URL, from a background queue that never blocks requests.

    router.hooks.event  ->  WebhookSender.submit (filter, de-duplicate, put_nowait)
                        ->  bounded queue (full: drop and count)
                        ->  worker: POST with a timeout, a few tries with exponential backoff

The body is `{"text": "[failover] <message>", "event": {...}}`: the `text` key makes it readable
by chat tools' incoming webhooks, `event` is the same object /admin/events serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from ..clock import Clock, SystemClock
from ..config import DEFAULT_WEBHOOK_EVENTS, WebhookConfig
from ..events import Event
from .logs import event_fields, redact

if TYPE_CHECKING:
    from ..router import Router

__all__ = ["WebhookSender", "webhook_body"]

log = logging.getLogger("failover.webhooks")

_Key = tuple[str, str | None, str | None, str]
_STOP = object()


def webhook_body(event: Event) -> bytes:
    """The JSON posted for one event."""
    message = redact(event.message)
    payload = {
        "text": f"[failover] {message}",
        "event": {"message": message, **event_fields(event)},
    }
    return orjson.dumps(payload)


class WebhookSender:
    """Delivers events to one URL in the background. Call `start()` on the running loop."""

    def __init__(
        self,
        url: str,
        *,
        events: Collection[str] | None = DEFAULT_WEBHOOK_EVENTS,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 1.0,
        repeat_after: float = 60.0,
        queue: int = 1000,
        name: str | None = None,
        clock: Clock | None = None,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.url = url
        self.url_label = name or urlsplit(url).hostname or "webhook"
        self.types = frozenset(events) if events is not None else None
        self._headers = {"content-type": "application/json", **(headers or {})}
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.repeat_after = repeat_after
        self.clock = clock or SystemClock()
        self._session = session
        self._own_session = session is None
        self._queue: asyncio.Queue[object] = asyncio.Queue(maxsize=queue)
        self._task: asyncio.Task[None] | None = None
        self._last_sent: dict[_Key, float] = {}
        self.sent = 0
        self.failed = 0
        self.dropped = 0
        self.suppressed = 0

    @classmethod
    def from_config(cls, config: WebhookConfig, *, clock: Clock | None = None) -> WebhookSender:
        return cls(
            config.url,
            events=config.events,
            headers={k: v.get_secret_value() for k, v in config.headers.items()},
            timeout=config.timeout,
            attempts=config.attempts,
            backoff=config.backoff,
            repeat_after=config.repeat_after,
            queue=config.queue,
            name=config.name,
            clock=clock,
        )

    def attach(self, router: Router) -> WebhookSender:
        """Listen to a router's events; returns self."""
        if self.on_event not in router.hooks.event:
            router.hooks.event.append(self.on_event)
        return self

    # -- the caller's side: never waits ------------------------------------------------------

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def submit(self, event: Event) -> bool:
        """Queue an event for delivery; False when filtered, repeated, or dropped (queue full)."""
        if self.types is not None and event.type not in self.types:
            return False
        if self._repeated(event):
            self.suppressed += 1
            return False
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            return False
        return True

    def on_event(self, event: Event) -> None:
        """`submit` as an event listener."""
        self.submit(event)

    def _repeated(self, event: Event) -> bool:
        now = self.clock.now()
        key = (event.type, event.route, event.deployment, event.message)
        last = self._last_sent.get(key)
        if last is not None and now - last < self.repeat_after:
            return True
        if len(self._last_sent) >= 1024:  # bounded: forget what is past its window
            horizon = now - self.repeat_after
            self._last_sent = {k: t for k, t in self._last_sent.items() if t > horizon}
        self._last_sent[key] = now
        return False

    # -- the worker --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the delivery worker (and an HTTP session, unless one was given)."""
        if self._task is not None:
            return
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self._task = asyncio.get_running_loop().create_task(
            self._work(), name=f"failover-webhook:{self.url_label}"
        )

    async def stop(self, *, drain: float = 2.0) -> None:
        """Deliver what is queued for up to `drain` seconds, then stop and close the session."""
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(asyncio.QueueFull):
                self._queue.put_nowait(_STOP)
            done, _ = await asyncio.wait({task}, timeout=drain)
            if not done:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            if item is _STOP:
                return
            assert isinstance(item, Event)
            try:
                await self._deliver(webhook_body(item))
            except Exception:  # a bug here must not end deliveries
                self.failed += 1
                log.exception("webhook %s: delivery failed", self.url_label)

    async def _deliver(self, body: bytes) -> None:
        for attempt in range(self.attempts):
            if attempt:
                await self.clock.sleep(self.backoff * 2 ** (attempt - 1))
            outcome = await self._post(body)
            if outcome == "sent":
                self.sent += 1
                return
            if outcome == "rejected":
                break
        self.failed += 1
        log.warning("webhook %s: gave up after %d tries", self.url_label, attempt + 1)

    async def _post(self, body: bytes) -> str:
        """'sent', 'retry' (timeout, connection error, 408/429/5xx) or 'rejected' (other 4xx)."""
        assert self._session is not None
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with self._session.post(
                self.url, data=body, headers=self._headers, timeout=timeout
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.debug("webhook %s: %r", self.url_label, exc)
            return "retry"
        if status < 300:
            return "sent"
        if status in (408, 429) or status >= 500:
            return "retry"
        log.warning("webhook %s: rejected with HTTP %d", self.url_label, status)
        return "rejected"

    def __repr__(self) -> str:
        return (
            f"<WebhookSender {self.url_label} sent={self.sent} failed={self.failed} "
            f"dropped={self.dropped} pending={self.pending}>"
        )

    def stats(self) -> dict[str, Any]:
        return {
            "webhook": self.url_label,
            "sent": self.sent,
            "failed": self.failed,
            "dropped": self.dropped,
            "suppressed": self.suppressed,
            "pending": self.pending,
        }
