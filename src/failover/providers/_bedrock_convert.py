"""OpenAI chat requests to Bedrock Converse requests, and Converse responses back to OpenAI chat
completions. Pure functions: no I/O, the caller's request is never modified.

Converse is one request shape for every Bedrock model (Claude, Nova, Llama, Mistral, ...):
`messages` of content blocks (`text`, `image`, `document`, `toolUse`, `toolResult`),
`system` blocks, `inferenceConfig` and `toolConfig`.
"""

from __future__ import annotations

import re
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

__all__ = ["finish_reason", "from_converse", "to_converse_request", "usage_of"]

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
_DOCUMENT_FORMATS = {
    "application/pdf": "pdf",
    "text/csv": "csv",
    "text/plain": "txt",
    "text/html": "html",
    "text/markdown": "md",
    "application/msword": "doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
# Bedrock document names: letters, digits, single spaces, hyphens, parentheses, brackets
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9\-()\[\] ]+|\s{2,}")


def finish_reason(stop_reason: Any) -> str:
    """OpenAI's finish_reason for a Converse stopReason."""
    return _FINISH.get(stop_reason, "stop")


def to_converse_request(request: Request, *, extra: JSON | None = None) -> JSON:
    """The Converse body for an OpenAI chat request (the model id goes in the URL).

    `extra` holds deployment-level fields merged as they are (`guardrailConfig`,
    `additionalModelRequestFields`, ...).
    """
    if int(request.get("n") or 1) != 1:
        raise BadRequest("bedrock does not support n > 1")
    system, messages = _convert(request.get("messages"))
    body: JSON = {"messages": messages}
    if system:
        body["system"] = [{"text": text} for text in system]
    if config := _inference_config(request):
        body["inferenceConfig"] = config
    if tool_config := _tool_config(request, messages):
        body["toolConfig"] = tool_config
    return {**body, **(extra or {})}


def _inference_config(request: Request) -> JSON:
    config: JSON = {}
    if limit := max_tokens(request):
        config["maxTokens"] = limit
    if (temperature := request.get("temperature")) is not None:
        config["temperature"] = min(float(temperature), 1.0)  # OpenAI allows 0..2, Bedrock 0..1
    if (top_p := request.get("top_p")) is not None:
        config["topP"] = float(top_p)
    if stops := stop_sequences(request):
        config["stopSequences"] = stops
    return config


def _tool_config(request: Request, messages: list[JSON]) -> JSON | None:
    tools = function_tools(request, provider="bedrock")
    if not tools:
        return None
    found = tool_choice(request)
    if found is not None and found.mode == "none" and not _has_tool_blocks(messages):
        return None  # Converse has no "none": offer no tools instead
    config: JSON = {"tools": [_tool_spec(t) for t in tools]}
    if found is not None and (mapped := _choice(found)) is not None:
        config["toolChoice"] = mapped
    return config


def _has_tool_blocks(messages: list[JSON]) -> bool:
    # Bedrock requires toolConfig once the conversation holds toolUse or toolResult blocks
    return any("toolUse" in b or "toolResult" in b for m in messages for b in m["content"])


def _tool_spec(tool: FunctionTool) -> JSON:
    spec: JSON = {"name": tool.name}
    if tool.description:
        spec["description"] = tool.description
    spec["inputSchema"] = {"json": tool.parameters or {"type": "object", "properties": {}}}
    return {"toolSpec": spec}


def _choice(found: ToolChoice) -> JSON | None:
    if found.mode == "required":
        return {"any": {}}
    if found.mode == "function":
        return {"tool": {"name": found.name}}
    return {"auto": {}} if found.mode == "auto" else None


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
        blocks = [{"text": text}] if (text := _assistant_text(msg.get("content"))) else []
        for call in msg.get("tool_calls") or []:
            if not isinstance(call, dict):
                raise BadRequest("every tool call must be an object")
            blocks.append(_tool_use(call.get("id") or new_id("tooluse"), call.get("function")))
        if isinstance(fc := msg.get("function_call"), dict):
            self._legacy_count += 1
            self._legacy_ids.append(f"call_legacy_{self._legacy_count}")
            blocks.append(_tool_use(self._legacy_ids[-1], fc))
        return blocks

    def legacy_result_id(self) -> str:
        if not self._legacy_ids:
            raise BadRequest("a function message must follow an assistant function_call")
        return self._legacy_ids.pop(0)


