"""OpenAI chat requests to Anthropic Messages requests, and Messages responses back to OpenAI
chat completions. Pure functions: no I/O, the caller's request is never modified."""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import BadRequest
from ..openai_shapes import choice, completion, message, new_id, tool_call, usage
from ..types import JSON, Request
from ._openai_format import (
    FunctionTool,
    ToolChoice,
    function_tools,
    image_url,
    max_tokens,
    parse_arguments,
    split_data_url,
    stop_sequences,
    text_of,
    tool_choice,
)

__all__ = ["finish_reason", "from_message", "to_messages_request", "usage_of"]

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str:
    """OpenAI's finish_reason for an Anthropic stop_reason."""
    return _FINISH.get(stop_reason, "stop")


def to_messages_request(request: Request, *, model: str, default_max_tokens: int) -> JSON:
    """The Messages API body for an OpenAI chat request."""
    if int(request.get("n") or 1) != 1:
        raise BadRequest("anthropic does not support n > 1")
    system, turns = _convert(request.get("messages"))
    body: JSON = {
        "model": model,
        "max_tokens": max_tokens(request) or default_max_tokens,
        "messages": turns,
    }
    if system:
        body["system"] = system
    if (temperature := request.get("temperature")) is not None:
        body["temperature"] = min(float(temperature), 1.0)  # OpenAI allows 0..2, Anthropic 0..1
    if (top_p := request.get("top_p")) is not None:
        body["top_p"] = top_p
    if stops := stop_sequences(request):
        body["stop_sequences"] = stops
    if tools := function_tools(request, provider="anthropic"):
        body["tools"] = [_tool(t) for t in tools]
        body["tool_choice"] = _tool_choice(tool_choice(request), request)
    if user := request.get("user"):
        body["metadata"] = {"user_id": str(user)}
    return body


def _tool(tool: FunctionTool) -> JSON:
    out: JSON = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    out["input_schema"] = tool.parameters or {"type": "object", "properties": {}}
    return out


_CHOICE_TYPES = {"auto": "auto", "none": "none", "required": "any", "function": "tool"}


def _tool_choice(found: ToolChoice | None, request: Request) -> JSON:
    mapped: JSON = {"type": _CHOICE_TYPES[found.mode] if found else "auto"}
    if found and found.name:
        mapped["name"] = found.name
    if request.get("parallel_tool_calls") is False and mapped["type"] != "none":
        mapped["disable_parallel_tool_use"] = True
    return mapped


class _Turns:
    """Messages being built: system text set aside, consecutive same-role turns merged."""

    def __init__(self) -> None:
        self.system: list[str] = []
        self.turns: list[JSON] = []
        self._legacy_ids: list[str] = []  # ids given to legacy function_calls, awaiting results
        self._legacy_count = 0

    def add(self, role: str, blocks: list[JSON]) -> None:
        if not blocks:
            return
        if self.turns and self.turns[-1]["role"] == role:
            self.turns[-1]["content"].extend(blocks)
        else:
            self.turns.append({"role": role, "content": blocks})

    def assistant(self, msg: JSON) -> list[JSON]:
        blocks = [_text(text)] if (text := _assistant_text(msg.get("content"))) else []
        for call in msg.get("tool_calls") or []:
            fn = call.get("function") or {}
            blocks.append(_tool_use(call.get("id") or new_id("toolu"), fn))
        if isinstance(fc := msg.get("function_call"), dict):
            self._legacy_count += 1
            self._legacy_ids.append(f"call_legacy_{self._legacy_count}")
            blocks.append(_tool_use(self._legacy_ids[-1], fc))
        return blocks

    def legacy_result_id(self) -> str:
        if not self._legacy_ids:
            raise BadRequest("a function message must follow an assistant function_call")
        return self._legacy_ids.pop(0)


