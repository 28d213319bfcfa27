"""Malformed requests at every endpoint of a real `failover serve` process: no 5xx, no crash,
no hang, and memory that stays flat."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .harness import Raw

ROOT = Path(__file__).resolve().parents[2]
PATHS = [
    "/v1/chat/completions",
    "/v1/messages",
    "/v1/embeddings",
    "/v1/models",
    "/v1/models/bench",
    "/health/live",
    "/health/ready",
    "/admin/status",
    "/admin/deployments/up/bench-model/restore",
    "/admin/breakers/up/bench-model/reset",
    "/chat/completions",
]
METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]
CONFIG = """\
providers:
  up: {{kind: openai, base_url: "http://127.0.0.1:{port}/v1", api_key: sk-fuzz}}
routes:
  bench: {{deployments: [{{provider: up, model: bench-model}}]}}
server: {{max_body: 64KB}}
defaults: {{health: {{enabled: false}}}}
"""

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
VALID: dict[str, dict[str, Any]] = {
    "/v1/chat/completions": {"model": "bench", "messages": [{"role": "user", "content": "hi"}]},
    "/v1/messages": {
        "model": "bench",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "hi"}],
    },
    "/v1/embeddings": {"model": "bench", "input": "hi"},
}
FIELDS = [
    "model",
    "messages",
    "stream",
    "tools",
    "tool_choice",
    "max_tokens",
    "system",
    "input",
    "stop_sequences",
    "temperature",
    "stream_options",
    "metadata",
    "content",
    "role",
]


@st.composite
def bodies(draw: st.DrawFn, path: str) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "mutated", "mutated", "mutated_deep"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    body = json.loads(json.dumps(VALID.get(path, VALID["/v1/chat/completions"])))
    for _ in range(draw(st.integers(1, 3))):
        body[draw(st.sampled_from(FIELDS))] = draw(json_values)
    if kind == "mutated_deep" and isinstance(body.get("messages"), list) and body["messages"]:
        message = body["messages"][0]
        if isinstance(message, dict):
            message[draw(st.sampled_from(FIELDS))] = draw(json_values)
    if draw(st.booleans()):
        body["stream"] = draw(st.booleans())
    return json.dumps(body).encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Served:
    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc = proc
        self.port = port
        self.http = Raw(port, timeout=10)


def _start(args: list[str]) -> subprocess.Popen[bytes]:
    # never a pipe nobody reads: a full pipe would block the gateway's request logging
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A fast fake upstream and `failover serve`, each in its own process."""
    up_port, gw_port = free_port(), free_port()
    config = tmp_path_factory.mktemp("fuzz") / "fuzz.yaml"
    config.write_text(CONFIG.format(port=up_port))
    upstream = _start(
        [sys.executable, str(ROOT / "benchmarks" / "upstream.py"), "--port", str(up_port)]
    )
    gateway = _start(
        [sys.executable, "-m", "failover.cli", "serve", "-c", str(config), "--port", str(gw_port)]
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with Raw(gw_port, timeout=1) as probe:
                    if probe.get("/health/ready").status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.01)
        served = Served(gateway, gw_port)
        yield served
        served.http.close()
    finally:
        for proc in (gateway, upstream):
            proc.terminate()
            proc.wait(10)


def send(served: Served, method: str, path: str, body: bytes, headers: dict[str, str]) -> int:
    answer = served.http.request(method, path, body if method != "GET" else None, headers)
    assert answer.status < 500, (method, path, body[:300], answer.status, answer.body[:500])
    if answer.status >= 400 and answer.body:
        parsed = json.loads(answer.body)
        assert "error" in parsed, parsed
    return answer.status


header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_fuzz_every_endpoint(served: Served, data: st.DataObject) -> None:
    """Random methods, paths, headers and (mostly almost valid) bodies: never a 5xx."""
    path = data.draw(st.sampled_from([*PATHS, "/", "/v1", "/admin", "/v1/chat/completions/x"]))
    method = data.draw(st.sampled_from(METHODS)) if data.draw(st.booleans()) else "POST"
    body = data.draw(bodies(path))
    headers = {"content-type": data.draw(st.sampled_from(["application/json", "text/plain", "x"]))}
    if data.draw(st.booleans()):
        headers["x-request-id"] = data.draw(header_values)
    if data.draw(st.booleans()):
        headers["authorization"] = data.draw(header_values)
    send(served, method, path, body, headers)


def test_memory_stays_flat_under_bad_requests(served: Served) -> None:
    """Thousands of malformed and valid requests later, the gateway's memory has not grown."""
    rng = random.Random(7)
    samples = [
        ("POST", "/v1/chat/completions", b"{bad"),
        ("POST", "/v1/chat/completions", b'{"model": "nope", "messages": [{"role": "user"}]}'),
        ("POST", "/v1/chat/completions", json.dumps(VALID["/v1/chat/completions"]).encode()),
        ("POST", "/v1/messages", json.dumps(VALID["/v1/messages"]).encode()),
        (
            "POST",
            "/v1/messages",
            b'{"model": "bench", "max_tokens": 5, "messages": [{"role": "x"}]}',
        ),
        ("GET", "/nowhere", b""),
        ("POST", "/v1/chat/completions", b"x" * 70_000),
    ]

    def burst(n: int) -> None:
        for _ in range(n):
            method, path, body = rng.choice(samples)
            rid = f"r{rng.random()}"
            send(
                served,
                method,
                path,
                body,
                {"content-type": "application/json", "x-request-id": rid},
            )

    burst(1500)  # warm-up: caches, pools and allocator arenas reach their size
    before = rss_kb(served.proc.pid)
    burst(3000)
    grown_mb = (rss_kb(served.proc.pid) - before) / 1024
    assert grown_mb < 8, f"RSS grew by {grown_mb:.1f} MB"
    assert served.proc.poll() is None
    assert served.http.get("/health/live").status == 200
