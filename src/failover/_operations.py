"""What an attempt asks of a deployment: a whole chat completion, embeddings, or a stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

from ._request import Call, Operation
from .clock import Clock, deadline_scope
from .errors import ServerError
from .reply import aclose_quietly
from .types import Chunk, Completion, Payload, Request

__all__ = ["COMPLETE", "EMBED", "OpenStream", "Opened"]


class _Complete(Operation[Completion]):
    """A whole chat completion."""

    async def send(self, call: Call, request: Request) -> Completion:
        return await call.slot.deployment.complete(request)


class _Embed(Operation[Payload]):
    """Embeddings."""

    async def send(self, call: Call, request: Request) -> Payload:
        return await call.slot.deployment.embeddings(request)


COMPLETE: Operation[Completion] = _Complete()
EMBED: Operation[Payload] = _Embed()


class Opened:
    """A stream whose first chunk has arrived: the chunk, the rest, and the call it belongs to."""

    __slots__ = ("call", "first", "rest")

    def __init__(self, call: Call, first: Chunk, rest: AsyncIterator[Chunk]) -> None:
        self.call = call
        self.first = first
        self.rest = rest


class OpenStream(Operation[Opened]):
    """Start a stream and wait for its first chunk, within the first-token limit.

    Until the first chunk is in hand a failure fails over invisibly; the stream's outcome is
    recorded when it ends (see `StreamReply`).
    """

    ends_on_return: ClassVar[bool] = False

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    async def send(self, call: Call, request: Request) -> Opened:
        rest = call.slot.deployment.stream(request).__aiter__()
        first_by = call.plan.timeouts.first_token
        try:
            until = None if first_by is None else self.clock.now() + first_by
            async with deadline_scope(self.clock, until):
                first = await anext(rest)
        except StopAsyncIteration:
            raise ServerError(
                "stream ended before its first chunk", deployment=call.slot.name
            ) from None
        except BaseException:
            await aclose_quietly(rest)
            raise
        call.attempt.ttft = self.clock.now() - call.started
        return Opened(call, first, rest)
