"""The shared HTTP client layer: one pooled keep-alive aiohttp session per provider, helpers for
JSON requests and Server-Sent Events, and the one place where aiohttp and OS errors become
`failover.errors` (`ConnectionFailed`, `AttemptTimeout`, ...), always `raise ... from exc`.

Total attempt deadlines are the router's job (it cancels the task); the transport only makes
sure a cancelled or failed request closes its connection instead of returning it to the pool.

No hidden queue: each pool counts its connections in use, the requests waiting for one and how
long they waited (`PoolStats`, read by metrics and status), and writes a request's wait into
the attempt it serves (`CURRENT_CALL`), so a call that timed out in our own queue is not blamed
on the provider. Waits are seen through aiohttp's trace signals. Health probes have a small
pool of their own per provider (`probe_client`): they never wait behind traffic.

Header hooks (`add_header_hook`) add headers to every request this module sends, e.g. the W3C
`traceparent` of the request being served (`failover.observability.tracing` adds one). With
none registered, the default, a request pays one check.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections.abc import AsyncGenerator, Callable, Mapping
from types import SimpleNamespace
from typing import Any, NamedTuple

import aiohttp
import orjson

from ._aio import running_loop
from ._connector import WarmFirstConnector
from ._local import CURRENT_CALL, PoolStats, PoolWait
from .errors import AttemptTimeout, ConnectionFailed, ProviderError, ServerError

__all__ = [
    "DONE",
    "MAX_CONNECTIONS",
    "PROBE_CONNECTIONS",
    "HTTPClient",
    "HTTPResponse",
    "HeaderHook",
    "Pushing",
    "SSEDecoder",
    "SSEEvent",
    "StreamResponse",
    "Transport",
    "add_header_hook",
    "map_client_error",
    "remove_header_hook",
]

log = logging.getLogger("failover")

DONE = b"[DONE]"
USER_AGENT = "failover/0.1"
MAX_LINE = 16 * 1024 * 1024  # one SSE line (a data: field) larger than this is not a sane stream
DRAIN_TIMEOUT = 2.0  # how long a finished stream may take to send its last bytes before we hang up
# Connections per provider. High on purpose: a stream holds its connection for its whole
# length, so 1,000 streams need 1,000 connections, and a smaller pool is a queue nobody sees.
# The real throttle is each deployment's adaptive concurrency limit (at most 10,000 too);
# this bound only stops a runaway from exhausting the process's file descriptors.
MAX_CONNECTIONS = 10_000
PROBE_CONNECTIONS = 4  # health probes' own pool per provider: one probe per deployment at a time

#: Adds headers to an outgoing request: called with a copy of its headers, in the task that
#: sends it (so context variables, such as the current trace, are the request's own).
HeaderHook = Callable[[dict[str, str]], None]
_header_hooks: list[HeaderHook] = []


def add_header_hook(hook: HeaderHook) -> None:
    """Call `hook` on the headers of every request sent from now on (by every `Transport`)."""
    _header_hooks.append(hook)


def remove_header_hook(hook: HeaderHook) -> None:
    """Stop calling `hook` (once per `add_header_hook`); a hook never added is ignored."""
    with contextlib.suppress(ValueError):
        _header_hooks.remove(hook)


def _hooked(headers: Mapping[str, str]) -> dict[str, str]:
    out = dict(headers)
    for hook in _header_hooks:
        try:
            hook(out)
        except Exception:  # a broken hook must not fail the call, nor be blamed on the provider
            log.exception("header hook %r failed", hook)
    return out


class SSEEvent(NamedTuple):
    """One Server-Sent Event: its `event:` name ("message" when absent) and its data bytes."""

    event: str
    data: bytes


# SSEEvent((event, data)) without the Python-level __new__ a NamedTuple has: one per event
_new_event = functools.partial(tuple.__new__, SSEEvent)


class SSEDecoder:
    """Incremental SSE parser (WHATWG rules): any line ending, multi-line data, comments."""

    __slots__ = ("_buf", "_data", "_event", "_max_line")

    def __init__(self, *, max_line: int = MAX_LINE) -> None:
        self._buf = b""
        self._data: list[bytes] = []
        self._event = ""
        self._max_line = max_line

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events completed by `chunk`. Raises ValueError on an oversized line."""
        if (  # nearly every read of a provider's stream: one whole `data: ...` event
            not self._buf
            and not self._data
            and chunk.endswith(b"\n\n")
            and chunk.startswith(b"data: ")
            and chunk.find(b"\n") == len(chunk) - 2
            and b"\r" not in chunk
        ):
            name, self._event = self._event, ""
            return [_new_event((name or "message", chunk[6:-2]))]
        buf = self._buf + chunk if self._buf else chunk
        held = b""
        if b"\r" in buf:  # CR or CRLF line endings: made LF first
            # a trailing CR may be the first half of a CRLF split across reads: decide next time
            if buf.endswith(b"\r"):
                held, buf = b"\r", buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        rest = lines.pop()
        self._buf = rest + held if held else rest
        if len(self._buf) > self._max_line:
            raise ValueError(f"an SSE line exceeds {self._max_line} bytes")
        events = []
        # blank and data lines, nearly all of a stream, are read here; the rest by `_line`
        for line in lines:
            if not line:
                if (event := self._dispatch()) is not None:
                    events.append(event)
            elif line.startswith(b"data:"):
                self._data.append(line[6:] if line.startswith(b"data: ") else line[5:])
            else:
                self._line(line)
        return events

    def close(self) -> list[SSEEvent]:
        """Flush at end of stream. Raises ValueError when the stream stopped inside an event."""
        events = self.feed(b"\n") if self._buf.endswith(b"\r") else []
        if self._buf or self._data:
            raise ValueError("the stream ended inside an event")
        return events

    def _line(self, line: bytes) -> None:
        """A line that is neither blank nor `data:`."""
        if line.startswith(b":"):  # a comment: providers use these as keep-alive pings
            return
        field, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if field == b"data":  # only "data" with no colon at all gets here
            self._data.append(value)
        elif field == b"event":
            self._event = value.decode("utf-8", "replace")
        # `id` and `retry` only matter to browsers that reconnect; other fields are ignored

    def _dispatch(self) -> SSEEvent | None:
        event, self._event = self._event, ""
        if not self._data:
            return None
        data = self._data[0] if len(self._data) == 1 else b"\n".join(self._data)
        self._data = []
        return _new_event((event or "message", data))


