"""What the router hands back: whole replies, embeddings replies and committed streams."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from failover import FakeClock
from failover.errors import AttemptTimeout, ProviderError, ServerError, StreamInterrupted
from failover.openai_shapes import ChunkMaker, completion_from_text
from failover.reply import EmbeddingsReply, Reply, StreamReply
from failover.trace import Trace
from failover.types import Chunk, Payload

MAKER = ChunkMaker(model="m")


class Ended:
    """Records how the stream's `finish` callback was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[ProviderError | None, bool]] = []

    async def __call__(self, err: ProviderError | None, ok: bool) -> None:
        self.calls.append((err, ok))


async def pieces(*texts: str, then: BaseException | None = None, gap: float = 0.0,
                 clock: FakeClock | None = None) -> AsyncIterator[Chunk]:  # fmt: skip
    for text in texts:
        if gap and clock is not None:
            await clock.sleep(gap)
        yield MAKER.chunk({"content": text})
    if then is not None:
        raise then


def reply_of(
    rest: AsyncIterator[Chunk], ended: Ended, clock: FakeClock, **kw: float
) -> StreamReply:
    return StreamReply(
        first=MAKER.role(),
        rest=rest,
        finish=ended,
        trace=Trace("chat", "r1"),
        route="chat",
        deployment="a/m",
        clock=clock,
        idle_timeout=kw.get("idle"),
        deadline=kw.get("deadline"),
        classify=lambda exc: ServerError(str(exc)),
    )


async def texts_of(reply: StreamReply) -> list[str]:
    out = []
    async for chunk in reply:
        out.append(chunk.body["choices"][0]["delta"].get("content") or "")
    return out


def test_reply_exposes_body_and_text() -> None:
    """`Reply.body` is the completion's dict and `text` its first choice's content."""
    reply = Reply(completion_from_text("hi", model="m"), Trace("chat"), "chat", "a/m")
    assert reply.text == "hi"
    assert reply.body["object"] == "chat.completion"


def test_embeddings_reply_exposes_body() -> None:
    """`EmbeddingsReply.body` is the OpenAI list body."""
    payload = Payload({"object": "list", "data": [{"embedding": [0.1]}]})
    reply = EmbeddingsReply(payload, Trace("embed"), "embed", "a/e")
    assert reply.body["data"][0]["embedding"] == [0.1]


async def test_stream_yields_first_chunk_then_the_rest_and_records_success(
    clock: FakeClock,
) -> None:
    """The held first chunk comes first; a stream that ends normally is recorded as ok."""
    ended = Ended()
    assert await texts_of(reply_of(pieces("a", "b"), ended, clock)) == ["", "a", "b"]
    assert ended.calls == [(None, True)]


async def test_failure_after_the_first_chunk_is_stream_interrupted(clock: FakeClock) -> None:
    """A provider error mid-stream ends iteration with StreamInterrupted carrying it."""
    ended = Ended()
    reply = reply_of(pieces("a", then=ServerError("boom")), ended, clock)
    with pytest.raises(StreamInterrupted) as caught:
        await texts_of(reply)
    assert isinstance(caught.value.last, ServerError)
    assert ended.calls[0][1] is False and isinstance(ended.calls[0][0], ServerError)


async def test_unexpected_exceptions_are_classified(clock: FakeClock) -> None:
    """An exception that is not a ProviderError goes through `classify`."""
    ended = Ended()
    reply = reply_of(pieces("a", then=RuntimeError("odd")), ended, clock)
    with pytest.raises(StreamInterrupted, match="odd"):
        await texts_of(reply)


async def test_a_silent_stream_is_cut_after_the_idle_limit(clock: FakeClock) -> None:
    """No chunk within the idle limit: the stream fails as a timeout of its deployment."""
    ended = Ended()
    reply = reply_of(pieces("a", gap=30.0, clock=clock), ended, clock, idle=5.0)
    async with clock.autojump():
        with pytest.raises(StreamInterrupted) as caught:
            await texts_of(reply)
    assert isinstance(caught.value.last, AttemptTimeout)
    assert caught.value.last.deployment == "a/m"


async def test_closing_early_is_not_held_against_the_deployment(clock: FakeClock) -> None:
    """`aclose` before the end records neither success nor failure, once."""
    ended = Ended()
    reply = reply_of(pieces("a", "b"), ended, clock)
    await reply.aclose()
    await reply.aclose()
    assert ended.calls == [(None, False)]
    assert "done" in repr(reply)
