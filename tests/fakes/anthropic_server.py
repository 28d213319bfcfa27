"""A fake Anthropic server speaking the Messages wire format: message bodies, SSE streams with
`event:` lines (message_start ... message_stop, pings), error bodies, 429 and 529."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from .server import FakeServer, Received, Reply, Stream, sse

__all__ = ["FakeAnthropic", "ToolUse"]

DEFAULT_TEXT = "Hello from the fake Claude."
MODEL = "claude-sonnet-4-5-20250929"
ToolUse = tuple[str, str, list[str]]  # (id, name, pieces of the input JSON as streamed)
TRAILING_WHITESPACE = "messages: final assistant content cannot end with trailing whitespace"
PREFILL_REFUSED = (
    "This model does not support assistant message prefill. "
    "The conversation must end with a user message."
)
THINKING_PREFILL = (
    "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found `text`. "
    "When `thinking` is enabled, a final `assistant` message must start with a thinking block "
    "(preceeding the lastmost set of `tool_use` and `tool_result` blocks). We recommend you "
    "include thinking blocks from previous turns. To avoid this requirement, disable "
    "`thinking`. Please consult our documentation at "
    "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
)
THOUGHT = ["Let me ", "think."]  # the thinking a normal answer streams when thinking is on


class FakeAnthropic(FakeServer):
    """Anthropic at `base_url`: POST /v1/messages (stream or not), GET /v1/models.

    A trailing assistant message is continued (prefill), and refused as Anthropic does when
    it ends in whitespace, or when the request enables extended thinking and the message does
    not start with a thinking block. With thinking enabled, a streamed answer thinks first.
    """

    lead = 3  # message_start, content_block_start, ping
    malformed = sse(
        b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","te',
        event="content_block_delta",
    )

    def __init__(self, *, api_key: str | None = None, text: str = DEFAULT_TEXT) -> None:
        super().__init__()
        self.api_key = api_key
        self.text = text

    def answer(self, received: Received) -> Reply | Stream:
        if self.api_key is not None and received.headers.get("x-api-key") != self.api_key:
            return self.error(401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in received.headers:
            return self.error(400, "invalid_request_error", "anthropic-version header is required")
        body = received.json or {}
        model = str(body.get("model") or MODEL)
        if received.path == "/v1/messages" and received.method == "POST":
            prefix = _assistant_prefix(body.get("messages"))
            if prefix is not None and prefix != prefix.rstrip():
                return self.error(400, "invalid_request_error", TRAILING_WHITESPACE)
            thinks = _thinking(body)
            if prefix is not None and thinks and not _starts_with_thinking(body["messages"]):
                return self.error(400, "invalid_request_error", THINKING_PREFILL)
            if prefix is not None and self.prefill == "refuse":
                return self.refuse_prefill()
            text = self.continued(prefix)
            if body.get("stream"):
                return self.stream(
                    self.split(text), model=model, thinking=THOUGHT if thinks else None
                )
            return Reply(self.message(text, model=model))
        if received.path == "/v1/models":
            entry = {"type": "model", "id": MODEL, "display_name": "Claude Sonnet 4.5"}
            return Reply({"data": [entry], "has_more": False, "first_id": MODEL, "last_id": MODEL})
        return self.error(404, "not_found_error", f"Not found: {received.path}")

    # -- bodies ------------------------------------------------------------------------------

    @staticmethod
    def message(
        text: str | None = DEFAULT_TEXT,
        *,
        model: str = MODEL,
        tool_uses: list[tuple[str, str, dict[str, Any]]] | None = None,
        stop_reason: str = "end_turn",
        usage: dict[str, int] | None = None,
    ) -> dict[str, Any]:
        content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
        for id_, name, input_ in tool_uses or []:
            content.append({"type": "tool_use", "id": id_, "name": name, "input": input_})
        return {
            "id": "msg_fake01",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage or {"input_tokens": 12, "output_tokens": 7},
        }

    @staticmethod
    def frame(data: dict[str, Any]) -> bytes:
        return sse(data, event=str(data["type"]))

    @classmethod
    def events(
        cls,
        pieces: list[str],
        *,
        model: str = MODEL,
        tool: ToolUse | None = None,
        stop_reason: str | None = None,
        message_stop: bool = True,
        thinking: list[str] | None = None,
    ) -> list[bytes]:
        """The frames of a whole answer: an optional thinking block from `thinking`, a text
        block from `pieces`, then an optional tool use, message_delta (the stop reason and
        usage) and, unless told not to, message_stop."""
        start = cls.message(None, model=model, usage={"input_tokens": 12, "output_tokens": 1})
        frames = [cls.frame({"type": "message_start", "message": {**start, "stop_reason": None}})]
        index = 0
        if thinking:
            frames += cls._thinking_block(index, thinking)
            index += 1
        if pieces:
            frames += cls._text_block(index, pieces)
            index += 1
        if tool is not None:
            frames += cls._tool_block(index, tool)
        stop = stop_reason or ("tool_use" if tool else "end_turn")
        frames.append(
            cls.frame(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": 15},
                }
            )
        )
        if message_stop:
            frames.append(cls.frame({"type": "message_stop"}))
        return frames

    @classmethod
    def _text_block(cls, index: int, pieces: list[str]) -> list[bytes]:
        block = {"type": "text", "text": ""}
        frames = [
            cls.frame({"type": "content_block_start", "index": index, "content_block": block})
        ]
        frames.append(sse(b'{"type": "ping"}', event="ping"))
        for piece in pieces:
            delta = {"type": "text_delta", "text": piece}
            frames.append(
                cls.frame({"type": "content_block_delta", "index": index, "delta": delta})
            )
        frames.append(cls.frame({"type": "content_block_stop", "index": index}))
        return frames

    @classmethod
    def _thinking_block(cls, index: int, pieces: list[str]) -> list[bytes]:
        block = {"type": "thinking", "thinking": "", "signature": ""}
        frames = [
            cls.frame({"type": "content_block_start", "index": index, "content_block": block})
        ]
        deltas = [{"type": "thinking_delta", "thinking": piece} for piece in pieces]
        deltas.append({"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA"})
        frames += [
            cls.frame({"type": "content_block_delta", "index": index, "delta": delta})
            for delta in deltas
        ]
        frames.append(cls.frame({"type": "content_block_stop", "index": index}))
        return frames

    @classmethod
    def _tool_block(cls, index: int, tool: ToolUse) -> list[bytes]:
        id_, name, pieces = tool
        block = {"type": "tool_use", "id": id_, "name": name, "input": {}}
        frames = [
            cls.frame({"type": "content_block_start", "index": index, "content_block": block})
        ]
        for piece in pieces:
            delta = {"type": "input_json_delta", "partial_json": piece}
            frames.append(
                cls.frame({"type": "content_block_delta", "index": index, "delta": delta})
            )
        frames.append(cls.frame({"type": "content_block_stop", "index": index}))
        return frames

    # -- behaviours --------------------------------------------------------------------------

    def reply(self, text: str | None = DEFAULT_TEXT, **kwargs: Any) -> Reply:
        return Reply(self.message(text, **kwargs), headers={"request-id": "req_fake"})

    def stream(
        self,
        pieces: list[str],
        *,
        model: str = MODEL,
        tool: ToolUse | None = None,
        gates: dict[int, asyncio.Event] | None = None,
        cut_after: int | None = None,
        message_stop: bool = True,
        malformed_after: int | None = None,
        stall_after: int | None = None,
        stall_for: float = 30.0,
        thinking: list[str] | None = None,
    ) -> Stream:
        """A streamed answer (see `events`); faults as in `shaped`, whose pieces are counted
        as if there were no `thinking` block (place faults by frame when there is one)."""
        frames = self.events(
            pieces, model=model, tool=tool, message_stop=message_stop, thinking=thinking
        )
        return self.shaped(
            frames,
            gates=gates,
            cut_after=cut_after,
            malformed_after=malformed_after,
            stall_after=stall_after,
            stall_for=stall_for,
        )

    @classmethod
    def refuse_prefill(cls) -> Reply:
        """Anthropic's 400 from a model that does not take a trailing assistant message."""
        return cls.error(400, "invalid_request_error", PREFILL_REFUSED)

    @staticmethod
    def error_body(type: str, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": type, "message": message}, "request_id": "req_1"}

    @classmethod
    def error(
        cls, status: int, type: str, message: str, *, headers: dict[str, str] | None = None
    ) -> Reply:
        """An error in Anthropic's shape: `{"type": "error", "error": {"type", "message"}}`."""
        return Reply(cls.error_body(type, message), status=status, headers=headers or {})

    @classmethod
    def overloaded(cls) -> Reply:
        return cls.error(529, "overloaded_error", "Overloaded")

    @classmethod
    def error_event(cls, type: str, message: str) -> bytes:
        return sse(json.dumps(cls.error_body(type, message)), event="error")


def _thinking(body: dict[str, Any]) -> bool:
    """Whether a request enables extended thinking."""
    thinking = body.get("thinking")
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def _starts_with_thinking(messages: list[Any]) -> bool:
    """Whether the final (assistant) message starts with a thinking block."""
    content = messages[-1].get("content")
    first = content[0] if isinstance(content, list) and content else None
    return isinstance(first, dict) and first.get("type") in ("thinking", "redacted_thinking")


def _assistant_prefix(messages: Any) -> str | None:
    """The text of a trailing assistant message (a prefill), or None."""
    last = messages[-1] if isinstance(messages, list) and messages else None
    if not isinstance(last, dict) or last.get("role") != "assistant":
        return None
    content = last.get("content")
    if isinstance(content, str):
        return content
    blocks = content if isinstance(content, list) else []
    return "".join(str(b.get("text") or "") for b in blocks if isinstance(b, dict))
