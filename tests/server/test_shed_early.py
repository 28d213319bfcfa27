"""Shedding before the body is parsed: while the process holds a line or runs late, a routed
request is decided on its headers and a glance at its raw body (`admission.peek`)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import orjson
import pytest

from failover.config import Config
from failover.resilience.admission import Admission, Gate
from failover.server import Gateway
from failover.server.admission import peek
from failover.server.sampler import Sampler

HI = [{"role": "user", "content": "hi"}]
CHAT = orjson.dumps({"model": "chat", "messages": HI})
PRIORITY = b"x-failover-priority"


class Still(Sampler):
    """A sampler that never samples: the line stays where the test drew it."""

    def tick(self, admission: Admission, lag: float, now: float) -> None:
        return None


@pytest.fixture
async def gateway() -> AsyncIterator[Gateway]:
    """A gateway on a simulated provider (routes chat and fast) holding a line of 100."""
    config = Config.from_dict(
        {
            "providers": {"sim": {"kind": "simulated"}},
            "routes": {
                "chat": {"deployments": [{"provider": "sim", "model": "m"}]},
                "fast": {"deployments": [{"provider": "sim", "model": "m"}]},
            },
            "server": {"admission": {"lag_min_in_flight": 1}},
        }
    )
    gateway = Gateway.from_config(config)
    gen = gateway.generation
    gen.sampler = Still()
    gen.admission.line = Gate("loop_lag", 100, gen.admission.policy.shed)
    try:
        yield gateway
    finally:
        await gen.router.aclose()


def holding(gateway: Gateway, in_flight: int) -> Admission:
    """The gateway's admission with `in_flight` whole requests counted in flight."""
    admission = gateway.generation.admission
    admission.requests.in_flight = in_flight
    return admission


async def post(
    gateway: Gateway, body: bytes, *headers: tuple[bytes, bytes], path: str = "/v1/chat/completions"
) -> tuple[int, dict[bytes, bytes], Any]:
    """POST `body` straight to the ASGI app: status, headers and parsed body of the answer."""
    message = {"type": "http.request", "body": body, "more_body": False}
    answer: dict[str, Any] = {}

    async def receive() -> dict[str, Any]:
        return message

    async def send(event: MutableMapping[str, Any]) -> None:
        if event["type"] == "http.response.start":
            answer["status"], answer["headers"] = event["status"], dict(event["headers"])
        elif event["type"] == "http.response.body":
            answer["body"] = answer.get("body", b"") + event.get("body", b"")

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": [(b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1),
    }
    await gateway(scope, receive, send)
    json = answer["headers"].get(b"content-type") == b"application/json"
    return answer["status"], answer["headers"], orjson.loads(answer["body"]) if json else None


async def test_a_request_over_the_line_is_shed_before_its_body_is_parsed(gateway: Gateway) -> None:
    """With the line full, a body that is not even valid JSON gets the shed's 503, not a 400."""
    holding(gateway, 100)
    status, headers, _ = await post(gateway, b'{"model": "chat", "messages": [')
    assert status == 503
    assert b"retry-after" in headers


async def test_the_early_shed_is_the_same_answer_as_any_shed(gateway: Gateway) -> None:
    """The early shed is OpenAI's error with Retry-After, retry-after-ms and the line's words."""
    holding(gateway, 100)
    status, headers, body = await post(gateway, CHAT)
    assert (status, body["error"]["code"]) == (503, "gateway_overloaded")
    assert int(headers[b"retry-after"]) >= 1 and int(headers[b"retry-after-ms"]) >= 1000
    assert "takes on no more than 100 whole requests" in body["error"]["message"]


async def test_the_anthropic_api_gets_its_own_shed(gateway: Gateway) -> None:
    """On /v1/messages the early shed is Anthropic's 529 overloaded_error."""
    holding(gateway, 100)
    body = orjson.dumps({"model": "chat", "max_tokens": 5, "messages": HI})
    status, _, answer = await post(gateway, body, path="/v1/messages")
    assert (status, answer["error"]["type"]) == (529, "overloaded_error")


