"""Admission control at the gateway, through the official SDKs: who is shed under load, how the
answer looks in each API, and that a shed request touches nothing behind the gateway."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from failover.config import Config
from failover.server import Gateway
from failover.server.protocol import ARRIVED
from fakes import Delay
from openapi_schema import validate

from .harness import CLIENT_KEY, Answer, Raw, Stack

HI = [{"role": "user", "content": "hi"}]
BATCH_KEY = "batch-key-3c4d5e"
OPS_KEY = "ops-key-6f7a8b"
KEYS = [
    {"key": BATCH_KEY, "name": "batch", "priority": "low"},
    {"key": OPS_KEY, "name": "ops", "priority": "high"},
    CLIENT_KEY,
]
# ten requests in flight at most; the loop's lag is left to the tests that inject it
LIMITED = {
    "server": {"admission": {"max_requests": 10, "max_streams": 10, "max_lag": None}},
    "defaults": {"timeouts": {"attempt": "10s", "first_token": "10s", "total": "20s"}},
}
KEYED = {"server": {**LIMITED["server"], "api_keys": KEYS}, "defaults": LIMITED["defaults"]}


def merged(base: dict[str, Any], **server: Any) -> dict[str, Any]:
    """`base` with more `server:` settings (admission settings merged into its own)."""
    admission = {**base["server"]["admission"], **server.pop("admission", {})}
    return {**base, "server": {**base["server"], **server, "admission": admission}}


@contextlib.contextmanager
def held(
    stack: Stack, count: int, *, stream: bool = False, model: str = "chat", key: str = CLIENT_KEY
) -> Iterator[None]:
    """`count` high-priority requests held in flight at the upstream until the block ends."""
    gate = asyncio.Event()
    fake = stack.primary
    behaviour = fake.stream(["Hel", "lo"], gates={1: gate}) if stream else Delay(gate, fake.reply())
    fake.push(*[behaviour] * count)
    already = len(fake.requests)
    answers: list[Answer] = []
    body = {"model": model, "messages": HI, "stream": stream}
    headers = {"authorization": f"Bearer {key}", "x-failover-priority": "high"}

    def post() -> None:
        with Raw(stack.port) as http:
            answers.append(http.post("/v1/chat/completions", body, headers))

    threads = [threading.Thread(target=post) for _ in range(count)]
    for thread in threads:
        thread.start()
    stack.run(fake.wait_for_requests(already + count))
    try:
        yield
    finally:
        stack.bg.soon(gate.set)
        for thread in threads:
            thread.join(10)
    assert [a.status for a in answers] == [200] * count


def sdk(stack: Stack, key: str = CLIENT_KEY) -> openai.OpenAI:
    """The OpenAI SDK with `key`, retries off."""
    return openai.OpenAI(base_url=f"{stack.url}/v1", api_key=key, max_retries=0)


def ask(client: openai.OpenAI, priority: str | None = None, model: str = "chat") -> str | None:
    """One chat completion (with `x-failover-priority` when given); its text."""
    headers = {"x-failover-priority": priority} if priority else {}
    reply = client.chat.completions.create(model=model, messages=HI, extra_headers=headers)  # type: ignore[arg-type]
    return reply.choices[0].message.content


@pytest.fixture
def limited(make_stack: Callable[..., Stack]) -> Stack:
    """A gateway without client keys, admitting ten requests and ten streams."""
    return make_stack(LIMITED)


@pytest.fixture
def keyed(make_stack: Callable[..., Stack]) -> Stack:
    """`limited` with a low-priority batch key, a high-priority ops key and a normal one."""
    return make_stack(KEYED)


def test_low_priority_is_shed_while_high_is_served(limited: Stack) -> None:
    """At 8 of 10 in flight a low-priority request gets 503 and a high-priority one is served."""
    with sdk(limited) as client, held(limited, 8):
        with pytest.raises(openai.InternalServerError) as shed:
            ask(client, "low")
        assert shed.value.status_code == 503
        assert ask(client, "high")
        assert ask(client, "normal")


def test_normal_priority_is_shed_from_ninety_percent(limited: Stack) -> None:
    """At 9 of 10 in flight a normal request is shed and a high one still served."""
    with sdk(limited) as client, held(limited, 9):
        with pytest.raises(openai.InternalServerError):
            ask(client)
        assert ask(client, "high")


def test_the_shed_answer_is_openais_error_with_retry_after(limited: Stack) -> None:
    """503, `Retry-After` in seconds and `retry-after-ms`, an OpenAI error body, no attempt."""
    with held(limited, 8), Raw(limited.port) as http:
        answer = http.post(
            "/v1/chat/completions",
            {"model": "chat", "messages": HI},
            {"x-failover-priority": "low"},
        )
    assert answer.status == 503
    assert int(answer.headers["retry-after"]) >= 1
    assert 1000 <= int(answer.headers["retry-after-ms"]) <= 2000
    assert answer.headers["x-failover-attempts"] == "0"
    body = answer.json
    validate("ErrorResponse", body)
    assert body["error"]["code"] == "gateway_overloaded"
    assert "8 requests in flight of its 10" in body["error"]["message"]


def test_the_anthropic_sdk_gets_an_overloaded_error(limited: Stack) -> None:
    """On /v1/messages a shed is Anthropic's own 529 overloaded_error, with Retry-After."""
    with (
        anthropic.Anthropic(base_url=limited.url, api_key=CLIENT_KEY, max_retries=0) as claude,
        held(limited, 8),
        pytest.raises(anthropic.OverloadedError) as shed,
    ):
        claude.messages.create(
            model="claude",
            max_tokens=5,
            messages=HI,  # type: ignore[arg-type]
            extra_headers={"x-failover-priority": "low"},
        )
    assert shed.value.status_code == 529
    body: Any = shed.value.body
    assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
    assert "8 requests in flight of its 10" in body["error"]["message"]
    assert int(shed.value.response.headers["retry-after"]) >= 1


