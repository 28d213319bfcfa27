"""The shared HTTP layer: SSE decoding, pooled sessions, and errors mapped at the boundary."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from failover.errors import AttemptTimeout, ConnectionFailed, ServerError
from failover.transport import SSEDecoder, SSEEvent, Transport, map_client_error
from fakes import Drop, FakeServer, Hang, Reply, Stream, sse

JSON_HEADERS = {"content-type": "application/json"}


def decode(*chunks: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events = [e for c in chunks for e in decoder.feed(c)]
    return events + decoder.close()


def test_decoder_reads_lf_frames() -> None:
    """Frames separated by blank LF lines become one event each."""
    assert decode(b"data: a\n\ndata: b\n\n") == [
        SSEEvent("message", b"a"),
        SSEEvent("message", b"b"),
    ]


def test_decoder_reads_crlf_frames() -> None:
    """CRLF line endings (Gemini's) are handled like LF."""
    assert decode(b"data: a\r\n\r\ndata: b\r\n\r\n") == [
        SSEEvent("message", b"a"),
        SSEEvent("message", b"b"),
    ]


def test_decoder_reads_cr_only_frames() -> None:
    """A lone CR also ends a line, as the SSE spec allows."""
    assert decode(b"data: a\r\rdata: b\r\r") == [
        SSEEvent("message", b"a"),
        SSEEvent("message", b"b"),
    ]


def test_decoder_joins_crlf_split_across_reads() -> None:
    """A CRLF split between two reads is one line ending, not two."""
    assert decode(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == [SSEEvent("message", b"a\nb")]


def test_decoder_handles_one_byte_reads() -> None:
    """Feeding a stream byte by byte yields the same events."""
    raw = b'event: x\r\ndata: {"k": 1}\r\n\r\n: ping\n\ndata: [DONE]\n\n'
    assert decode(*(raw[i : i + 1] for i in range(len(raw)))) == decode(raw)


def test_decoder_joins_multiline_data() -> None:
    """Several data lines of one event are joined with newlines."""
    assert decode(b"data: line1\ndata: line2\n\n") == [SSEEvent("message", b"line1\nline2")]


def test_decoder_reads_event_names() -> None:
    """The `event:` field names the event; it resets after each dispatch."""
    assert decode(b"event: ping\ndata: {}\n\ndata: x\n\n") == [
        SSEEvent("ping", b"{}"),
        SSEEvent("message", b"x"),
    ]


def test_decoder_ignores_comments_and_other_fields() -> None:
    """Comments (keep-alive pings), id, retry and unknown fields produce nothing."""
    assert decode(b": keep-alive\n\nid: 7\nretry: 100\nfoo: bar\ndata: x\n\n") == [
        SSEEvent("message", b"x")
    ]


def test_decoder_strips_one_leading_space_only() -> None:
    """Only the single space after the colon is removed from a value."""
    assert decode(b"data:  x\n\ndata:y\n\n") == [
        SSEEvent("message", b" x"),
        SSEEvent("message", b"y"),
    ]


def test_decoder_close_flushes_trailing_cr() -> None:
    """A stream whose very last byte is the CR ending the final blank line still dispatches."""
    assert decode(b"data: x\n\r") == [SSEEvent("message", b"x")]


def test_decoder_close_rejects_unfinished_event() -> None:
    """A stream that stops inside an event raises instead of ending quietly."""
    decoder = SSEDecoder()
    decoder.feed(b'data: {"half":')
    with pytest.raises(ValueError, match="inside an event"):
        decoder.close()


def test_decoder_rejects_oversized_line() -> None:
    """A line longer than the limit is an error, not unbounded buffering."""
    with pytest.raises(ValueError, match="exceeds"):
        SSEDecoder(max_line=8).feed(b"data: 0123456789")


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError(), AttemptTimeout),
        (aiohttp.ServerTimeoutError("read"), AttemptTimeout),
        (aiohttp.ServerDisconnectedError(), ConnectionFailed),
        (aiohttp.ClientPayloadError("cut"), ConnectionFailed),
        (ConnectionResetError("reset"), ConnectionFailed),
        (aiohttp.ClientOSError(), ConnectionFailed),
    ],
)
def test_map_client_error(exc: BaseException, expected: type[Exception]) -> None:
    """Each aiohttp/OS failure maps to its ProviderError class."""
    assert type(map_client_error(exc, deployment="d")) is expected


