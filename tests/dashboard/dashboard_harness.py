"""The dashboard tests' harness: a stand-in gateway and a watched browser page.

The stand-in is a real HTTP server on 127.0.0.1 that serves `dashboard_app` at /dashboard and
admin endpoints whose answers the test decides.

`/admin/status` and `/admin/events` answer whatever the `status` and `events` callables return
(no `events`: a 404, as from a gateway without the feed), behind `Authorization: Bearer <key>`;
`fail_with` makes them answer an error status instead.
`LiveServer` runs any ASGI app under uvicorn in the test's own event loop and can be stopped
and started again on the same port (the gateway going away and coming back).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvicorn
from playwright.async_api import Browser, Page

from failover import Router
from failover.observability.recent import EventLog
from failover.server.dashboard import Receive, Scope, Send, dashboard_app
from failover.testing import ScriptedDeployment

__all__ = [
    "ADMIN_KEY",
    "CHROMIUM",
    "LAUNCH_ARGS",
    "FakeGateway",
    "LiveServer",
    "Stack",
    "Watched",
    "artifact",
    "watch",
]

ADMIN_KEY = "test-admin-key"
CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


class FakeGateway:
    """An ASGI app: fake admin endpoints in front of the real dashboard app."""

    def __init__(
        self,
        status: Callable[[], dict[str, Any]],
        events: Callable[[], dict[str, Any]] | None = None,
        *,
        key: str = ADMIN_KEY,
    ) -> None:
        self.status = status
        self.events = events
        self.key = key
        self.fail_with: int | None = None
        self.calls: list[str] = []  # admin paths asked for, in order

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/admin/"):
            await dashboard_app(scope, receive, send)
            return
        self.calls.append(path)
        if _bearer(scope) != self.key:
            await _json(send, 401, {"error": {"message": "missing or invalid admin key"}})
        elif self.fail_with is not None:
            await _json(send, self.fail_with, {"error": {"message": "failing on purpose"}})
        elif path == "/admin/status":
            await _json(send, 200, self.status())
        elif path == "/admin/events" and self.events is not None:
            await _json(send, 200, self.events())
        else:
            await _json(send, 404, {"error": {"message": f"no admin endpoint at {path}"}})


def _bearer(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value.startswith(b"Bearer "):
            return bytes(value[7:]).decode()
    return ""


async def _json(send: Send, status: int, payload: Any) -> None:
    body = orjson.dumps(payload)
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: Ctrl-C belongs to pytest."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class LiveServer:
    """uvicorn serving `app` on 127.0.0.1, in the running event loop."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> LiveServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))  # port 0 the first time, the same one after
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            ws="none",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = _Server(config)
        self._server = server
        self._task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
        for _ in range(500):
            if server.started:
                return self
            if self._task.done():
                await self._task  # raises what went wrong
            await asyncio.sleep(0.01)
        raise RuntimeError("the test server did not start within 5 s")

    async def stop(self) -> None:
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        await self._task
        self._server = self._task = None


@dataclass
class Stack:
    """A real router with an event log, served by a stand-in gateway on 127.0.0.1."""

    router: Router
    log: EventLog
    deployments: dict[str, ScriptedDeployment]
    gateway: FakeGateway
    server: LiveServer

    def page_url(self, key: str = ADMIN_KEY, interval_ms: int = 1000) -> str:
        return f"{self.server.url}/dashboard/?key={key}&interval={interval_ms}"

    async def send(self, route: str = "smart", times: int = 1) -> None:
        for _ in range(times):
            await self.router.complete(route, {"messages": [{"role": "user", "content": "hi"}]})


@dataclass
class Watched:
    """A page and everything its console and scripts complained about."""

    page: Page
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def unexpected(self) -> list[str]:
        """Console errors other than the browser's own "failed to load" notices, which a
        refused key or a stopped gateway produce on purpose."""
        return [m for m in self.console_errors if not m.startswith("Failed to load resource")]


async def watch(browser: Browser, **context: Any) -> Watched:
    """A fresh page (own context, so own sessionStorage) with its console recorded."""
    ctx = await browser.new_context(**context)
    page = await ctx.new_page()
    watched = Watched(page)
    page.on(
        "console",
        lambda m: watched.console_errors.append(m.text) if m.type in ("error", "warning") else None,
    )
    page.on("pageerror", lambda exc: watched.page_errors.append(str(exc)))
    return watched


def artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS / name