def test_a_keys_priority_is_its_requests_default(keyed: Stack) -> None:
    """Under the same load the low-priority key is shed and the high-priority key served."""
    with sdk(keyed, BATCH_KEY) as batch, sdk(keyed, OPS_KEY) as ops, held(keyed, 8):
        with pytest.raises(openai.InternalServerError):
            ask(batch)
        assert ask(ops)


def test_a_client_cannot_raise_its_priority_above_its_keys(keyed: Stack) -> None:
    """The low-priority key asking for high is still shed as low."""
    with (
        sdk(keyed, BATCH_KEY) as batch,
        held(keyed, 8),
        pytest.raises(openai.InternalServerError) as shed,
    ):
        ask(batch, "high")
    assert "low-priority requests are shed from 70%" in shed.value.message


def test_a_client_may_lower_its_priority(keyed: Stack) -> None:
    """A normal key asking for low is shed where it would otherwise be served."""
    with sdk(keyed) as app, held(keyed, 8):
        with pytest.raises(openai.InternalServerError):
            ask(app, "low")
        assert ask(app)


def test_a_key_over_its_quota_gets_429(make_stack: Callable[..., Stack]) -> None:
    """A key with its own quota is answered 429 rate_limit_error past it, whatever the load."""
    keys = [{"key": BATCH_KEY, "name": "batch", "max_requests": 2}, CLIENT_KEY]
    stack = make_stack(merged(KEYED, api_keys=keys))
    with sdk(stack, BATCH_KEY) as batch, sdk(stack) as app, held(stack, 2, key=BATCH_KEY):
        with pytest.raises(openai.RateLimitError) as over:
            ask(batch, "high")
        assert ask(app)
    assert over.value.status_code == 429
    assert over.value.code == "key_quota_exceeded"
    assert "your key has 2 requests in flight of its 2" in over.value.message
    assert int(over.value.response.headers["retry-after"]) >= 1


def test_streams_have_their_own_limit(make_stack: Callable[..., Stack]) -> None:
    """With every stream slot taken, a stream is shed before any event; whole answers pass."""
    stack = make_stack(merged(LIMITED, admission={"max_streams": 2}))
    with sdk(stack) as client, held(stack, 2, stream=True):
        with pytest.raises(openai.InternalServerError) as shed:
            client.chat.completions.create(model="chat", messages=HI, stream=True)  # type: ignore[arg-type]
        assert ask(client, "high")
    assert "2 streams in flight of its 2" in shed.value.message


