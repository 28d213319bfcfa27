"""Google's Gemini API (generativelanguage `generateContent`) behind the OpenAI chat interface:
requests translated on the way in, answers and SSE chunks translated back."""

from __future__ import annotations

import base64
import contextlib
import struct
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from ..classify import parse_duration_header
from ..config import GeminiOptions
from ..errors import BadRequest, ConnectionFailed, ContentFiltered, Kind, ServerError, callers_fault
from ..openai_shapes import ChunkMaker, new_id, wants_usage
from ..types import JSON, Chunk, Completion, Payload, Request, malformed_chunk
from ._gemini_convert import finish_reason, from_response, parts_of, to_gemini_request, usage_of
from ._http import HTTPAdapter

__all__ = ["GeminiAdapter"]

_AUTH_MARKERS = ("api_key_invalid", "api key not valid", "api key expired")


class GeminiAdapter(HTTPAdapter):
    """Gemini models through generateContent / streamGenerateContent (`x-goog-api-key`)."""

    kind: ClassVar[str] = "gemini"
    default_base_url: ClassVar[str] = "https://generativelanguage.googleapis.com/v1beta"
    options_type: ClassVar[type[GeminiOptions]] = GeminiOptions

    def auth_headers(self) -> dict[str, str]:
        # a header rather than ?key=: URLs end up in logs and error messages, headers do not
        return {"x-goog-api-key": self._api_key} if self._api_key else {}

    @property
    def model_url(self) -> str:
        """The model's resource URL; tuned models come as "tunedModels/NAME"."""
        path = self.model if "/" in self.model else f"models/{self.model}"
        return f"{self.base_url}/{path}"

    async def complete(self, request: Request) -> Completion:
        with callers_fault("gemini", deployment=self.name):
            body = to_gemini_request(request)
        resp = self._json(await self._post(f"{self.model_url}:generateContent", body))
        self._raise_if_blocked(resp)
        if not resp.get("candidates"):
            raise ServerError("gemini returned no candidates", deployment=self.name)
        created = int(self._clock.wall())
        return Completion(from_response(resp, fallback_model=self.model, created=created))

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        with callers_fault("gemini", deployment=self.name):
            body = to_gemini_request(request)
        url = f"{self.model_url}:streamGenerateContent?alt=sse"
        translator = _StreamTranslator(
            model=self.model, created=int(self._clock.wall()), include_usage=wants_usage(request)
        )
        async with self._open_stream(url, body) as resp:
            # Gemini has no end-of-stream sentinel: the stream ends when the body does
            async with contextlib.aclosing(resp.events(done=None)) as events:
                async for event in events:
                    data = self._json_object(event.data)
                    if data is None:  # unreadable: the router skips it and counts it
                        yield malformed_chunk(event.data)
                        continue
                    if "error" in data:
                        raise self.stream_error(event.data)
                    self._raise_if_blocked(data)
                    for chunk in translator.feed(data):
                        yield chunk
            if not translator.finished:
                raise ConnectionFailed(
                    "gemini stream ended without a finishReason", deployment=self.name
                )
            for chunk in translator.close():
                yield chunk

    def _raise_if_blocked(self, resp: JSON) -> None:
        reason = (resp.get("promptFeedback") or {}).get("blockReason")
        if reason:
            raise ContentFiltered(
                f"gemini blocked the prompt: {reason}", deployment=self.name, code=str(reason)
            )

    async def embeddings(self, request: Request) -> Payload:
        """OpenAI embeddings through batchEmbedContents (floats, or base64 when asked)."""
        texts = _embedding_inputs(request.get("input"))
        path = self.model_url.removeprefix(f"{self.base_url}/")
        extra = {"outputDimensionality": d} if (d := request.get("dimensions")) else {}
        body = {
            "requests": [
                {"model": path, "content": {"parts": [{"text": t}]}, **extra} for t in texts
            ]
        }
        resp = self._json(await self._post(f"{self.model_url}:batchEmbedContents", body))
        as_base64 = request.get("encoding_format") == "base64"
        data = [
            {"object": "embedding", "index": i, "embedding": _vector(e.get("values"), as_base64)}
            for i, e in enumerate(resp.get("embeddings") or [])
        ]
        used = {"prompt_tokens": 0, "total_tokens": 0}  # Gemini does not report them here
        return Payload({"object": "list", "data": data, "model": self.model, "usage": used})

    async def probe(self) -> None:
        """GET the model resource: checks the key and that the model exists, at no cost."""
        await self._get(self.model_url)

    def classify(self, status: int, text: str) -> Kind:
        # Gemini answers a bad key with 400 INVALID_ARGUMENT; it is an auth failure
        if any(m in text.lower() for m in _AUTH_MARKERS):
            return Kind.AUTH
        return super().classify(status, text)

    def error_hints(self, parsed: Any) -> str:
        """The `reason`s in google.rpc error details (API_KEY_INVALID, RATE_LIMIT_EXCEEDED...)."""
        return " ".join(str(d.get("reason") or "") for d in _details(parsed))

    def retry_after(self, headers: Mapping[str, str], parsed: Any) -> float | None:
        found = super().retry_after(headers, parsed)
        if found is not None:
            return found
        for detail in _details(parsed):
            if str(detail.get("@type", "")).endswith("RetryInfo"):
                return parse_duration_header(str(detail.get("retryDelay") or ""))
        return None