async def test_an_early_shed_is_counted_under_its_route(gateway: Gateway) -> None:
    """The shed is counted under the route its body names, at its priority, for the line."""
    admission = holding(gateway, 100)
    await post(gateway, CHAT, (PRIORITY, b"low"))
    assert admission.shed_counts == {("chat", "low", "loop_lag"): 1}


async def test_high_priority_passes_where_low_is_shed(gateway: Gateway) -> None:
    """At 80 of a line of 100, low priority is shed early and high priority is served."""
    holding(gateway, 80)
    assert (await post(gateway, CHAT, (PRIORITY, b"low")))[0] == 503
    assert (await post(gateway, CHAT, (PRIORITY, b"high")))[0] == 200


async def test_a_stream_is_not_held_to_the_line_on_whole_requests(gateway: Gateway) -> None:
    """With the line on whole requests full, a stream is still admitted."""
    holding(gateway, 100)
    body = orjson.dumps({"model": "chat", "messages": HI, "stream": True})
    status, headers, _ = await post(gateway, body)
    assert status == 200
    assert headers[b"content-type"].startswith(b"text/event-stream")


async def test_a_stream_over_its_line_is_shed_before_its_body_is_parsed(gateway: Gateway) -> None:
    """With the line on streams full, a stream gets the shed's 503 before its body is parsed
    (the rest of it is not even JSON), and a whole request still passes."""
    admission = holding(gateway, 0)
    admission.line = None
    admission.stream_line = Gate("loop_lag", 50, admission.policy.shed)
    admission.streams.in_flight = 50
    status, _, body = await post(gateway, b'{"model": "chat", "stream": true, "messages": [')
    assert status == 503
    assert "takes on no more than 50 streams" in body["error"]["message"]
    assert admission.shed_counts == {("chat", "normal", "loop_lag"): 1}
    assert (await post(gateway, CHAT))[0] == 200


async def test_a_request_let_through_is_not_asked_twice(gateway: Gateway) -> None:
    """A request the early check let through is not shed by a second roll of the same dice."""
    admission = holding(gateway, 1)
    admission.line = None
    # low is shed from 140 ms, all of it at 200 ms: at 170 ms, half of it. The first roll
    # (0.99) lets the request through; a second (0.0) would shed it
    admission.rng = Rolls(iter([0.99, 0.0]))
    gateway.generation.router.lag.smoothed = 0.17
    assert (await post(gateway, CHAT, (PRIORITY, b"low")))[0] == 200


class Rolls(random.Random):
    """A random source that returns the given rolls in turn."""

    def __init__(self, rolls: Any) -> None:
        super().__init__()
        self.rolls = rolls

    def random(self) -> float:
        return float(next(self.rolls))


def test_peek_reads_the_model_and_whether_it_streams() -> None:
    """The raw body names the model and says whether it streams, wherever the keys are."""
    assert peek(b'{"model": "chat", "stream": true, "messages": []}') == ("chat", True)
    assert peek(b'{"model":"chat","stream":false}') == ("chat", False)
    assert peek(b'{"messages":[],"model":"chat"}') == ("chat", False)


async def test_the_route_header_names_the_route_of_an_early_shed(gateway: Gateway) -> None:
    """`x-failover-route` wins over the body's model for the route a shed is counted under."""
    admission = holding(gateway, 100)
    await post(gateway, CHAT, (PRIORITY, b"low"), (b"x-failover-route", b"fast"))
    assert admission.shed_counts == {("fast", "low", "loop_lag"): 1}


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "a", "metadata": {"model": "b"}}',  # two models: which is the route?
        b'{"messages": []}',  # no model at all: the handler's 400
        b'{"model": "chat", "stream": true, "stream": false}',  # said twice
        b'{"model": "chat", "stream": 1}',  # not a JSON boolean
        b'{"model": "chat", "messages": [{"content": "stream"}], "stream": true}',
    ],
)
def test_peek_leaves_what_it_cannot_tell_to_the_handler(body: bytes) -> None:
    """A body whose route or streaming is not plain at a glance is not decided early."""
    assert peek(body) is None


async def test_an_invalid_priority_is_left_to_the_handler(gateway: Gateway) -> None:
    """A priority header that is not high, normal or low gets the handler's 400, not a shed."""
    holding(gateway, 100)
    assert (await post(gateway, CHAT, (PRIORITY, b"urgent")))[0] == 400