async def test_request_reads_status_headers_and_body(transport: Transport) -> None:
    """A plain request returns the status, headers and body bytes as sent."""
    async with FakeServer() as server:
        server.push(Reply(raw=b'{"ok": true}', status=201, headers={"x-extra": "1"}))
        resp = await transport.client("t").request("GET", server.url, headers={})
    assert (resp.status, resp.headers["x-extra"], resp.body) == (201, "1", b'{"ok": true}')


async def test_refused_connection_is_connection_failed(transport: Transport) -> None:
    """Nothing listening on the port raises ConnectionFailed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionFailed) as caught:
        await transport.client("t").request("GET", f"http://127.0.0.1:{port}/", headers={})
    assert isinstance(caught.value.__cause__, aiohttp.ClientError)


async def test_dropped_connection_is_connection_failed(transport: Transport) -> None:
    """A server that closes the socket without answering raises ConnectionFailed."""
    async with FakeServer() as server:
        server.push(Drop())
        with pytest.raises(ConnectionFailed):
            await transport.client("t").request("POST", server.url, headers={}, body=b"{}")
    assert len(server.requests) == 1  # POSTs are never re-sent behind the router's back


async def test_read_timeout_is_attempt_timeout() -> None:
    """A provider silent for longer than read_timeout raises AttemptTimeout."""
    async with FakeServer() as server, Transport() as transport:
        server.push(Hang())
        client = transport.client("t", read_timeout=0.05)
        with pytest.raises(AttemptTimeout):
            await client.request("GET", server.url, headers={})


async def test_stream_stops_at_done_sentinel(transport: Transport) -> None:
    """Events stop at `data: [DONE]`, which sets `done`."""
    async with FakeServer() as server:
        server.push(Stream([sse("a"), sse("[DONE]")]))
        async with transport.client("t").stream("GET", server.url, headers={}) as resp:
            events = [e.data async for e in resp.events()]
    assert (events, resp.done) == ([b"a"], True)


async def test_cut_stream_is_connection_failed(transport: Transport) -> None:
    """A connection lost in the middle of a stream raises ConnectionFailed."""
    async with FakeServer() as server:
        server.push(Stream([sse("a"), sse("b"), sse("[DONE]")], cut_after=1))
        with pytest.raises(ConnectionFailed):
            async with transport.client("t").stream("GET", server.url, headers={}) as resp:
                async for _ in resp.events():
                    pass


async def test_stream_ending_inside_an_event_is_connection_failed(transport: Transport) -> None:
    """A body that ends halfway through an event raises ConnectionFailed."""
    async with FakeServer() as server:
        server.push(Stream([sse("a"), b'data: {"half":']))
        with pytest.raises(ConnectionFailed, match="inside an event"):
            async with transport.client("t").stream("GET", server.url, headers={}) as resp:
                async for _ in resp.events():
                    pass


async def test_raw_stream_yields_every_byte_and_ends(transport: Transport) -> None:
    """aiter_raw() gives the body's bytes unparsed and marks the stream ended at EOF."""
    frames = [b"\x00\x00\x00\x10binary", b"\xff\xfe rest"]
    async with FakeServer() as server:
        server.push(Stream(frames, content_type="application/vnd.amazon.eventstream"))
        async with transport.client("t").stream("GET", server.url, headers={}) as resp:
            received = b"".join([chunk async for chunk in resp.aiter_raw()])
    assert (received, resp.ended) == (b"".join(frames), True)


async def test_cut_raw_stream_is_connection_failed(transport: Transport) -> None:
    """A connection lost in the middle of a raw stream raises ConnectionFailed."""
    async with FakeServer() as server:
        server.push(Stream([b"one", b"two"], cut_after=1))
        with pytest.raises(ConnectionFailed):
            async with transport.client("t").stream("GET", server.url, headers={}) as resp:
                async for _ in resp.aiter_raw():
                    pass


