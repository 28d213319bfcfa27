"""Anthropic Messages <-> OpenAI Chat Completions, for clients that speak Anthropic's API.

The router speaks OpenAI's canonical format, so `/v1/messages` translates three things:

    request    Anthropic Messages request  -> OpenAI chat request   (`to_openai_request`)
    response   OpenAI chat completion      -> Anthropic message      (`to_anthropic_message`)
    stream     OpenAI chunks               -> Anthropic SSE events   (`StreamTranslator`)

Pure functions and one small state machine: no I/O, so every rule is unit-testable.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import BadRequest
from ..types import Completion, Payload, Request
from .errors import ClientError, Failure, anthropic_event
from .validate import invalid, model_of, stream_flag

__all__ = [
    "ANTHROPIC",
    "PING",
    "AnthropicDialect",
    "StreamTranslator",
    "event",
    "message_id",
    "messages_request",
    "to_anthropic_message",
    "to_openai_request",
    "usage",
]

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
_TOOL_CHOICE = {"auto": "auto", "any": "required", "none": "none"}
_DROPPED_BLOCKS = frozenset({"thinking", "redacted_thinking"})
_ADOPTED = {"text": "text", "tool_use": "tool"}  # native blocks a translated chunk may continue


# -- request -----------------------------------------------------------------------------


def to_openai_request(body: Any) -> tuple[str, dict[str, Any], bool]:
    """(model, OpenAI request, stream) for an Anthropic Messages request."""
    model, stream = messages_request(body)
    messages = body["messages"]
    out: list[dict[str, Any]] = _system(body.get("system"))
    for i, message in enumerate(messages):
        out.extend(_message(message, i))
    request: dict[str, Any] = {"model": model, "messages": out, "max_tokens": body["max_tokens"]}
    _copy_sampling(body, request)
    _copy_tools(body, request)
    if stream:
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return model, request, stream


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    if isinstance(system, list):
        return [{"role": "system", "content": _text_of(system, "system")}]
    invalid("'system' must be a string or a list of text blocks", "system")


def _message(message: Any, i: int) -> list[dict[str, Any]]:
    where = f"messages[{i}]"
    if not isinstance(message, dict):
        invalid(f"{where} must be an object", where)
    role, content = message.get("role"), message.get("content")
    if role not in ("user", "assistant"):
        invalid(f"{where}.role must be 'user' or 'assistant'", f"{where}.role")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        invalid(f"{where}.content must be a string or a list of blocks", f"{where}.content")
    blocks = [_block(b, f"{where}.content[{j}]") for j, b in enumerate(content)]
    if role == "assistant":
        return [_assistant(blocks)]
    return _user(blocks)


def _block(block: Any, where: str) -> dict[str, Any]:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        invalid(f"{where} must be an object with a 'type'", where)
    return block


def _assistant(blocks: list[dict[str, Any]]) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in blocks:
        kind = block["type"]
        if kind == "text":
            texts.append(_str(block, "text"))
        elif kind == "tool_use":
            arguments = orjson.dumps(block.get("input") or {}).decode()
            call = {"name": _str(block, "name"), "arguments": arguments}
            calls.append({"id": _str(block, "id"), "type": "function", "function": call})
        elif kind not in _DROPPED_BLOCKS:
            invalid(f"assistant content blocks of type {kind!r} are not supported")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _user(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # OpenAI wants tool results as their own `tool` messages, right after the assistant's calls
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in blocks:
        kind = block["type"]
        if kind == "tool_result":
            text = _tool_result_text(block)
            call_id = _str(block, "tool_use_id")
            out.append({"role": "tool", "tool_call_id": call_id, "content": text})
        elif kind == "text":
            parts.append({"type": "text", "text": _str(block, "text")})
        elif kind == "image":
            parts.append(_image(block))
        elif kind not in _DROPPED_BLOCKS:
            invalid(f"user content blocks of type {kind!r} are not supported")
    if parts:
        only_text = all(p["type"] == "text" for p in parts)
        content: Any = "".join(p["text"] for p in parts) if only_text else parts
        out.append({"role": "user", "content": content})
    return out


def _tool_result_text(block: dict[str, Any]) -> str:
    content = block.get("content")
    text = content if isinstance(content, str) else _text_of(content or [], "tool_result")
    return f"Error: {text}" if block.get("is_error") else text


def _image(block: dict[str, Any]) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        invalid("an image block needs a 'source'")
    if source.get("type") == "base64":
        url = f"data:{_str(source, 'media_type')};base64,{_str(source, 'data')}"
    elif source.get("type") == "url":
        url = _str(source, "url")
    else:
        invalid("image sources must be of type 'base64' or 'url'")
    return {"type": "image_url", "image_url": {"url": url}}


def _text_of(blocks: Any, where: str) -> str:
    if not isinstance(blocks, list):
        invalid(f"'{where}' must be a string or a list of text blocks")
    texts = []
    for block in blocks:
        if not isinstance(block, dict):
            invalid(f"'{where}' must be a string or a list of text blocks")
        if block.get("type") == "text":
            texts.append(_str(block, "text"))
    return "\n".join(texts)


def _str(block: dict[str, Any], key: str) -> str:
    value = block.get(key)
    if not isinstance(value, str):
        invalid(f"a {block.get('type', 'content')} block needs a string '{key}'")
    return value


def _copy_sampling(body: dict[str, Any], request: dict[str, Any]) -> None:
    for key in ("temperature", "top_p"):
        value = body.get(key)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int | float):
                invalid(f"'{key}' must be a number", key)
            request[key] = value
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            invalid("'stop_sequences' must be a list of strings", "stop_sequences")
        if stop:
            request["stop"] = stop
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        request["user"] = metadata["user_id"]


def _copy_tools(body: dict[str, Any], request: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            invalid("'tools' must be a list", "tools")
        request["tools"] = [_tool(t, i) for i, t in enumerate(tools)]
    choice = body.get("tool_choice")
    if choice is None:
        return
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        invalid("'tool_choice' must be an object with a 'type'", "tool_choice")
    kind = choice["type"]
    if kind == "tool":
        request["tool_choice"] = {"type": "function", "function": {"name": _str(choice, "name")}}
    elif kind in _TOOL_CHOICE:
        request["tool_choice"] = _TOOL_CHOICE[kind]
    else:
        invalid(f"unknown tool_choice type {kind!r}", "tool_choice")
    if choice.get("disable_parallel_tool_use") is True and "tools" in request:
        request["parallel_tool_calls"] = False


def _tool(tool: Any, i: int) -> dict[str, Any]:
    if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
        invalid(f"tools[{i}] must be an object with a string 'name'", f"tools[{i}]")
    if tool.get("type") not in (None, "custom"):
        invalid(f"tools[{i}]: server tools of type {tool['type']!r} are not supported")
    schema = tool.get("input_schema")
    if not isinstance(schema, dict):
        invalid(f"tools[{i}].input_schema must be a JSON schema object")
    function: dict[str, Any] = {"name": tool["name"], "parameters": schema}
    if isinstance(tool.get("description"), str):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def messages_request(body: Any) -> tuple[str, bool]:
    """(model, stream) of a Messages request, after checking what every deployment needs.

    Blocks and fields are not checked here: a deployment that speaks Messages gets them as
    they are; `AnthropicDialect.to_chat` checks them when a request is translated.
    """
    if not isinstance(body, dict):
        invalid("the request body must be a JSON object")
    model = model_of(body)
    stream = stream_flag(body)
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        invalid("'max_tokens' is required and must be a positive integer", "max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        invalid("'messages' must be a non-empty list of messages", "messages")
    return model, stream


class AnthropicDialect:
    """Anthropic's Messages API as a `failover` dialect: passed through to deployments that
    speak it, translated to OpenAI chat for the others (see docs/providers.md for the fields
    that survive the translation)."""

    name = "anthropic"

    def to_chat(self, request: Request) -> Request:
        """The OpenAI chat request; what cannot be translated is the caller's error."""
        try:
            return to_openai_request(request)[1]
        except ClientError as exc:
            raise BadRequest(
                f"cannot translate this Messages request for a deployment that does not "
                f"speak it: {exc.failure.message}",
                status=400,
            ) from exc

    def from_chat(self, completion: Completion, request: Request) -> Payload:
        """The Messages answer for an OpenAI chat completion."""
        return Payload(to_anthropic_message(completion.body, str(request.get("model") or "")))


