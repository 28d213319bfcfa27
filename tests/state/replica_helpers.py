"""Real gateway replicas for the Redis tests: `failover serve` subprocesses in front of fake
upstreams that run on the test's own event loop, and a small keep-alive HTTP client.

    primary, backup = await Upstream().start(), await Upstream(text="backup").start()
    path = write_config(tmp_path / "a.yaml", primary, backup, state=redis.url + "?namespace=x")
    async with GatewayProcess(path, tmp_path / "a.log") as a, Client(a.port) as http:
        (await http.post_chat()).status           # 200
        await breaker_state(http, PRIMARY)        # "closed", "open", "forced_open" ...

Only 127.0.0.1. Each gateway runs in its own process group, which is ended (SIGTERM, then
SIGKILL) when the context exits, so nothing outlives a test.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import yaml

from fakes import FakeOpenAI
from fakes.server import Received, Reply, Stream
from redis_server import free_port

__all__ = [
    "BACKUP",
    "PRIMARY",
    "Answer",
    "Client",
    "GatewayProcess",
    "Upstream",
    "breaker_state",
    "quiet_gc",
    "store_state",
    "wait_for_state",
    "write_config",
]

PRIMARY = "primary/gpt-4o"
BACKUP = "backup/gpt-4o-mini"
CHAT = orjson.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]})


class Upstream(FakeOpenAI):
    """A fake OpenAI that answers 500 to everything while `failing` is set.

    It counts chat requests rather than keeping them: under load, thousands of kept requests
    would make the test process's garbage collections long enough to show up as latency.
    """

    def __init__(self, *, text: str = "Hello from the primary.") -> None:
        super().__init__(text=text)
        self.failing = False
        self.chat_requests = 0

    def answer(self, received: Received) -> Reply | Stream:
        self.requests.clear()  # appended just before `answer` is asked for
        if received.path.endswith("/chat/completions"):
            self.chat_requests += 1
        if self.failing:
            return self.error(500, "The server had an error.", type="server_error")
        return super().answer(received)

    def chats(self) -> int:
        """Chat completion requests received so far."""
        return self.chat_requests


def write_config(
    path: Path,
    primary: FakeOpenAI,
    backup: FakeOpenAI,
    *,
    state: str,
    breaker: dict[str, Any] | None = None,
) -> Path:
    """One route, `chat`: primary then backup; no retries on a deployment, no health checks."""
    data = {
        "server": {"grace": "2s"},
        "providers": {
            "primary": {"kind": "openai", "base_url": primary.base_url, "api_key": "sk-a"},
            "backup": {"kind": "openai", "base_url": backup.base_url, "api_key": "sk-b"},
        },
        "routes": {
            "chat": {
                "deployments": [
                    {"provider": "primary", "model": "gpt-4o"},
                    {"provider": "backup", "model": "gpt-4o-mini"},
                ]
            }
        },
        "defaults": {
            "retry": {"attempts": 1},
            "breaker": {
                "consecutive_failures": 3,
                "open_for": "30s",
                "jitter": 0,
                **(breaker or {}),
            },
            "timeouts": {"attempt": "2s", "total": "5s"},
            "health": {"enabled": False},
        },
        "state": state,
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class Answer:
    """One HTTP response."""

    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def worker(self) -> str:
        """Which gateway process answered: request ids start with a random per-process prefix."""
        return self.headers.get("x-request-id", "")[:16]


class Client:
    """HTTP/1.1 over one kept-alive connection. No retries: a failed exchange is an error the
    caller sees (and the connection is closed; the next request opens a new one)."""

    def __init__(self, port: int, *, timeout: float = 10.0) -> None:
        self.port = port
        self.timeout = timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> Client:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def request(self, method: str, path: str, body: bytes = b"") -> Answer:
        await self.connect()
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(method, path, body)
        except BaseException:
            await self.close()
            raise

    async def _exchange(self, method: str, path: str, body: bytes) -> Answer:
        assert self._reader is not None and self._writer is not None
        head = (
            f"{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        self._writer.write(head.encode() + body)
        await self._writer.drain()
        status_line = await self._reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while (line := await self._reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            data = await self._chunked()
        else:
            data = await self._reader.readexactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Answer(status, headers, data)

    async def _chunked(self) -> bytes:
        assert self._reader is not None
        parts = []
        while size := int((await self._reader.readuntil(b"\r\n")).split(b";")[0], 16):
            parts.append(await self._reader.readexactly(size))
            await self._reader.readexactly(2)
        await self._reader.readuntil(b"\r\n")
        return b"".join(parts)

    async def get(self, path: str) -> Answer:
        return await self.request("GET", path)

    async def post(self, path: str, body: bytes = b"") -> Answer:
        return await self.request("POST", path, body)

    async def post_chat(self) -> Answer:
        return await self.request("POST", "/v1/chat/completions", CHAT)

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def breaker_state(http: Client, deployment: str = PRIMARY, route: str = "chat") -> str:
    """The breaker state of `deployment` in `route`, from GET /admin/status."""
    answer = await http.get("/admin/status")
    assert answer.status == 200, answer.body[:300]
    for entry in answer.json["routes"][route]["deployments"]:
        if entry["name"] == deployment:
            return str(entry["breaker"]["state"])
    raise AssertionError(f"{deployment} is not in route {route}")


async def wait_for_state(
    http: Client, state: str, *, within: float, deployment: str = PRIMARY
) -> float:
    """Poll GET /admin/status (no pause between polls) until the breaker is in `state`;
    seconds it took."""
    started = time.perf_counter()
    while (seen := await breaker_state(http, deployment)) != state:
        if time.perf_counter() - started > within:
            raise AssertionError(f"{deployment} still {seen!r}, not {state!r}, after {within}s")
    return time.perf_counter() - started


async def store_state(http: Client) -> dict[str, Any]:
    """The gateway's state store as GET /admin/status describes it (`gateway.state`)."""
    answer = await http.get("/admin/status")
    assert answer.status == 200, answer.body[:300]
    state: dict[str, Any] = answer.json["gateway"]["state"]
    return state


