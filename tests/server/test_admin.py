"""Operations: status, drain/restore, breaker reset, and config reload (good and bad)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai
import yaml

from fakes import FakeOpenAI

from .harness import Raw, Stack, base_config

HI = [{"role": "user", "content": "hi"}]


def chat(http: Raw, model: str = "chat") -> Any:
    return http.post("/v1/chat/completions", {"model": model, "messages": HI})


def deployment(http: Raw, name: str, route: str = "chat") -> dict[str, Any]:
    """One deployment's entry in /admin/status."""
    status = http.get("/admin/status").json
    found: dict[str, Any] = next(
        d for d in status["routes"][route]["deployments"] if d["name"] == name
    )
    return found


def test_status_reports_routes_and_deployments(stack: Stack, http: Raw) -> None:
    """Status shows each route's plan and each deployment's breaker, health and stats."""
    stack.primary.push(FakeOpenAI.error(500, "boom", type="server_error"))
    chat(http)
    chat(http)
    status = http.get("/admin/status").json
    assert status["gateway"]["status"] == "ok"
    route = status["routes"]["chat"]
    assert (route["strategy"], route["fallbacks"], route["state"]) == ("priority", [], "ok")
    names = [d["name"] for d in route["deployments"]]
    assert names == ["primary/gpt-4o", "backup/gpt-4o-mini"]
    primary = route["deployments"][0]
    assert primary["breaker"]["state"] == "closed" and primary["healthy"] is True
    assert primary["success_rate"] == 0.5
    assert primary["last_error"].startswith("server_error")
    assert primary["p50_ms"] > 0 and primary["in_flight"] == 0
    assert status["gateway"]["config"]["generation"] == 1
    assert status["gateway"]["in_flight"] == 0


def test_drain_and_restore(stack: Stack, http: Raw) -> None:
    """A drained deployment gets no traffic until it is restored."""
    drained = http.post("/admin/deployments/primary/gpt-4o/drain")
    assert drained.json == {
        "deployment": "primary/gpt-4o",
        "action": "drain",
        "breaker": "forced_open",
    }
    assert chat(http).headers["x-failover-deployment"] == "backup/gpt-4o-mini"
    assert deployment(http, "primary/gpt-4o")["breaker"]["state"] == "forced_open"
    restored = http.post("/admin/deployments/primary/gpt-4o/restore")
    assert restored.json["breaker"] == "closed"
    assert chat(http).headers["x-failover-deployment"] == "primary/gpt-4o"


def test_breaker_reset(stack: Stack, http: Raw) -> None:
    """A breaker opened by failures closes again on reset."""
    stack.primary.push(*[FakeOpenAI.error(500, "boom", type="server_error")] * 3)
    for _ in range(3):
        chat(http)
    assert deployment(http, "primary/gpt-4o")["breaker"]["state"] == "open"
    assert http.post("/admin/breakers/primary/gpt-4o/reset").json["breaker"] == "closed"
    assert chat(http).headers["x-failover-deployment"] == "primary/gpt-4o"


def test_unknown_deployment_and_action(http: Raw) -> None:
    """Unknown names and actions are 404s that list what exists."""
    answer = http.post("/admin/deployments/nope/drain")
    assert answer.status == 404 and "primary/gpt-4o" in answer.json["error"]["message"]
    assert http.post("/admin/deployments/primary/gpt-4o/explode").status == 404
    assert http.post("/admin/deployments//drain").status == 404
    assert http.get("/admin/deployments/primary/gpt-4o/drain").status == 405


def test_reload_good_file(stack: Stack, http: Raw) -> None:
    """A valid new config is swapped in: new routes, generation 2; drains carry over."""
    http.post("/admin/deployments/backup/gpt-4o-mini/drain")
    data = base_config(stack.primary.base_url, stack.backup.base_url, stack.claude.base_url)
    data["routes"]["fresh"] = {"deployments": [{"provider": "backup", "model": "gpt-4o-mini"}]}
    stack.write_config(data)
    answer = http.post("/admin/reload")
    assert answer.status == 200
    assert answer.json["generation"] == 2 and "fresh" in answer.json["routes"]
    assert "fresh" in [m["id"] for m in http.get("/v1/models").json["data"]]
    assert deployment(http, "backup/gpt-4o-mini")["breaker"]["state"] == "forced_open"
    status = http.get("/admin/status").json
    assert status["gateway"]["config"]["generation"] == 2
    assert status["gateway"]["state"] == {"backend": "memory"}
    assert any(e["type"] == "config" for e in status["events"])


def test_reload_bad_file_keeps_the_running_config(stack: Stack, http: Raw) -> None:
    """An invalid file changes nothing and says why."""
    stack.write_config("routes: {chat: {deployments: [{provider: ghost, model: x}]}}")
    answer = http.post("/admin/reload")
    assert answer.status == 422
    assert answer.json["reloaded"] is False
    assert "unknown provider 'ghost'" in answer.json["error"]
    stack.write_config("providers: [unclosed")
    assert "invalid YAML" in http.post("/admin/reload").json["error"]
    assert chat(http).status == 200
    config = http.get("/admin/status").json["gateway"]["config"]
    assert config["generation"] == 1
    assert "invalid YAML" in config["last_reload_error"]
    events = http.get("/admin/events?type=config").json["events"]
    assert "reload failed" in events[-1]["message"]


async def test_in_flight_stream_finishes_on_the_old_router(
    stack: Stack, aoai: openai.AsyncOpenAI
) -> None:
    """A stream running during a reload completes on the router it began on, which is then
    closed."""
    gate = asyncio.Event()
    stack.primary.push(stack.primary.stream(["Hel", "lo"], gates={2: gate}))
    stream = await aoai.chat.completions.create(model="chat", messages=HI, stream=True)
    first = await stream.__anext__()
    assert first.choices[0].delta.role == "assistant"
    old = stack.gateway.generation
    data = base_config(stack.primary.base_url, stack.backup.base_url, stack.claude.base_url)
    data["routes"]["chat"]["deployments"].reverse()  # the new config prefers the backup
    stack.write_config(yaml.safe_dump(data, sort_keys=False))
    new = stack.run(stack.gateway.reload())
    assert new.number == 2 and old.active == 1
    after = await aoai.chat.completions.with_raw_response.create(model="chat", messages=HI)
    assert after.headers["x-failover-deployment"] == "backup/gpt-4o-mini"
    stack.bg.soon(gate.set)
    rest = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert rest == "Hello"
    deadline = time.monotonic() + 5
    while stack.gateway._retiring and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)  # another thread's loop closes it: poll
    assert old.active == 0 and not stack.gateway._retiring


def test_events_metrics_and_dashboard(stack: Stack, http: Raw) -> None:
    """Events, Prometheus metrics and the dashboard page are served."""
    stack.primary.push(*[FakeOpenAI.error(500, "boom", type="server_error")] * 3)
    for _ in range(3):
        chat(http)
    events = http.get("/admin/events").json["events"]
    opened = [e for e in events if e["type"] == "breaker"]
    assert opened and opened[-1]["deployment"] == "primary/gpt-4o"
    assert http.get(f"/admin/events?after={events[-1]['id']}").json == {"events": []}
    assert http.get("/admin/events?after=soon").status == 400
    metrics = http.get("/metrics")
    assert metrics.status == 200 and metrics.headers["content-type"].startswith("text/plain")
    assert b"failover_gateway_overhead_seconds_count" in metrics.body
    assert b'route="chat"' in metrics.body
    page = http.get("/dashboard/")
    assert page.status == 200 and b"<html" in page.body.lower()
    assert http.get("/dashboard").status == 308
