"""Cheap checks of the few request fields the gateway itself relies on.

The providers validate the rest (and their 400s come back to the client as 400s); the gateway
only makes sure it can route the request and that a malformed one fails fast with a clear
message instead of travelling upstream.
"""

from __future__ import annotations

from typing import Any, NoReturn

from .errors import ClientError, Failure

__all__ = [
    "chat_request",
    "embeddings_request",
    "invalid",
    "model_of",
    "object_body",
    "stream_flag",
]

_MAX_MODEL = 256


def invalid(message: str, param: str | None = None) -> NoReturn:
    raise ClientError(Failure(400, message, code="invalid_request_error", param=param))


def object_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        invalid("the request body must be a JSON object")
    return body


def model_of(body: dict[str, Any]) -> str:
    """The `model` field: a route name or `provider/model`."""
    model = body.get("model")
    if model is None:
        invalid("'model' is required: name a route (see GET /v1/models)", "model")
    if not isinstance(model, str) or not model or len(model) > _MAX_MODEL:
        invalid("'model' must be a non-empty string", "model")
    return model


def stream_flag(body: dict[str, Any]) -> bool:
    stream = body.get("stream")
    if stream is None:
        return False
    if not isinstance(stream, bool):
        invalid("'stream' must be true or false", "stream")
    return stream


def chat_request(body: Any) -> tuple[str, bool]:
    """(model, stream) of an OpenAI chat completions request, after checking its shape."""
    body = object_body(body)
    model = model_of(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        invalid("'messages' must be a non-empty list of messages", "messages")
    for i, message in enumerate(messages):
        _message(message, f"messages[{i}]")
    _tools(body.get("tools"))
    choice = body.get("tool_choice")
    if choice is not None and not isinstance(choice, str | dict):
        invalid("'tool_choice' must be a string or an object", "tool_choice")
    for key, value in body.items():  # usually a handful of keys: cheaper than every rule
        rule = _PARAMS.get(key)
        if rule is not None and value is not None:
            types, what = rule
            if isinstance(value, bool) is not (bool in types) or not isinstance(value, types):
                invalid(f"'{key}' must be {what}", key)
    stop = body.get("stop")
    if stop is not None and not (
        isinstance(stop, str) or (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        invalid("'stop' must be a string or a list of strings", "stop")
    return model, stream_flag(body)


_NUMBER = ((int, float), "a number")
_INTEGER = ((int,), "an integer")
_PARAMS: dict[str, tuple[tuple[type, ...], str]] = {
    "temperature": _NUMBER,
    "top_p": _NUMBER,
    "presence_penalty": _NUMBER,
    "frequency_penalty": _NUMBER,
    "max_tokens": _INTEGER,
    "max_completion_tokens": _INTEGER,
    "n": _INTEGER,
    "seed": _INTEGER,
    "top_logprobs": _INTEGER,
    "logprobs": ((bool,), "true or false"),
    "parallel_tool_calls": ((bool,), "true or false"),
    "user": ((str,), "a string"),
    "response_format": ((dict,), "an object"),
    "stream_options": ((dict,), "an object"),
    "metadata": ((dict,), "an object"),
}


# Shapes are checked only as deep as adapters look: a malformed request must fail here as a
# 400, not inside an adapter as an unexpected error that would count against a deployment.


def _message(message: Any, where: str) -> None:
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        invalid(f"{where} must be an object with a string 'role'", where)
    content = message.get("content")
    if isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                invalid(f"{where}.content[{j}] must be an object with a string 'type'", where)
    elif content is not None and not isinstance(content, str):
        invalid(f"{where}.content must be a string or a list of parts", where)
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            invalid(f"{where}.tool_calls must be a list", where)
        for j, call in enumerate(calls):
            if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
                invalid(f"{where}.tool_calls[{j}] must be an object with a 'function'", where)


def _tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        invalid("'tools' must be a list", "tools")
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            invalid(f"tools[{i}] must be an object with a 'function' that has a 'name'", "tools")


def embeddings_request(body: Any) -> str:
    """The model of an OpenAI embeddings request, after checking its shape."""
    body = object_body(body)
    model = model_of(body)
    data = body.get("input")
    if isinstance(data, str):
        if not data:
            invalid("'input' must not be empty", "input")
    elif not isinstance(data, list) or not data:
        invalid("'input' must be a string or a non-empty list", "input")
    return model