class HTTPResponse(NamedTuple):
    """A whole response: status, headers and the body bytes as received."""

    status: int
    headers: Mapping[str, str]
    body: bytes


def map_client_error(exc: BaseException, *, deployment: str | None = None) -> ProviderError:
    """The `ProviderError` for an aiohttp or OS error met while talking to a provider."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, TimeoutError):  # aiohttp's connect/read timeouts subclass TimeoutError
        return AttemptTimeout(f"timed out talking to the provider: {detail}", deployment=deployment)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ConnectionFailed(f"the response was cut short: {detail}", deployment=deployment)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return ConnectionFailed("the provider closed the connection", deployment=deployment)
    if isinstance(exc, aiohttp.ClientResponseError):
        return ServerError(f"invalid HTTP response: {exc.message}", deployment=deployment)
    return ConnectionFailed(f"connection failed: {detail}", deployment=deployment)


_CLIENT_ERRORS = (aiohttp.ClientError, OSError)


class StreamResponse:
    """An open streaming response: check `status`, then iterate `events()` (or `aiter_raw()`)."""

    __slots__ = ("_decoder", "_deployment", "_resp", "done", "ended", "headers", "status")

    def __init__(self, resp: aiohttp.ClientResponse, deployment: str | None) -> None:
        self._resp = resp
        self._decoder = SSEDecoder()
        self._deployment = deployment
        self.status = resp.status
        self.headers: Mapping[str, str] = resp.headers
        self.done = False  # the `[DONE]` sentinel was seen
        self.ended = False  # the stream reached its end: sentinel, EOF, or `end()`

    def end(self) -> None:
        """Mark the stream finished (an adapter saw its own end event, e.g. message_stop).

        Only a finished stream's connection goes back to the pool; one left early is closed.
        """
        self.ended = True

    async def read(self) -> bytes:
        """The whole remaining body (for error responses)."""
        try:
            return await self._resp.read()
        except _CLIENT_ERRORS as exc:
            raise map_client_error(exc, deployment=self._deployment) from exc

    async def read_events(self, *, done: bytes | None = DONE) -> list[SSEEvent]:
        """The SSE events of the next read from the network (at least one), or [] at the end:
        the `done` sentinel (which sets `.done`) or EOF.

        One await per read rather than one per event: streams are read in batches by the
        adapters that relay every event. A cut connection, an oversized line or an event left
        unfinished at EOF raises `ConnectionFailed`: a broken stream never ends quietly.
        """
        if self.ended:
            return []
        content = self._resp.content
        while True:
            try:
                chunk = await content.readany()
            except _CLIENT_ERRORS as exc:
                raise map_client_error(exc, deployment=self._deployment) from exc
            events = self._decode(chunk, done)
            if events or self.ended:
                return events

    def _decode(self, chunk: bytes, done: bytes | None) -> list[SSEEvent]:
        """The events of one read (b"": the end of the body), noting the stream's end."""
        try:
            events = self._decoder.feed(chunk) if chunk else self._decoder.close()
        except ValueError as exc:
            raise self._malformed(exc) from exc
        if not chunk:
            self.ended = True
            return events
        if done is not None:
            for at, event in enumerate(events):
                # the sentinel, seen as soon as it is read: a finished stream's connection
                # can go back to the pool without another read
                if event.data.strip() == done:
                    self.done = self.ended = True
                    return events[:at]
        return events

    def push(
        self,
        take: Callable[[list[SSEEvent]], bool],
        loop: asyncio.AbstractEventLoop,
        *,
        done: bytes | None = DONE,
        first: list[SSEEvent] | None = None,
    ) -> Pushing | None:
        """Hand the events of each read to `take` as the connection reads them, in a
        callback: no task is woken per read. None where aiohttp offers no way to do so.

        Pushing stops when `take` returns False (the result: True), at the stream's end (the
        result: False; `read_events` then tells the end as it does) or when the stream fails
        or `take` raises (the exception). `Pushing.stop()` stops it early; it must be called
        before the stream is read in any other way. `first`: events read earlier, handed to
        `take` before any other, at once.
        """
        if not _PUSHABLE or self.ended:
            return None
        pushing = Pushing(self, take, done, loop.create_future())
        if first and not pushing.hand_on(first):
            return pushing
        pushing.arm()
        return pushing

    async def events(self, *, done: bytes | None = DONE) -> AsyncGenerator[SSEEvent, None]:
        """SSE events as they arrive (`read_events` one at a time)."""
        while events := await self.read_events(done=done):
            for event in events:
                yield event

    async def aiter_raw(self) -> AsyncGenerator[bytes, None]:
        """The body's bytes as they arrive, for binary (non-SSE) streams; `.ended` at EOF.

        A cut connection raises `ConnectionFailed`, as in `events()`; framing is the caller's.
        """
        while chunk := await self._read_chunk():
            yield chunk
        self.ended = True

    async def _read_chunk(self) -> bytes:
        try:
            return await self._resp.content.readany()
        except _CLIENT_ERRORS as exc:
            raise map_client_error(exc, deployment=self._deployment) from exc

    def _malformed(self, exc: ValueError) -> ConnectionFailed:
        return ConnectionFailed(f"malformed event stream: {exc}", deployment=self._deployment)


