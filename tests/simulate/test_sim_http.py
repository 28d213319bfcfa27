"""`--url`: load over HTTP to a gateway, faults through its admin API, skipped on a 404.

Most tests drive a stand-in built on the real router that speaks the contract the simulator
assumes: `POST /admin/chaos/{deployment}` with a `chaos:` block as JSON, `GET /admin/status`;
one drives failover's own gateway end to end.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sim_helpers import CONFIG, STREAM_LOAD, STREAMED, make_scenario

from failover.chaos import ChaosConfig, ErrorFault
from failover.clock import SystemClock
from failover.config import Config
from failover.errors import RequestFailed
from failover.factory import from_config
from failover.server import Gateway as RealGateway
from failover.simulate.http import HttpTarget, fault_json
from failover.simulate.local import build_router
from failover.simulate.record import Recording
from failover.simulate.report import build_report
from failover.simulate.runner import run_scenario
from failover.simulate.scenario import Scenario
from server.harness import start_uvicorn

ADMIN_KEY = "admin-secret"


class Gateway:
    """The smallest gateway the simulator can drive."""

    def __init__(self, *, chaos: bool) -> None:
        self.router, self.injectors = build_router(
            Config.from_dict(CONFIG), clock=SystemClock(), seed=1
        )
        self.posts: list[tuple[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.app.router.add_get("/admin/status", self.status)
        if chaos:
            self.app.router.add_post("/admin/chaos/{name:.+}", self.chaos)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json(loads=orjson.loads)
        try:
            if body.get("stream"):
                return await self.stream(request, body)
            reply = await self.router.complete(body["model"], body)
        except RequestFailed as exc:
            calls = str(len(exc.trace.calls))
            return web.json_response(
                {"error": {"message": exc.message}},
                status=502,
                headers={"x-failover-attempts": calls},
            )
        headers = {
            "x-failover-deployment": reply.deployment,
            "x-failover-attempts": str(len(reply.trace.calls)),
        }
        return web.Response(
            body=reply.completion.raw, headers=headers, content_type="application/json"
        )

    async def stream(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        reply = await self.router.open_stream(body["model"], body)
        resp = web.StreamResponse(
            headers={
                "content-type": "text/event-stream",
                "x-failover-deployment": reply.deployment,
                "x-failover-attempts": str(len(reply.trace.calls)),
            }
        )
        await resp.prepare(request)
        async for chunk in reply:
            await resp.write(b"data: " + chunk.raw + b"\n\n")
        await resp.write(b"data: [DONE]\n\n")
        return resp

    async def chaos(self, request: web.Request) -> web.Response:
        if request.headers.get("authorization") != f"Bearer {ADMIN_KEY}":
            return web.json_response({"error": "admin key"}, status=401)
        name = request.match_info["name"]
        body = await request.json()
        self.posts.append((name, body))
        self.injectors[name].set_faults(ChaosConfig.model_validate(body))
        return web.json_response(self.injectors[name].describe())

    async def status(self, request: web.Request) -> web.Response:
        store = self.router.store
        deployments = {
            name: {
                "breaker": self.router.breaker(name).state.value,
                "healthy": store.is_healthy(name),
            }
            for name in self.router.deployments()
        }
        return web.json_response({"deployments": deployments})


async def drive(gateway: Gateway, drill: Scenario, admin_key: str | None) -> Recording:
    """Serve `gateway` on a free port and run `drill` against it over HTTP."""
    server = TestServer(gateway.app)
    await server.start_server()
    try:
        url = str(server.make_url("")).rstrip("/")
        return await run_scenario(drill, fast=False, url=url, admin_key=admin_key)
    finally:
        await server.close()
        await gateway.router.aclose()


def drill(duration: float = 2.5) -> Scenario:
    """40 req/s, the primary hard down through the middle fifth to three fifths."""
    return make_scenario(
        load={"rate": 40, "duration": duration, "stream": "30%"},
        timeline=[
            {
                "deployment": "primary",
                "start": duration / 5,
                "end": duration * 3 / 5,
                "fault": {"type": "reset"},
            }
        ],
    )


@pytest.fixture(scope="module")
def chaos_run() -> tuple[Gateway, Recording]:
    """One 2.5 s run against a gateway with the chaos endpoint (shared by the module)."""
    gateway = Gateway(chaos=True)
    return gateway, asyncio.run(drive(gateway, drill(), ADMIN_KEY))


def test_the_admin_body_is_a_chaos_block() -> None:
    """Faults go to the gateway as the JSON of a deployment's `chaos:` mapping."""
    body = fault_json([ErrorFault(status=503, rate=0.3)])
    assert body == {"enabled": True, "faults": [{"type": "error", "status": 503, "rate": 0.3}]}
    assert ChaosConfig.model_validate(body).faults[0] == ErrorFault(status=503, rate=0.3)


