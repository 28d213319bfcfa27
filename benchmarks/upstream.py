"""A minimal, fast OpenAI-compatible upstream for benchmarks: a raw asyncio protocol on uvloop
that answers POST /v1/chat/completions with a fixed completion (or a fixed SSE stream when the
body asks for `"stream": true`) and GET /v1/models with a fixed list. HTTP/1.1 keep-alive,
pipelining-safe; no parsing beyond what answering needs, so the gateway is what gets measured.

    python benchmarks/upstream.py --port 9100
    python benchmarks/upstream.py --port 9100 --chunks 20 --stream-seconds 2

With `--chunks N --stream-seconds T` a stream is paced like a model writing its answer: the
role and the first of N content chunks at once, the others spaced T/N apart, the finish
reason and `[DONE]` at T. Without them the whole stream is written at once (the fast path
`make bench` measures time to first token with).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
from dataclasses import dataclass
from typing import Any

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench0000000000000000000000",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "bench-model",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Hello! This is a fixed answer from the benchmark upstream.",
                    "refusal": None,
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
        "system_fingerprint": "fp_bench",
    },
    separators=(",", ":"),
).encode()


def _chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-bench0000000000000000000000",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "bench-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body, separators=(",", ":")).encode() + b"\n\n"


EVENTS = [
    _chunk({"role": "assistant", "content": "", "refusal": None}),
    *(_chunk({"content": word}) for word in ["Hello", "!", " This", " is", " a", " stream", "."]),
    _chunk({}, "stop"),
    b"data: [DONE]\n\n",
]
MODELS = (
    b'{"object":"list","data":[{"id":"bench-model","object":"model","created":0,'
    b'"owned_by":"bench"}]}'
)


def _response(body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
        % len(body)
    ) + body


RESPONSE = _response(COMPLETION)
MODELS_RESPONSE = _response(MODELS)
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"


def _chunked(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@dataclass(frozen=True)
class Pace:
    """A paced stream: `chunks` content chunks spread over `seconds`."""

    chunks: int
    seconds: float

    @property
    def gap(self) -> float:
        return self.seconds / self.chunks


CONTENT = _chunk({"content": " token"})
PACED_FIRST = _chunked(EVENTS[0] + CONTENT)  # the role and the first content, in one write
PACED_CHUNK = _chunked(CONTENT)
PACED_END = _chunked(EVENTS[-2]) + _chunked(EVENTS[-1]) + b"0\r\n\r\n"


class Upstream(asyncio.Protocol):
    """One client connection."""

    def __init__(self, pace: Pace | None) -> None:
        self.buf = b""
        self.transport: Any = None
        self.pace = pace
        self.sent = 0  # content chunks of the paced stream in progress
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end]
            length = 0
            lower = head.lower()
            at = lower.find(b"content-length:")
            if at >= 0:
                stop = lower.find(b"\r\n", at)
                length = int(lower[at + 15 : stop if stop >= 0 else len(lower)])
            total = end + 4 + length
            if len(self.buf) < total:
                return
            body = self.buf[end + 4 : total]
            self.buf = self.buf[total:]
            self._answer(head, body)

    def _answer(self, head: bytes, body: bytes) -> None:
        assert self.transport is not None
        if head.startswith(b"GET") and b"/models" in head[:64]:
            self.transport.write(MODELS_RESPONSE)
        elif not head.startswith(b"POST"):
            self.transport.write(NOT_FOUND)
        elif b'"stream":true' in body or b'"stream": true' in body:
            if self.pace is not None:
                self.transport.write(STREAM_HEAD + PACED_FIRST)
                self.sent = 1
                self._later()
            else:
                self.transport.write(
                    STREAM_HEAD + b"".join(_chunked(e) for e in EVENTS) + b"0\r\n\r\n"
                )
        else:
            self.transport.write(RESPONSE)

    def _later(self) -> None:
        # a timer per connection rather than a task: 10,000 paced streams cost no coroutines
        assert self.pace is not None
        self.timer = asyncio.get_running_loop().call_later(self.pace.gap, self._next)

    def _next(self) -> None:
        assert self.pace is not None
        self.timer = None
        if self.transport.is_closing():
            return
        if self.sent < self.pace.chunks:
            self.transport.write(PACED_CHUNK)
            self.sent += 1
            self._later()
        else:
            self.transport.write(PACED_END)


async def serve(port: int, pace: Pace | None) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Upstream(pace), "127.0.0.1", port, backlog=4096)
    print(f"upstream ready on 127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--chunks", type=int, default=0, help="paced: content chunks a stream")
    parser.add_argument("--stream-seconds", type=float, default=2.0, help="paced: their span")
    args = parser.parse_args()
    pace = Pace(args.chunks, args.stream_seconds) if args.chunks > 0 else None
    raise_open_files()
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        asyncio.run(serve(args.port, pace))
    else:
        uvloop.run(serve(args.port, pace))


def raise_open_files() -> None:
    """Lift the soft limit on open files to the hard one: 10,000 held streams are 10,000
    sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


if __name__ == "__main__":
    main()
