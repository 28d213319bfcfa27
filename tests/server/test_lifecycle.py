"""Graceful shutdown and signals: running requests (streams included) finish, new ones are
refused with 503, SIGHUP reloads the config, SIGTERM drains then exits."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import yaml

from .harness import LoopThread, Raw, Stack, base_config

HI = [{"role": "user", "content": "hi"}]


async def test_shutdown_drains_streams_and_refuses_new_requests(
    stack: Stack, aoai: openai.AsyncOpenAI
) -> None:
    """During shutdown a running stream completes while new requests get 503."""
    gate = asyncio.Event()
    stack.primary.push(stack.primary.stream(["Hel", "lo"], gates={2: gate}))
    stream = await aoai.chat.completions.create(model="chat", messages=HI, stream=True)
    await stream.__anext__()
    done = asyncio.run_coroutine_threadsafe(stack.gateway.shutdown(grace=5), stack.bg.loop)
    with Raw(stack.port) as http:
        refused = http.post("/v1/chat/completions", {"model": "chat", "messages": HI})
        assert refused.status == 503
        assert refused.json["error"]["code"] == "shutting_down"
        assert http.get("/health/ready").status == 503
        assert http.get("/health/live").status == 200
    assert not done.done()
    stack.bg.soon(gate.set)
    rest = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert rest == "Hello"
    done.result(5)


def test_shutdown_gives_up_after_the_grace_period(stack: Stack) -> None:
    """A request still running when the grace period ends does not hold shutdown forever."""
    from fakes import Hang

    stack.primary.push(Hang())
    with Raw(stack.port, timeout=5) as http:
        pending = asyncio.run_coroutine_threadsafe(
            _post_later(stack.port), stack.bg.loop
        )  # a request that will hang upstream
        time.sleep(0.1)
        started = time.monotonic()
        stack.run(stack.gateway.shutdown(grace=0.2))
        assert time.monotonic() - started < 2
        del http
    pending.result(5)


async def _post_later(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = b'{"model": "solo", "messages": [{"role": "user", "content": "hi"}]}'
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n%s"
        % (len(body), body)
    )
    await writer.drain()
    line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return len(line)


# -- a real `failover serve` process ---------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(port: int, proc: subprocess.Popen[bytes], timeout: float = 10) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        assert proc.poll() is None, "the gateway exited"
        try:
            with Raw(port, timeout=1) as http:
                if http.get("/health/ready").status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.01)
    raise AssertionError("the gateway did not become ready")


@pytest.fixture
def served(stack: Stack, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    """`failover serve` in a subprocess, in front of the stack's fake upstreams."""
    port = free_port()
    path = tmp_path / "served.yaml"
    data = base_config(stack.primary.base_url, stack.backup.base_url, stack.claude.base_url)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    args = [sys.executable, "-m", "failover.cli", "serve", "-c", str(path), "--port", str(port)]
    log = (tmp_path / "served.log").open("wb")  # a file: a pipe nobody reads would fill up
    proc = subprocess.Popen(args, stdout=log, stderr=log)
    try:
        wait_ready(port, proc)
        yield proc, port, path
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(5)
        log.close()


def test_sigterm_drains_a_running_stream(
    stack: Stack, bg: LoopThread, served: tuple[subprocess.Popen[bytes], int, Path]
) -> None:
    """SIGTERM: the stream in flight completes, new connections are refused, exit 0."""
    proc, port, _ = served
    gate = asyncio.Event()
    stack.primary.push(stack.primary.stream(["Hel", "lo"], gates={2: gate}))
    with openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0) as oai:
        stream = oai.chat.completions.create(model="chat", messages=HI, stream=True)  # type: ignore[arg-type]
        next(iter(stream))
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
        assert proc.poll() is None  # still draining
        bg.soon(gate.set)
        rest = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert rest == "Hello"
    assert proc.wait(10) == 0


def test_sighup_reloads_the_config(
    stack: Stack, served: tuple[subprocess.Popen[bytes], int, Path]
) -> None:
    """SIGHUP re-reads the file; a broken file is logged and changes nothing."""
    proc, port, path = served
    data = base_config(stack.primary.base_url, stack.backup.base_url, stack.claude.base_url)
    data["routes"]["fresh"] = {"deployments": [{"provider": "backup", "model": "gpt-4o-mini"}]}
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    proc.send_signal(signal.SIGHUP)
    with Raw(port) as http:
        names: list[str] = []
        for _ in range(200):
            names = [m["id"] for m in http.get("/v1/models").json["data"]]
            if "fresh" in names:
                break
            time.sleep(0.01)
        assert "fresh" in names
        path.write_text("routes: [broken")
        proc.send_signal(signal.SIGHUP)
        time.sleep(0.2)
        assert http.post("/v1/chat/completions", {"model": "fresh", "messages": HI}).status == 200
        assert http.get("/admin/status").json["gateway"]["config"]["last_reload_error"]
    assert os.environ.get("FAILOVER_CONFIG") is None


def test_client_hanging_up_stops_the_upstream_stream(stack: Stack) -> None:
    """A client that leaves mid-stream closes the upstream stream; no failure is recorded."""
    gate = asyncio.Event()  # never set: the upstream would wait forever
    stack.primary.push(stack.primary.stream(["Hel", "lo"], gates={2: gate}))
    body = b'{"model": "chat", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as s:
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n\r\n%s"
            % (len(body), body)
        )
        seen = b""
        while b"data: " not in seen:
            seen += s.recv(4096)
    stack.run(asyncio.wait_for(stack.primary.client_gone.wait(), 5))
    with Raw(stack.port) as http:
        routes = http.get("/admin/status").json["routes"]
    status = routes["chat"]["deployments"][0]
    assert status["in_flight"] == 0
    assert status["last_error"] is None and status["breaker"]["state"] == "closed"
