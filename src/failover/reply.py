"""What the router hands back: a `Reply`, an `EmbeddingsReply`, or a `StreamReply` that is
already committed to one deployment (its first chunk is in hand) and records the stream's
outcome when it ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .clock import Clock, deadline_scope
from .errors import AttemptTimeout, ProviderError, StreamInterrupted
from .trace import Trace
from .types import Chunk, Completion, Payload

__all__ = ["EmbeddingsReply", "Reply", "StreamReply", "aclose_quietly"]


@dataclass(slots=True)
class Reply:
    """A completed request: the answer, which deployment gave it, and the trace of attempts."""

    completion: Completion
    trace: Trace
    route: str
    deployment: str

    @property
    def body(self) -> dict[str, Any]:
        """The OpenAI-format response body."""
        return self.completion.body

    @property
    def text(self) -> str:
        """The first choice's message text."""
        return self.completion.text


@dataclass(slots=True)
class EmbeddingsReply:
    """Embeddings: the answer, which deployment gave it, and the trace of attempts."""

    embeddings: Payload
    trace: Trace
    route: str
    deployment: str

    @property
    def body(self) -> dict[str, Any]:
        """The OpenAI-format response body (`{"object": "list", "data": [...]}`)."""
        return self.embeddings.body


Finish = Callable[[ProviderError | None, bool], Awaitable[None]]


class StreamReply:
    """A stream committed to one deployment. Iterate it for `Chunk`s.

    A failure after the first chunk raises `StreamInterrupted`: it cannot be switched to another
    deployment without the caller seeing two half-answers. The outcome is recorded against the
    deployment when the stream ends, fails, or is closed early.
    """

    def __init__(
        self,
        *,
        first: Chunk,
        rest: AsyncIterator[Chunk],
        finish: Finish,
        trace: Trace,
        route: str,
        deployment: str,
        clock: Clock,
        idle_timeout: float | None,
        deadline: float | None,
        classify: Callable[[BaseException], ProviderError],
    ) -> None:
        self.trace = trace
        self.route = route
        self.deployment = deployment
        self._first: Chunk | None = first
        self._rest = rest
        self._finish = finish
        self._clock = clock
        self._idle = idle_timeout
        self._deadline = deadline
        self._classify = classify
        self._done = False

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Chunk]:
        try:
            if self._first is not None:
                first, self._first = self._first, None
                yield first
            while not self._done:
                chunk = await self._next()
                if chunk is None:
                    return
                yield chunk
        finally:
            if not self._done:  # the caller stopped iterating early
                await self._end(None, ok=False)

    async def _next(self) -> Chunk | None:
        try:
            async with deadline_scope(self._clock, self._chunk_deadline()):
                return await anext(self._rest)
        except StopAsyncIteration:
            await self._end(None, ok=True)
            return None
        except TimeoutError as exc:
            err = AttemptTimeout(
                "stream stalled: no chunk within the idle timeout", deployment=self.deployment
            )
            await self._fail(err, exc)
        except ProviderError as exc:
            await self._fail(exc, exc)
        except Exception as exc:
            await self._fail(self._classify(exc), exc)
        except BaseException:  # cancelled: the caller went away; not the deployment's fault
            await self._end(None, ok=False)
            raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _chunk_deadline(self) -> float | None:
        if self._idle is None:
            return self._deadline
        idle_until = self._clock.now() + self._idle
        return idle_until if self._deadline is None else min(idle_until, self._deadline)

    async def _fail(self, err: ProviderError, cause: BaseException) -> None:
        err.deployment = err.deployment or self.deployment
        await self._end(err, ok=False)
        raise StreamInterrupted(
            f"stream from {self.deployment} failed after it started: {err.message}",
            trace=self.trace,
            last=err,
        ) from cause

    async def _end(self, err: ProviderError | None, *, ok: bool) -> None:
        if self._done:
            return
        self._done = True
        await self._finish(err, ok)
        if not ok:
            await aclose_quietly(self._rest)

    async def aclose(self) -> None:
        """Stop early: closes the upstream stream; not counted against the deployment."""
        await self._end(None, ok=False)

    def __repr__(self) -> str:
        state = "done" if self._done else "open"
        return f"<StreamReply {self.route} via {self.deployment} {state}>"


async def aclose_quietly(iterator: AsyncIterator[Any]) -> None:
    """Close an async iterator if it can be closed; a broken stream may fail to, harmlessly."""
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()
