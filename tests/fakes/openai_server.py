"""A fake OpenAI (and Azure OpenAI) server speaking the Chat Completions wire format: JSON
bodies, `data: ...` SSE chunks ending in `data: [DONE]`, OpenAI error bodies and headers; and
whole answers of the Responses API (`POST /v1/responses`)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from .server import FakeServer, Received, Reply, Stream, sse

__all__ = ["FakeOpenAI"]

DEFAULT_TEXT = "Hello from the fake OpenAI."
CREATED = 1_700_000_000
PREFILL_REFUSED = (
    "This model does not support assistant message prefill. "
    "The conversation must end with a user message."
)


class FakeOpenAI(FakeServer):
    """OpenAI at `base_url` (`.../v1`); Azure deployment URLs at `url` work too.

    With `api_key` set, requests without `Authorization: Bearer <key>` (or Azure's `api-key`)
    get a 401 whose message echoes the key they sent, as a careless provider might.
    """

    lead = 1  # the role chunk
    malformed = sse(b'{"id":"chatcmpl-fake123","object":"chat.completion.chunk","choices":[{"de')

    def __init__(self, *, api_key: str | None = None, text: str = DEFAULT_TEXT) -> None:
        super().__init__()
        self.api_key = api_key
        self.text = text

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def answer(self, received: Received) -> Reply | Stream:
        if self.api_key is not None and (sent := self._key(received)) != self.api_key:
            return self.error(401, f"Incorrect API key provided: {sent}.", code="invalid_api_key")
        body = received.json or {}
        model = str(body.get("model") or "gpt-4o")
        if received.path.endswith("/chat/completions"):
            prefix = _assistant_prefix(body.get("messages"))
            if prefix is not None and self.prefill == "refuse":
                return self.refuse_prefill()
            text = self.continued(prefix)
            if body.get("stream"):
                usage = bool((body.get("stream_options") or {}).get("include_usage"))
                return self.stream(self.split(text), model=model, usage=usage)
            return self.reply(text, model=model)
        if received.path.endswith("/responses"):
            return Reply(self.response([self.message_item(self.text)], model=model))
        if received.path.endswith("/embeddings"):
            return Reply(self.embeddings(body.get("input"), model=model))
        if received.path.endswith("/models"):
            return Reply({"object": "list", "data": [_model_entry("gpt-4o")]})
        return self.error(404, f"Unknown request URL: {received.method} {received.path}.")

    @staticmethod
    def _key(received: Received) -> str:
        bearer = received.headers.get("authorization", "").removeprefix("Bearer ")
        return received.headers.get("api-key") or bearer

    # -- bodies ------------------------------------------------------------------------------

    @staticmethod
    def completion(
        text: str | None = DEFAULT_TEXT,
        *,
        model: str = "gpt-4o",
        tool_calls: list[dict[str, Any]] | None = None,
        finish_reason: str = "stop",
    ) -> dict[str, Any]:
        msg: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if tool_calls:
            msg["tool_calls"] = tool_calls
        return {
            "id": "chatcmpl-fake123",
            "object": "chat.completion",
            "created": CREATED,
            "model": model,
            "choices": [
                {"index": 0, "message": msg, "logprobs": None, "finish_reason": finish_reason}
            ],
            "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
            "system_fingerprint": "fp_fake",
        }

    @staticmethod
    def chunk(
        delta: dict[str, Any],
        *,
        model: str = "gpt-4o",
        finish: str | None = None,
        usage: bool = False,
    ) -> dict[str, Any]:
        """One chunk; with `usage` (stream_options.include_usage) it has `"usage": null`."""
        body: dict[str, Any] = {
            "id": "chatcmpl-fake123",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
        if usage:
            body["usage"] = None
        return body

    @classmethod
    def chunks(
        cls, pieces: list[str], *, model: str = "gpt-4o", usage: bool = False
    ) -> list[dict[str, Any]]:
        """A role chunk, one chunk per piece, the finish chunk, and with `usage` the usage
        chunk (`choices: []`) OpenAI adds for stream_options.include_usage."""
        role = {"role": "assistant", "content": "", "refusal": None}
        first = [cls.chunk(role, model=model, usage=usage)]
        middle = [cls.chunk({"content": p}, model=model, usage=usage) for p in pieces]
        last = [cls.chunk({}, model=model, finish="stop", usage=usage)]
        if usage:
            used = {"prompt_tokens": 9, "completion_tokens": len(pieces), "total_tokens": 9}
            used["total_tokens"] += len(pieces)
            last.append({**cls.chunk({}, model=model), "choices": [], "usage": used})
        return [*first, *middle, *last]

    @staticmethod
    def response(
        output: list[dict[str, Any]], *, model: str = "gpt-4o", response_id: str = "resp_fake1"
    ) -> dict[str, Any]:
        """A whole Responses API answer (`POST /v1/responses`) with these output items."""
        return {
            "id": response_id,
            "object": "response",
            "created_at": CREATED,
            "status": "completed",
            "completed_at": CREATED,
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "max_output_tokens": None,
            "model": model,
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": None,
            "reasoning": {"effort": None, "summary": None},
            "store": True,
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": {
                "input_tokens": 9,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": 12,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": 21,
            },
            "metadata": {},
        }

    @staticmethod
    def message_item(text: str, *, item_id: str = "msg_fake1") -> dict[str, Any]:
        """A Responses output item: the assistant's text."""
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        return {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [part],
        }

    @staticmethod
    def embeddings(inputs: Any, *, model: str = "text-embedding-3-small") -> dict[str, Any]:
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = [
            {"object": "embedding", "index": i, "embedding": [0.1, -0.2, 0.3]}
            for i in range(len(texts))
        ]
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        return {"object": "list", "data": data, "model": model, "usage": usage}

    # -- behaviours --------------------------------------------------------------------------

    def reply(self, text: str | None = DEFAULT_TEXT, **kwargs: Any) -> Reply:
        """A 200 completion, pretty-printed as OpenAI sends it."""
        return Reply(self.completion(text, **kwargs), headers=_headers(), indent=2)

    def stream(
        self,
        pieces: list[str],
        *,
        model: str = "gpt-4o",
        gates: dict[int, asyncio.Event] | None = None,
        cut_after: int | None = None,
        done: bool = True,
        usage: bool = False,
        malformed_after: int | None = None,
        stall_after: int | None = None,
        stall_for: float = 30.0,
    ) -> Stream:
        """Frames: a role chunk, one chunk per piece, a finish chunk (and the usage chunk with
        `usage`), then `data: [DONE]` unless `done` is false; faults as in `shaped`."""
        frames = [sse(c) for c in self.chunks(pieces, model=model, usage=usage)]
        if done:
            frames.append(sse("[DONE]"))
        return self.shaped(
            frames,
            gates=gates,
            cut_after=cut_after,
            malformed_after=malformed_after,
            stall_after=stall_after,
            stall_for=stall_for,
            headers=_headers(),
        )

    @classmethod
    def refuse_prefill(cls) -> Reply:
        """The 400 of a model that does not continue a trailing assistant message (as
        OpenAI-compatible proxies of such models answer)."""
        return cls.error(400, PREFILL_REFUSED, param="messages")

    @staticmethod
    def error_event(message: str, *, type: str = "server_error", code: str | None = None) -> bytes:
        """An error inside a 200 stream, as OpenAI sends one: `data: {"error": {...}}`."""
        return sse({"error": {"message": message, "type": type, "param": None, "code": code}})

    @staticmethod
    def error(
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """An error in OpenAI's shape: `{"error": {"message", "type", "param", "code"}}`."""
        body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        return Reply(body, status=status, headers={**_headers(), **(headers or {})}, indent=2)


def _assistant_prefix(messages: Any) -> str | None:
    """The text of a trailing assistant message (a prefill), or None."""
    last = messages[-1] if isinstance(messages, list) and messages else None
    if not isinstance(last, dict) or last.get("role") != "assistant":
        return None
    content = last.get("content")
    return content if isinstance(content, str) else None


def _headers() -> dict[str, str]:
    return {"x-request-id": f"req_fake{time.monotonic_ns()}", "openai-processing-ms": "12"}


def _model_entry(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": CREATED, "owned_by": "system"}