def _convert(messages: Any) -> tuple[str | None, list[JSON]]:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    turns = _Turns()
    for msg in messages:
        if not isinstance(msg, dict):
            raise BadRequest("every message must be an object")
        role = msg.get("role")
        if role in ("system", "developer"):
            turns.system.append(text_of(msg.get("content")))
        elif role == "user":
            turns.add("user", _user_blocks(msg.get("content")))
        elif role == "assistant":
            turns.add("assistant", turns.assistant(msg))
        elif role == "tool":
            turns.add("user", [_tool_result(msg.get("tool_call_id"), msg.get("content"))])
        elif role == "function":
            turns.add("user", [_tool_result(turns.legacy_result_id(), msg.get("content"))])
        else:
            raise BadRequest(f"unsupported message role {role!r}")
    system = "\n\n".join(s for s in turns.system if s)
    return system or None, turns.turns


def _text(text: str, part: JSON | None = None) -> JSON:
    block: JSON = {"type": "text", "text": text}
    if part is not None and "cache_control" in part:
        block["cache_control"] = part["cache_control"]
    return block


def _assistant_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(
            str(p.get("text") or p.get("refusal") or "")
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "refusal")
        )
    return text_of(content)


def _tool_use(id_: str, fn: JSON) -> JSON:
    if not fn.get("name"):
        raise BadRequest("a tool call needs function.name")
    input_ = parse_arguments(fn.get("arguments"))
    return {"type": "tool_use", "id": str(id_), "name": str(fn["name"]), "input": input_}


def _tool_result(tool_use_id: Any, content: Any) -> JSON:
    if not tool_use_id:
        raise BadRequest("a tool message needs tool_call_id")
    return {"type": "tool_result", "tool_use_id": str(tool_use_id), "content": text_of(content)}


def _user_blocks(content: Any) -> list[JSON]:
    if content is None or isinstance(content, str):
        return [_text(content)] if content else []
    if not isinstance(content, list):
        raise BadRequest("message content must be a string or a list of parts")
    return [block for part in content if (block := _user_part(part)) is not None]


def _user_part(part: Any) -> JSON | None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return _text(str(part["text"]), part) if part.get("text") else None
    if kind == "image_url":
        return {"type": "image", "source": _image_source(image_url(part))}
    if kind == "file":
        return _document(part)
    raise BadRequest(f"anthropic does not support {kind!r} content parts")


def _image_source(url: str) -> JSON:
    if data := split_data_url(url):
        return {"type": "base64", "media_type": data[0], "data": data[1]}
    if url.startswith(("http://", "https://")):
        return {"type": "url", "url": url}
    raise BadRequest("an image URL must be a data: URL or an http(s) URL")


def _document(part: JSON) -> JSON:
    file = part.get("file") or {}
    data = split_data_url(str(file.get("file_data") or ""))
    if data is None:
        raise BadRequest("anthropic takes file parts only as base64 data: URLs (file.file_data)")
    return {
        "type": "document",
        "source": {"type": "base64", "media_type": data[0], "data": data[1]},
    }


def usage_of(raw: Any) -> JSON:
    """OpenAI usage from Anthropic usage: cache reads and writes count as prompt tokens."""
    u = raw if isinstance(raw, dict) else {}
    cached = int(u.get("cache_read_input_tokens") or 0)
    prompt = int(u.get("input_tokens") or 0) + int(u.get("cache_creation_input_tokens") or 0)
    return usage(prompt + cached, int(u.get("output_tokens") or 0), cached=cached)


def from_message(msg: JSON, *, fallback_model: str, created: int) -> JSON:
    """An OpenAI chat.completion for an Anthropic message."""
    texts: list[str] = []
    calls: list[JSON] = []
    for block in msg.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(tool_call(str(block.get("id")), str(block.get("name")), arguments))
        # thinking blocks have no place in an OpenAI chat message
    content = "".join(texts) if texts or not calls else None
    return completion(
        id_=str(msg.get("id") or new_id()),
        model=str(msg.get("model") or fallback_model),
        created=created,
        choices=[choice(0, message(content, calls), finish_reason(msg.get("stop_reason")))],
        used=usage_of(msg.get("usage")),
    )
