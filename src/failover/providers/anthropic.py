"""Anthropic's Messages API: behind the OpenAI chat interface (requests translated on the way
in, answers and stream events translated back), and natively for clients that speak Messages
themselves (the request passed through as it is, the answer relayed as it was sent)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

from ..config import AnthropicOptions
from ..errors import ConnectionFailed, callers_fault
from ..openai_shapes import ChunkMaker, new_id, wants_usage
from ..resilience.streams import Prefill
from ..transport import SSEEvent
from ..types import JSON, Chunk, Completion, NativeChunk, Payload, Request, malformed_chunk
from ._anthropic_convert import finish_reason, from_message, to_messages_request, usage_of
from ._http import HTTPAdapter

__all__ = ["ANTHROPIC", "AnthropicAdapter"]

API_VERSION = "2023-06-01"
ANTHROPIC = "anthropic"  # the Messages API, as a dialect deployments may speak natively


class AnthropicAdapter(HTTPAdapter):
    """Claude models through the Messages API (`x-api-key`, `anthropic-version`)."""

    kind: ClassVar[str] = "anthropic"
    default_prefill: ClassVar[Prefill] = Prefill.ASSISTANT  # a trailing assistant turn continues
    default_base_url: ClassVar[str] = "https://api.anthropic.com"
    options_type: ClassVar[type[AnthropicOptions]] = AnthropicOptions
    options: AnthropicOptions
    dialects = frozenset({ANTHROPIC})

    def normalize_base_url(self, base_url: str) -> str:
        return base_url.removesuffix("/v1")  # both https://api.anthropic.com[/v1] work

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": self.api_version or API_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        if self.options.beta:
            headers["anthropic-beta"] = ",".join(self.options.beta)
        return headers

    def messages_url(self, *, stream: bool) -> str:
        """Where Messages requests go (a hook: other clouds name the model in the URL)."""
        return f"{self.base_url}/v1/messages"

    def messages_body(self, request: Request, *, stream: bool = False) -> JSON:
        """The Messages request body for an OpenAI request."""
        default = self.options.default_max_tokens
        with callers_fault("anthropic", deployment=self.name):
            body = to_messages_request(request, model=self.model, default_max_tokens=default)
        return self.wire_body(body, stream=stream)

    def wire_body(self, body: JSON, *, stream: bool) -> JSON:
        """A Messages body as this endpoint takes it: the deployment's model and the stream
        flag (a hook: other clouds put the model in the URL and a version in the body)."""
        body["model"] = self.model
        if stream:
            body["stream"] = True
        else:
            body.pop("stream", None)
        return body

    async def complete(self, request: Request) -> Completion:
        raw = await self._post(self.messages_url(stream=False), self.messages_body(request))
        created = int(self._clock.wall())
        return Completion(from_message(self._json(raw), fallback_model=self.model, created=created))

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        body = self.messages_body(request, stream=True)
        translator = _StreamTranslator(
            model=self.model,
            created=int(self._clock.wall()),
            include_usage=wants_usage(request),
            deployment=self.name,
        )
        async with self._open_stream(self.messages_url(stream=True), body) as resp:
            async with contextlib.aclosing(resp.events(done=None)) as events:
                async for event in events:
                    data = self._event(event)
                    if data is None:  # unreadable: the router skips it and counts it
                        yield malformed_chunk(event.data)
                        continue
                    for chunk in translator.feed(data):
                        yield chunk
                    if translator.done:
                        resp.end()
                        return
            # message_delta carried the stop reason (and the usage): the answer is whole
            # even when message_stop never came
            if not translator.finished:
                raise ConnectionFailed(
                    "anthropic stream ended before its stop reason", deployment=self.name
                )

    def _event(self, event: SSEEvent) -> JSON | None:
        """An event's data; an error event raises its error, an unreadable one is None."""
        if event.event == "error":
            raise self.stream_error(event.data)
        data = self._json_object(event.data)
        if data is None:
            return None
        if data.get("type") == "error":
            raise self.stream_error(event.data)
        data.setdefault("type", event.event)
        return data

    # -- the Messages API as it is --------------------------------------------------------

    async def complete_native(
        self, dialect: str, request: Request, headers: Mapping[str, str]
    ) -> Payload:
        """The Messages request as the client sent it (its model replaced), and the answer's
        bytes as Anthropic sent them."""
        body = self.wire_body(dict(request), stream=False)
        sent = self._client_headers(headers)
        raw = await self._post(self.messages_url(stream=False), body, headers=sent)
        return Payload(raw=raw)

    async def stream_native(
        self, dialect: str, request: Request, headers: Mapping[str, str]
    ) -> AsyncIterator[Chunk]:
        """Anthropic's stream events as they came, each with its OpenAI equivalent."""
        body = self.wire_body(dict(request), stream=True)
        translator = _StreamTranslator(
            model=self.model,
            created=int(self._clock.wall()),
            include_usage=True,
            deployment=self.name,
        )
        sent = self._client_headers(headers)
        async with self._open_stream(self.messages_url(stream=True), body, headers=sent) as resp:
            async with contextlib.aclosing(resp.events(done=None)) as events:
                async for event in events:
                    frame = _frame(event)
                    data = self._event(event)
                    if data is None:
                        yield malformed_chunk(frame)
                        continue
                    yield NativeChunk(frame, _one_body(translator.feed(data)))
                    if translator.done:
                        resp.end()
                        return
            if not translator.finished:
                raise ConnectionFailed(
                    "anthropic stream ended before its stop reason", deployment=self.name
                )

    def _client_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The client's version and beta headers, its betas added to the configured ones."""
        out: dict[str, str] = {}
        if version := headers.get("anthropic-version"):
            out["anthropic-version"] = version
        betas = [*self.options.beta, *_split(headers.get("anthropic-beta", ""))]
        if betas:
            out["anthropic-beta"] = ",".join(dict.fromkeys(betas))
        return out

    async def probe(self) -> None:
        """GET /v1/models?limit=1: authenticated, and costs no tokens."""
        await self._get(f"{self.base_url}/v1/models?limit=1")


