"""The one builder of OpenAI Chat Completions objects: completions, stream chunks, assistant
messages, tool calls and usage, exactly as OpenAI sends them (`refusal`, `logprobs` and
`finish_reason` present, null where unset).

Adapters that translate another wire format, the simulated provider, wrapped callables and the
test helpers all build their answers here, so every answer has the same shape.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field

from .types import JSON, Chunk, Completion, Request

__all__ = [
    "ChunkMaker",
    "choice",
    "completion",
    "completion_from_text",
    "message",
    "new_id",
    "tool_call",
    "usage",
    "wants_usage",
]


def new_id(prefix: str = "chatcmpl") -> str:
    """A fresh id in OpenAI's style (`chatcmpl-...`)."""
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def tool_call(id_: str, name: str, arguments: str) -> JSON:
    """One function call of an assistant message."""
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}


def message(content: str | None, tool_calls: list[JSON] | None = None) -> JSON:
    """An assistant message as OpenAI returns it (`refusal` always present)."""
    msg: JSON = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return msg


def choice(index: int, msg: JSON, finish_reason: str) -> JSON:
    """One choice of a whole completion."""
    return {"index": index, "message": msg, "logprobs": None, "finish_reason": finish_reason}


def usage(prompt: int, completion_tokens: int, *, cached: int = 0) -> JSON:
    """Token counts (`prompt_tokens_details.cached_tokens` only when some were cached)."""
    out: JSON = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    return out


def completion(*, id_: str, model: str, created: int, choices: list[JSON], used: JSON) -> JSON:
    """A whole chat completion body."""
    return {
        "id": id_,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": choices,
        "usage": used,
    }


def completion_from_text(text: str, *, model: str, finish_reason: str = "stop") -> Completion:
    """A completion holding `text`: for callables that return plain strings."""
    body = completion(
        id_=new_id(),
        model=model,
        created=int(time.time()),
        choices=[choice(0, message(text), finish_reason)],
        used=usage(0, 0),
    )
    return Completion(body)


@dataclass(slots=True)
class ChunkMaker:
    """Chunks of one stream, sharing its id, model and creation time.

    `null_usage` puts `"usage": null` on every chunk but the usage chunk, as OpenAI does when
    the request set `stream_options.include_usage`.
    """

    id: str = field(default_factory=new_id)
    model: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    null_usage: bool = False

    def chunk(self, delta: JSON, *, finish_reason: str | None = None, index: int = 0) -> Chunk:
        """One chunk carrying `delta` (and the finish reason on the last content chunk)."""
        entry = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        body = {**self._head(), "choices": [entry]}
        if self.null_usage:
            body["usage"] = None
        return Chunk(body)

    def role(self, *, content: str | None = "") -> Chunk:
        """The first chunk: the assistant's role, before any content."""
        return self.chunk({"role": "assistant", "content": content, "refusal": None})

    def usage_chunk(self, used: JSON) -> Chunk:
        """The extra last chunk OpenAI sends when `stream_options.include_usage` is set."""
        return Chunk({**self._head(), "choices": [], "usage": used})

    def _head(self) -> JSON:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }


def wants_usage(request: Request) -> bool:
    """Whether a stream request asked for the usage chunk (`stream_options.include_usage`)."""
    options = request.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))