def test_faults_are_switched_through_the_admin_api(
    chaos_run: tuple[Gateway, Recording],
) -> None:
    """The fault goes on and off via POST /admin/chaos/{deployment}; clients see no errors."""
    gateway, recording = chaos_run
    assert gateway.posts == [
        ("primary", {"enabled": True, "faults": [{"type": "reset"}]}),
        ("primary", {"enabled": True, "faults": []}),
    ]
    assert recording.mode == "http" and all(s.applied for s in recording.switches)
    report = build_report(recording)
    assert report.overall.requests > 60 and report.overall.failed == 0
    assert {"primary", "backup"} <= set(recording.deployments)


def test_the_breaker_is_watched_through_the_status_endpoint(
    chaos_run: tuple[Gateway, Recording],
) -> None:
    """Detection over HTTP comes from polling GET /admin/status."""
    (fault,) = build_report(chaos_run[1]).faults
    assert fault.detected_by == "breaker" and fault.detect is not None and fault.detect < 0.5
    assert fault.calls is None  # calls inside a gateway are not visible from outside


async def test_a_gateway_without_the_chaos_api_gets_the_load_only() -> None:
    """A 404 from the admin API skips fault injection with a clear note; the load still runs."""
    recording = await drive(Gateway(chaos=False), drill(1.0), None)
    assert recording.requests and all(r.ok for r in recording.requests)
    assert not any(s.applied for s in recording.switches)
    assert any("no chaos admin API" in note and "404" in note for note in recording.notes)


async def test_a_refused_admin_key_is_reported() -> None:
    """A 401 from the admin API is named in the run's notes."""
    recording = await drive(Gateway(chaos=True), drill(1.0), "wrong")
    assert any("answered 401" in note for note in recording.notes)


async def test_faults_switch_on_the_real_gateway() -> None:
    """End to end: `--url` against failover's own gateway. The simulator's POSTs arm and clear
    the deployment's injector, the gateway fails over with no client errors, and detection is
    read from the real /admin/status."""
    config = Config.from_dict({**CONFIG, "server": {"admin_key": ADMIN_KEY}})
    gateway = RealGateway(from_config(config))
    server, task, port = await start_uvicorn(gateway)
    primary = gateway.generation.router.deployments()["primary"]
    seen: list[bool] = []
    gateway.generation.router.hooks.event.append(
        lambda event: seen.append(event.data["enabled"]) if event.type == "chaos" else None
    )
    try:
        recording = await run_scenario(
            drill(), fast=False, url=f"http://127.0.0.1:{port}", admin_key=ADMIN_KEY
        )
    finally:
        server.should_exit = True
        await task
    assert seen == [True, False]  # switched on, then cleared, through POST /admin/chaos
    assert (
        getattr(primary, "injected", {}).get("reset", 0) >= 3
    )  # at least the three that opened it
    assert all(s.applied for s in recording.switches) and not recording.notes
    report = build_report(recording)
    assert report.overall.failed == 0 and report.overall.requests > 60
    (fault,) = report.faults
    assert fault.detected_by == "breaker" and fault.detect is not None and fault.detect < 0.5


# -- streams over HTTP: read to the end, breaks and rescues noticed --

