"""What an attempt asks of a deployment: a whole chat completion, embeddings, or a stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import ClassVar, Protocol

from ._aio import aclose_quietly
from ._delivered import has_content
from ._request import Call, Operation
from .clock import Clock, deadline_scope
from .errors import ConnectionFailed, ServerError
from .openai_shapes import wants_usage
from .types import BaseDeployment, Chunk, Completion, Payload, Request

__all__ = ["CHAT", "COMPLETE", "EMBED", "OpenStream", "Opened", "Source"]


class _Complete(Operation[Completion]):
    """A whole chat completion."""

    def send(self, call: Call, request: Request) -> Awaitable[Completion]:
        return call.slot.deployment.complete(request)


class _Embed(Operation[Payload]):
    """Embeddings."""

    name: ClassVar[str] = "embeddings"

    def send(self, call: Call, request: Request) -> Awaitable[Payload]:
        return call.slot.deployment.embeddings(request)


COMPLETE: Operation[Completion] = _Complete()
EMBED: Operation[Payload] = _Embed()


class Source(Protocol):
    """Where each deployment's stream comes from: the request it is sent, and the stream."""

    def request_for(self, deployment: BaseDeployment, request: Request) -> Request:
        """The request `deployment` is sent for `request` (translated, maybe)."""
        ...

    def stream(self, deployment: BaseDeployment, request: Request) -> AsyncIterator[Chunk]:
        """The stream of `request_for`'s request."""
        ...


class _Chat:
    """OpenAI chat streams of the request as it is."""

    def request_for(self, deployment: BaseDeployment, request: Request) -> Request:
        return request

    def stream(self, deployment: BaseDeployment, request: Request) -> AsyncIterator[Chunk]:
        return deployment.stream(request)


CHAT: Source = _Chat()


class Opened:
    """A stream whose first content has arrived: the lifecycle chunks before it (a role-only
    first chunk), that content, the rest, and the call it belongs to. `usage`: the request
    sent asked for a usage chunk after the finish reason (`stream_options.include_usage`)."""

    __slots__ = ("call", "first", "held", "rest", "usage")

    def __init__(
        self,
        call: Call,
        held: list[Chunk],
        first: Chunk,
        rest: AsyncIterator[Chunk],
        *,
        usage: bool = False,
    ) -> None:
        self.call = call
        self.held = held
        self.first = first
        self.rest = rest
        self.usage = usage


class OpenStream(Operation[Opened]):
    """Start a stream and wait for its first content, within the first-content limit.

    Lifecycle chunks (the role) are held back until content arrives, so every failure before
    content fails over invisibly and keeps its own status. The stream's outcome is recorded
    when it ends (see `StreamSession`).
    """

    ends_on_return: ClassVar[bool] = False

    def __init__(
        self,
        clock: Clock,
        first_content: Callable[[Call], float | None],
        source: Source | None = None,
    ) -> None:
        self.clock = clock
        self.first_content = first_content  # the limit for a call: configured or learned
        self.source = source or CHAT  # what to ask each deployment for

    def using(self, source: Source) -> OpenStream:
        """The same operation with another source (a request in another client API)."""
        return OpenStream(self.clock, self.first_content, source)

    async def send(self, call: Call, request: Request) -> Opened:
        deployment = call.slot.deployment
        sent = self.source.request_for(deployment, request)
        rest = self.source.stream(deployment, sent).__aiter__()
        limit = self.first_content(call)
        held: list[Chunk] = []
        malformed = call.plan.streams.max_malformed
        try:
            async with deadline_scope(self.clock, None if limit is None else call.started + limit):
                first = await _first_content(rest, held, malformed, call.slot.name)
        except StopAsyncIteration:
            await aclose_quietly(rest)
            raise ServerError(
                "stream ended before its first content", deployment=call.slot.name
            ) from None
        except BaseException:
            await aclose_quietly(rest)
            raise
        call.attempt.ttft = self.clock.now() - call.started
        return Opened(call, held, first, rest, usage=wants_usage(sent))

    async def discard(self, answer: Opened) -> Call | None:
        """Close a stream nobody will read; its call is still to be recorded."""
        await aclose_quietly(answer.rest)
        return answer.call


async def _first_content(
    rest: AsyncIterator[Chunk], held: list[Chunk], malformed: int, deployment: str
) -> Chunk:
    """Read until a chunk carries content, keeping the lifecycle chunks before it in `held`
    and skipping up to `malformed` unreadable ones."""
    bad = 0
    while True:
        chunk = await anext(rest)
        try:
            content = has_content(chunk.body)
        except ValueError:
            bad += 1
            if bad > malformed:
                raise ConnectionFailed(
                    f"more than {malformed} malformed chunks before any content",
                    deployment=deployment,
                ) from None
            continue
        if content:
            return chunk
        held.append(chunk)
