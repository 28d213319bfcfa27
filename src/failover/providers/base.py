"""The Adapter protocol: what a provider adapter (or a wrapper around one) offers the router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, runtime_checkable

from ..types import Chunk, Completion, Payload, Request

__all__ = ["Adapter"]


@runtime_checkable
class Adapter(Protocol):
    """A deployment backed by a provider: chat completions, streaming, a cheap health probe.

    `name` is the deployment's key ("provider/model" unless configured otherwise), `weight`
    and `timeout` come from the deployment's config. Adapters never mutate `request`, never
    retry (the router's loop is the only one) and raise only `failover.errors.ProviderError`s.
    """

    name: str
    model: str
    weight: float
    timeout: float | None

    async def complete(self, request: Request) -> Completion: ...

    def stream(self, request: Request) -> AsyncIterator[Chunk]: ...

    async def probe(self) -> None:
        """Raise a ProviderError when the deployment cannot serve; return when it can."""

    async def embeddings(self, request: Request) -> Payload: ...

    async def aclose(self) -> None: ...