ANTHROPIC = AnthropicDialect()


# -- response ----------------------------------------------------------------------------


def message_id(openai_id: Any) -> str:
    text = openai_id if isinstance(openai_id, str) and openai_id else "failover"
    return "msg_" + text.removeprefix("chatcmpl-")


def to_anthropic_message(completion: dict[str, Any], model: str) -> dict[str, Any]:
    """An Anthropic `message` for an OpenAI chat completion."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if isinstance(message.get("content"), str) and message["content"]:
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id") or "toolu_failover",
                "name": function.get("name") or "",
                "input": _arguments(function.get("arguments")),
            }
        )
    return {
        "id": message_id(completion.get("id")),
        "type": "message",
        "role": "assistant",
        "model": completion.get("model") or model,
        "content": content,
        "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": usage(completion.get("usage")),
    }


def usage(openai_usage: Any) -> dict[str, Any]:
    u = openai_usage if isinstance(openai_usage, dict) else {}
    details = u.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return {
        "input_tokens": int(u.get("prompt_tokens") or 0),
        "output_tokens": int(u.get("completion_tokens") or 0),
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": cached if isinstance(cached, int) else None,
    }


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str) or not raw.strip():
        return {}
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {"_raw_arguments": raw}
    return parsed if isinstance(parsed, dict) else {"value": parsed}


# -- stream ------------------------------------------------------------------------------


def _loads(raw: bytes) -> dict[str, Any]:
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


PING = event("ping", {"type": "ping"})  # Anthropic's keep-alive event


class StreamTranslator:
    """Turns OpenAI stream chunks into Anthropic stream events, one chunk at a time.

    message_start, then per content block content_block_start / *_delta / content_block_stop
    (text as text_delta, tool calls as tool_use blocks with input_json_delta), then
    message_delta (stop_reason, usage) and message_stop.

    A stream may also carry Anthropic's own events (from a deployment that speaks Messages):
    `adopt` takes note of them, so that translated chunks after them (a recovery on another
    deployment) continue the same message, and `finish` adds only the closing events the
    stream has not sent yet.
    """

    __slots__ = ("_block", "_delta_sent", "_index", "_model", "_started", "_stop",
                 "_stopped", "_tools", "_usage")  # fmt: skip

    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self._index = -1  # the current block's index
        self._block: str | None = None  # "text", "tool" or None when no block is open
        self._tools: dict[int, int] = {}  # OpenAI tool_call index -> Anthropic block index
        self._stop = "end_turn"
        self._usage: dict[str, Any] = {}
        self._delta_sent = False  # a native message_delta went out
        self._stopped = False  # a native message_stop went out

    def adopt(self, native: bytes) -> None:
        """Take note of Anthropic events relayed as they came."""
        for line in native.split(b"\n"):
            if line.startswith(b"data:"):
                self._adopt(_loads(line[5:]))

    def _adopt(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "message_start":
            self._started = True
        elif kind == "content_block_start":
            self._index = max(self._index, int(data.get("index", 0)))
            block = data.get("content_block") or {}
            self._block = _ADOPTED.get(str(block.get("type")), "native")
            if self._block == "tool":
                # the deployment numbers its tool calls in order of appearance, and so does a
                # restart elsewhere: a call it continues goes on in this block, not a new one
                self._tools[len(self._tools)] = self._index
        elif kind == "content_block_stop":
            self._block = None
        elif kind == "message_delta":
            self._delta_sent = True
        elif kind == "message_stop":
            self._stopped = True

    def feed(self, chunk: dict[str, Any]) -> bytes:
        """The events for one OpenAI chunk (maybe none)."""
        out = b"" if self._started else self._start(chunk)
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                out += self._text(text)
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    out += self._tool(call)
            reason = choice.get("finish_reason")
            if reason:
                self._stop = STOP_REASONS.get(reason, "end_turn")
                out += self._close()
        return out

    def finish(self) -> bytes:
        """The closing events, after the last chunk (those the stream has not sent yet)."""
        out = b"" if self._started else self._start({})
        out += self._close()
        if self._stopped:
            return out
        if self._delta_sent:
            return out + event("message_stop", {"type": "message_stop"})
        u = usage(self._usage)
        delta_usage = {"input_tokens": u["input_tokens"], "output_tokens": u["output_tokens"]}
        out += event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": self._stop, "stop_sequence": None},
                "usage": delta_usage,
            },
        )
        return out + event("message_stop", {"type": "message_stop"})

    def error(self, failure: Failure) -> bytes:
        """An `error` event for a stream that broke after it started."""
        return anthropic_event(failure)

    def _start(self, chunk: dict[str, Any]) -> bytes:
        self._started = True
        message: dict[str, Any] = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": chunk.get("model") or self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return event("message_start", {"type": "message_start", "message": message})

    def _text(self, text: str) -> bytes:
        out = b""
        if self._block != "text":
            out += self._open({"type": "text", "text": ""}, "text")
        delta = {"type": "text_delta", "text": text}
        data = {"type": "content_block_delta", "index": self._index, "delta": delta}
        return out + event("content_block_delta", data)

    def _tool(self, call: dict[str, Any]) -> bytes:
        out = b""
        position = call.get("index", 0)
        function = call.get("function") or {}
        if position not in self._tools:
            self._tools[position] = self._index + 1
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{position}",
                "name": function.get("name") or "",
                "input": {},
            }
            out += self._open(block, "tool")
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            delta = {"type": "input_json_delta", "partial_json": arguments}
            out += event(
                "content_block_delta",
                {"type": "content_block_delta", "index": self._tools[position], "delta": delta},
            )
        return out

    def _open(self, block: dict[str, Any], kind: str) -> bytes:
        out = self._close()
        self._index += 1
        self._block = kind
        start = {"type": "content_block_start", "index": self._index, "content_block": block}
        return out + event("content_block_start", start)

    def _close(self) -> bytes:
        if self._block is None:
            return b""
        self._block = None
        return event("content_block_stop", {"type": "content_block_stop", "index": self._index})