async def test_cancelled_request_closes_the_connection(transport: Transport) -> None:
    """Cancelling a request that waits for its answer hangs up on the provider."""
    async with FakeServer() as server:
        server.push(Hang())
        task = asyncio.create_task(transport.client("t").request("GET", server.url, headers={}))
        await server.wait_for_requests(1)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.client_gone.wait(), 5)
    assert server.disconnects == 1


async def test_leaving_a_stream_early_closes_the_connection(transport: Transport) -> None:
    """Abandoning a stream half-way hangs up instead of pooling a busy connection."""
    gate = asyncio.Event()
    async with FakeServer() as server:
        server.push(Stream([sse("a"), sse("b"), sse("[DONE]")], gates={1: gate}))
        client = transport.client("t")
        async with (
            client.stream("GET", server.url, headers={}) as resp,
            contextlib.aclosing(resp.events()) as events,
        ):
            assert (await anext(events)).data == b"a"
        await asyncio.wait_for(server.client_gone.wait(), 5)


async def test_keep_alive_reuses_one_connection(transport: Transport) -> None:
    """Sequential requests to one provider share a pooled connection."""
    async with FakeServer() as server:
        server.push(Reply({"n": 1}), Reply({"n": 2}))
        client = transport.client("t")
        for _ in range(2):
            await client.request("GET", server.url, headers=JSON_HEADERS)
    assert len(server.peers) == 1


@dataclass
class Held:
    """Answer once `release` is set."""

    release: asyncio.Event

    async def respond(self, request: web.Request, server: FakeServer) -> web.StreamResponse:
        await server.wait(self.release)
        return web.json_response({"ok": True})


async def test_the_pool_reuses_the_connection_released_last(transport: Transport) -> None:
    """After a burst opened three connections, requests one at a time all go out on one of
    them (the one released last), so the others can expire: not on each in turn."""
    release = asyncio.Event()
    async with FakeServer() as server:
        server.push(*(Held(release) for _ in range(3)), *(Reply({"n": n}) for n in range(4)))
        client = transport.client("t")
        burst = [
            asyncio.ensure_future(client.request("GET", server.url, headers={})) for _ in range(3)
        ]
        await server.wait_for_requests(3)
        release.set()
        await asyncio.gather(*burst)
        for _ in range(4):
            await client.request("GET", server.url, headers={})
    assert len(server.peers) == 3
    assert len({received.peer for received in server.requests[3:]}) == 1


async def test_finished_stream_returns_its_connection_to_the_pool(transport: Transport) -> None:
    """A stream read to its end leaves its connection reusable for the next request."""
    async with FakeServer() as server:
        server.push(Stream([sse("a"), sse("[DONE]")]), Reply({"n": 2}))
        client = transport.client("t")
        async with client.stream("GET", server.url, headers={}) as resp:
            async for _ in resp.events():
                pass
        await client.settle()
        await client.request("GET", server.url, headers={})
    assert len(server.peers) == 1


async def test_session_is_created_lazily_and_closed() -> None:
    """No session exists before the first request; aclose closes it."""
    async with FakeServer() as server:
        transport = Transport()
        client = transport.client("t")
        assert "idle" in repr(client)
        await client.request("GET", server.url, headers={})
        assert "open" in repr(client)
        await transport.aclose()
        assert "idle" in repr(client)


def test_same_provider_shares_one_pool() -> None:
    """Asking twice for a provider's client returns the same pool."""
    transport = Transport()
    assert transport.client("a") is transport.client("a")
    assert transport.client("a") is not transport.client("b")


def test_invalid_http_response_maps_to_server_error() -> None:
    """A malformed HTTP response from the provider counts as a server error."""
    url = URL("http://127.0.0.1/")
    info = aiohttp.RequestInfo(url, "GET", CIMultiDictProxy(CIMultiDict()), url)
    exc = aiohttp.ClientResponseError(info, (), status=400, message="bad header")
    assert isinstance(map_client_error(exc), ServerError)


# -- push: each read's events handed on in the connection's callback ---------------------------


def taking(handed: list[list[bytes]], *, more: bool = True) -> Callable[[list[SSEEvent]], bool]:
    """A `take` that notes each read's event data and answers `more`."""

    def take(events: list[SSEEvent]) -> bool:
        handed.append([event.data for event in events])
        return more

    return take