def _convert(messages: Any) -> tuple[list[str], list[JSON]]:
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
    return [s for s in turns.system if s], turns.turns


def _assistant_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(
            str(p.get("text") or p.get("refusal") or "")
            for p in content
            if isinstance(p, dict) and p.get("type") in ("text", "refusal")
        )
    return text_of(content)


def _tool_use(id_: Any, fn: Any) -> JSON:
    if not isinstance(fn, dict) or not fn.get("name"):
        raise BadRequest("a tool call needs function.name")
    input_ = parse_arguments(fn.get("arguments"))
    return {"toolUse": {"toolUseId": str(id_), "name": str(fn["name"]), "input": input_}}


def _tool_result(tool_use_id: Any, content: Any) -> JSON:
    if not tool_use_id:
        raise BadRequest("a tool message needs tool_call_id")
    text = text_of(content)
    blocks = [{"text": text}] if text else []
    return {"toolResult": {"toolUseId": str(tool_use_id), "content": blocks}}


def _user_blocks(content: Any) -> list[JSON]:
    if content is None or isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise BadRequest("message content must be a string or a list of parts")
    return [block for part in content if (block := _user_part(part)) is not None]


def _user_part(part: Any) -> JSON | None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind == "text":
        return {"text": str(part["text"])} if part.get("text") else None
    if kind == "image_url":
        return {"image": _image(image_url(part))}
    if kind == "file":
        return {"document": _document(part.get("file"))}
    raise BadRequest(f"bedrock does not support {kind!r} content parts")


def _image(url: str) -> JSON:
    if data := split_data_url(url):
        media_type, b64 = data
        return {"format": _image_format(media_type.partition("/")[2]), "source": {"bytes": b64}}
    if url.startswith("s3://"):  # Bedrock reads images from S3 itself
        extension = url.rsplit(".", 1)[-1].lower()
        return {"format": _image_format(extension), "source": {"s3Location": {"uri": url}}}
    raise BadRequest(
        "bedrock cannot fetch image URLs: send the image as a base64 data: URL "
        "(or an s3:// URI the model's role can read)"
    )


def _image_format(name: str) -> str:
    found = _IMAGE_FORMATS.get(name.lower())
    if found is None:
        raise BadRequest(f"bedrock takes png, jpeg, gif or webp images, not {name!r}")
    return found


def _document(file: Any) -> JSON:
    file = file if isinstance(file, dict) else {}
    data = split_data_url(str(file.get("file_data") or ""))
    if data is None:
        raise BadRequest("bedrock takes file parts only as base64 data: URLs (file.file_data)")
    fmt = _DOCUMENT_FORMATS.get(data[0])
    if fmt is None:
        raise BadRequest(f"bedrock does not take documents of type {data[0]!r}")
    stem = str(file.get("filename") or "document").rsplit(".", 1)[0]
    name = _NAME_UNSAFE.sub(" ", stem).strip() or "document"
    return {"format": fmt, "name": name, "source": {"bytes": data[1]}}


def usage_of(raw: Any) -> JSON:
    """OpenAI usage from Converse usage: cache reads and writes count as prompt tokens."""
    u = raw if isinstance(raw, dict) else {}
    cached = int(u.get("cacheReadInputTokens") or 0)
    prompt = int(u.get("inputTokens") or 0) + int(u.get("cacheWriteInputTokens") or 0)
    return usage(prompt + cached, int(u.get("outputTokens") or 0), cached=cached)


def from_converse(resp: JSON, *, model: str, created: int) -> JSON:
    """An OpenAI chat.completion for a Converse response (which has no id: one is made)."""
    msg = (resp.get("output") or {}).get("message") or {}
    texts: list[str] = []
    calls: list[JSON] = []
    for block in msg.get("content") or []:
        if "text" in block:
            texts.append(str(block["text"] or ""))
        elif isinstance(use := block.get("toolUse"), dict):
            arguments = orjson.dumps(use.get("input") or {}).decode()
            calls.append(tool_call(str(use.get("toolUseId")), str(use.get("name")), arguments))
        # reasoningContent, citations and guardrail traces have no OpenAI counterpart
    content = "".join(texts) if texts or not calls else None
    return completion(
        id_=new_id(),
        model=model,
        created=created,
        choices=[choice(0, message(content, calls), finish_reason(resp.get("stopReason")))],
        used=usage_of(resp.get("usage")),
    )
