"""Test helpers for your own failover tests: a deployment that follows a script.

    clock = FakeClock()
    primary = ScriptedDeployment("primary", fail(500), clock=clock)       # always 500
    backup = ScriptedDeployment("backup", ok("hi", latency=0.01), clock=clock)
    router = Router({"chat": Route([primary, backup])}, clock=clock)

Each call takes the next step of the script; the last step repeats. Latencies and hangs run on
the injected clock, so tests finish in milliseconds of real time.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from .classify import classify_status
from .clock import Clock, SystemClock
from .errors import ERROR_CLASSES, Kind, ProviderError, error_for
from .openai_shapes import ChunkMaker, completion_from_text
from .resilience.streams import Prefill
from .types import BaseDeployment, Chunk, Completion, Payload, Request

__all__ = ["ScriptedDeployment", "Step", "fail", "hang", "ok"]


@dataclass(frozen=True, slots=True)
class Step:
    """One scripted call: wait `latency`, then answer `text` or raise `error`."""

    latency: float = 0.0
    text: str = "ok"
    error: ProviderError | None = None
    chunks: tuple[str, ...] = ()  # stream pieces; default: the text in one piece
    chunk_gap: float = 0.0  # wait between stream pieces
    fail_after_chunks: int | None = None  # streams: raise `error` after this many pieces
    malformed_after: int | None = None  # streams: an unreadable chunk after this many pieces
    finish: bool = True  # streams: end with a finish reason (False: a cut at the end)
    role_chunk: bool = False  # streams: a role-only chunk before the first piece
    extra: dict[str, Any] = field(default_factory=dict)


def ok(
    text: str = "ok",
    *,
    latency: float = 0.0,
    chunks: tuple[str, ...] = (),
    chunk_gap: float = 0.0,
    **quirks: Any,
) -> Step:
    """A successful answer after `latency` seconds; `quirks` are the stream fields of `Step`
    (`malformed_after`, `finish`, `role_chunk`)."""
    text = "".join(chunks) if chunks else text
    return Step(latency=latency, text=text, chunks=chunks, chunk_gap=chunk_gap, **quirks)


def fail(
    status_or_kind: int | Kind = 500,
    *,
    latency: float = 0.0,
    retry_after: float | None = None,
    message: str = "scripted failure",
    after_chunks: int | None = None,
    chunks: tuple[str, ...] = (),
    **quirks: Any,
) -> Step:
    """A failure of an HTTP status or a `Kind`, after `latency` seconds (for streams, after
    `after_chunks` pieces of `chunks`); `quirks` are the stream fields of `Step`."""
    if isinstance(status_or_kind, Kind):
        kind, status = status_or_kind, None
    else:
        kind, status = classify_status(status_or_kind), status_or_kind
    error = error_for(kind, message, status=status, retry_after=retry_after)
    return Step(
        latency=latency, error=error, fail_after_chunks=after_chunks, chunks=chunks, **quirks
    )


def hang() -> Step:
    """Never answer (until cancelled by a timeout)."""
    return Step(latency=math.inf)


class ScriptedDeployment(BaseDeployment):
    """A deployment whose calls follow `steps`; it counts what it was asked to do.

    With `prefill` other than NONE, a stream whose request ends with an assistant message
    continues it: the script's text after that message's text (as a model would).
    """

    def __init__(
        self,
        name: str,
        *steps: Step,
        clock: Clock | None = None,
        weight: float = 1.0,
        timeout: float | None = None,
        prefill: Prefill = Prefill.NONE,
    ) -> None:
        self.name = name
        self.model = name
        self.weight = weight
        self.timeout = timeout
        self.prefill = prefill
        self.steps = list(steps) or [ok()]
        self.clock = clock or SystemClock()
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.cancelled = 0
        self.requests: list[Request] = []

    def script(self, *steps: Step) -> None:
        """Replace the script (the call count goes on)."""
        self.steps = list(steps)
        self._offset = self.calls

    _offset = 0

    def _next(self, request: Request) -> Step:
        index = min(self.calls - self._offset, len(self.steps) - 1)
        self.calls += 1
        self.requests.append(request)
        return self.steps[index]

    async def _wait(self, seconds: float) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if seconds > 0:
                await self.clock.sleep(1e9 if math.isinf(seconds) else seconds)
        except BaseException:
            self.cancelled += 1
            raise
        finally:
            self.in_flight -= 1

    async def complete(self, request: Request) -> Completion:
        step = self._next(request)
        await self._wait(step.latency)
        if step.error is not None:
            raise _fresh(step.error)
        return completion_from_text(step.text, model=self.name)

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        step = self._next(request)
        await self._wait(step.latency)
        if step.error is not None and step.fail_after_chunks is None:
            raise _fresh(step.error)
        pieces = self._continued(step.chunks or (step.text,), request)
        maker = ChunkMaker(id="chatcmpl-scripted", model=self.name, created=0)
        if step.role_chunk:
            yield maker.role()
        for i, piece in enumerate(pieces):
            if step.fail_after_chunks is not None and i >= step.fail_after_chunks:
                assert step.error is not None
                raise _fresh(step.error)
            if step.malformed_after is not None and i == step.malformed_after:
                yield Chunk(raw=b'{"choices": [{"delta": ')
            if i and step.chunk_gap:
                await self._wait(step.chunk_gap)
            delta: dict[str, Any] = {"content": piece}
            if i == 0 and not step.role_chunk:
                delta["role"] = "assistant"
            yield maker.chunk(delta)
        if step.finish:
            yield maker.chunk({}, finish_reason="stop")

    def _continued(self, pieces: tuple[str, ...], request: Request) -> tuple[str, ...]:
        """The pieces after a trailing assistant message's text, when prefill is on."""
        messages = request.get("messages") or []
        last = messages[-1] if messages else {}
        if self.prefill is Prefill.NONE or last.get("role") != "assistant":
            return pieces
        begun = str(last.get("content") or "")
        out: list[str] = []
        for piece in pieces:  # drop what was begun, splitting the piece it ends in
            if len(begun) >= len(piece) and begun.startswith(piece):
                begun = begun[len(piece) :]
            elif begun and piece.startswith(begun):
                out.append(piece[len(begun) :])
                begun = ""
            else:
                out.append(piece)
        return tuple(p for p in out if p)

    async def probe(self) -> None:
        """Scripted deployments pass every health probe (script failures with `fail`)."""
        return None

    async def embeddings(self, request: Request) -> Payload:
        return Payload({"object": "list", "data": [], "model": self.name})

    def __repr__(self) -> str:
        return f"<ScriptedDeployment {self.name} calls={self.calls}>"


def _fresh(error: ProviderError) -> ProviderError:
    """A new exception per raise, so tracebacks and `deployment` never leak between calls."""
    cls = ERROR_CLASSES[error.kind]
    return cls(error.message, status=error.status, retry_after=error.retry_after)
