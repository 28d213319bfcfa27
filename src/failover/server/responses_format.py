"""The OpenAI Responses API <-> OpenAI Chat Completions, for clients that call /v1/responses.

    request    a Responses request   -> a chat request       (`ResponsesDialect.to_chat`)
    response   a chat completion     -> a Response object    (`ResponsesDialect.from_chat`)
    stream     chat chunks           -> Responses events     (`responses_stream.ResponseEvents`)

A deployment that speaks Responses natively (OpenAI's own API) gets the request as it is; any
other gets it translated here. What translates: text and image inputs, `instructions`,
function tools and calls (`function_call` / `function_call_output` items), `tool_choice`,
`max_output_tokens`, `temperature`, `top_p`, `text.format` (json_object / json_schema),
`reasoning.effort`, and usage. Built-in tools (web search, file search, computer use, MCP,
code interpreter), file ids and item references exist only at the provider: a request that
uses them is refused with a 400 that says a native deployment is needed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from typing import Any

from ..errors import BadRequest
from ..types import Completion, Payload, Request
from .validate import invalid, model_of, stream_flag

__all__ = [
    "RESPONSES",
    "ResponsesDialect",
    "chat_messages",
    "function_item",
    "input_messages",
    "message_item",
    "new_response_id",
    "output_items",
    "response_object",
    "responses_request",
    "text_part",
    "usage_of",
]

_ROLES = {"user", "assistant", "system", "developer"}
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_response_id() -> str:
    """A fresh Response id in OpenAI's style."""
    return f"resp_{uuid.uuid4().hex}"


def responses_request(body: Any) -> tuple[str, bool]:
    """(model, stream) of a Responses request, after checking its shape."""
    if not isinstance(body, dict):
        invalid("the request body must be a JSON object")
    model = model_of(body)
    stream = stream_flag(body)
    if "input" not in body and not body.get("previous_response_id"):
        invalid("'input' is required", "input")
    given = body.get("input")
    if given is not None and not isinstance(given, str | list):
        invalid("'input' must be a string or a list of input items", "input")
    return model, stream


class ResponsesDialect:
    """The Responses API as a `failover` dialect: passed through to deployments that speak it,
    translated to OpenAI chat for the others."""

    name = "openai.responses"

    def to_chat(self, request: Request) -> Request:
        """The chat request; what only a native deployment can serve is the caller's error."""
        if request.get("previous_response_id"):
            raise _native_only("previous_response_id names a response kept by the provider")
        chat: dict[str, Any] = {"model": request.get("model"), "messages": chat_messages(request)}
        _copy_options(request, chat)
        return chat

    def from_chat(self, completion: Completion, request: Request) -> Payload:
        """The Response object for a chat completion."""
        return Payload(response_object(completion.body, request))


RESPONSES = ResponsesDialect()


# -- request ------------------------------------------------------------------------------


def chat_messages(request: Request, history: Sequence[dict[str, Any]] = ()) -> list[dict[str, Any]]:
    """The chat messages for a Responses request's `instructions`, then the `history` of the
    conversation it follows up, then its `input`."""
    out: list[dict[str, Any]] = []
    instructions = request.get("instructions")
    if isinstance(instructions, str) and instructions:
        out.append({"role": "system", "content": instructions})
    out.extend(history)
    return out + input_messages(request)


def input_messages(request: Request) -> list[dict[str, Any]]:
    """The chat messages for a Responses request's `input` alone: what a follow-up carries on
    (OpenAI does not carry a response's `instructions` over to the next one)."""
    out: list[dict[str, Any]] = []
    given = request.get("input")
    if isinstance(given, str):
        out.append({"role": "user", "content": given})
        return out
    for i, item in enumerate(given or []):
        _item(item, f"input[{i}]", out)
    return out


def _item(item: Any, where: str, out: list[dict[str, Any]]) -> None:
    if not isinstance(item, dict):
        raise _bad(f"{where} must be an object")
    kind = item.get("type", "message")
    if kind == "message":
        out.append(_message(item, where))
    elif kind == "function_call":
        call = {
            "id": str(item.get("call_id") or item.get("id") or ""),
            "type": "function",
            "function": {
                "name": str(item.get("name") or ""),
                "arguments": _text(item, "arguments"),
            },
        }
        last = out[-1] if out else None
        if last and last["role"] == "assistant" and "tool_calls" in last:
            last["tool_calls"].append(call)
        else:
            out.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        output = item.get("output")
        text = output if isinstance(output, str) else _parts_text(output, where)
        out.append(
            {"role": "tool", "tool_call_id": str(item.get("call_id") or ""), "content": text}
        )
    elif kind == "reasoning":
        return  # the provider's own reasoning: nothing another deployment can take
    else:
        raise _native_only(f"{where} is an item of type {kind!r}")


