"""OpenAI chat chunks -> Responses API stream events, for /v1/responses with `stream: true`.

    response.created, response.in_progress
    per output item   response.output_item.added
                      text:      content_part.added, output_text.delta..., output_text.done,
                                 content_part.done
                      function:  function_call_arguments.delta..., function_call_arguments.done
                      response.output_item.done
    response.completed (or response.incomplete), with the whole Response and its usage

Every event carries its `sequence_number`. A break nobody could finish ends with an `error`
event (no completed event follows); keep-alives while a break is recovered are SSE comments.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..types import Chunk
from .errors import Failure
from .responses_format import (
    function_item,
    message_item,
    new_response_id,
    response_object,
    text_part,
)

__all__ = ["ResponseEvents"]

KEEP_ALIVE = b": keep-alive\n\n"


class ResponseEvents:
    """The event stream of one response, built chunk by chunk (an `Encoder`)."""

    def __init__(self, request: dict[str, Any], *, model: str) -> None:
        self._request = request
        self._model = model
        self._id = new_response_id()
        self._seq = 0
        self._started = False
        self._items: list[dict[str, Any]] = []  # output items, as they stand
        self._open: dict[str, Any] | None = None  # the item being streamed
        self._tools: dict[int, int] = {}  # chat tool_call index -> output index
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._created: int | None = None
        self.response: dict[str, Any] | None = None  # the whole Response, once done

    def chunk(self, chunk: Chunk) -> bytes:
        body = chunk.body
        out = b"" if self._started else self._start(body)
        if isinstance(body.get("usage"), dict):
            self._usage = body["usage"]
        for choice in body.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                out += self._text(text)
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    out += self._tool(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
                out += self._close()
        return out

    def heartbeat(self) -> bytes:
        return KEEP_ALIVE

    def done(self) -> bytes:
        out = b"" if self._started else self._start({})
        out += self._close()
        completion = {
            "created": self._created,
            "model": self._model,
            "choices": [{"finish_reason": self._finish or "stop", "message": {}}],
            "usage": self._usage,
        }
        response = response_object(completion, self._request, response_id=self._id)
        response["output"] = self._items
        self.response = response
        name = "response.completed" if response["status"] == "completed" else "response.incomplete"
        return out + self._event(name, response=response)

    def replay(self, response: dict[str, Any]) -> bytes:
        """Every event a stream of a whole Response would have sent (a follow-up that only its
        own deployment can answer, answered whole, asked for as a stream)."""
        self._id = str(response.get("id") or self._id)
        out = self._start({"created": response.get("created_at"), "model": response.get("model")})
        for item in response.get("output") or []:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "message":
                parts = item.get("content") or []
                out += self._text("".join(str(p.get("text") or "") for p in parts))
            elif item.get("type") == "function_call":
                function = {"name": item.get("name"), "arguments": item.get("arguments")}
                call = {"index": len(self._tools), "id": item.get("call_id"), "function": function}
                out += self._tool(call)
        out += self._close()
        name = (
            "response.completed" if response.get("status") == "completed" else "response.incomplete"
        )
        return out + self._event(name, response=response)

    def error(self, failure: Failure) -> bytes:
        out = b"" if self._started else self._start({})
        return out + self._event(
            "error", code=failure.code or "server_error", message=failure.message, param=None
        )

    # -- the pieces --------------------------------------------------------------------------

    def _start(self, body: dict[str, Any]) -> bytes:
        self._started = True
        self._created = body.get("created")
        self._model = str(body.get("model") or self._model)
        snapshot = response_object({}, self._request, response_id=self._id, status="in_progress")
        snapshot["model"] = self._model
        return self._event("response.created", response=snapshot) + self._event(
            "response.in_progress", response=snapshot
        )

    def _text(self, text: str) -> bytes:
        out = b""
        if self._open is None or self._open["type"] != "message":
            out += self._close()
            item = message_item([], status="in_progress")
            out += self._add(item)
            out += self._event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=len(self._items) - 1,
                content_index=0,
                part=text_part(""),
            )
            item["_text"] = ""
        assert self._open is not None
        self._open["_text"] += text
        return out + self._event(
            "response.output_text.delta",
            item_id=self._open["id"],
            output_index=len(self._items) - 1,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _tool(self, call: dict[str, Any]) -> bytes:
        out = b""
        position = call.get("index", 0)
        function = call.get("function") or {}
        if position not in self._tools:
            out += self._close()
            name = str(function.get("name") or "")
            item = function_item(str(call.get("id") or ""), name, "", status="in_progress")
            out += self._add(item)
            self._tools[position] = len(self._items) - 1
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments and self._open is not None:
            self._open["arguments"] += arguments
            out += self._event(
                "response.function_call_arguments.delta",
                item_id=self._open["id"],
                output_index=len(self._items) - 1,
                delta=arguments,
            )
        return out

    def _add(self, item: dict[str, Any]) -> bytes:
        self._items.append(item)
        self._open = item
        shown = {k: v for k, v in item.items() if not k.startswith("_")}
        return self._event(
            "response.output_item.added", output_index=len(self._items) - 1, item=shown
        )

    def _close(self) -> bytes:
        item, self._open = self._open, None
        if item is None:
            return b""
        index = self._items.index(item)
        out = b""
        if item["type"] == "message":
            text = item.pop("_text", "")
            item["content"] = [text_part(text)]
            out += self._event(
                "response.output_text.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                text=text,
                logprobs=[],
            )
            out += self._event(
                "response.content_part.done",
                item_id=item["id"],
                output_index=index,
                content_index=0,
                part=text_part(text),
            )
        else:
            out += self._event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                name=item["name"],
                arguments=item["arguments"],
            )
        item["status"] = "completed"
        return out + self._event("response.output_item.done", output_index=index, item=item)

    def _event(self, event_type: str, /, **data: Any) -> bytes:
        payload = {"type": event_type, **data, "sequence_number": self._seq}
        self._seq += 1
        return b"event: " + event_type.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
