"""Runtime fault injection: GET/POST/DELETE /admin/chaos on a running gateway."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import openai
import pytest

from failover import Deployment, Route, Router
from failover.server import Gateway

from .harness import ADMIN_KEY, CLIENT_KEY, LoopThread, Raw, Stack, start_uvicorn

HI = [{"role": "user", "content": "hi"}]
PRIMARY = "primary/gpt-4o"
RESET = {"enabled": True, "faults": [{"type": "reset"}]}


def chat(http: Raw) -> Any:
    return http.post("/v1/chat/completions", {"model": "chat", "messages": HI})


def test_every_deployment_is_listed_faultless(http: Raw) -> None:
    """GET /admin/chaos lists every deployment, injectable and with nothing injected."""
    answer = http.get("/admin/chaos")
    assert answer.status == 200
    deployments = answer.json["deployments"]
    assert {PRIMARY, "backup/gpt-4o-mini", "claude/claude-sonnet-4-5"} <= set(deployments)
    primary = deployments[PRIMARY]
    assert primary["injectable"] is True and primary["enabled"] is False
    assert primary["faults"] == [] and primary["injected"] == {}


def test_a_fault_switched_on_moves_traffic_and_shows_everywhere(stack: Stack, http: Raw) -> None:
    """POST arms the deployment: calls fail, traffic fails over, status and GET show it."""
    answer = http.post(f"/admin/chaos/{PRIMARY}", RESET)
    assert answer.status == 200
    assert answer.json["enabled"] is True and answer.json["faults"] == [{"type": "reset"}]
    served = chat(http)
    assert served.status == 200 and served.headers["x-failover-deployment"] == "backup/gpt-4o-mini"
    assert served.headers["x-failover-attempts"] == "2"
    assert stack.primary.requests == []  # the fault fired before any upstream call
    one = http.get(f"/admin/chaos/{PRIMARY}").json
    assert one["injected"] == {"reset": 1} and one["active"] == [True]
    status = http.get("/admin/status").json["routes"]["chat"]["deployments"]
    assert status[0]["chaos"] == ["reset"] and status[1]["chaos"] is None


def test_delete_clears_the_faults(http: Raw) -> None:
    """DELETE takes the faults off: the deployment answers again."""
    http.post(f"/admin/chaos/{PRIMARY}", RESET)
    cleared = http.request("DELETE", f"/admin/chaos/{PRIMARY}")
    assert cleared.status == 200 and cleared.json["enabled"] is False
    assert cleared.json["faults"] == []
    assert chat(http).headers["x-failover-deployment"] == PRIMARY


def test_an_empty_fault_list_clears_too(http: Raw) -> None:
    """The simulator's way of clearing, `{"enabled": true, "faults": []}`, works."""
    http.post(f"/admin/chaos/{PRIMARY}", RESET)
    assert http.post(f"/admin/chaos/{PRIMARY}", {"enabled": True, "faults": []}).status == 200
    assert chat(http).headers["x-failover-deployment"] == PRIMARY


def test_a_brownout_rate_and_error_status(http: Raw) -> None:
    """An error fault with a rate and status is parsed with the `chaos:` config's rules."""
    body = {"faults": [{"type": "error", "status": 503, "rate": "40%"}], "seed": 3}
    answer = http.post(f"/admin/chaos/{PRIMARY}", body)
    assert answer.status == 200
    assert answer.json["faults"] == [{"type": "error", "status": 503, "rate": 0.4}]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"faults": [{"type": "error", "status": 200}]}, "faults[0].error.status"),
        ({"faults": [{"type": "explode"}]}, "a fault needs a type"),
        ({"fautls": []}, "fautls: unknown field"),
        ({"faults": [{"type": "reset", "rate": 2}]}, "rate"),
        ({"faults": [{"type": "stall_stream", "duration": 0}]}, "stall_stream.duration"),
        ({"faults": [{"type": "malformed_event", "count": 0}]}, "malformed_event.count"),
        ('"reset"', "Input should be a valid dictionary"),
    ],
)
def test_bad_configs_are_422_naming_the_field(http: Raw, body: Any, expected: str) -> None:
    """Invalid chaos configs change nothing and name what is wrong."""
    answer = http.post(f"/admin/chaos/{PRIMARY}", body)
    assert answer.status == 422, answer.body
    error = answer.json["error"]
    assert error["code"] == "invalid_chaos_config" and error["type"] == "invalid_request_error"
    assert f"invalid chaos config for deployment {PRIMARY!r}" in error["message"]
    assert expected in error["message"]
    assert http.get(f"/admin/chaos/{PRIMARY}").json["faults"] == []


def test_a_body_that_is_not_json_is_400(http: Raw) -> None:
    """Garbage is the client's 400, as everywhere else."""
    answer = http.request("POST", f"/admin/chaos/{PRIMARY}", b"{nope", {})
    assert answer.status == 400


def test_unknown_deployment_and_method(http: Raw) -> None:
    """An unknown name is a 404 listing the known ones; PUT is a 405."""
    answer = http.post("/admin/chaos/nope/x", RESET)
    assert answer.status == 404 and answer.json["error"]["code"] == "deployment_not_found"
    assert PRIMARY in answer.json["error"]["message"]
    assert http.request("PUT", f"/admin/chaos/{PRIMARY}", RESET).status == 405
    assert http.post("/admin/chaos", RESET).status == 405