async def test_push_hands_on_each_read_and_ends_at_done(transport: Transport) -> None:
    """Each read's events go to `take` as they are read, and the push ends (False) at [DONE]."""
    gates = [asyncio.Event() for _ in range(3)]
    handed: list[list[bytes]] = []

    def take(events: list[SSEEvent]) -> bool:
        handed.append([event.data for event in events])
        gates[len(handed) - 1].set()  # the next frame is sent once this read was handed on
        return True

    frames = [sse("a"), sse("b"), sse("c"), sse("[DONE]")]
    async with FakeServer() as server:
        server.push(Stream(frames, gates={1: gates[0], 2: gates[1], 3: gates[2]}))
        async with transport.client("t").stream("GET", server.url, headers={}) as resp:
            pushing = resp.push(take, asyncio.get_running_loop())
            assert pushing is not None
            ended = await pushing.future
            after = await resp.read_events()
    assert (handed, ended, resp.done, after) == ([[b"a"], [b"b"], [b"c"]], False, True, [])


async def test_push_hands_on_nothing_after_done(transport: Transport) -> None:
    """Events read together with [DONE] but after it are not handed on."""
    gate = asyncio.Event()
    handed: list[list[bytes]] = []
    frames = [sse("a"), sse("b") + sse("[DONE]") + sse("after")]
    async with FakeServer() as server:
        server.push(Stream(frames, gates={1: gate}))
        async with transport.client("t").stream("GET", server.url, headers={}) as resp:
            pushing = resp.push(taking(handed), asyncio.get_running_loop())
            assert pushing is not None
            gate.set()
            await pushing.future
    assert [data for read in handed for data in read] == [b"a", b"b"]


async def test_push_stopped_by_take_leaves_the_rest_to_read_events(transport: Transport) -> None:
    """A `take` that answers False ends the push (True); the events after that read are read
    by `read_events()` as usual, none lost and none twice."""
    gate = asyncio.Event()
    handed: list[list[bytes]] = []
    frames = [sse("a"), sse("b"), sse("c"), sse("[DONE]")]
    async with FakeServer() as server:
        server.push(Stream(frames, gates={1: gate}))
        async with transport.client("t").stream("GET", server.url, headers={}) as resp:
            pushing = resp.push(taking(handed, more=False), asyncio.get_running_loop())
            assert pushing is not None
            stopped = await pushing.future
            gate.set()
            rest = [event.data async for event in resp.events()]
    assert (handed, stopped, rest, resp.done) == ([[b"a"]], True, [b"b", b"c"], True)


async def test_push_on_a_cut_connection_is_connection_failed(transport: Transport) -> None:
    """A connection lost while pushing ends the push with ConnectionFailed."""
    async with FakeServer() as server:
        server.push(Stream([sse("a"), sse("b"), sse("[DONE]")], cut_after=1))
        async with transport.client("t").stream("GET", server.url, headers={}) as resp:
            pushing = resp.push(taking([]), asyncio.get_running_loop())
            assert pushing is not None
            with pytest.raises(ConnectionFailed):
                await pushing.future


async def test_push_ends_with_what_take_raised(transport: Transport) -> None:
    """An exception raised by `take` is the push's result, as it was raised."""
    raised = RuntimeError("take failed")

    def take(events: list[SSEEvent]) -> bool:
        raise raised

    async with FakeServer() as server:
        server.push(Stream([sse("a"), sse("[DONE]")]))
        async with transport.client("t").stream("GET", server.url, headers={}) as resp:
            pushing = resp.push(take, asyncio.get_running_loop())
            assert pushing is not None
            with pytest.raises(RuntimeError) as caught:
                await pushing.future
    assert caught.value is raised


async def test_push_hands_on_what_was_read_before_it_began_at_once(transport: Transport) -> None:
    """Events already read when the push begins are handed on within `push()` itself."""
    gate = asyncio.Event()
    handed: list[list[bytes]] = []
    async with FakeServer() as server:
        server.push(Stream([sse("a"), sse("b"), sse("[DONE]")], gates={1: gate}))
        # the server sends the response's head together with the first frame, so once the
        # head is read "a" waits in the body's buffer
        async with transport.client("t").stream("GET", server.url, headers={}) as resp:
            pushing = resp.push(taking(handed), asyncio.get_running_loop())
            at_once = list(handed)
            assert pushing is not None
            pushing.stop()
    assert at_once == [[b"a"]]


