"""OpenAI chat chunks -> Responses API stream events, for /v1/responses with `stream: true`.

    response.created, response.in_progress
    per output item   response.output_item.added
                      text:      content_part.added, output_text.delta..., output_text.done,
                                 content_part.done
                      function:  function_call_arguments.delta..., function_call_arguments.done
                      response.output_item.done
    response.completed (or response.incomplete), with the whole Response and its usage

Every event carries its `sequence_number`, and names its item by `output_index` and `item_id`
as the final Response lists it. Tool calls whose argument pieces alternate (chat streams may
interleave them by index) stream into their own items, each open until the answer finishes.
A break nobody could finish ends with an `error` event (no completed event follows);
keep-alives while a break is recovered are SSE comments.
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
        self._open: list[int] = []  # output indexes of the items still streaming
        self._message: int | None = None  # output index of the open message item
        self._text = ""  # the open message item's text so far
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
                out += self._text_delta(text)
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    out += self._tool(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
                out += self._close_all()
        return out

    def heartbeat(self) -> bytes:
        return KEEP_ALIVE

    def done(self) -> bytes:
        out = b"" if self._started else self._start({})
        out += self._close_all()
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
        own deployment can answer, answered whole, asked for as a stream): each output item at
        its own index, with its own id."""
        self._id = str(response.get("id") or self._id)
        out = self._start({"created": response.get("created_at"), "model": response.get("model")})
        for index, item in enumerate(response.get("output") or []):
            if isinstance(item, dict):
                out += self._replay_item(index, item)
        name = (
            "response.completed" if response.get("status") == "completed" else "response.incomplete"
        )
        return out + self._event(name, response=response)

    def error(self, failure: Failure) -> bytes:
        out = b"" if self._started else self._start({})
        return out + self._event(
            "error", code=failure.code or "server_error", message=failure.message, param=None
        )

    # -- streamed from chat chunks -------------------------------------------------------------

    def _start(self, body: dict[str, Any]) -> bytes:
        self._started = True
        self._created = body.get("created")
        self._model = str(body.get("model") or self._model)
        snapshot = response_object({}, self._request, response_id=self._id, status="in_progress")
        snapshot["model"] = self._model
        return self._event("response.created", response=snapshot) + self._event(
            "response.in_progress", response=snapshot
        )

    def _text_delta(self, text: str) -> bytes:
        out = b""
        if self._message is None:
            item = message_item([], status="in_progress")
            out += self._add(item)
            self._message, self._text = len(self._items) - 1, ""
            out += self._event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=self._message,
                content_index=0,
                part=text_part(""),
            )
        self._text += text
        return out + self._event(
            "response.output_text.delta",
            item_id=self._items[self._message]["id"],
            output_index=self._message,
            content_index=0,
            delta=text,
            logprobs=[],
        )

    def _tool(self, call: dict[str, Any]) -> bytes:
        out = b""
        position = call.get("index", 0)
        function = call.get("function") or {}
        if position not in self._tools:
            if self._message is not None:  # text before a tool call is over
                out += self._close(self._message)
            name = str(function.get("name") or "")
            out += self._add(
                function_item(str(call.get("id") or ""), name, "", status="in_progress")
            )
            self._tools[position] = len(self._items) - 1
        index = self._tools[position]
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments and index in self._open:
            item = self._items[index]
            item["arguments"] += arguments
            out += self._event(
                "response.function_call_arguments.delta",
                item_id=item["id"],
                output_index=index,
                delta=arguments,
            )
        return out

    def _add(self, item: dict[str, Any]) -> bytes:
        self._items.append(item)
        index = len(self._items) - 1
        self._open.append(index)
        return self._event("response.output_item.added", output_index=index, item=item)

    def _close_all(self) -> bytes:
        out = b""
        for index in list(self._open):
            out += self._close(index)
        return out

    def _close(self, index: int) -> bytes:
        self._open.remove(index)
        item = self._items[index]
        if index == self._message:
            self._message = None
            item["content"] = [text_part(self._text)]
            out = self._text_done(index, item["id"], 0, item["content"][0])
        else:
            out = self._event(
                "response.function_call_arguments.done",
                item_id=item["id"],
                output_index=index,
                name=item["name"],
                arguments=item["arguments"],
            )
        item["status"] = "completed"
        return out + self._event("response.output_item.done", output_index=index, item=item)

    def _text_done(self, index: int, item_id: str, part: int, content: dict[str, Any]) -> bytes:
        where = {"item_id": item_id, "output_index": index, "content_index": part}
        text, logprobs = content.get("text") or "", content.get("logprobs") or []
        return self._event(
            "response.output_text.done", **where, text=text, logprobs=logprobs
        ) + self._event("response.content_part.done", **where, part=content)

    # -- replayed from a whole Response ------------------------------------------------------

    def _replay_item(self, index: int, item: dict[str, Any]) -> bytes:
        kind = item.get("type")
        added = {**item, "status": "in_progress"} if "status" in item else dict(item)
        if kind == "message":
            added["content"] = []
        elif kind == "function_call":
            added["arguments"] = ""
        out = self._event("response.output_item.added", output_index=index, item=added)
        if kind == "message":
            for part, content in enumerate(item.get("content") or []):
                out += self._replay_part(index, str(item.get("id")), part, content)
        elif kind == "function_call":
            where = {"item_id": str(item.get("id")), "output_index": index}
            arguments = str(item.get("arguments") or "")
            out += self._event("response.function_call_arguments.delta", **where, delta=arguments)
            out += self._event(
                "response.function_call_arguments.done",
                **where,
                name=item.get("name"),
                arguments=arguments,
            )
        return out + self._event("response.output_item.done", output_index=index, item=item)

    def _replay_part(self, index: int, item_id: str, part: int, content: Any) -> bytes:
        if not isinstance(content, dict):
            return b""
        where = {"item_id": item_id, "output_index": index, "content_index": part}
        if content.get("type") == "refusal":
            refusal = str(content.get("refusal") or "")
            empty: dict[str, Any] = {"type": "refusal", "refusal": ""}
            return (
                self._event("response.content_part.added", **where, part=empty)
                + self._event("response.refusal.delta", **where, delta=refusal)
                + self._event("response.refusal.done", **where, refusal=refusal)
                + self._event("response.content_part.done", **where, part=content)
            )
        text = str(content.get("text") or "")
        return (
            self._event("response.content_part.added", **where, part=text_part(""))
            + self._event("response.output_text.delta", **where, delta=text, logprobs=[])
            + self._text_done(index, item_id, part, content)
        )

    def _event(self, event_type: str, /, **data: Any) -> bytes:
        payload = {"type": event_type, **data, "sequence_number": self._seq}
        self._seq += 1
        return b"event: " + event_type.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