CHUNK = b'data: {"choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": null}]}'
END = b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}'
BROKE = {
    "error": {"message": "stream from primary broke", "code": "stream_interrupted"},
    "failover": {
        "route": "chat",
        "attempts": [
            {"deployment": "primary", "outcome": "server_error"},
            {"deployment": "backup", "outcome": "timeout", "delivered_chars": 5},
            {"deployment": "primary", "outcome": "bad_request", "recovery": "continue"},
        ],
    },
}
EVENTS: dict[str, list[bytes]] = {
    "whole": [CHUNK, END, b"data: [DONE]"],
    "rescued": [
        CHUNK,
        END,
        b": failover recovered this stream 2 time(s); began on backup, finished on primary",
        b"data: [DONE]",
    ],
    "broken": [CHUNK, b"data: " + orjson.dumps(BROKE)],
    "cut": [CHUNK],
}


async def canned(request: web.Request) -> web.StreamResponse:
    """An event stream as a gateway would send it, picked by the request's message."""
    body = await request.json(loads=orjson.loads)
    events = EVENTS[body["messages"][0]["content"]]
    headers = {"x-failover-deployment": "backup", "x-failover-attempts": "1"}
    resp = web.StreamResponse(headers={"content-type": "text/event-stream", **headers})
    await resp.prepare(request)
    for event in events:
        await resp.write(event + b"\n\n")
    return resp


@pytest.fixture
async def sse() -> Any:
    """An HttpTarget pointed at a server sending canned event streams."""
    app = web.Application()
    app.router.add_post("/v1/chat/completions", canned)
    server = TestServer(app)
    await server.start_server()
    target = HttpTarget(str(server.make_url("")).rstrip("/"), "chat")
    yield target
    await target.aclose()
    await server.close()


async def streamed(target: HttpTarget, which: str) -> Any:
    request = {"messages": [{"role": "user", "content": which}], "stream": True}
    return await target.send(request, True)


async def test_a_whole_stream_over_http_is_answered(sse: HttpTarget) -> None:
    """A stream ending in [DONE] is answered, by the deployment the header names."""
    out = await streamed(sse, "whole")
    assert (out.ok, out.breaks, out.recoveries, out.deployment) == (True, 0, 0, "backup")


async def test_a_rescued_stream_over_http_is_read_from_the_gateways_comment(
    sse: HttpTarget,
) -> None:
    """The gateway's closing comment says how often the stream broke and who finished it."""
    out = await streamed(sse, "rescued")
    assert (out.ok, out.breaks, out.recoveries, out.deployment) == (True, 2, 2, "primary")
    assert out.calls == 3  # the one the header counted, and one per recovery


async def test_an_error_event_is_a_broken_stream_of_its_causes_kind(sse: HttpTarget) -> None:
    """An error event after content is an unrecovered break, of the kind of the attempt
    whose stream broke."""
    out = await streamed(sse, "broken")
    assert (out.ok, out.kind, out.breaks, out.recoveries) == (False, "timeout", 1, 0)
    assert out.ttft is not None


async def test_a_stream_closed_without_its_terminator_broke(sse: HttpTarget) -> None:
    """A connection that ends without [DONE] or an error event is a broken stream too."""
    out = await streamed(sse, "cut")
    assert (out.ok, out.kind, out.breaks) == (False, "connection", 1)


async def test_streams_cut_through_the_real_gateway_are_rescued() -> None:
    """End to end: the simulator cuts the primary's streams through the gateway's admin API,
    the gateway finishes them on the backup, and the run counts them as rescued."""
    config = Config.from_dict({**STREAMED, "server": {"admin_key": ADMIN_KEY}})
    gateway = RealGateway(from_config(config))
    server, task, port = await start_uvicorn(gateway)
    fault = {"type": "cut_stream", "after_chunks": 4}
    drill = make_scenario(
        config=STREAMED,
        load={**STREAM_LOAD, "duration": "2.5s"},
        timeline=[{"deployment": "primary", "start": "0.5s", "end": "2s", "fault": fault}],
    )
    try:
        recording = await run_scenario(
            drill, fast=False, url=f"http://127.0.0.1:{port}", admin_key=ADMIN_KEY
        )
    finally:
        server.should_exit = True
        await task
    rescued = [r for r in recording.requests if r.rescued]
    assert rescued and all(r.deployment == "backup" for r in rescued)
    overall = build_report(recording).overall
    assert overall.failed == 0 and overall.unrecovered_streams == 0
    assert overall.recovered_streams == len(rescued) and overall.blamed_calls is None