async def test_a_stopped_push_leaves_the_stream_to_read_events(transport: Transport) -> None:
    """After `stop()` the stream reads on as usual (aiohttp sees no other reader waiting), the
    events not handed on included."""
    gate = asyncio.Event()
    handed: list[list[bytes]] = []
    async with FakeServer() as server:
        server.push(Stream([sse("a"), sse("b"), sse("c"), sse("[DONE]")], gates={1: gate}))
        async with transport.client("t").stream("GET", server.url, headers={}) as resp:
            pushing = resp.push(taking(handed), asyncio.get_running_loop())
            assert pushing is not None
            pushing.stop()
            gate.set()
            rest = [event.data async for event in resp.events()]
    assert ([data for read in handed for data in read] + rest, resp.done) == (
        [b"a", b"b", b"c"],
        True,
    )


async def test_push_on_an_ended_stream_is_none(transport: Transport) -> None:
    """A stream read to its end has nothing to push: `push()` returns None."""
    async with FakeServer() as server:
        server.push(Stream([sse("a"), sse("[DONE]")]))
        async with transport.client("t").stream("GET", server.url, headers={}) as resp:
            async for _ in resp.events():
                pass
            assert resp.push(taking([]), asyncio.get_running_loop()) is None


async def test_push_of_a_stream_ending_inside_an_event_is_connection_failed(
    transport: Transport,
) -> None:
    """A body that ends halfway through an event while pushing ends the push with
    ConnectionFailed."""
    async with FakeServer() as server:
        server.push(Stream([sse("a"), b'data: {"half":']))
        async with transport.client("t").stream("GET", server.url, headers={}) as resp:
            pushing = resp.push(taking([]), asyncio.get_running_loop())
            assert pushing is not None
            with pytest.raises(ConnectionFailed, match="inside an event"):
                await pushing.future


async def test_push_hands_on_a_long_stream_of_large_events(transport: Transport) -> None:
    """A stream of 64 KiB events, read many to a read, is handed on whole and in order."""
    sent = [b"%04d" % i + b"x" * (64 * 1024 - 4) for i in range(64)]
    handed: list[list[bytes]] = []
    async with FakeServer() as server:
        server.push(Stream([*(sse(data) for data in sent), sse("[DONE]")]))
        async with transport.client("t").stream("GET", server.url, headers={}) as resp:
            pushing = resp.push(taking(handed), asyncio.get_running_loop())
            assert pushing is not None
            ended = await pushing.future
    assert ([data for read in handed for data in read], ended) == (sent, False)


async def test_push_hands_on_events_read_earlier_before_any_other(transport: Transport) -> None:
    """Events given as read earlier go to `take` at once, before the next read's."""
    gate = asyncio.Event()
    async with FakeServer() as server:
        server.push(Stream([sse("a"), sse("b"), sse("[DONE]")], gates={1: gate}))
        async with transport.client("t").stream("GET", server.url, headers={}) as resp:
            earlier = await resp.read_events()
            handed: list[list[bytes]] = []
            pushing = resp.push(taking(handed), asyncio.get_running_loop(), first=earlier)
            assert pushing is not None
            assert handed == [[b"a"]]
            gate.set()
            assert await pushing.future is False
    assert handed == [[b"a"], [b"b"]]


async def test_a_take_that_stops_at_events_read_earlier_ends_the_push_unread(
    transport: Transport,
) -> None:
    """A `take` that stops at the events read earlier ends the push at once (True), and the
    stream is then read as usual."""
    gate = asyncio.Event()
    async with FakeServer() as server:
        server.push(Stream([sse("a"), sse("b"), sse("[DONE]")], gates={1: gate}))
        async with transport.client("t").stream("GET", server.url, headers={}) as resp:
            earlier = await resp.read_events()
            loop = asyncio.get_running_loop()
            pushing = resp.push(taking([], more=False), loop, first=earlier)
            assert pushing is not None
            assert pushing.future.done() and pushing.future.result() is True
            pushing.stop()
            gate.set()
            rest = [e.data async for e in resp.events()]
    assert rest == [b"b"]
