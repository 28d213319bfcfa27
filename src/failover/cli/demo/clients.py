"""The demo's clients: open-loop OpenAI Chat Completions traffic, each answer checked: a
streamed one must carry the whole answer, once, however often the gateway rescued it."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
from typing import TYPE_CHECKING, Any

from .script import MAX_TOKENS, MIX, PROMPTS, REPLY, STREAMED, Run
from .story import Answer

if TYPE_CHECKING:
    import aiohttp

__all__ = ["Clients"]


class Clients:
    """Open-loop OpenAI API traffic at a steady rate: each request starts on time, whether or
    not earlier ones have finished, as real clients do."""

    def __init__(self, run: Run, session: aiohttp.ClientSession, rng: random.Random) -> None:
        self.run = run
        self.session = session
        self.rng = rng
        self.tasks: set[asyncio.Task[None]] = set()

    async def send(self, until: float) -> None:
        """Start requests at `options.rate` per second until `until` (script seconds)."""
        run, gap = self.run, 1.0 / self.run.options.rate
        due = run.now()
        while due < until and not run.stop.is_set():
            task = asyncio.ensure_future(self._one())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            due += gap
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.stop.wait(), max(0.0, due - run.now()))

    async def drain(self, timeout: float) -> None:
        """Let requests in flight finish (up to `timeout` seconds), then cancel the rest."""
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=timeout)
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    def _body(self) -> tuple[str, bool, bytes]:
        import orjson

        route = self.rng.choices([r for r, _ in MIX], [w for _, w in MIX])[0]
        stream = self.rng.random() < STREAMED
        prompt = self.rng.choice(PROMPTS)
        body: dict[str, Any] = {
            "model": route,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": MAX_TOKENS,
            "stream": stream,
        }
        return route, stream, orjson.dumps(body)

    async def _one(self) -> None:
        import aiohttp

        route, stream, body = self._body()
        answer = Answer(self.run.now(), route, stream)
        self.run.answers.append(answer)
        headers = {"content-type": "application/json", "authorization": "Bearer demo"}
        try:
            async with self.session.post(
                f"{self.run.url}/v1/chat/completions", data=body, headers=headers
            ) as resp:
                answer.deployment = resp.headers.get("x-failover-deployment")
                if resp.status != 200:
                    answer.error = f"HTTP {resp.status}: {(await resp.text())[:120]}"
                elif stream:
                    answer.error, answer.rescued = await _read_stream(resp)
                else:
                    answer.error = _check_completion(await resp.read())
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            answer.error = f"{type(exc).__name__}: {exc}"
        finally:
            answer.done = self.run.now()


_RESCUED = re.compile(rb"^: failover recovered this stream (\d+) time")


async def _read_stream(resp: aiohttp.ClientResponse) -> tuple[str | None, int]:
    """(None when the event stream ended with [DONE], carried no error and the whole answer,
    else what went wrong; how often the gateway rescued it, from its closing comment)."""
    import orjson

    text: list[str] = []
    rescued = 0
    async for line in resp.content:
        if (found := _RESCUED.match(line)) is not None:
            rescued = int(found[1])
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            return _check_text("".join(text)), rescued
        if data.startswith(b'{"error"'):
            return f"error event: {data[:120].decode(errors='replace')}", rescued
        try:
            choices = orjson.loads(data).get("choices") or ()
        except orjson.JSONDecodeError:
            return f"an unreadable event: {data[:120].decode(errors='replace')}", rescued
        text.extend((c.get("delta") or {}).get("content") or "" for c in choices)
    return "the stream ended without [DONE]", rescued


def _check_text(text: str) -> str | None:
    if text == REPLY:
        return None
    return f"the stream's text is not the whole answer: {text[:120]!r}"


def _check_completion(raw: bytes) -> str | None:
    import orjson

    try:
        content = orjson.loads(raw)["choices"][0]["message"]["content"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return f"not a chat completion: {raw[:120].decode(errors='replace')}"
    return None if isinstance(content, str) and content else "an empty answer"