def test_a_route_limit_sheds_that_route_only(make_stack: Callable[..., Stack]) -> None:
    """`admission.routes.solo.max_requests` sheds solo at its limit; chat is still served."""
    stack = make_stack(merged(LIMITED, admission={"routes": {"solo": {"max_requests": 1}}}))
    with sdk(stack) as client, held(stack, 1, model="solo"):
        with pytest.raises(openai.InternalServerError) as shed:
            ask(client, "high", model="solo")
        assert ask(client, "high", model="chat")
    assert "route 'solo' has 1 requests in flight of its 1" in shed.value.message


def test_loop_lag_sheds_low_priority_first(make_stack: Callable[..., Stack]) -> None:
    """With the loop late by max_lag, low priority is shed and normal still served."""
    admission = {
        "max_lag": "200ms",
        "lag_min_in_flight": 0,
        "shed": {"low": "50%", "normal": "100%", "high": "100%"},
    }
    stack = make_stack(merged(LIMITED, admission=admission))
    lag = stack.gateway.generation.router.lag
    stack.run(lag.stop())  # the sampler would average the real (small) lag into ours
    lag.smoothed = 0.2
    with sdk(stack) as client:
        with pytest.raises(openai.InternalServerError) as shed:
            ask(client, "low")
        assert ask(client)
    assert "it came to this request 200 ms late" in shed.value.message
    assert "low-priority requests are shed from 100 ms" in shed.value.message


def test_a_shed_request_never_reaches_an_upstream_or_a_breaker(limited: Stack) -> None:
    """Sheds call no deployment, record no attempt and leave every breaker closed."""
    with sdk(limited) as client, held(limited, 8):
        before = [len(f.requests) for f in limited.fakes]
        for _ in range(20):
            with pytest.raises(openai.InternalServerError):
                ask(client, "low")
        assert [len(f.requests) for f in limited.fakes] == before
    router = limited.gateway.generation.router
    assert {router.breaker(name).state.value for name in router.deployments()} == {"closed"}
    with Raw(limited.port) as http:
        events = http.get("/admin/events").json["events"]
    assert [e for e in events if e["type"] in ("breaker", "health", "panic")] == []


def test_the_sdk_retries_after_retry_after_and_is_served(make_stack: Callable[..., Stack]) -> None:
    """An SDK with retries on waits out the Retry-After and gets in once there is room."""
    stack = make_stack(merged(LIMITED, admission={"retry_after": "200ms"}))
    admission = stack.gateway.generation.admission
    answer: list[str | None] = []
    with openai.OpenAI(base_url=f"{stack.url}/v1", api_key=CLIENT_KEY, max_retries=1) as client:
        retrying = threading.Thread(target=lambda: answer.append(ask(client, "low")))
        with held(stack, 8):
            retrying.start()
            deadline = time.monotonic() + 5
            while admission.shed_total() == 0 and time.monotonic() < deadline:
                time.sleep(0.005)
        retrying.join(5)
    assert admission.shed_total() == 1
    assert answer and answer[0]


def test_metrics_show_sheds_and_room_in_flight(limited: Stack) -> None:
    """/metrics counts sheds by route, priority and reason, and shows in flight against limits."""
    with sdk(limited) as client, held(limited, 8):
        with pytest.raises(openai.InternalServerError):
            ask(client, "low")
        with Raw(limited.port) as http:
            text = http.get("/metrics").body.decode()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    shed = (("priority", "low"), ("reason", "max_requests"), ("route", "chat"))
    assert samples[("failover_admission_shed_total", shed)] == 1
    assert samples[("failover_admission_in_flight", (("kind", "requests"),))] == 8
    assert samples[("failover_admission_limit", (("kind", "streams"),))] == 10


def test_status_shows_admission(limited: Stack) -> None:
    """/admin/status has the gateway's admission: in flight, limits, sheds, shedding."""
    with sdk(limited) as client, held(limited, 8):
        with pytest.raises(openai.InternalServerError):
            ask(client, "low")
        with Raw(limited.port) as http:
            admission = http.get("/admin/status").json["gateway"]["admission"]
    assert admission["requests"] == {"in_flight": 8, "limit": 10}
    assert admission["shed"]["by_reason"] == {"max_requests": 1}
    assert admission["shedding"] is True


