"""Per-request controls as `x-failover-*` headers, through the official SDKs."""

from __future__ import annotations

import anthropic
import openai
import pytest

from openapi_schema import validate

from .harness import Raw, Stack

HI = [{"role": "user", "content": "hi"}]


def test_route_header_chooses_the_route(stack: Stack, oai: openai.OpenAI) -> None:
    """`x-failover-route` sends the request to another route whatever `model` says."""
    raw = oai.chat.completions.with_raw_response.create(
        model="chat", messages=HI, extra_headers={"x-failover-route": "claude"}
    )
    assert raw.headers["x-failover-route"] == "claude"
    assert raw.parse().choices[0].message.content


def test_fallbacks_off_stays_on_the_route(stack: Stack, oai: openai.OpenAI) -> None:
    """With `x-failover-fallbacks: off`, a failing solo route answers the error, not a fallback."""
    stack.primary.push(stack.primary.error(500, "down"))
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(
            model="solo", messages=HI, extra_headers={"x-failover-fallbacks": "off"}
        )


def test_deadline_header_is_bounded_by_the_server(http: Raw) -> None:
    """A deadline past `server.max_deadline` is a 400 naming the header, in OpenAI's format."""
    answer = http.post(
        "/v1/chat/completions",
        {"model": "chat", "messages": HI},
        headers={"x-failover-deadline": "2h"},
    )
    assert answer.status == 400
    body = answer.json
    validate("ErrorResponse", body)
    assert "x-failover-deadline" in body["error"]["message"]
    assert body["error"]["param"] == "x-failover-deadline"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("x-failover-deadline", "soon"),
        ("x-failover-fallbacks", "maybe"),
        ("x-failover-resume", "sometimes"),
        ("x-failover-priority", "urgent"),
    ],
)
def test_bad_values_are_client_errors(http: Raw, header: str, value: str) -> None:
    """Each header's bad value is a 400 that names the header and the choices."""
    answer = http.post("/v1/chat/completions", {"model": "chat", "messages": HI}, {header: value})
    assert answer.status == 400
    assert header in answer.json["error"]["message"]


def test_anthropic_api_takes_the_same_headers(claude: anthropic.Anthropic) -> None:
    """`/v1/messages` reads the controls too: a bad one is an Anthropic-format 400."""
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(
            model="chat",
            max_tokens=20,
            messages=HI,
            extra_headers={"x-failover-priority": "urgent"},
        )
    assert "x-failover-priority" in str(caught.value)