def test_the_chaos_api_needs_the_admin_key(make_stack: Callable[..., Stack]) -> None:
    """With an admin key set, neither no key nor a client key may inject faults."""
    stack = make_stack({"server": {"admin_key": ADMIN_KEY, "api_keys": [CLIENT_KEY]}})
    with Raw(stack.port) as http:
        assert http.post(f"/admin/chaos/{PRIMARY}", RESET).status == 401
        client = {"authorization": f"Bearer {CLIENT_KEY}"}
        assert http.post(f"/admin/chaos/{PRIMARY}", RESET, client).status == 401
        assert http.get("/admin/chaos", client).status == 401
        admin = {"authorization": f"Bearer {ADMIN_KEY}"}
        assert http.post(f"/admin/chaos/{PRIMARY}", RESET, admin).status == 200


def test_switching_on_is_an_event_and_a_loud_warning(
    http: Raw, caplog: pytest.LogCaptureFixture
) -> None:
    """A `chaos` event goes to /admin/events (and the logs, at WARNING); clearing is one too."""
    with caplog.at_level(logging.INFO, logger="failover"):
        http.post(f"/admin/chaos/{PRIMARY}", RESET)
        http.request("DELETE", f"/admin/chaos/{PRIMARY}")
    events = http.get("/admin/events?type=chaos").json["events"]
    on, off = events[-2:]
    assert on["deployment"] == PRIMARY and on["data"]["enabled"] is True
    assert on["data"]["faults"] == ["reset"] and "CHAOS ON" in on["message"]
    assert off["data"]["enabled"] is False and "cleared" in off["message"]
    loud = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("CHAOS" in r.getMessage() and PRIMARY in r.getMessage() for r in loud)


async def test_streams_fail_over_while_the_primary_is_down(
    http: Raw, aoai: openai.AsyncOpenAI
) -> None:
    """A stream through the official SDK is answered by the backup, invisibly."""
    http.post(f"/admin/chaos/{PRIMARY}", RESET)
    reply = await aoai.chat.completions.with_raw_response.create(
        model="chat", messages=HI, stream=True
    )
    assert reply.headers["x-failover-deployment"] == "backup/gpt-4o-mini"
    chunks = [c async for c in reply.parse()]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


TWINS = {
    "routes": {
        "twins": {
            "deployments": [
                {"provider": "primary", "model": "gpt-4o", "name": "one"},
                {"provider": "primary", "model": "gpt-4o", "name": "two"},
            ]
        }
    }
}


def stream_twins(http: Raw) -> str:
    """The raw event stream of one streamed request to the `twins` route."""
    body = {"model": "twins", "messages": HI, "stream": True}
    answer = http.post("/v1/chat/completions", body)
    assert answer.status == 200
    return answer.body.decode()


def streamed_text(events: str) -> str:
    """The answer's text in an OpenAI event stream."""
    chunks = [line[6:] for line in events.splitlines() if line.startswith("data: {")]
    return "".join(
        c["delta"].get("content") or "" for chunk in chunks for c in json.loads(chunk)["choices"]
    )


@pytest.mark.parametrize(
    "fault",
    [{"type": "cut_stream", "after_chunks": 2}, {"type": "stall_stream", "after_chunks": 2}],
)
def test_a_stream_broken_mid_answer_is_recovered(
    make_stack: Callable[..., Stack], fault: dict[str, Any]
) -> None:
    """A stream fault switched on through the API breaks the first deployment's stream after
    its first words; the client still gets the whole answer, marked as recovered."""
    stack = make_stack({**TWINS, "defaults": {"timeouts": {"stall": "300ms"}}})
    with Raw(stack.port) as http:
        whole = streamed_text(stream_twins(http))
        assert http.post("/admin/chaos/one", {"faults": [fault]}).status == 200
        events = stream_twins(http)
        described = http.get("/admin/chaos/one").json
    assert streamed_text(events) == whole
    assert ": failover recovered this stream 1 time(s); began on one, finished on two" in events
    assert events.rstrip().endswith("data: [DONE]")
    assert described["injected"] == {fault["type"]: 1}


def test_stream_quirks_reach_the_client_as_a_whole_answer(make_stack: Callable[..., Stack]) -> None:
    """Malformed events and a missing terminator set through the API cost nothing: the
    answer arrives whole from the first deployment, with no recovery."""
    stack = make_stack(TWINS)
    faults = [{"type": "malformed_event", "after_chunks": 2}, {"type": "no_terminator"}]
    with Raw(stack.port) as http:
        whole = streamed_text(stream_twins(http))
        assert http.post("/admin/chaos/one", {"faults": faults}).status == 200
        events = stream_twins(http)
        injected = http.get("/admin/chaos/one").json["injected"]
    assert streamed_text(events) == whole and "failover recovered" not in events
    assert injected == {"malformed_event": 1, "no_terminator": 1}


def test_a_reload_clears_runtime_faults(stack: Stack, http: Raw) -> None:
    """A reload builds new deployments: faults set through the API do not survive it."""
    http.post(f"/admin/chaos/{PRIMARY}", RESET)
    assert http.post("/admin/reload").status == 200
    assert http.get(f"/admin/chaos/{PRIMARY}").json["faults"] == []
    assert chat(http).headers["x-failover-deployment"] == PRIMARY


def test_deployments_built_in_code_are_not_injectable(bg: LoopThread) -> None:
    """A router of plain callables has no injectors: listed as such, 409 when targeted."""

    async def answer(request: Any) -> str:
        return "hi"

    router = Router({"chat": Route([Deployment("mine", answer)])})

    async def start() -> tuple[Any, Any, int]:
        return await start_uvicorn(Gateway(router))

    server, task, port = bg.run(start())
    try:
        with Raw(port) as http:
            assert http.get("/admin/chaos").json["deployments"]["mine"]["injectable"] is False
            refused = http.post("/admin/chaos/mine", RESET)
            assert refused.status == 409 and refused.json["error"]["code"] == "chaos_unavailable"
    finally:

        async def stop() -> None:
            server.should_exit = True
            await task

        bg.run(stop())
