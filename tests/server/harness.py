"""A real gateway for tests: fake upstreams and a uvicorn server on 127.0.0.1 (random ports),
all running on an event loop in a background thread, so both sync and async clients (the
official OpenAI and Anthropic SDKs among them) can talk to it over TCP."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx2 as httpx
import uvicorn
import yaml

from failover.config import load_config
from failover.factory import from_config
from failover.server import Gateway
from failover.server.protocol import GatewayHttpProtocol
from fakes import FakeAnthropic, FakeOpenAI, FakeServer

T = TypeVar("T")

PROVIDER_KEY = "sk-provider-SECRET-1b2c3d"
CLIENT_KEY = "client-key-7e8f9a"
ADMIN_KEY = "admin-key-0a1b2c"


class LoopThread:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._pending: list[Future[Any]] = []

    def run(self, coro: Awaitable[T], timeout: float = 20.0) -> T:
        """Run `coro` on the loop and wait for its result."""
        future: Future[T] = asyncio.run_coroutine_threadsafe(_wrap(coro), self.loop)
        return future.result(timeout)

    def later(self, coro: Awaitable[Any]) -> None:
        """Run `coro` on the loop without waiting for it (waited for in `close`)."""
        self._pending.append(asyncio.run_coroutine_threadsafe(_wrap(coro), self.loop))

    def soon(self, fn: Callable[[], Any]) -> None:
        """Call `fn` on the loop's thread (for asyncio objects that are not thread-safe)."""
        self.loop.call_soon_threadsafe(fn)

    def settle(self) -> None:
        """Wait for what `later` started (e.g. the gateways of earlier tests stopping)."""
        for future in self._pending:
            future.result(30)

    def close(self) -> None:
        self.settle()

        async def drain() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

        self.run(drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


async def _wrap(coro: Awaitable[T]) -> T:
    return await coro


async def start_uvicorn(app: Any) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    """Serve `app` on 127.0.0.1 (a free port) in the running loop; wait until it listens."""
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        loop="none",
        http=GatewayHttpProtocol,
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
        proxy_headers=False,  # as `failover serve` runs it: the gateway is uvicorn's own app
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        if task.done():
            task.result()
            raise RuntimeError("uvicorn exited before it started")
        await asyncio.sleep(0.002)
    port = int(server.servers[0].sockets[0].getsockname()[1])
    return server, task, port


def base_config(primary: str, backup: str, claude: str) -> dict[str, Any]:
    """Two OpenAI-compatible upstreams and one Anthropic upstream behind four routes."""
    return {
        "server": {"grace": "5s"},
        "providers": {
            "primary": {"kind": "openai", "base_url": primary, "api_key": PROVIDER_KEY},
            "backup": {"kind": "openai", "base_url": backup, "api_key": PROVIDER_KEY},
            "claude": {"kind": "anthropic", "base_url": claude, "api_key": PROVIDER_KEY},
        },
        "routes": {
            "chat": {
                "deployments": [
                    {"provider": "primary", "model": "gpt-4o"},
                    {"provider": "backup", "model": "gpt-4o-mini"},
                ]
            },
            "solo": {"deployments": [{"provider": "primary", "model": "gpt-4o"}]},
            "claude": {"deployments": [{"provider": "claude", "model": "claude-sonnet-4-5"}]},
            "embed": {"deployments": [{"provider": "primary", "model": "text-embedding-3-small"}]},
        },
        "defaults": {
            "retry": {"attempts": 1},
            "timeouts": {"attempt": "1s", "first_token": "1s", "total": "5s"},
            "health": {"enabled": False},
        },
    }


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """`base` with `extra` merged in, mappings recursively."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class Stack:
    """Fake upstreams, a gateway in front of them, and where to reach it."""

    bg: LoopThread
    primary: FakeOpenAI
    backup: FakeOpenAI
    claude: FakeAnthropic
    gateway: Gateway
    server: uvicorn.Server
    task: asyncio.Task[None]
    port: int
    config_path: Path
    fakes: list[FakeServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, coro: Awaitable[T], timeout: float = 20.0) -> T:
        return self.bg.run(coro, timeout)

    def write_config(self, data: dict[str, Any] | str) -> None:
        text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
        self.config_path.write_text(text, encoding="utf-8")

    def stop(self, wait: bool = False) -> None:
        """Stop the gateway and the fakes (in the background unless `wait`)."""

        async def stop() -> None:
            self.server.should_exit = True
            await self.task
            for fake in self.fakes:
                await fake.close()

        if wait:
            self.bg.run(stop())
        else:
            self.bg.later(stop())


def start_stack(
    bg: LoopThread,
    tmp: Path,
    extra: dict[str, Any] | None = None,
    *,
    wrap: Callable[[Gateway], Any] | None = None,
) -> Stack:
    """Start fakes and a gateway configured by `base_config` + `extra` (written to a file);
    with `wrap`, uvicorn serves the ASGI app it makes of the gateway."""

    async def start() -> Stack:
        primary = await FakeOpenAI(api_key=PROVIDER_KEY).start()
        backup = await FakeOpenAI(api_key=PROVIDER_KEY, text="Hello from the backup.").start()
        claude = await FakeAnthropic(api_key=PROVIDER_KEY).start()
        data = merge(base_config(primary.base_url, backup.base_url, claude.base_url), extra or {})
        path = tmp / "failover.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        gateway = Gateway(
            from_config(load_config(path)),
            loader=lambda: load_config(path),
            source=str(path),
        )
        server, task, port = await start_uvicorn(gateway if wrap is None else wrap(gateway))
        return Stack(
            bg,
            primary,
            backup,
            claude,
            gateway,
            server,
            task,
            port,
            path,
            [primary, backup, claude],
        )

    return bg.run(start())


@dataclass
class Answer:
    """A raw HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Raw:
    """A minimal blocking HTTP/1.1 client (stdlib), for requests no SDK would send."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.port = port
        self.timeout = timeout
        self._conn: http.client.HTTPConnection | None = None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | dict[str, Any] | list[Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        if isinstance(body, dict | list):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode()
        for attempt in range(2):  # a kept-alive connection the server closed: reconnect once
            conn = self._connection()
            try:
                conn.request(method, path, body=body, headers=headers or {})
                resp = conn.getresponse()
                data = resp.read()
            except (ConnectionError, http.client.RemoteDisconnected):
                self.close()
                if attempt:
                    raise
                continue
            if resp.getheader("connection", "").lower() == "close":
                self.close()
            return Answer(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
        raise AssertionError("unreachable")

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Answer:
        return self.request(
            "POST", path, body, {"content-type": "application/json", **(headers or {})}
        )

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self.request("GET", path, None, headers)

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Raw:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Tee(httpx.SyncByteStream):
    """A response body that keeps a copy of every byte its reader takes."""

    def __init__(self, inner: httpx.SyncByteStream, sink: bytearray) -> None:
        self._inner = inner
        self._sink = sink

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._inner:
            self._sink.extend(chunk)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _AsyncTee(httpx.AsyncByteStream):
    """`_Tee` for async clients."""

    def __init__(self, inner: httpx.AsyncByteStream, sink: bytearray) -> None:
        self._inner = inner
        self._sink = sink

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            self._sink.extend(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


class Recorder(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """An httpx transport for the SDKs that records each response body exactly as the client
    read it off the wire (`bodies`, one per request), so one request shows both what the SDK
    made of a stream and the raw events (comments included) it was made from."""

    def __init__(self) -> None:
        self.bodies: list[bytearray] = []
        self._sync = httpx.HTTPTransport()
        self._async = httpx.AsyncHTTPTransport()

    @property
    def last(self) -> bytes:
        """The last response body."""
        return bytes(self.bodies[-1])

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._sync.handle_request(request)
        assert isinstance(response.stream, httpx.SyncByteStream)
        return self._respond(response, _Tee(response.stream, self._sink()))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._async.handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return self._respond(response, _AsyncTee(response.stream, self._sink()))

    def _sink(self) -> bytearray:
        self.bodies.append(bytearray())
        return self.bodies[-1]

    @staticmethod
    def _respond(response: httpx.Response, stream: Any) -> httpx.Response:
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=stream,
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._sync.close()

    async def aclose(self) -> None:
        await self._async.aclose()