# aiohttp's body reader wakes the read waiting on it through the future in its `_waiter`
# slot, and with no public way to be told of data otherwise; `Pushing` stands in that slot.
_PUSHABLE = "_waiter" in getattr(aiohttp.StreamReader, "__slots__", ())


class Pushing:
    """`StreamResponse.push` in progress: the object aiohttp's reader calls as the waiter of
    a read (`done()`, `set_result()`, `set_exception()`), so that each read is decoded and
    handed on in a callback of the connection's, with no task woken.

    Re-armed after each read; while it runs nothing is armed, so data the reader takes in
    meanwhile (it may resume reading re-entrantly) is read in the same turn.
    """

    __slots__ = ("_content", "_done", "_response", "_take", "future")

    def __init__(
        self,
        response: StreamResponse,
        take: Callable[[list[SSEEvent]], bool],
        done: bytes | None,
        future: asyncio.Future[bool],
    ) -> None:
        self._response = response
        self._content = response._resp.content
        self._take = take
        self._done = done
        self.future = future  # True: `take` stopped it; False: the stream ended

    def hand_on(self, events: list[SSEEvent]) -> bool:
        """Hand `events` to `take`; False when that ended the push (its result is set)."""
        try:
            more = self._take(events)
        except Exception as exc:
            self._finish(exc=exc)
            return False
        if not more:
            self._finish(result=True)
        return more

    def arm(self) -> None:
        """Read what is buffered now, then wait for the reader to tell of more."""
        content = self._content
        while True:
            if self.future.done():  # stopped while told of a read, or by what `take` set off
                return
            try:
                data = content.read_nowait()  # what a failed reader holds raises here
            except Exception as exc:  # in aiohttp's callback: nothing may escape to it
                self._finish(exc=exc)
                return
            if not data and not content.is_eof():
                break
            response = self._response
            try:
                events = response._decode(data, self._done)
                more = self._take(events) if events else True
            except Exception as exc:
                self._finish(exc=exc)
                return
            if not more or response.ended:
                self._finish(result=not more)
                return
        content._waiter = self  # type: ignore[assignment]  # told of the next read, below

    def stop(self) -> None:
        """Stop pushing (the reader is no longer told); a result not yet given is not."""
        self._disarm()
        if not self.future.done():
            self.future.cancel()

    # the reader's waiter protocol: told of data (or of the end) and of a failure

    def done(self) -> bool:
        return self.future.done()

    def set_result(self, _: object) -> None:
        # told by aiohttp's HTTP parser as it feeds the reader: reading at once could run
        # the parser again from inside itself (a read that empties the reader resumes it,
        # feeding it what it holds), which breaks it and drops the connection unseen. So
        # the read follows in a callback of its own, once the parser has returned.
        self.future.get_loop().call_soon(self.arm)

    def set_exception(self, exc: BaseException) -> None:
        self._finish(exc=exc)

    def _disarm(self) -> None:
        content = self._content
        waiter: object = content._waiter
        if waiter is self:
            content._waiter = None

    def _finish(self, *, result: bool = False, exc: BaseException | None = None) -> None:
        self._disarm()
        future = self.future
        if future.done():
            return
        if exc is None:
            future.set_result(result)
            return
        if isinstance(exc, _CLIENT_ERRORS):
            exc = map_client_error(exc, deployment=self._response._deployment)
        future.set_exception(exc)


