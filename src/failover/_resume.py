"""Finishing a broken stream on another deployment: the request to send, and the splice.

    continue   the original request plus an assistant message holding exactly the text the
               caller already has (its trailing whitespace aside, which some providers
               refuse); the new stream continues it, and what it repeats of the held-back
               whitespace is dropped
    restart    the original request; the new stream is held back until it has reproduced
               what the caller already has (text, and any tool call begun), then only the
               rest is sent; what it says before catching up that the caller never had (text
               before a tool call) is not sent; if it says something else, it is dropped

Either way the caller keeps one stream: the spliced chunks carry the original stream's id,
model and creation time, and lifecycle frames of the new stream are not repeated.
"""

from __future__ import annotations

import copy
from typing import Any

from ._delivered import Delivered, ToolCall
from .openai_shapes import ChunkMaker
from .resilience.streams import Prefill
from .types import Request

__all__ = ["Diverged", "Splice", "continue_request"]


class Diverged(Exception):
    """A regenerated answer said something other than what the caller already has."""


def continue_request(
    request: Request, delivered: Delivered, prefill: Prefill
) -> tuple[Request, str]:
    """(the request that continues the answer, the text the new stream should repeat first).

    The prefill leaves out the delivered text's trailing whitespace: Anthropic refuses a final
    assistant message that ends in whitespace, and a model continues "Hello" with " world"
    anyway. If the caller's own request already ended with an assistant message (its own
    prefill), the delivered text continues that message.
    """
    text = delivered.text
    prefix = text.rstrip()
    messages = list(request.get("messages") or [])
    last = messages[-1] if messages else None
    if (
        isinstance(last, dict)
        and last.get("role") == "assistant"
        and isinstance(last.get("content"), str)
    ):
        messages[-1] = {**last, "content": last["content"] + prefix}
    else:
        messages.append({"role": "assistant", "content": prefix})
    body = {**request, "messages": messages}
    if prefill is Prefill.CONTINUE_FINAL_MESSAGE:
        body["continue_final_message"] = True
        body["add_generation_prompt"] = False
    return body, text[len(prefix) :]


class Splice:
    """Turns the chunks of a stream that finishes someone else's answer into the chunks the
    caller still needs.

    `expected` text (and tool calls) must be reproduced first; with `strict` (a restart)
    nothing the new stream says reaches the caller before it has caught up, and a difference
    is `Diverged`. With `strict` false (a continuation) only whitespace was held back: what
    the text repeats of it is dropped, the rest taken as it is.
    """

    def __init__(self, delivered: Delivered, *, expected: str, strict: bool) -> None:
        self._pending = expected
        self._tools = copy.deepcopy(delivered.tools) if strict else {}
        self._strict = strict
        self._maker = ChunkMaker(
            id=delivered.id or "chatcmpl-resumed",
            model=delivered.model or "",
            created=delivered.created or 0,
        )

    @property
    def matched(self) -> bool:
        """The new stream has caught up with the caller."""
        return not self._pending and not self._tools

    def feed(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The chunk bodies to send for one chunk of the new stream (maybe none yet).

        Raises `Diverged` when a restart says something else than the caller already has.
        """
        out: list[dict[str, Any]] = []
        for choice in body.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
            assert isinstance(delta, dict)
            fresh = self._delta(delta)
            finish = choice.get("finish_reason")
            if finish and not self.matched:
                if self._strict:
                    raise Diverged("the new answer ended before it caught up")
                self._pending = ""  # a continuation that ends at once: only whitespace was due
            if self._strict and not self.matched:
                continue  # said before it caught up (text before a tool call): not the caller's
            if fresh or finish:
                out.append(self._maker.chunk(fresh, finish_reason=finish).body)
        self._usage(body, out)
        return out

    def _usage(self, body: dict[str, Any], out: list[dict[str, Any]]) -> None:
        """Pass the usage on: in its own chunk, or with the chunk it came with (a native
        stream's finish carries it)."""
        usage = body.get("usage")
        if not isinstance(usage, dict):
            return
        if out:
            out[-1]["usage"] = usage
        elif not body.get("choices"):
            out.append(self._maker.usage_chunk(usage).body)

    def _delta(self, delta: dict[str, Any]) -> dict[str, Any]:
        fresh: dict[str, Any] = {}
        text = delta.get("content")
        if isinstance(text, str) and text:
            rest = self._text(text)
            if rest:
                fresh["content"] = rest
        calls = [c for c in delta.get("tool_calls") or () if isinstance(c, dict)]
        if calls:
            if self._pending and self._strict:
                raise Diverged("the new answer called a tool where the caller has text")
            sent = [out for call in calls if (out := self._tool(call)) is not None]
            if sent:
                fresh["tool_calls"] = sent
        if delta.get("refusal"):
            fresh["refusal"] = delta["refusal"]
        return fresh

    def _text(self, text: str) -> str:
        pending = self._pending
        if not pending:
            return text
        if pending.startswith(text):
            self._pending = pending[len(text) :]
            return ""
        if text.startswith(pending):
            self._pending = ""
            return text[len(pending) :]
        if self._strict:
            raise Diverged("the new answer's text differs from what the caller has")
        # a continuation that repeated only part of the held-back whitespace ("\nTwo." after
        # "\n\n"): what it repeated is dropped, so the caller gets the same however it is split
        self._pending = ""
        return text[_shared(pending, text) :]

    def _tool(self, call: dict[str, Any]) -> dict[str, Any] | None:
        index = call.get("index", 0)
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        assert isinstance(function, dict)
        expected = self._tools.get(index)
        if expected is None:
            return call  # a tool call the caller has not seen: sent as it is
        name = str(function.get("name") or "")
        if name and not expected.name.startswith(name):
            raise Diverged("the new answer calls another tool")
        expected.name = expected.name[len(name) :]
        return self._arguments(index, expected, str(function.get("arguments") or ""))

    def _arguments(self, index: int, expected: ToolCall, args: str) -> dict[str, Any] | None:
        pending = expected.arguments
        if pending.startswith(args):
            expected.arguments = pending[len(args) :]
            if not expected.arguments and not expected.name:
                del self._tools[index]
            return None
        if not args.startswith(pending):
            raise Diverged("the new answer's tool arguments differ from what the caller has")
        del self._tools[index]
        return {"index": index, "function": {"arguments": args[len(pending) :]}}


def _shared(a: str, b: str) -> int:
    """How many leading characters `a` and `b` have in common."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