def _details(parsed: Any) -> list[JSON]:
    err = parsed.get("error") if isinstance(parsed, dict) else None
    details = err.get("details") if isinstance(err, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _embedding_inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise BadRequest("gemini embeddings take input as a string or a list of strings")


def _vector(values: Any, as_base64: bool) -> list[float] | str:
    floats = [float(v) for v in values or []]
    if not as_base64:
        return floats
    # OpenAI's base64 encoding is little-endian float32
    return base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode()


class _StreamTranslator:
    """Gemini GenerateContentResponse chunks in, OpenAI chat.completion.chunk objects out."""

    def __init__(self, *, model: str, created: int, include_usage: bool) -> None:
        self._model = model
        self._created = created
        self._include_usage = include_usage
        self._maker: ChunkMaker | None = None
        self._started: set[int] = set()  # choices whose first chunk (with the role) went out
        self._tools: dict[int, int] = {}  # choice index -> tool calls sent so far
        self._finished: set[int] = set()
        self._usage: Any = None

    @property
    def finished(self) -> bool:
        return bool(self._finished)

    def feed(self, data: JSON) -> list[Chunk]:
        if self._maker is None:
            id_ = str(data.get("responseId") or new_id())
            model = str(data.get("modelVersion") or self._model)
            self._maker = ChunkMaker(id_, model, self._created)
        self._usage = data.get("usageMetadata") or self._usage
        out: list[Chunk] = []
        for position, candidate in enumerate(data.get("candidates") or []):
            out += self._candidate(self._maker, int(candidate.get("index", position)), candidate)
        return out

    def _candidate(self, maker: ChunkMaker, index: int, candidate: JSON) -> list[Chunk]:
        text, calls = parts_of(candidate)
        delta: JSON = {}
        if index not in self._started:
            self._started.add(index)
            delta = {"role": "assistant", "content": text, "refusal": None}
        elif text:
            delta["content"] = text
        if calls:
            first = self._tools.get(index, 0)
            self._tools[index] = first + len(calls)
            delta["tool_calls"] = [{"index": first + i, **call} for i, call in enumerate(calls)]
        out = [maker.chunk(delta, index=index)] if delta else []
        if reason := candidate.get("finishReason"):
            self._finished.add(index)
            mapped = finish_reason(reason, tool_calls=index in self._tools)
            out.append(maker.chunk({}, finish_reason=mapped, index=index))
        return out

    def close(self) -> list[Chunk]:
        """The usage chunk, when the caller asked for one."""
        if not self._include_usage or self._maker is None:
            return []
        return [self._maker.usage_chunk(usage_of(self._usage))]
