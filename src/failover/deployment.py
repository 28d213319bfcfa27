"""Your own clients as deployments: wrap any callable (an SDK call, a local model, a function
returning a string) so the router can retry it, fail over from it and break its circuit.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

from .openai_shapes import ChunkMaker, completion_from_text, new_id
from .types import BaseDeployment, Chunk, Completion, Request

__all__ = ["Deployment", "as_chunk", "as_completion"]

CompleteFn = Callable[[Request], Any]
StreamFn = Callable[[Request], Any]


class Deployment(BaseDeployment):
    """A named deployment made of plain callables (sync or async).

    `complete(request)` may return a `Completion`, an OpenAI-shaped dict, a pydantic model
    (such as the `openai` SDK's ChatCompletion) or a plain string. `stream(request)` may be an
    async or sync iterator of chunks, dicts or text pieces; without it, streams are made from
    `complete`. Sync callables run in a worker thread so they never block the event loop.
    """

    def __init__(
        self,
        name: str,
        complete: CompleteFn | None = None,
        *,
        stream: StreamFn | None = None,
        weight: float = 1.0,
        timeout: float | None = None,
        model: str | None = None,
    ) -> None:
        if complete is None and stream is None:
            raise ValueError(f"deployment {name!r} needs a complete or a stream callable")
        self.name = name
        self.model = model or name
        self.weight = weight
        self.timeout = timeout
        self._complete = complete
        self._stream = stream

    async def complete(self, request: Request) -> Completion:
        if self._complete is None:
            return await _collect(self.stream(request), self.model)
        result = await _call(self._complete, request)
        return as_completion(result, model=self.model)

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        if self._stream is None:
            completion = await self.complete(request)
            for chunk in _chunks_of(completion, self.model):
                yield chunk
            return
        source = await _call(self._stream, request)
        maker = ChunkMaker(model=self.model)
        first, finished = True, False
        if hasattr(source, "__aiter__"):
            items: Any = source
        else:
            items = _aiter(await asyncio.to_thread(list, source))
        async for item in items:
            chunk = as_chunk(item, maker=maker, first=first)
            finished = finished or _finishes(chunk)
            first = False
            yield chunk
        if not finished:  # the callable's iterator ending is the answer's end
            yield maker.chunk({}, finish_reason="stop")


async def _aiter(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


def _finishes(chunk: Chunk) -> bool:
    return any(c.get("finish_reason") for c in chunk.body.get("choices") or ())


async def _call(fn: Callable[[Request], Any], request: Request) -> Any:
    if inspect.iscoroutinefunction(fn):
        return await fn(request)
    result = await asyncio.to_thread(fn, request)
    if inspect.isawaitable(result):
        return await result
    return result


def as_completion(result: Any, *, model: str) -> Completion:
    """A `Completion` from whatever a user's callable returned."""
    if isinstance(result, Completion):
        return result
    if isinstance(result, str):
        return completion_from_text(result, model=model)
    if isinstance(result, dict):
        return Completion(result)
    if hasattr(result, "model_dump"):
        return Completion(result.model_dump(mode="json", exclude_unset=False))
    raise TypeError(f"cannot turn {type(result).__name__} into a chat completion")


def as_chunk(item: Any, *, maker: ChunkMaker, first: bool) -> Chunk:
    """A `Chunk` from a chunk, a dict, an SDK model or a piece of text (made by `maker`)."""
    if isinstance(item, Chunk):
        return item
    if isinstance(item, dict):
        return Chunk(item)
    if isinstance(item, str):
        delta: dict[str, Any] = {"content": item}
        if first:
            delta["role"] = "assistant"
        return maker.chunk(delta)
    if hasattr(item, "model_dump"):
        return Chunk(item.model_dump(mode="json"))
    raise TypeError(f"cannot turn {type(item).__name__} into a stream chunk")


def _chunks_of(completion: Completion, model: str) -> list[Chunk]:
    body = completion.body
    maker = ChunkMaker(id=str(body.get("id") or new_id()), model=model)
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content_delta: dict[str, Any] = {"content": message.get("content") or ""}
    if message.get("tool_calls"):
        content_delta["tool_calls"] = [
            {**call, "index": i} for i, call in enumerate(message["tool_calls"])
        ]
    return [
        maker.chunk({"role": "assistant", "content": ""}),
        maker.chunk(content_delta),
        maker.chunk({}, finish_reason=choice.get("finish_reason") or "stop"),
    ]


async def _collect(chunks: AsyncIterator[Chunk], model: str) -> Completion:
    parts: list[str] = []
    finish = "stop"
    async for chunk in chunks:
        for choice in chunk.body.get("choices") or []:
            parts.append((choice.get("delta") or {}).get("content") or "")
            finish = choice.get("finish_reason") or finish
    return completion_from_text("".join(parts), model=model, finish_reason=finish)
