"""What the router hands back: whole replies, embeddings replies and committed streams."""

from __future__ import annotations

from failover import FakeClock, Route, Router
from failover.openai_shapes import completion_from_text
from failover.reply import EmbeddingsReply, Reply
from failover.testing import ScriptedDeployment, ok
from failover.trace import Trace
from failover.types import Payload

HI = {"messages": [{"role": "user", "content": "hi"}], "stream": True}


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


async def test_stream_reply_relays_the_answer_and_records_success(clock: FakeClock) -> None:
    """Iterating gives every chunk; a whole answer is recorded as its deployment's success."""
    deployment = ScriptedDeployment("a", ok(chunks=("x", "y")), clock=clock)
    router = Router({"chat": Route([deployment])}, clock=clock)
    reply = await router.open_stream("chat", HI)
    assert reply.deployment == reply.first_deployment == "a"
    texts = [c.body["choices"][0]["delta"].get("content") async for c in reply]
    assert texts == ["x", "y", None]
    assert router.breaker("a").counts() == (0, 1)
    assert reply.recoveries == 0
    assert repr(reply) == "<StreamReply chat via a>"


async def test_closing_early_is_not_held_against_the_deployment(clock: FakeClock) -> None:
    """`aclose` before the end records neither success nor failure, once."""
    deployment = ScriptedDeployment("a", ok(chunks=("x", "y")), clock=clock)
    router = Router({"chat": Route([deployment])}, clock=clock)
    reply = await router.open_stream("chat", HI)
    await reply.aclose()
    await reply.aclose()
    assert router.breaker("a").counts() == (0, 0)
    assert router.store.stats("a").in_flight == 0
