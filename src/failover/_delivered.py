"""What the caller has received of a stream so far, read from the OpenAI chunks it was sent.

A stream is committed to its deployment by the first chunk that carries content; role-only
chunks before it are lifecycle frames. When a committed stream breaks, this is what a
recovery has to reproduce (restart and match) or continue from (assistant prefill).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Delivered", "ToolCall", "has_content"]


_CONTENT_KEYS = (
    "content",
    "tool_calls",
    "refusal",
    "function_call",
    "reasoning_content",
    "reasoning",
)


def has_content(body: dict[str, Any]) -> bool:
    """Whether a chunk carries anything beyond the stream's lifecycle (role, empty text)."""
    if isinstance(body.get("usage"), dict) and not body.get("choices"):
        return True
    for choice in body.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        if choice.get("finish_reason"):
            return True
        delta = choice.get("delta")
        if isinstance(delta, dict) and any(delta.get(key) for key in _CONTENT_KEYS):
            return True
    return False


@dataclass(slots=True)
class ToolCall:
    """One tool call as streamed so far."""

    id: str = ""
    name: str = ""
    arguments: str = ""


@dataclass(slots=True)
class Delivered:
    """The text, tool calls, finish reason and usage a caller has received of one stream."""

    id: str | None = None  # the stream's identity, kept when another deployment finishes it
    model: str | None = None
    created: int | None = None
    parts: list[str] = field(default_factory=list)
    tools: dict[int, ToolCall] = field(default_factory=dict)
    finish: str | None = None  # the first choice's finish reason
    usage: dict[str, Any] | None = None
    other_choices: bool = False  # n > 1: several answers interleaved, none can be resumed
    reasoning: bool = False  # reasoning deltas were sent: they cannot be prefilled
    choices: set[int] = field(default_factory=set)  # the indices of the choices seen
    finished: set[int] = field(default_factory=set)  # ... and of those that have finished

    def feed(self, body: dict[str, Any]) -> None:
        """Take one chunk the caller received."""
        # every chunk of every stream comes here: one lookup per key, no helper calls for the
        # usual chunk (one choice, a text delta)
        if self.id is None:
            self.id = body.get("id")
            self.model = body.get("model")
            self.created = body.get("created")
        usage = body.get("usage")
        if usage is not None and isinstance(usage, dict):
            self.usage = usage
        for choice in body.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            if not isinstance(index, int):
                index = -1  # unreadable: counted as another choice, never as the first
            self.choices.add(index)
            finish = choice.get("finish_reason")
            if finish:
                self.finished.add(index)
            if index != 0:
                self.other_choices = True
                continue
            delta = choice.get("delta")
            if delta and isinstance(delta, dict):
                self._delta(delta)
            if finish:
                self.finish = finish

    def _delta(self, delta: dict[str, Any]) -> None:
        text = delta.get("content")
        if text and isinstance(text, str):
            self.parts.append(text)
        if len(delta) == 1 and text is not None:
            return  # only text: nothing else to look for
        if delta.get("reasoning_content") or delta.get("reasoning"):
            self.reasoning = True
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._tool(call)

    def _tool(self, call: dict[str, Any]) -> None:
        index = call.get("index", 0)
        tool = self.tools.get(index)
        if tool is None:
            tool = self.tools[index] = ToolCall()
        tool.id = tool.id or str(call.get("id") or "")
        function = call.get("function")
        if isinstance(function, dict):
            tool.name += str(function.get("name") or "")
            tool.arguments += str(function.get("arguments") or "")

    @property
    def text(self) -> str:
        """The answer's text so far."""
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""

    @property
    def complete(self) -> bool:
        """Every choice seen has its finish reason: the answer is whole (usage may still
        follow). With n > 1 the first choice to finish does not end the others."""
        return self.finish is not None and self.choices <= self.finished

    @property
    def started(self) -> bool:
        """Anything but lifecycle frames reached the caller."""
        return bool(self.parts or self.tools or self.finish or self.reasoning)

    @property
    def body(self) -> dict[str, Any]:
        """The stream summed up as a completion without its content (id, model, finish
        reason, usage): what observers read of a stream's answer (`trace.Answer`)."""
        choice = {"index": 0, "finish_reason": self.finish}
        return {"id": self.id, "model": self.model, "choices": [choice], "usage": self.usage}

    def describe(self) -> str:
        """How far the answer got, for errors and traces: `213 chars, 1 tool call`."""
        text = f"{len(self.text)} chars"
        if self.tools:
            text += f", {len(self.tools)} tool call{'s' if len(self.tools) > 1 else ''}"
        return text
