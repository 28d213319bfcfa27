"""OpenAI Chat Completions — OpenAI itself, every OpenAI-compatible server, and Azure OpenAI.

This is the fast path: the caller's request goes upstream unchanged except `model`, and the
answer comes back as the provider's own bytes (`Completion(raw=...)`, one `Chunk(raw=...)` per
SSE data line), so nothing is parsed or re-encoded on the way through. A stream that sent its
finish reason is whole with or without `data: [DONE]`; one that stopped before it was cut.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import ClassVar
from urllib.parse import quote

import orjson

from ..config import AzureOptions, OpenAIOptions
from ..errors import ConfigError, ConnectionFailed, ProviderError, ServerError
from ..transport import Pushing, SSEEvent, StreamResponse
from ..types import Chunk, Completion, Payload, Request
from ._http import HTTPAdapter

__all__ = ["RESPONSES_API", "AzureOpenAIAdapter", "ChatStream", "OpenAIAdapter"]

RESPONSES_API = frozenset({"openai.responses"})  # the Responses API, as a dialect


class OpenAIAdapter(HTTPAdapter):
    """An OpenAI-compatible endpoint (`base_url` ending in /v1), passed through untouched."""

    kind: ClassVar[str] = "openai"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    options_type: ClassVar[type[OpenAIOptions]] = OpenAIOptions
    options: OpenAIOptions

    def auth_headers(self) -> dict[str, str]:
        headers = super().auth_headers()
        if org := self.options.organization:
            headers["openai-organization"] = org
        if project := self.options.project:
            headers["openai-project"] = project
        return headers

    @property
    def dialects(self) -> frozenset[str]:  # type: ignore[override]
        """The Responses API, where the endpoint serves it (`options.responses`; by default
        OpenAI's own API does and compatible servers do not)."""
        native = self.options.responses
        if native is None:
            native = self.base_url == self.default_base_url
        return RESPONSES_API if native else frozenset()

    def url(self, endpoint: str) -> str:
        """The URL of an API endpoint ("chat/completions", "embeddings", "models")."""
        return f"{self.base_url}/{endpoint}"

    async def complete_native(
        self, dialect: str, request: Request, headers: Mapping[str, str]
    ) -> Payload:
        """A Responses API request as the client sent it (its model replaced), answered as
        OpenAI sent it."""
        body = {key: value for key, value in request.items() if key != "stream"}
        body["model"] = self.model
        return Payload(raw=await self._post(self.url("responses"), body))

    async def complete(self, request: Request) -> Completion:
        raw = await self._post(self.url("chat/completions"), _body(request, self.model))
        if raw.lstrip()[:1] != b"{":
            raise ServerError(f"{self.kind} sent a response that is not JSON", deployment=self.name)
        return Completion(raw=raw)

    def stream(self, request: Request) -> AsyncIterator[Chunk]:
        body = _body(request, self.model, stream=True)
        return ChatStream(self, self.url("chat/completions"), body)

    async def embeddings(self, request: Request) -> Payload:
        raw = await self._post(self.url("embeddings"), {**request, "model": self.model})
        return Payload(raw=raw)

    async def probe(self) -> None:
        """GET /models: cheap, authenticated, and served by most compatible servers."""
        await self._get(self.url(self.options.probe_path.lstrip("/")))


class AzureOpenAIAdapter(OpenAIAdapter):
    """An Azure OpenAI deployment: `model` names the deployment, the key goes in `api-key`."""

    kind: ClassVar[str] = "azure"
    default_base_url: ClassVar[str] = ""
    options_type: ClassVar[type[OpenAIOptions]] = AzureOptions
    default_api_version: ClassVar[str] = "2024-10-21"

    def normalize_base_url(self, base_url: str) -> str:
        if not base_url:
            raise ConfigError("an azure provider needs base_url (https://NAME.openai.azure.com)")
        # accept both the resource URL and one that already ends in /openai
        return base_url.removesuffix("/openai")

    def auth_headers(self) -> dict[str, str]:
        return {"api-key": self._api_key} if self._api_key else {}

    def url(self, endpoint: str) -> str:
        version = quote(self.api_version or self.default_api_version, safe="")
        if endpoint == "models":
            return f"{self.base_url}/openai/models?api-version={version}"
        deployment = quote(self.model, safe="")
        return f"{self.base_url}/openai/deployments/{deployment}/{endpoint}?api-version={version}"


_TAIL = 3  # chunks kept to find a finish reason when a stream ends without [DONE]


class ChatStream:
    """One Chat Completions stream's chunks: the upstream's events passed through unparsed.

    An async iterator (a read at a time, one await per read rather than per event) that can
    also `push`: hand the chunks of each read on as the connection reads them, with no task
    woken, which is how the gateway relays most of a stream. Either way an error event raises
    the provider's error, and an answer whose finish reason arrived is whole without [DONE]
    (some servers never send it) while one that stopped before it was cut short.
    """

    __slots__ = ("_adapter", "_body", "_closed", "_context", "_events", "_response", "_tail")

    def __init__(self, adapter: OpenAIAdapter, url: str, body: Request) -> None:
        self._adapter = adapter
        self._body = (url, body)
        self._context: AbstractAsyncContextManager[StreamResponse] | None = None
        self._response: StreamResponse | None = None
        self._events: deque[SSEEvent] = deque()  # read, not yet handed on
        self._tail: deque[bytes] = deque(maxlen=_TAIL)
        self._closed = False

    def __aiter__(self) -> ChatStream:
        return self

    @property
    def ended(self) -> bool:
        """The stream's end was read ([DONE] or EOF): nothing more will come."""
        response = self._response
        return response is not None and response.ended

    async def __anext__(self) -> Chunk:
        events = self._events
        try:
            while not events:
                response = self._response or await self._open()
                batch = await response.read_events()
                if not batch:
                    self._check_end(response)
                    await self.aclose()  # its end was read: the connection is reused
                    raise StopAsyncIteration
                events.extend(batch)
            return self._chunk(events.popleft())
        except BaseException:  # broken, or left: hung up at once (see `_Streaming`)
            await self.aclose()
            raise

    def push(
        self, take: Callable[[list[Chunk]], bool], loop: asyncio.AbstractEventLoop
    ) -> Pushing | None:
        """`StreamResponse.push` of this stream's chunks, those of events read earlier first;
        None before the stream is open, after its end, or where it cannot push."""
        response = self._response
        if response is None:
            return None
        chunk, held = self._chunk, self._events

        def take_read(events: list[SSEEvent]) -> bool:
            chunks = []
            for at, event in enumerate(events):
                try:
                    chunks.append(chunk(event))
                except ProviderError:
                    # as a read at a time would: the chunks before an error event are handed
                    # on, and the error is raised by the next read (unless they finished the
                    # answer, and it is never read)
                    held.extend(events[at:])
                    if chunks:
                        take(chunks)
                    return False
            return take(chunks)

        earlier = list(held)
        held.clear()  # handed on by the push (or, at an error event, held again)
        pushing = response.push(take_read, loop, first=earlier)
        if pushing is None:
            held.extend(earlier)
        return pushing

    async def aclose(self) -> None:
        """Hang up (or, after its end was read, hand the connection back to the pool)."""
        self._closed = True
        context, self._context, self._response = self._context, None, None
        if context is not None:
            await context.__aexit__(None, None, None)

    async def _open(self) -> StreamResponse:
        if self._closed:
            raise StopAsyncIteration
        url, body = self._body
        context = self._adapter._open_stream(url, body)
        response = await context.__aenter__()
        self._context, self._response = context, response
        return response

    def _chunk(self, event: SSEEvent) -> Chunk:
        data = event.data
        self._tail.append(data)
        # a cheap look at the first bytes finds error events without parsing
        if event.event == "error" or b'"error"' in data[:16]:
            raise self._adapter.stream_error(data)
        # passed through unparsed: the router reads each chunk anyway, and counts one that
        # does not parse against the route's `streams.max_malformed` instead of failing it
        return Chunk(raw=data)

    def _check_end(self, response: StreamResponse) -> None:
        if not response.done and not _finished(self._tail):
            adapter = self._adapter
            raise ConnectionFailed(
                f"{adapter.kind} stream ended before its finish reason", deployment=adapter.name
            )


def _finished(tail: Iterable[bytes]) -> bool:
    """Whether one of a stream's last chunks carried a finish reason (read only when the
    stream ended without [DONE], so the pass-through stays free of parsing)."""
    for data in tail:
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            continue
        choices = body.get("choices") if isinstance(body, dict) else None
        if isinstance(choices, list) and any(
            isinstance(c, dict) and c.get("finish_reason") for c in choices
        ):
            return True
    return False


def _body(request: Request, model: str, *, stream: bool = False) -> Request:
    """The request to send: a shallow copy with the deployment's model (and stream mode)."""
    body = {**request, "model": model}
    if stream:
        body["stream"] = True
    elif body.get("stream"):
        del body["stream"]
        body.pop("stream_options", None)
    return body
