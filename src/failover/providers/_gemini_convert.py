"""OpenAI chat requests to Gemini `generateContent` requests, and Gemini responses back to
OpenAI chat completions. Pure functions: no I/O, the caller's request is never modified."""

from __future__ import annotations

import mimetypes
from typing import Any

import orjson

from ..errors import BadRequest
from ..openai_shapes import choice, completion, message, new_id, tool_call, usage
from ..types import JSON, Request
from ._openai_format import (
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

__all__ = ["finish_reason", "from_response", "parts_of", "to_gemini_request", "usage_of"]

_FILTERED = ("SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII", "IMAGE_SAFETY")
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length"} | {r: "content_filter" for r in _FILTERED}
_CONFIG_KEYS = {
    "temperature": "temperature",
    "top_p": "topP",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "function": "ANY"}


def finish_reason(reason: Any, *, tool_calls: bool) -> str:
    """OpenAI's finish_reason for a Gemini finishReason."""
    mapped = _FINISH.get(reason, "stop")
    return "tool_calls" if tool_calls and mapped == "stop" else mapped


def to_gemini_request(request: Request) -> JSON:
    """The generateContent body for an OpenAI chat request."""
    system, contents = _convert(request.get("messages"))
    body: JSON = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if config := _generation_config(request):
        body["generationConfig"] = config
    if tools := function_tools(request, provider="gemini"):
        declarations = []
        for tool in tools:
            decl: JSON = {"name": tool.name}
            if tool.description:
                decl["description"] = tool.description
            if tool.parameters:
                decl["parametersJsonSchema"] = tool.parameters  # JSON Schema as OpenAI has it
            declarations.append(decl)
        body["tools"] = [{"functionDeclarations": declarations}]
        if found := tool_choice(request):
            body["toolConfig"] = {"functionCallingConfig": _calling_config(found)}
    return body


def _calling_config(found: ToolChoice) -> JSON:
    config: JSON = {"mode": _MODES[found.mode]}
    if found.name:
        config["allowedFunctionNames"] = [found.name]
    return config


def _generation_config(request: Request) -> JSON:
    config = {g: request[o] for o, g in _CONFIG_KEYS.items() if request.get(o) is not None}
    if limit := max_tokens(request):
        config["maxOutputTokens"] = limit
    if stops := stop_sequences(request):
        config["stopSequences"] = stops
    fmt = request.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        if schema := (fmt.get("json_schema") or {}).get("schema"):
            config["responseJsonSchema"] = schema
    return config


class _Contents:
    """Contents being built: system text set aside, consecutive same-role turns merged."""

    def __init__(self) -> None:
        self.system: list[str] = []
        self.contents: list[JSON] = []
        self._names: dict[str, str] = {}  # tool_call id -> function name, for the responses

    def add(self, role: str, parts: list[JSON]) -> None:
        if not parts:
            return
        if self.contents and self.contents[-1]["role"] == role:
            self.contents[-1]["parts"].extend(parts)
        else:
            self.contents.append({"role": role, "parts": parts})

    def model_parts(self, msg: JSON) -> list[JSON]:
        parts: list[JSON] = [{"text": t}] if (t := text_of(msg.get("content"))) else []
        calls = list(msg.get("tool_calls") or [])
        if isinstance(msg.get("function_call"), dict):
            calls.append({"function": msg["function_call"]})
        for call in calls:
            fn = call.get("function") or {}
            if not fn.get("name"):
                raise BadRequest("a tool call needs function.name")
            if call.get("id"):
                self._names[str(call["id"])] = str(fn["name"])
            args = parse_arguments(fn.get("arguments"))
            parts.append({"functionCall": {"name": str(fn["name"]), "args": args}})
        return parts

    def function_response(self, msg: JSON) -> JSON:
        # Gemini matches a result to its call by function name, which OpenAI tool messages omit
        name = self._names.get(str(msg.get("tool_call_id"))) or msg.get("name")
        if not name:
            raise BadRequest("a tool message must answer an earlier assistant tool call")
        text = text_of(msg.get("content"))
        return {"functionResponse": {"name": str(name), "response": _response_value(text)}}


def _response_value(text: str) -> JSON:
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        parsed = None
    return parsed if isinstance(parsed, dict) else {"result": text}


def _convert(messages: Any) -> tuple[str | None, list[JSON]]:
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    built = _Contents()
    for msg in messages:
        if not isinstance(msg, dict):
            raise BadRequest("every message must be an object")
        role = msg.get("role")
        if role in ("system", "developer"):
            built.system.append(text_of(msg.get("content")))
        elif role == "user":
            built.add("user", _user_parts(msg.get("content")))
        elif role == "assistant":
            built.add("model", built.model_parts(msg))
        elif role in ("tool", "function"):
            built.add("user", [built.function_response(msg)])
        else:
            raise BadRequest(f"unsupported message role {role!r}")
    system = "\n\n".join(s for s in built.system if s)
    return system or None, built.contents


def _user_parts(content: Any) -> list[JSON]:
    if content is None or isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest("message content must be a string or a list of parts")
    return [part for p in content if (part := _user_part(p)) is not None]


def _user_part(part: Any) -> JSON | None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return {"text": str(part["text"])} if part.get("text") else None
    if kind == "image_url":
        return _media(image_url(part))
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        mime = f"audio/{audio.get('format') or 'wav'}"
        return {"inlineData": {"mimeType": mime, "data": str(audio.get("data") or "")}}
    if kind == "file":
        return _media(str((part.get("file") or {}).get("file_data") or ""))
    raise BadRequest(f"gemini does not support {kind!r} content parts")


def _media(url: str) -> JSON:
    if data := split_data_url(url):
        return {"inlineData": {"mimeType": data[0], "data": data[1]}}
    if url.startswith(("http://", "https://")):
        mime = mimetypes.guess_type(url.split("?")[0])[0] or "image/jpeg"
        return {"fileData": {"mimeType": mime, "fileUri": url}}
    raise BadRequest("a media URL must be a data: URL or an http(s) URL")


def parts_of(candidate: JSON) -> tuple[str, list[JSON]]:
    """A candidate's answer text (thoughts left out) and its function calls as tool calls."""
    parts = (candidate.get("content") or {}).get("parts") or []
    text = "".join(str(p["text"]) for p in parts if "text" in p and not p.get("thought"))
    calls = [
        tool_call(
            str(fc.get("id") or new_id("call")),
            str(fc.get("name")),
            orjson.dumps(fc.get("args") or {}).decode(),
        )
        for p in parts
        if isinstance(fc := p.get("functionCall"), dict)
    ]
    return text, calls


def usage_of(meta: Any) -> JSON:
    """OpenAI usage from Gemini usageMetadata (thinking tokens count as completion tokens)."""
    m = meta if isinstance(meta, dict) else {}
    answer = int(m.get("candidatesTokenCount") or 0) + int(m.get("thoughtsTokenCount") or 0)
    cached = int(m.get("cachedContentTokenCount") or 0)
    return usage(int(m.get("promptTokenCount") or 0), answer, cached=cached)


def from_response(resp: JSON, *, fallback_model: str, created: int) -> JSON:
    """An OpenAI chat.completion for a Gemini GenerateContentResponse."""
    choices = []
    for position, candidate in enumerate(resp.get("candidates") or []):
        text, calls = parts_of(candidate)
        reason = finish_reason(candidate.get("finishReason"), tool_calls=bool(calls))
        content = text if text or not calls else None
        index = int(candidate.get("index", position))
        choices.append(choice(index, message(content, calls), reason))
    return completion(
        id_=str(resp.get("responseId") or new_id()),
        model=str(resp.get("modelVersion") or fallback_model),
        created=created,
        choices=choices,
        used=usage_of(resp.get("usageMetadata")),
    )