def _message(item: dict[str, Any], where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in _ROLES:
        raise _bad(f"{where}.role must be one of {', '.join(sorted(_ROLES))}")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise _bad(f"{where}.content must be a string or a list of parts")
    if role == "assistant":
        return {"role": role, "content": _parts_text(content, where)}
    return {
        "role": role,
        "content": [_part(p, f"{where}.content[{j}]") for j, p in enumerate(content)],
    }


def _part(part: Any, where: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise _bad(f"{where} must be an object")
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text"):
        return {"type": "text", "text": _text(part, "text")}
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise _native_only(f"{where} names an image by file id")
        image: dict[str, Any] = {"url": url}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    if kind == "input_file":
        data = part.get("file_data")
        if not isinstance(data, str) or not data:
            raise _native_only(f"{where} names a file by id or URL")
        file: dict[str, Any] = {"file_data": data}
        if part.get("filename"):
            file["filename"] = part["filename"]
        return {"type": "file", "file": file}
    raise _native_only(f"{where} is a part of type {kind!r}")


def _parts_text(parts: Any, where: str) -> str:
    if not isinstance(parts, list):
        raise _bad(f"{where} must be a string or a list of text parts")
    return "".join(
        str(p.get("text") or p.get("refusal") or "") for p in parts if isinstance(p, dict)
    )


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _bad(f"'{key}' must be a string")
    return value


def _copy_options(request: Request, chat: dict[str, Any]) -> None:
    for key in ("temperature", "top_p", "parallel_tool_calls", "user", "stream"):
        if request.get(key) is not None:
            chat[key] = request[key]
    if request.get("stream"):
        chat["stream_options"] = {"include_usage": True}
    if request.get("max_output_tokens") is not None:
        chat["max_completion_tokens"] = request["max_output_tokens"]
    if isinstance(request.get("safety_identifier"), str):
        chat["user"] = request["safety_identifier"]
    reasoning = request.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort"):
        chat["reasoning_effort"] = reasoning["effort"]
    tools = request.get("tools")
    if tools:
        chat["tools"] = [_tool(t, f"tools[{i}]") for i, t in enumerate(tools)]
    if "tool_choice" in request:
        chat["tool_choice"] = _tool_choice(request["tool_choice"])
    text_format = (request.get("text") or {}).get("format")
    if isinstance(text_format, dict) and text_format.get("type") != "text":
        chat["response_format"] = _format(text_format)


def _tool(tool: Any, where: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise _bad(f"{where} must be an object")
    if tool.get("type") != "function":
        raise _native_only(f"{where} is a built-in tool of type {tool.get('type')!r}")
    function: dict[str, Any] = {"name": _text(tool, "name")}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            function[key] = tool[key]
    return {"type": "function", "function": function}


def _tool_choice(choice: Any) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise _native_only(f"tool_choice {choice!r}")


def _format(text_format: dict[str, Any]) -> dict[str, Any]:
    kind = text_format.get("type")
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = {
            k: text_format[k]
            for k in ("name", "schema", "strict", "description")
            if k in text_format
        }
        return {"type": "json_schema", "json_schema": schema}
    raise _bad(f"text.format of type {kind!r} is not known")


def _bad(message: str) -> BadRequest:
    return BadRequest(message, status=400)


def _native_only(what: str) -> BadRequest:
    return BadRequest(
        f"{what}: only a deployment that speaks the Responses API natively can serve it",
        status=400,
    )


# -- response -----------------------------------------------------------------------------


def response_object(
    completion: dict[str, Any],
    request: Request,
    *,
    response_id: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """The Response object for a chat completion (or, with `status` "in_progress" and an empty
    completion, the snapshot a stream starts with)."""
    choices = completion.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], dict) else {}
    finish = choice.get("finish_reason")
    output = output_items(choice.get("message") or {}) if completion else []
    reason = _INCOMPLETE.get(finish or "")
    status = status or ("incomplete" if reason else "completed")
    created = int(completion.get("created") or time.time())
    return {
        "id": response_id or new_response_id(),
        "object": "response",
        "created_at": created,
        "status": status,
        "completed_at": created if status == "completed" else None,
        "error": None,
        "incomplete_details": {"reason": reason} if reason and status != "in_progress" else None,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "model": completion.get("model") or request.get("model"),
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "previous_response_id": request.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": False,
        "temperature": request.get("temperature", 1.0),
        "text": request.get("text") or {"format": {"type": "text"}},
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "top_p": request.get("top_p", 1.0),
        "truncation": "disabled",
        **({"usage": usage_of(completion["usage"])} if completion.get("usage") else {}),
        **({"user": request["user"]} if isinstance(request.get("user"), str) else {}),
        "metadata": request.get("metadata") or {},
    }


def output_items(message: dict[str, Any]) -> list[dict[str, Any]]:
    """The output items of an assistant message: its text (or refusal), then its tool calls."""
    items: list[dict[str, Any]] = []
    text, refusal = message.get("content"), message.get("refusal")
    if refusal:
        items.append(message_item([{"type": "refusal", "refusal": refusal}]))
    elif isinstance(text, str) and text:
        items.append(message_item([text_part(text)]))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        items.append(
            function_item(
                str(call.get("id") or ""),
                str(function.get("name") or ""),
                str(function.get("arguments") or ""),
            )
        )
    return items


def message_item(
    content: list[dict[str, Any]], *, item_id: str | None = None, status: str = "completed"
) -> dict[str, Any]:
    """An assistant message output item."""
    return {
        "id": item_id or f"msg_{uuid.uuid4().hex}",
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def text_part(text: str) -> dict[str, Any]:
    """An output_text content part."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_item(
    call_id: str,
    name: str,
    arguments: str,
    *,
    item_id: str | None = None,
    status: str = "completed",
) -> dict[str, Any]:
    """A function_call output item."""
    return {
        "id": item_id or f"fc_{uuid.uuid4().hex}",
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def usage_of(chat_usage: Any) -> dict[str, Any]:
    """Responses usage from chat usage."""
    u = chat_usage if isinstance(chat_usage, dict) else {}
    prompt = int(u.get("prompt_tokens") or 0)
    completion = int(u.get("completion_tokens") or 0)
    cached = (u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    reasoning = (u.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": int(cached), "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": int(reasoning)},
        "total_tokens": prompt + completion,
    }
