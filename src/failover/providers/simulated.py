"""An in-process fake LLM speaking exact OpenAI shapes, for tests, demos and the outage simulator.

It answers with a templated reply (by default echoing the last user message), paces streams at a
set time to first token and tokens per second, calls a tool when asked to, returns deterministic
embeddings, and fails on request (`down`, `error_rate`). Every wait goes through the injected
`Clock`, so a `FakeClock` runs it in virtual time. Richer faults belong to `failover.chaos`.

    providers:
      sim:
        kind: simulated
        options: {ttft: 50ms, tokens_per_second: 40, reply: "echo: {last_user}",
                  error_rate: 5%, error_status: 503}
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from ..clock import Clock, SystemClock
from ..config import Delay, ErrorFault, SimulatedOptions, validate_as
from ..errors import BadRequest, ConnectionFailed, callers_fault
from ..openai_shapes import ChunkMaker, choice, completion, message, tool_call, usage
from ..resilience.streams import Prefill
from ..types import BaseDeployment, Chunk, Completion, Payload, Request

__all__ = ["SimulatedOptions", "SimulatedProvider"]

_TOKEN = re.compile(r"\s*\S+|\s+$")


class SimulatedProvider(BaseDeployment):
    """A fake LLM deployment with OpenAI-exact answers, pacing and failure modes."""

    def __init__(
        self,
        *,
        name: str,
        model: str,
        options: SimulatedOptions | Mapping[str, Any] | None = None,
        weight: float = 1.0,
        timeout: float | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self.model = model
        self.weight = weight
        self.timeout = timeout
        self.options = _parse(options, name)
        self.prefill = self.options.prefill
        self.calls = 0  # complete() calls received, failed ones included
        self.stream_calls = 0
        self.embedding_calls = 0
        self.probe_calls = 0
        self.last_request: Request | None = None
        self.closed = False
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random()

    def update(self, **changes: Any) -> None:
        """Change options at runtime, validated like the constructor's: `update(down=True)`."""
        merged = {**self.options.model_dump(exclude_unset=True), **changes}
        self.options = _parse(merged, self.name)
        self.prefill = self.options.prefill

    async def complete(self, request: Request) -> Completion:
        self.calls += 1
        self._admit(request)
        with callers_fault("simulated", deployment=self.name):
            reply = self._reply(request, self.calls)
        await self._sleep(self._answer_delay(len(reply.tokens)))
        return Completion(reply.completion())

    async def stream(self, request: Request) -> AsyncIterator[Chunk]:
        self.stream_calls += 1
        self._admit(request)
        with callers_fault("simulated", deployment=self.name):
            reply = self._reply(request, self.stream_calls)
        o = self.options
        await self._sleep(_sample(o.ttft or o.latency, self._rng))
        gap = 1 / o.tokens_per_second if o.tokens_per_second else 0.0
        for i, chunk in enumerate(reply.chunks()):
            if reply.tool is None and 1 < i <= len(reply.tokens):
                await self._sleep(gap)  # the role chunk and the first token arrive together
            yield chunk

    async def probe(self) -> None:
        self.probe_calls += 1
        if self.options.down:
            raise self._refused()

    async def embeddings(self, request: Request) -> Payload:
        self.embedding_calls += 1
        self._admit(request)
        texts = _embedding_inputs(request.get("input"))
        dims = _positive_int(request, "dimensions") or self.options.embedding_dimensions
        await self._sleep(_sample(self.options.latency, self._rng))
        as_base64 = request.get("encoding_format") == "base64"
        data = [
            {"object": "embedding", "index": i, "embedding": _vector(t, dims, as_base64)}
            for i, t in enumerate(texts)
        ]
        used = sum(_count_tokens(t) for t in texts)
        usage = {"prompt_tokens": used, "total_tokens": used}
        return Payload({"object": "list", "data": data, "model": self.model, "usage": usage})

    async def aclose(self) -> None:
        self.closed = True

    def _admit(self, request: Request) -> None:
        """Record the call and fail it as configured, before any waiting."""
        self.last_request = request
        o = self.options
        if o.down:
            raise self._refused()
        if o.error_rate and (o.error_rate >= 1 or self._rng.random() < o.error_rate):
            fault = ErrorFault(status=o.error_status, kind=o.error_kind, message=None)
            raise fault.error(self.name)

    def _refused(self) -> ConnectionFailed:
        return ConnectionFailed(
            "connection refused (simulated deployment is down)", deployment=self.name
        )

    def _reply(self, request: Request, call: int) -> _Reply:
        messages = request.get("messages")
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise BadRequest("'messages' must be a list of messages", status=400)
        last_user = next((_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
        fields = {"last_user": last_user, "model": self.model, "name": self.name, "call": call}
        tokens = _tokenize(self.options.reply.format_map(fields), self.options.tokens)
        if self.prefill is not Prefill.NONE:
            tokens = _continued(tokens, messages)
        limit = _positive_int(request, "max_completion_tokens") or _positive_int(
            request, "max_tokens"
        )
        finish = "stop"
        if limit is not None and len(tokens) > limit:
            tokens, finish = tokens[:limit], "length"
        return _Reply(
            id=f"chatcmpl-sim{self._rng.getrandbits(64):016x}",
            created=int(self._clock.wall()),
            model=self.model,
            tokens=tokens,
            finish=finish,
            prompt_tokens=sum(_count_tokens(_text(m)) for m in messages),
            tool=_pick_tool(request, last_user),
            include_usage=bool((request.get("stream_options") or {}).get("include_usage")),
        )

    def _answer_delay(self, n_tokens: int) -> float:
        o = self.options
        if o.latency is not None:
            return o.latency.sample(self._rng)
        pacing = (n_tokens - 1) / o.tokens_per_second if o.tokens_per_second and n_tokens else 0
        return _sample(o.ttft, self._rng) + pacing

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            await self._clock.sleep(seconds)

    def __repr__(self) -> str:
        state = "DOWN" if self.options.down else f"error_rate={self.options.error_rate:g}"
        return f"<SimulatedProvider {self.name} {state} calls={self.calls}+{self.stream_calls}>"


@dataclass(frozen=True, slots=True)
class _Reply:
    """One answer, rendered either as a whole completion or as stream chunks."""

    id: str
    created: int
    model: str
    tokens: list[str]
    finish: str
    prompt_tokens: int
    tool: str | None
    include_usage: bool

    def usage(self) -> dict[str, Any]:
        done = 1 if self.tool else len(self.tokens)
        return usage(self.prompt_tokens, done)

    def completion(self) -> dict[str, Any]:
        if self.tool is not None:
            msg, finish = message(None, [self._tool_call("{}")]), "tool_calls"
        else:
            msg, finish = message("".join(self.tokens)), self.finish
        return completion(
            id_=self.id,
            model=self.model,
            created=self.created,
            choices=[choice(0, msg, finish)],
            used=self.usage(),
        )

    def chunks(self) -> list[Chunk]:
        maker = ChunkMaker(self.id, self.model, self.created, null_usage=self.include_usage)
        if self.tool is not None:
            first = {**message(None), "tool_calls": [{"index": 0, **self._tool_call("")}]}
            args = {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}
            out = [
                maker.chunk(first),
                maker.chunk(args),
                maker.chunk({}, finish_reason="tool_calls"),
            ]
        else:
            out = [
                maker.role(),
                *(maker.chunk({"content": t}) for t in self.tokens),
                maker.chunk({}, finish_reason=self.finish),
            ]
        if self.include_usage:
            out.append(maker.usage_chunk(self.usage()))
        return out

    def _tool_call(self, arguments: str) -> dict[str, Any]:
        assert self.tool is not None
        call_id = "call_" + self.id.removeprefix("chatcmpl-")
        return tool_call(call_id, self.tool, arguments)


def _pick_tool(request: Request, last_user: str) -> str | None:
    """The function to call: forced by tool_choice, or named in the last user message."""
    tools = [t["function"]["name"] for t in request.get("tools") or [] if "function" in t]
    choice = request.get("tool_choice", "auto")
    last = (request.get("messages") or [{}])[-1]
    if not tools or choice == "none" or last.get("role") == "tool":
        return None  # after a tool result the model answers in words, as real ones do
    if isinstance(choice, dict):
        return str(choice.get("function", {}).get("name") or tools[0])
    named = next((t for t in tools if t in last_user), None)
    return named or (tools[0] if choice == "required" else None)


def _positive_int(request: Request, key: str) -> int | None:
    value = request.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest(f"'{key}' must be a positive integer", status=400)
    return value


def _sample(delay: Delay | None, rng: random.Random) -> float:
    return delay.sample(rng) if delay is not None else 0.0


def _continued(tokens: list[str], messages: list[dict[str, Any]]) -> list[str]:
    """The tokens after a trailing assistant message's text (assistant prefill), when the
    reply begins with it; the whole reply otherwise."""
    last = messages[-1] if messages else {}
    if last.get("role") != "assistant":
        return tokens
    begun, whole = _text(last), "".join(tokens)
    if not begun or not whole.startswith(begun):
        return tokens
    return _TOKEN.findall(whole[len(begun) :])


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def _count_tokens(text: str) -> int:
    # words stand in for tokens: good enough for usage numbers that only need to be plausible
    return len(text.split())


def _tokenize(text: str, count: int | None) -> list[str]:
    """Split into word tokens that join back to `text`; stretched or cut to `count` if given."""
    if count is None:
        return _TOKEN.findall(text)
    words = text.split() or ["lorem"]
    return [("" if i == 0 else " ") + words[i % len(words)] for i in range(count)]


def _embedding_inputs(value: Any) -> list[str]:
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int) for v in value):
        return [orjson.dumps(value).decode()]  # one input given as token ids
    if isinstance(value, list) and value:
        return [v if isinstance(v, str) else orjson.dumps(v).decode() for v in value]
    raise BadRequest("'input' must be a non-empty string or list", status=400)


def _vector(text: str, dims: int, as_base64: bool) -> list[float] | str:
    """A unit vector that depends only on `text`: equal inputs embed equally across runs."""
    raw = b""
    block = 0
    while len(raw) < 4 * dims:
        raw += hashlib.sha256(f"{block}:{text}".encode()).digest()
        block += 1
    ints = struct.unpack(f"<{dims}I", raw[: 4 * dims])
    values = [i / 2**31 - 1.0 for i in ints]
    norm = sum(v * v for v in values) ** 0.5 or 1.0
    unit = [v / norm for v in values]
    if as_base64:
        return base64.b64encode(struct.pack(f"<{dims}f", *unit)).decode()
    return unit


def _parse(options: SimulatedOptions | Mapping[str, Any] | None, name: str) -> SimulatedOptions:
    """`options` as given in Python, checked (from a config file they come checked already)."""
    return validate_as(
        SimulatedOptions,
        options,
        what=f"options for simulated provider {name!r}",
        prefix="options",
        unknown=f"unknown option (known: {', '.join(SimulatedOptions.model_fields)})",
    )
