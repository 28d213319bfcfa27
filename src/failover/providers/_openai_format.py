"""Reading the parts of an OpenAI Chat Completions request, for adapters that translate it to
another wire format (answers are built with `failover.openai_shapes`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from ..errors import BadRequest
from ..types import JSON, Request

__all__ = [
    "FunctionTool",
    "ToolChoice",
    "function_tools",
    "image_url",
    "max_tokens",
    "parse_arguments",
    "split_data_url",
    "stop_sequences",
    "text_of",
    "tool_choice",
]

_DATA_URL = re.compile(r"data:(?P<type>[\w.+-]+/[\w.+-]+)(?:;[^,;]*)*;base64,(?P<data>.*)", re.S)


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text") or "")
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "input_text")
        )
    raise BadRequest(f"invalid message content of type {type(content).__name__}")


def image_url(part: JSON) -> str:
    value = part.get("image_url")
    url = value.get("url") if isinstance(value, dict) else value
    if not isinstance(url, str) or not url:
        raise BadRequest("an image_url part needs image_url.url")
    return url


def split_data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a `data:...;base64,` URL; None for other URLs."""
    found = _DATA_URL.fullmatch(url)
    return (found["type"], found["data"]) if found else None


def parse_arguments(arguments: Any) -> JSON:
    """A tool call's JSON-string arguments as an object ({} when empty)."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or (isinstance(arguments, str) and not arguments.strip()):
        return {}
    try:
        parsed = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        raise BadRequest("tool call arguments must be a JSON object string") from None
    if not isinstance(parsed, dict):
        raise BadRequest("tool call arguments must be a JSON object")
    return parsed


def max_tokens(request: Request) -> int | None:
    value = request.get("max_completion_tokens") or request.get("max_tokens")
    return int(value) if value else None


def stop_sequences(request: Request) -> list[str] | None:
    stop = request.get("stop")
    if not stop:
        return None
    return [stop] if isinstance(stop, str) else [str(s) for s in stop]


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """A function the model may call, from `tools` or the legacy `functions`."""

    name: str
    description: str | None
    parameters: JSON | None


def function_tools(request: Request, *, provider: str) -> list[FunctionTool]:
    found = [_function_tool(t, provider) for t in request.get("tools") or []]
    found += [_from_function(f) for f in request.get("functions") or []]
    return found


def _function_tool(tool: Any, provider: str) -> FunctionTool:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        kind = tool.get("type") if isinstance(tool, dict) else type(tool).__name__
        raise BadRequest(f"{provider} supports only function tools, not {kind!r}")
    return _from_function(tool.get("function"))


def _from_function(fn: Any) -> FunctionTool:
    if not isinstance(fn, dict) or not fn.get("name"):
        raise BadRequest("a function tool needs a name")
    params = fn.get("parameters")
    return FunctionTool(str(fn["name"]), fn.get("description"), params or None)


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """`tool_choice` (or legacy `function_call`) reduced to a mode and an optional name."""

    mode: Literal["auto", "none", "required", "function"]
    name: str | None = None


def tool_choice(request: Request) -> ToolChoice | None:
    value = request.get("tool_choice", request.get("function_call"))
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        return ToolChoice(value)
    if isinstance(value, dict):
        fn = value.get("function") if "function" in value else value
        if isinstance(fn, dict) and fn.get("name"):
            return ToolChoice("function", str(fn["name"]))
    raise BadRequest(f"unsupported tool_choice {value!r}")
