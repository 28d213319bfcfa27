"""Traces leave a real gateway over OTLP/HTTP: a request that fails over is one trace, continued
from the client's `traceparent`, received by an OTLP receiver on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from otlp_receiver import OTLPReceiver, ReceivedSpan
from server.harness import CLIENT_KEY, LoopThread, Stack, start_stack

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def bg() -> Iterator[LoopThread]:
    """An event loop in a thread for the receiver, the fake upstreams and the gateway."""
    loop = LoopThread()
    yield loop
    loop.close()


@pytest.fixture
def receiver(bg: LoopThread) -> Iterator[OTLPReceiver]:
    """An OTLP/HTTP trace receiver on 127.0.0.1."""
    found = bg.run(OTLPReceiver().start())
    yield found
    bg.run(found.close())


def traced_stack(bg: LoopThread, tmp: Path, receiver: OTLPReceiver) -> Stack:
    """A gateway (primary and backup fake OpenAI behind route "chat") tracing to `receiver`."""
    tracing = {"enabled": True, "endpoint": receiver.endpoint, "service_name": "failover-e2e"}
    return start_stack(bg, tmp, {"observability": {"tracing": tracing}})


def ask(stack: Stack, **headers: str) -> Any:
    """One chat completion through the official OpenAI SDK."""
    with openai.OpenAI(base_url=f"{stack.url}/v1", api_key=CLIENT_KEY, max_retries=0) as client:
        return client.chat.completions.create(model="chat", messages=HI, extra_headers=headers)  # type: ignore[arg-type]


@pytest.fixture
def failed_over(
    bg: LoopThread, tmp_path: Path, receiver: OTLPReceiver
) -> tuple[Stack, list[ReceivedSpan], Any]:
    """The primary answers 500, the backup answers; the gateway is stopped, which flushes
    its spans to the receiver."""
    stack = traced_stack(bg, tmp_path, receiver)
    stack.primary.push(stack.primary.error(500, "upstream exploded", type="server_error"))
    try:
        answer = ask(stack, traceparent=TRACEPARENT)
    finally:
        stack.stop(wait=True)
    return stack, receiver.spans, answer


def by_name(spans: list[ReceivedSpan], name: str) -> list[ReceivedSpan]:
    return [s for s in spans if s.name == name]


def test_a_failover_is_one_trace_continuing_the_clients(failed_over: Any) -> None:
    """Every span received carries the client's trace id: one trace, three spans."""
    _, spans, answer = failed_over
    assert answer.choices[0].message.content == "Hello from the backup."
    assert {s.trace_id for s in spans} == {TRACE_ID}
    assert len(spans) == 3


def test_the_request_span_is_the_clients_child(failed_over: Any) -> None:
    """The request span's parent is the client's span; it is the gateway's server span."""
    _, spans, _ = failed_over
    [request] = by_name(spans, "chat chat")
    assert (request.parent_span_id, request.kind, request.status) == (
        CLIENT_SPAN,
        "server",
        "unset",
    )
    assert request.service == "failover-e2e"
    attrs = request.attributes
    assert (attrs["gen_ai.operation.name"], attrs["gen_ai.request.model"]) == ("chat", "chat")
    assert (attrs["failover.outcome"], attrs["failover.attempts"]) == ("ok", 2)
    assert attrs["failover.deployment"] == "backup/gpt-4o-mini"


def test_each_try_is_an_attempt_span_under_the_request(failed_over: Any) -> None:
    """The failed try has error status and outcome server_error; the good one is plain."""
    _, spans, _ = failed_over
    [request] = by_name(spans, "chat chat")
    [failed] = by_name(spans, "chat gpt-4o")
    [good] = by_name(spans, "chat gpt-4o-mini")
    assert failed.parent_span_id == good.parent_span_id == request.span_id
    assert (failed.kind, failed.status) == ("client", "error")
    assert failed.attributes["failover.outcome"] == "server_error"
    assert failed.attributes["error.type"] == "server_error"
    assert failed.attributes["http.response.status_code"] == 500
    assert "upstream exploded" in failed.status_message
    assert (good.kind, good.status, good.attributes["failover.outcome"]) == (
        "client",
        "unset",
        "ok",
    )
    assert failed.end_ns <= good.start_ns


def test_attempt_spans_carry_the_genai_attributes(failed_over: Any) -> None:
    """Provider, models, token usage and finish reasons follow the GenAI conventions."""
    stack, spans, _ = failed_over
    [good] = by_name(spans, "chat gpt-4o-mini")
    attrs = good.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "gpt-4o-mini"
    assert attrs["gen_ai.response.model"] == "gpt-4o-mini"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (9, 12)
    assert attrs["gen_ai.response.finish_reasons"] == ["stop"]
    assert (attrs["server.address"], attrs["server.port"]) == ("127.0.0.1", stack.backup.port)
    assert attrs["failover.deployment"] == "backup/gpt-4o-mini"


def test_upstreams_receive_the_trace_context(failed_over: Any) -> None:
    """Both providers were sent a traceparent of the same trace, whose parent is the request
    span."""
    stack, spans, _ = failed_over
    [request] = by_name(spans, "chat chat")
    for upstream in (stack.primary, stack.backup):
        traceparent = upstream.requests[-1].headers["traceparent"]
        version, trace_id, parent, flags = traceparent.split("-")
        assert (version, trace_id, parent, flags) == ("00", TRACE_ID, request.span_id, "01")


def test_a_request_without_traceparent_starts_a_new_trace(
    bg: LoopThread, tmp_path: Path, receiver: OTLPReceiver
) -> None:
    """Without a client trace context the request span is a root, with a fresh trace id."""
    stack = traced_stack(bg, tmp_path, receiver)
    try:
        ask(stack)
    finally:
        stack.stop(wait=True)
    [request] = by_name(receiver.spans, "chat chat")
    assert request.parent_span_id == ""
    assert request.trace_id not in ("", TRACE_ID)
    sent = stack.primary.requests[-1].headers["traceparent"]
    assert sent.split("-")[1] == request.trace_id
