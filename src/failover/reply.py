"""What the router hands back: a `Reply`, an `EmbeddingsReply`, or a `StreamReply` already
committed to a deployment (its first content is in hand).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from typing import Any

from ._stream import Heartbeat, StreamSession, Write
from .trace import Trace
from .types import Chunk, Completion, Payload

__all__ = ["EmbeddingsReply", "Heartbeat", "Reply", "StreamReply", "Write"]


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


class StreamReply:
    """A stream committed to a deployment. Iterate it for `Chunk`s.

    Until its first content the router failed over invisibly. After it, a break (a cut, a
    silence, an error event, too many malformed chunks) is recovered on another deployment
    when the route allows (`streams.resume`): the caller keeps one stream. When it cannot be,
    iteration raises `StreamInterrupted` naming the original cause; a broken stream never
    ends as if it were whole. `aclose` stops early without blaming anyone.
    """

    def __init__(self, session: StreamSession, *, trace: Trace, route: str) -> None:
        self.trace = trace
        self.route = route
        self._session = session
        self.first_deployment = session.deployment

    @property
    def deployment(self) -> str:
        """The deployment sending the stream now (another one after a recovery)."""
        return self._session.deployment

    @property
    def ready(self) -> bool:
        """The next chunk, or the end, follows at once (a relay may send them together)."""
        return self._session.ready

    @property
    def recoveries(self) -> int:
        """How many breaks were recovered: more than 0 means the answer was spliced."""
        return self._session.recoveries

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[Chunk]:
        async with contextlib.aclosing(self._session.events()) as events:
            async for item in events:
                if not isinstance(item, Heartbeat):
                    yield item

    def write_directly(self, write: Write) -> None:
        """Let chunks go straight to `write` as the upstream's connection reads them, with no
        task woken per chunk (`write` returns how many of them it wrote; the rest, and every
        chunk when it cannot, are yielded by `events()` as usual). `events()` must still be
        iterated: it yields what was not written and drives the end, breaks and recovery."""
        self._session.write_directly(write)

    def events(self) -> AsyncGenerator[Chunk | Heartbeat, None]:
        """The chunks, with a `Heartbeat` now and then while a break is being recovered (a
        server sends a keep-alive so the client's connection stays open)."""
        return self._session.events()

    async def aclose(self) -> None:
        """Stop early: closes the upstream stream; not counted against the deployment."""
        await self._session.aclose()

    def __repr__(self) -> str:
        return f"<StreamReply {self.route} via {self.deployment}>"
