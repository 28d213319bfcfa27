"""What the caller gets of a recovered stream: exactly the rest of its answer, whatever the
recovering deployment repeats, says before catching up, or how it splits its chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator

from failover import FakeClock, Kind, RetryPolicy, Route, Router, Timeouts
from failover.errors import ConnectionFailed
from failover.openai_shapes import ChunkMaker
from failover.reply import StreamReply
from failover.resilience.streams import Prefill
from failover.testing import ScriptedDeployment, fail, ok
from failover.types import BaseDeployment, Chunk, Completion, Request

HI = {"messages": [{"role": "user", "content": "weather in Paris?"}], "stream": True}
CALL = {"index": 0, "id": "call_1", "type": "function"}


class ToolCaller(BaseDeployment):
    """Streams an optional text preamble, then a get_weather call; `cut` breaks it after the
    call's first argument piece."""

    def __init__(self, name: str, *, preamble: str = "", cut: bool = False) -> None:
        self.name = self.model = name
        self.preamble = preamble
        self.cut = cut

    async def complete(self, request: Request) -> Completion:
        raise NotImplementedError

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        maker = ChunkMaker(id=f"chatcmpl-{self.name}", model=self.name, created=0)
        yield maker.role(content=None)
        if self.preamble:
            yield maker.chunk({"content": self.preamble})
        function = {"name": "get_weather", "arguments": '{"city"'}
        yield maker.chunk({"tool_calls": [{**CALL, "function": function}]})
        if self.cut:
            raise ConnectionFailed("cut", deployment=self.name)
        yield maker.chunk({"tool_calls": [{"index": 0, "function": {"arguments": ': "Paris"}'}}]})
        yield maker.chunk({}, finish_reason="tool_calls")


def router(clock: FakeClock, *deps: BaseDeployment) -> Router:
    return Router(
        {"chat": Route(list(deps), retry=RetryPolicy(attempts=1))},
        clock=clock,
        timeouts=Timeouts(learn=None),
    )


async def heard(reply: StreamReply) -> tuple[str, str]:
    """(the text, the tool call arguments) the caller received."""
    text, arguments = "", ""
    async for chunk in reply:
        for choice in chunk.body["choices"]:
            delta = choice["delta"]
            text += delta.get("content") or ""
            for call in delta.get("tool_calls") or ():
                arguments += call["function"].get("arguments") or ""
    return text, arguments


async def test_a_restart_that_talks_before_the_tool_call_adds_no_text(clock: FakeClock) -> None:
    """The caller, who had only a tool call, gets none of the restart's preamble text."""
    primary = ToolCaller("primary", cut=True)
    backup = ToolCaller("backup", preamble="Let me look that up. ")
    reply = await router(clock, primary, backup).open_stream("chat", HI)
    text, arguments = await heard(reply)
    assert reply.recoveries == 1 and reply.deployment == "backup"
    assert arguments == '{"city": "Paris"}'
    assert text == ""  # the answer the caller began had no text before its tool call


async def test_held_back_whitespace_is_not_repeated(clock: FakeClock) -> None:
    """Caller had "One.\\n\\n"; the backup continues "One." with "\\nTwo." in one chunk: no
    third newline (sent as "\\n" then "Two." it already gets "One.\\n\\nTwo.")."""
    primary = ScriptedDeployment(
        "primary",
        fail(Kind.CONNECTION, after_chunks=2, chunks=("One.", "\n\n", "Two.")),
        clock=clock,
    )
    backup = ScriptedDeployment(
        "backup", ok(chunks=("One.", "\nTwo.")), clock=clock, prefill=Prefill.ASSISTANT
    )
    reply = await router(clock, primary, backup).open_stream("chat", HI)
    text, _ = await heard(reply)
    assert reply.trace.attempts[1].recovery == "continue"
    assert text == "One.\n\nTwo."