async def _on_queued(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    ctx.trace_request_ctx.start()  # the request's PoolWait


async def _on_dequeued(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    ctx.trace_request_ctx.end()


def _pool_trace() -> aiohttp.TraceConfig:
    """aiohttp's view of the pool: when a request starts and stops waiting for a connection."""
    trace = aiohttp.TraceConfig()
    trace.on_connection_queued_start.append(_on_queued)
    trace.on_connection_queued_end.append(_on_dequeued)
    return trace


class HTTPClient:
    """One provider's keep-alive connection pool. Every error leaves as a `ProviderError`."""

    def __init__(
        self,
        name: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float | None = None,
        limit: int = MAX_CONNECTIONS,
        keepalive_timeout: float = 30.0,
        trust_env: bool = False,
        pool: str = "traffic",
    ) -> None:
        self.name = name
        self._trust_env = trust_env
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._limit = limit
        self._keepalive_timeout = keepalive_timeout
        self._session: aiohttp.ClientSession | None = None
        self._watched: aiohttp.ClientSession | None = None
        self._draining: set[asyncio.Task[None]] = set()
        self.stats = PoolStats(name, pool, limit)
        # Tracing costs about 15 us of CPU a request, so only requests that could wait for a
        # connection are traced. `active` counts a request from before it asks for a
        # connection until the connection is back (never fewer than the connector holds), and
        # a request reaches the connector's check without yielding to the loop: one that
        # starts with at most half the pool counted finds a connection free.
        self._watch_from = limit // 2 if limit else math.inf

    def _client(self) -> aiohttp.ClientSession:
        """The session of untraced requests (created on first use so it binds to the running
        loop, not the one at construction)."""
        if self._session is None or self._session.closed:
            connector = WarmFirstConnector(
                limit=self._limit, keepalive_timeout=self._keepalive_timeout, ttl_dns_cache=300
            )
            self._session = self._make_session(connector, owner=True)
            # the traced session shares the connector: one pool, one limit, one queue
            self._watched = self._make_session(connector, owner=False)
        return self._session

    def _make_session(
        self, connector: aiohttp.BaseConnector, *, owner: bool
    ) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self._connect_timeout, sock_read=self._read_timeout
        )
        return aiohttp.ClientSession(
            connector=connector,
            connector_owner=owner,
            timeout=timeout,
            headers={"user-agent": USER_AGENT},
            trust_env=self._trust_env,  # HTTP(S)_PROXY / NO_PROXY from the environment
            trace_configs=None if owner else [_pool_trace()],
        )

    def _pick(self) -> aiohttp.ClientSession:
        """The session for the request being opened (already counted in `stats.active`)."""
        session = self._client()
        if self.stats.active > self._watch_from and self._watched is not None:
            return self._watched
        return session

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        deployment: str | None = None,
    ) -> HTTPResponse:
        """Send a request and read the whole response."""
        self.stats.active += 1
        try:
            resp = await self._open(method, url, headers, body, deployment)
            try:
                data = await resp.read()
            except BaseException as exc:
                resp.close()  # a half-read connection must not go back to the pool
                if isinstance(exc, _CLIENT_ERRORS):
                    raise map_client_error(exc, deployment=deployment) from exc
                raise
        finally:
            self.stats.active -= 1
        return HTTPResponse(resp.status, resp.headers, data)

    async def post_json(
        self,
        url: str,
        payload: Any,
        *,
        headers: Mapping[str, str],
        deployment: str | None = None,
    ) -> HTTPResponse:
        """POST `payload` encoded with orjson and read the whole response."""
        body = orjson.dumps(payload)
        merged = {**headers, "content-type": "application/json"}
        return await self.request("POST", url, headers=merged, body=body, deployment=deployment)

    def stream(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        deployment: str | None = None,
    ) -> contextlib.AbstractAsyncContextManager[StreamResponse]:
        """Open a streaming request (`async with`). Leaving before its end, failing or being
        cancelled hangs up; leaving after it hands the connection back to the pool."""
        return _Streaming(self, (method, url, headers, body, deployment))

    async def _open(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | None,
        deployment: str | None,
    ) -> aiohttp.ClientResponse:
        """Send a request and wait for the response's head, errors mapped at this boundary."""
        if _header_hooks:
            headers = _hooked(headers)
        wait = PoolWait(self.stats, CURRENT_CALL.get())  # told by the trace, if traced
        try:
            return await self._pick().request(
                method, url, data=body, headers=headers, trace_request_ctx=wait
            )
        except _CLIENT_ERRORS as exc:
            raise map_client_error(exc, deployment=deployment) from exc
        finally:
            wait.close()

    def _finish(self, resp: aiohttp.ClientResponse) -> None:
        """Return a finished stream's connection to the pool once its last bytes are in (and
        only then stop counting it in `stats.active`)."""
        if resp.content.is_eof():
            resp.release()
            self.stats.active -= 1
            return
        # the terminating chunk usually trails the last event by microseconds; wait for it in
        # the background so the caller is not delayed and the keep-alive connection is reused
        task = running_loop().create_task(_drain(resp))
        self._draining.add(task)
        task.add_done_callback(self._drained)

    def _drained(self, task: asyncio.Task[None]) -> None:
        self._draining.discard(task)
        self.stats.active -= 1

    async def settle(self) -> None:
        """Wait until finished streams have handed their connections back to the pool."""
        if self._draining:
            await asyncio.wait(set(self._draining))

    async def aclose(self) -> None:
        """Hang up every connection of this pool."""
        for task in list(self._draining):
            task.cancel()
        if self._draining:
            await asyncio.gather(*self._draining, return_exceptions=True)
        if self._watched is not None:
            await self._watched.close()  # leaves the shared connector to its owner
            self._watched = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    def __repr__(self) -> str:
        state = "open" if self._session is not None and not self._session.closed else "idle"
        stats = self.stats
        return (
            f"<HTTPClient {self.name} {stats.pool} {state}: {stats.in_use}/{stats.limit or 'inf'}"
            f" in use, {stats.waiting} waiting>"
        )


