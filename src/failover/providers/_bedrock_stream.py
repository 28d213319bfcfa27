"""ConverseStream in, OpenAI chunks out: the event-stream messages decoded by botocore's own
parser (`EventStreamBuffer`), and Converse events translated into chat.completion.chunk objects.

    messageStart                       the role chunk
    contentBlockStart (toolUse)        a tool_calls delta with index, id and name
    contentBlockDelta text / toolUse   content deltas / tool_calls argument deltas
    messageStop                        the chunk with finish_reason
    metadata                           usage: a last `choices: []` chunk when asked for
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any, NamedTuple, cast

from botocore.eventstream import EventStreamBuffer, EventStreamMessage, MessagePrelude, ParserError

from ..errors import ConnectionFailed
from ..openai_shapes import ChunkMaker, new_id
from ..types import JSON, Chunk
from ._bedrock_convert import finish_reason, usage_of

__all__ = ["Message", "StreamTranslator", "decode_messages"]

# what botocore's parser raises on bytes that are not event-stream framing
_FRAMING_ERRORS = (ParserError, KeyError, IndexError, ValueError, struct.error)


class Message(NamedTuple):
    """One event-stream message: its headers (`:message-type`, `:event-type`...), payload, size."""

    headers: Mapping[str, Any]
    payload: bytes
    size: int  # bytes it took on the wire


def _message(raw: EventStreamMessage) -> Message:
    # botocore-stubs types `prelude` and `headers` as int: they are a MessagePrelude and a dict
    prelude = cast(MessagePrelude, raw.prelude)
    return Message(cast(dict[str, Any], raw.headers), raw.payload, prelude.total_length)


def decode_messages(buffer: EventStreamBuffer, *, deployment: str) -> list[Message]:
    """The messages completed in `buffer`; broken framing (bad CRC, lengths) is a cut stream."""
    try:
        return [_message(raw) for raw in buffer]
    except _FRAMING_ERRORS as exc:
        raise ConnectionFailed(
            f"malformed bedrock event stream: {type(exc).__name__}: {exc}", deployment=deployment
        ) from exc


class StreamTranslator:
    """Converse stream events in, OpenAI chat.completion.chunk objects out."""

    def __init__(self, *, model: str, created: int, include_usage: bool) -> None:
        self._maker = ChunkMaker(new_id(), model, created)  # Converse streams carry no id
        self._include_usage = include_usage
        self._started = False
        self._tools: dict[int, int] = {}  # content block index -> OpenAI tool_calls index
        self._usage: Any = None
        self.stopped = False  # messageStop arrived: the answer is complete
        self.done = False  # metadata arrived too: nothing more will come

    def feed(self, event_type: str, data: JSON) -> list[Chunk]:
        """The chunks for one event (contentBlockStop and unknown events carry none)."""
        # a match, not a table of bound methods on self: such a table is a reference cycle,
        # left for the garbage collector by every stream
        match event_type:
            case "messageStart":
                return self._message_start(data)
            case "contentBlockStart":
                return self._block_start(data)
            case "contentBlockDelta":
                return self._block_delta(data)
            case "messageStop":
                return self._message_stop(data)
            case "metadata":
                return self._metadata(data)
        return []

    def close(self) -> list[Chunk]:
        """At the end of a stream that stopped without metadata: usage, if asked and known."""
        if self.done or not self._include_usage or self._usage is None:
            return []
        self.done = True
        return [self._maker.usage_chunk(usage_of(self._usage))]

    def _role(self) -> list[Chunk]:
        if self._started:
            return []
        self._started = True
        return [self._maker.role()]

    def _message_start(self, data: JSON) -> list[Chunk]:
        return self._role()

    def _block_start(self, data: JSON) -> list[Chunk]:
        use = (data.get("start") or {}).get("toolUse")
        if not isinstance(use, dict):
            return self._role()
        index = self._tools[int(data.get("contentBlockIndex", 0))] = len(self._tools)
        call = {
            "index": index,
            "id": str(use.get("toolUseId")),
            "type": "function",
            "function": {"name": str(use.get("name")), "arguments": ""},
        }
        return [*self._role(), self._maker.chunk({"tool_calls": [call]})]

    def _block_delta(self, data: JSON) -> list[Chunk]:
        delta = data.get("delta") or {}
        if isinstance(text := delta.get("text"), str):
            return [*self._role(), self._maker.chunk({"content": text})] if text else []
        use = delta.get("toolUse")
        if isinstance(use, dict) and use.get("input"):
            index = self._tools.get(int(data.get("contentBlockIndex", 0)))
            if index is not None:
                piece = {"index": index, "function": {"arguments": str(use["input"])}}
                return [self._maker.chunk({"tool_calls": [piece]})]
        return []  # reasoningContent and citations have no OpenAI counterpart

    def _message_stop(self, data: JSON) -> list[Chunk]:
        self.stopped = True
        reason = finish_reason(data.get("stopReason"))
        return [*self._role(), self._maker.chunk({}, finish_reason=reason)]

    def _metadata(self, data: JSON) -> list[Chunk]:
        self._usage = data.get("usage")
        if not self.stopped:
            return []  # metadata ends the stream; before messageStop it is not the end
        self.done = True
        return [self._maker.usage_chunk(usage_of(self._usage))] if self._include_usage else []
