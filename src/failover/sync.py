"""`SyncRouter`: the router for code that is not async (scripts, Flask, Django views)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from .reply import EmbeddingsReply, Reply
from .router import Router
from .types import Chunk, Request

__all__ = ["SyncRouter"]

T = TypeVar("T")


class SyncRouter:
    """Runs a `Router` on a private event loop in a background thread; methods block."""

    def __init__(self, router: Router) -> None:
        self.router = router
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="failover-sync"
        )
        self._thread.start()

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def complete(self, model: str, request: Request, **kwargs: Any) -> Reply:
        """`Router.complete`, blocking."""
        return self._run(self.router.complete(model, request, **kwargs))

    def ask(self, model: str, prompt: str, **params: Any) -> str:
        """`Router.ask`, blocking."""
        return self._run(self.router.ask(model, prompt, **params))

    def embeddings(self, model: str, request: Request, **kwargs: Any) -> EmbeddingsReply:
        """`Router.embeddings`, blocking."""
        return self._run(self.router.embeddings(model, request, **kwargs))

    def stream(self, model: str, request: Request, **kwargs: Any) -> Iterator[Chunk]:
        """`Router.stream`, as a blocking iterator."""
        reply = self._run(self.router.open_stream(model, request, **kwargs))
        iterator = reply.__aiter__()

        async def step() -> Chunk | None:
            return await anext(iterator, None)

        try:
            while (chunk := self._run(step())) is not None:
                yield chunk
        finally:
            self._run(reply.aclose())

    def close(self) -> None:
        """Close the router and stop the loop thread."""
        if self._loop.is_closed():
            return
        self._run(self.router.aclose())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def __enter__(self) -> SyncRouter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