class _Streaming:
    """`HTTPClient.stream`'s context: a class, not a generator-based context manager (every
    stream opens one: an async generator costs more to start, run and close)."""

    __slots__ = ("_args", "_client", "_resp", "_stream")

    def __init__(
        self,
        client: HTTPClient,
        args: tuple[str, str, Mapping[str, str], bytes | None, str | None],
    ) -> None:
        self._client = client
        self._args = args

    async def __aenter__(self) -> StreamResponse:
        stats = self._client.stats
        stats.active += 1  # until its connection is handed back
        try:
            self._resp = resp = await self._client._open(*self._args)
        except BaseException:
            stats.active -= 1
            raise
        self._stream = StreamResponse(resp, self._args[4])
        return self._stream

    async def __aexit__(self, *exc: object) -> None:
        if self._stream.ended:  # its end was read (its sentinel, or EOF): reusable
            self._client._finish(self._resp)
        else:  # reading the rest of an abandoned answer would cost more than a new one
            self._resp.close()
            self._client.stats.active -= 1


async def _drain(resp: aiohttp.ClientResponse) -> None:
    try:
        async with asyncio.timeout(DRAIN_TIMEOUT):
            while await resp.content.readany():
                pass
    except (Exception, asyncio.CancelledError):
        resp.close()  # a stream that keeps talking after its end is not worth keeping
        return
    resp.release()