def test_a_shed_request_has_its_log_line(limited: Stack, caplog: pytest.LogCaptureFixture) -> None:
    """The shed is logged as a request line (outcome shed) and the episode's start as a warning."""
    caplog.set_level(logging.INFO)
    with sdk(limited) as client, held(limited, 8), pytest.raises(openai.InternalServerError):
        ask(client, "low")
    lines = [getattr(r, "fields", {}) for r in caplog.records if r.name == "failover.request"]
    shed = [f for f in lines if f.get("outcome") == "shed"]
    assert len(shed) == 1
    assert shed[0]["route"] == "chat" and shed[0]["priority"] == "low"
    assert (shed[0]["reason"], shed[0]["in_flight"], shed[0]["limit"]) == ("max_requests", 8, 10)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(r.getMessage().startswith("shedding load:") for r in warnings)


def test_disabled_admission_sheds_nothing(make_stack: Callable[..., Stack]) -> None:
    """With `enabled: false` a low-priority request at the same load is served."""
    stack = make_stack(merged(LIMITED, admission={"enabled": False}))
    with sdk(stack) as client, held(stack, 8):
        assert ask(client, "low")


def test_a_reload_applies_new_limits_and_keeps_the_counts(limited: Stack) -> None:
    """After a reload raising the limit, the same load no longer sheds low priority."""
    with sdk(limited) as client, held(limited, 8):
        with pytest.raises(openai.InternalServerError):
            ask(client, "low")
        config = limited.config_path.read_text().replace("max_requests: 10", "max_requests: 100")
        limited.write_config(config)
        limited.run(limited.gateway.reload())
        assert ask(client, "low")
        assert limited.gateway.generation.admission.requests.in_flight == 8
    assert limited.gateway.generation.admission.requests.in_flight == 0


async def asgi_post(gateway: Gateway, body: dict[str, Any], **scope: Any) -> int:
    """POST /v1/chat/completions straight to the ASGI app; the answer's status."""
    raw = json.dumps(body).encode()
    message = {"type": "http.request", "body": raw, "more_body": False}
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return message

    async def send(event: dict[str, Any]) -> None:
        if event["type"] == "http.response.start":
            statuses.append(event["status"])

    request = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        **scope,
    }
    await gateway(request, receive, send)
    return statuses[0]


async def test_a_request_that_waited_past_max_lag_is_shed() -> None:
    """A request the process took longer than max_lag to look at is shed at once, a stream
    too: a burst of new streams is shed, not let in to keep the loop late for seconds."""
    config = Config.from_dict(
        {
            "providers": {"sim": {"kind": "simulated"}},
            "routes": {"chat": {"deployments": [{"provider": "sim", "model": "m"}]}},
            "server": {"admission": {"max_lag": "100ms", "lag_min_in_flight": 1}},
        }
    )
    gateway = Gateway.from_config(config)
    gateway.generation.admission.requests.in_flight = 1  # busy enough for the lag to count
    now = asyncio.get_running_loop().time()
    body = {"model": "chat", "messages": HI}
    stream = {**body, "stream": True}
    try:
        assert await asgi_post(gateway, body, **{ARRIVED: now}) == 200
        assert await asgi_post(gateway, body, **{ARRIVED: now - 0.3}) == 503
        assert await asgi_post(gateway, stream, **{ARRIVED: now - 0.3}) == 503
    finally:
        await gateway.generation.router.aclose()


def test_the_responses_api_is_admitted_like_chat(limited: Stack) -> None:
    """/v1/responses takes room too: at 8 of 10 in flight a low-priority one is shed."""
    with (
        sdk(limited) as client,
        held(limited, 8),
        pytest.raises(openai.InternalServerError) as shed,
    ):
        client.responses.create(
            model="chat", input="hi", extra_headers={"x-failover-priority": "low"}
        )
    assert shed.value.status_code == 503
    assert "8 requests in flight of its 10" in shed.value.message