def _frame(event: SSEEvent) -> bytes:
    """An event as Server-Sent Events bytes again, its data exactly as it arrived."""
    return b"event: " + event.event.encode() + b"\ndata: " + event.data + b"\n\n"


def _one_body(chunks: list[Chunk]) -> JSON:
    """One OpenAI chunk body for what an event translated to (none, one, or a finish and its
    usage): the router reads a native event's meaning from it."""
    if not chunks:
        return {"choices": []}
    body = dict(chunks[0].body)
    for chunk in chunks[1:]:
        more = chunk.body
        body["choices"] = [*(body.get("choices") or []), *(more.get("choices") or [])]
        if "usage" in more:
            body["usage"] = more["usage"]
    return body


def _split(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class _StreamTranslator:
    """Anthropic stream events in, OpenAI chat.completion.chunk objects out."""

    def __init__(self, *, model: str, created: int, include_usage: bool, deployment: str) -> None:
        self._model = model
        self._deployment = deployment
        self._created = created
        self._include_usage = include_usage
        self._maker: ChunkMaker | None = None
        self._tools: dict[int, int] = {}  # content block index -> OpenAI tool_calls index
        self._usage: JSON = {}
        self.finished = False  # the stop reason arrived: the answer is whole
        self.done = False  # message_stop arrived: nothing more will come

    def feed(self, data: JSON) -> list[Chunk]:
        # a match, not a table of bound methods on self: such a table is a reference cycle,
        # left for the garbage collector by every stream
        match data["type"]:
            case "message_start":
                return self._message_start(data)
            case "content_block_start":
                return self._block_start(data)
            case "content_block_delta":
                return self._block_delta(data)
            case "message_delta":
                return self._message_delta(data)
            case "message_stop":
                return self._message_stop(data)
        # ping, content_block_stop and event types added later carry nothing to translate
        return []

    @property
    def maker(self) -> ChunkMaker:
        if self._maker is None:
            raise ConnectionFailed(
                "anthropic stream event before message_start", deployment=self._deployment
            )
        return self._maker

    def _message_start(self, data: JSON) -> list[Chunk]:
        msg = data.get("message") or {}
        self._maker = ChunkMaker(
            str(msg.get("id") or new_id()), str(msg.get("model") or self._model), self._created
        )
        self._add_usage(msg.get("usage"))
        return [self.maker.chunk({"role": "assistant", "content": "", "refusal": None})]

    def _block_start(self, data: JSON) -> list[Chunk]:
        block = data.get("content_block") or {}
        if block.get("type") == "tool_use":
            index = self._tools[int(data.get("index", 0))] = len(self._tools)
            call = {
                "index": index,
                "id": str(block.get("id")),
                "type": "function",
                "function": {"name": str(block.get("name")), "arguments": ""},
            }
            return [self.maker.chunk({"tool_calls": [call]})]
        if block.get("type") == "text" and block.get("text"):
            return [self.maker.chunk({"content": str(block["text"])})]
        return []

    def _block_delta(self, data: JSON) -> list[Chunk]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            return [self.maker.chunk({"content": str(delta.get("text") or "")})]
        if kind == "thinking_delta" and delta.get("thinking"):
            # reasoning, as OpenAI-compatible servers stream it: what a prefill cannot carry
            return [self.maker.chunk({"reasoning_content": str(delta["thinking"])})]
        if kind == "input_json_delta" and delta.get("partial_json"):
            index = self._tools.get(int(data.get("index", 0)))
            if index is not None:
                piece = {"index": index, "function": {"arguments": str(delta["partial_json"])}}
                return [self.maker.chunk({"tool_calls": [piece]})]
        return []  # signature and citation deltas have no OpenAI counterpart

    def _message_delta(self, data: JSON) -> list[Chunk]:
        self._add_usage(data.get("usage"))
        stop = (data.get("delta") or {}).get("stop_reason")
        if stop is None:
            return []
        return self._finish(finish_reason(stop))

    def _message_stop(self, data: JSON) -> list[Chunk]:
        self.done = True
        return [] if self.finished else self._finish("stop")

    def _finish(self, reason: str) -> list[Chunk]:
        # the usage goes out with the finish reason: message_delta holds the final counts, so
        # the answer is whole here, whether or not message_stop follows
        self.finished = True
        out = [self.maker.chunk({}, finish_reason=reason)]
        if self._include_usage:
            out.append(self.maker.usage_chunk(usage_of(self._usage)))
        return out

    def _add_usage(self, raw: Any) -> None:
        # message_delta carries cumulative counts; a null there must not erase message_start's
        if isinstance(raw, dict):
            self._usage.update({k: v for k, v in raw.items() if v is not None})