class Transport:
    """Pooled keep-alive HTTP sessions, one per provider, created lazily in the running loop."""

    def __init__(
        self,
        *,
        limit_per_provider: int = MAX_CONNECTIONS,
        probe_limit: int = PROBE_CONNECTIONS,
        keepalive_timeout: float = 30.0,
        trust_env: bool = False,
    ) -> None:
        self._limit = limit_per_provider
        self._probe_limit = probe_limit
        self._keepalive_timeout = keepalive_timeout
        self._trust_env = trust_env
        self._clients: dict[str, HTTPClient] = {}
        self._probes: dict[str, HTTPClient] = {}

    def client(
        self,
        provider: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float | None = None,
        limit: int | None = None,
    ) -> HTTPClient:
        """The pool for `provider`; the first caller's settings make it."""
        found = self._clients.get(provider)
        if found is None:
            found = self._clients[provider] = self._make(
                provider, connect_timeout, read_timeout, limit or self._limit, "traffic"
            )
        return found

    def probe_client(
        self, provider: str, *, connect_timeout: float = 5.0, read_timeout: float | None = None
    ) -> HTTPClient:
        """The health probes' own small pool for `provider`: a probe never waits for a
        connection behind traffic, so a busy provider is not taken for a dead one."""
        found = self._probes.get(provider)
        if found is None:
            found = self._probes[provider] = self._make(
                provider, connect_timeout, read_timeout, self._probe_limit, "probe"
            )
        return found

    def _make(
        self,
        provider: str,
        connect_timeout: float,
        read_timeout: float | None,
        limit: int,
        pool: str,
    ) -> HTTPClient:
        return HTTPClient(
            provider,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            limit=limit,
            keepalive_timeout=self._keepalive_timeout,
            trust_env=self._trust_env,
            pool=pool,
        )

    def pools(self) -> list[PoolStats]:
        """The state of every pool: each provider's traffic pool, then the probe pools."""
        return [c.stats for c in (*self._clients.values(), *self._probes.values())]

    async def aclose(self) -> None:
        """Close every provider's pools."""
        clients = [*self._clients.values(), *self._probes.values()]
        self._clients, self._probes = {}, {}
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> Transport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"<Transport providers={sorted(self._clients)}>"
