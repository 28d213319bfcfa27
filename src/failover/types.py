"""The canonical wire types (OpenAI Chat Completions) and `BaseDeployment`, what the router calls.

A request is a plain dict in OpenAI's chat-completions shape. Answers are `Completion` (a whole
response) and `Chunk` (one stream event), both a JSON object that may be held as the raw bytes
the provider sent: the gateway passes those bytes through untouched, and only code that looks
inside (`.body`) pays for parsing.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeAlias

import orjson

from .errors import BadRequest
from .resilience.streams import Prefill

__all__ = [
    "JSON",
    "BaseDeployment",
    "Chunk",
    "Completion",
    "NativeChunk",
    "Payload",
    "Request",
    "malformed_chunk",
]

JSON: TypeAlias = dict[str, Any]
Request: TypeAlias = dict[str, Any]


class Payload:
    """A JSON object held as parsed `body`, as `raw` bytes, or both; each made on demand."""

    __slots__ = ("_body", "_raw")

    def __init__(self, body: JSON | None = None, *, raw: bytes | None = None) -> None:
        if body is None and raw is None:
            raise ValueError("a payload needs a body or raw bytes")
        self._body = body
        self._raw = raw

    @property
    def body(self) -> JSON:
        if self._body is None:
            assert self._raw is not None
            parsed = orjson.loads(self._raw)
            if not isinstance(parsed, dict):
                raise ValueError("expected a JSON object")
            self._body = parsed
        return self._body

    @property
    def raw(self) -> bytes:
        if self._raw is None:
            self._raw = orjson.dumps(self._body)
        return self._raw

    def __repr__(self) -> str:
        shown = self._raw[:80] if self._raw is not None else repr(self._body)[:80]
        return f"<{type(self).__name__} {shown!r}>"


class Completion(Payload):
    """A whole chat completion (OpenAI `CreateChatCompletionResponse`)."""

    __slots__ = ()

    @property
    def text(self) -> str:
        """The first choice's message content ('' when there is none)."""
        choices = self.body.get("choices") or [{}]
        return str((choices[0].get("message") or {}).get("content") or "")


class Chunk(Payload):
    """One stream chunk (OpenAI `CreateChatCompletionStreamResponse`)."""

    __slots__ = ()


class NativeChunk(Chunk):
    """A stream event in a client API's own format (`native`, the bytes to relay as they are),
    with its OpenAI chunk equivalent as `body` for the router's bookkeeping (what the caller
    has received, when the answer is whole). Lifecycle events with no equivalent have a body
    without choices."""

    __slots__ = ("native",)

    def __init__(self, native: bytes, body: JSON) -> None:
        super().__init__(body)
        self.native = native


class _Unreadable(Chunk):
    """A stream event that could not be read: `.raw` holds what arrived, `.body` raises."""

    __slots__ = ()

    @property
    def body(self) -> JSON:
        raise ValueError(f"malformed stream event: {self.raw[:80]!r}")


def malformed_chunk(data: bytes) -> Chunk:
    """A chunk for a stream event an adapter could not read. Adapters yield it instead of
    raising: the router skips it and counts it against the route's `streams.max_malformed`,
    so one garbled event does not cost a whole answer."""
    return _Unreadable(raw=data)


class BaseDeployment(abc.ABC):
    """Anything the router can call: a provider adapter, wrapped callables, a fault injector.

    Subclasses implement `complete` and `stream`; the optional capabilities have defaults, so
    callers never probe for them. `name` is the deployment's key ("provider/model" unless
    configured otherwise); `weight` and `timeout` (per attempt, seconds) come from its config.
    Implementations never mutate `request`, never retry (the router's loop is the only one)
    and raise only `failover.errors.ProviderError`s.
    """

    name: str
    model: str
    weight: float = 1.0
    timeout: float | None = None
    #: how it continues an answer another deployment began (see `failover.resilience.streams`)
    prefill: Prefill = Prefill.NONE
    #: its configured rate limits, requests and tokens per minute (None: its answers' headers
    #: alone tell how much is left)
    rpm: int | None = None
    tpm: int | None = None

    @abc.abstractmethod
    async def complete(self, request: Request) -> Completion:
        """One whole chat completion."""

    @abc.abstractmethod
    def stream(self, request: Request) -> AsyncIterator[Chunk]:
        """The chat completion as OpenAI-format chunks, as they arrive."""

    #: client APIs it speaks natively besides OpenAI chat (e.g. "anthropic"): a request in one
    #: of those reaches it as it is, and its answer comes back as it was sent
    dialects: frozenset[str] = frozenset()

    def speaks(self, dialect: str) -> bool:
        """Whether a request in `dialect` (a client API's name) reaches it as it is."""
        return dialect in self.dialects

    async def complete_native(
        self, dialect: str, request: Request, headers: Mapping[str, str]
    ) -> Payload:
        """A whole answer to a request in `dialect` (one of `dialects`), as the provider sent it."""
        raise BadRequest(f"deployment {self.name!r} does not speak {dialect}", status=400)

    def stream_native(
        self, dialect: str, request: Request, headers: Mapping[str, str]
    ) -> AsyncIterator[Chunk]:
        """A stream in `dialect` as `NativeChunk`s (one per provider event)."""
        raise BadRequest(f"deployment {self.name!r} does not speak {dialect}", status=400)

    async def embeddings(self, request: Request) -> Payload:
        """Embeddings (OpenAI format); a deployment that has none refuses the request."""
        raise BadRequest(f"deployment {self.name!r} does not serve embeddings", status=400)

    async def probe(self) -> None:
        """Raise a `ProviderError` when the deployment cannot serve; without a cheap probe of
        its own a deployment counts as healthy."""
        return None

    @property
    def probes(self) -> bool:
        """Whether it has a cheap probe of its own (health checks leave the others alone)."""
        return type(self).probe is not BaseDeployment.probe

    async def aclose(self) -> None:
        """Release connections and other resources."""
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"