class GatewayProcess:
    """`failover serve -c CONFIG` in a subprocess (its own process group) on a free port."""

    def __init__(self, config: Path, log: Path, *, workers: int = 1) -> None:
        self.config = config
        self.log = log
        self.workers = workers
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        args = [sys.executable, "-m", "failover.cli", "serve", "-c", str(self.config)]
        args += ["--port", str(self.port), "--log-level", "warning"]
        if self.workers > 1:
            args += ["--workers", str(self.workers)]
        with self.log.open("wb") as out:  # a file: a pipe nobody reads would fill up
            return subprocess.Popen(
                args, stdout=out, stderr=out, start_new_session=True, env=_env()
            )

    async def start(self, *, timeout: float = 15.0) -> GatewayProcess:
        """Start the process and wait until GET /health/ready answers 200."""
        self.proc = self._spawn()
        until = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the gateway exited: {self.log_text()[-3000:]}")
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError):
                async with Client(self.port, timeout=1.0) as http:
                    if (await http.get("/health/ready")).status == 200:
                        return self
            if time.monotonic() > until:
                raise RuntimeError(f"the gateway was not ready in {timeout}s: {self.log_text()}")
            await asyncio.sleep(0.01)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    async def stop(self) -> int | None:
        """SIGTERM (a graceful drain), then SIGKILL for the whole group if it lingers."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = await asyncio.to_thread(proc.wait, 10)
        except subprocess.TimeoutExpired:
            code = None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # workers or anything else left in the group
        if code is None:
            await asyncio.to_thread(proc.wait, 5)
        return code

    async def __aenter__(self) -> GatewayProcess:
        try:
            return await self.start()
        except BaseException:
            await self.stop()
            raise

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def _env() -> dict[str, str]:
    """The test's environment without provider keys or a config path of its own."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("FAILOVER_CONFIG", None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextlib.contextmanager
def quiet_gc() -> Iterator[None]:
    """Keep the test process's full garbage collections short while it measures latency: what
    lives now is frozen out of them (as `failover serve` does for itself). Unfrozen after."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
