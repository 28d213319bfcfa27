"""Bad input at the HTTP level: every mistake is a 4xx with a clear message in the format of
the API the client spoke; never a 500, never a hang. Plus the headers every answer carries."""

from __future__ import annotations

from typing import Any

import pytest

from openapi_schema import validate

from .harness import Raw, Stack

HI = [{"role": "user", "content": "hi"}]
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"", 400, "empty"),
        (b"{not json", 400, "not valid JSON"),
        (b"[1, 2]", 400, "JSON object"),
        (b'{"messages": []}', 400, "'model' is required"),
        (b'{"model": 5, "messages": []}', 400, "'model' must be"),
        (b'{"model": "chat"}', 400, "'messages'"),
        (b'{"model": "chat", "messages": "hi"}', 400, "'messages'"),
        (b'{"model": "chat", "messages": [5]}', 400, "messages[0]"),
        (b'{"model": "chat", "messages": [{"content": "x"}]}', 400, "'role'"),
        (b'{"model": "chat", "messages": [{"role": "user"}], "stream": "yes"}', 400, "'stream'"),
        (b'{"model": "chat", "messages": [{"role": "user"}], "tools": {}}', 400, "'tools'"),
        (
            b'{"model": "chat", "messages": [{"role": "user"}], "tools": [{"function": 5}]}',
            400,
            "tools[0]",
        ),
        (
            b'{"model": "chat", "messages": [{"role": "user"}], "tool_choice": 5}',
            400,
            "'tool_choice'",
        ),
        (b'{"model": "chat", "messages": [{"role": "user", "content": 5}]}', 400, ".content"),
        (b'{"model": "chat", "messages": [{"role": "user", "content": [1]}]}', 400, ".content[0]"),
        (
            b'{"model": "chat", "messages": [{"role": "assistant", "tool_calls": [{}]}]}',
            400,
            "tool_calls[0]",
        ),
        (b'{"model": "nope", "messages": [{"role": "user"}]}', 404, "unknown model"),
        (b'{"model": "prov/nope", "messages": [{"role": "user"}]}', 404, "unknown model"),
        (b"\xff\xfe", 400, "not valid JSON"),
    ],
)
def test_bad_chat_requests(http: Raw, body: bytes, status: int, needle: str) -> None:
    """Each malformed chat request gets its 4xx and an OpenAI error naming the problem."""
    answer = http.request("POST", "/v1/chat/completions", body, JSON)
    assert answer.status == status
    validate("ErrorResponse", answer.json)
    assert needle in answer.json["error"]["message"]
    assert answer.headers["x-request-id"]


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/v1/embeddings", {"model": "embed"}, "'input'"),
        ("/v1/embeddings", {"model": "embed", "input": ""}, "'input'"),
        ("/v1/embeddings", {"model": "embed", "input": []}, "'input'"),
        ("/v1/messages", {"model": "chat", "max_tokens": 1}, "'messages'"),
    ],
)
def test_bad_other_requests(http: Raw, path: str, body: Any, needle: str) -> None:
    """Embeddings and messages requests are checked the same way."""
    answer = http.post(path, body)
    assert answer.status == 400
    message = answer.json["error"]["message"]
    assert needle in message


def test_wrong_method_is_405_with_allow(http: Raw) -> None:
    """GET on a POST endpoint is a 405 that says what is allowed."""
    answer = http.get("/v1/chat/completions")
    assert answer.status == 405
    assert answer.headers["allow"] == "POST"
    validate("ErrorResponse", answer.json)
    assert http.request("DELETE", "/v1/models").status == 405


def test_unknown_path_is_404(http: Raw) -> None:
    """Unknown paths are 404, in Anthropic's format under /v1/messages."""
    answer = http.get("/v2/whatever")
    assert answer.status == 404
    validate("ErrorResponse", answer.json)
    anthropic = http.post("/v1/messages/count_tokens", {})
    assert anthropic.status == 404
    assert anthropic.json["type"] == "error"
    assert http.get("/v1/models/nope").status == 404


def test_oversize_body_is_413(make_stack: Any) -> None:
    """A body over server.max_body is refused with 413 (declared or streamed)."""
    stack = make_stack({"server": {"max_body": "1KB"}})
    big = {"model": "chat", "messages": [{"role": "user", "content": "x" * 2000}]}
    with Raw(stack.port) as http:
        answer = http.post("/v1/chat/completions", big)
        assert answer.status == 413
        assert answer.json["error"]["code"] == "request_too_large"
        assert http.post("/v1/messages", {**big, "max_tokens": 5}).json["error"]["type"] == (
            "request_too_large"
        )
        small = http.post("/v1/chat/completions", {"model": "chat", "messages": HI})
        assert small.status == 200
    assert stack.primary.requests[-1].json["messages"] == HI


def test_chunked_oversize_body_is_413(make_stack: Any) -> None:
    """A chunked body (no content-length) is counted as it arrives."""
    import socket

    stack = make_stack({"server": {"max_body": "1KB"}})
    chunk = b"x" * 600
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: t\r\ntransfer-encoding: chunked\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", stack.port), timeout=5) as s:
        s.sendall(head + body)
        assert s.recv(64).startswith(b"HTTP/1.1 413")


def test_request_id_is_echoed_or_made(http: Raw) -> None:
    """x-request-id: the client's if sane, else a fresh one per request."""
    mine = http.post(
        "/v1/chat/completions", {"model": "chat", "messages": HI}, {"x-request-id": "abc-123"}
    )
    assert mine.headers["x-request-id"] == "abc-123"
    first = http.post("/v1/chat/completions", {"model": "chat", "messages": HI})
    second = http.get("/v1/models")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    weird = http.get("/v1/models", {"x-request-id": "x" * 500})
    assert weird.headers["x-request-id"] != "x" * 500


def test_routing_headers_on_success_and_failure(stack: Stack, http: Raw) -> None:
    """Route, deployment and attempts come back on answers and on failures alike."""
    ok = http.post("/v1/chat/completions", {"model": "chat", "messages": HI})
    assert (ok.headers["x-failover-route"], ok.headers["x-failover-attempts"]) == ("chat", "1")
    from fakes import FakeOpenAI

    stack.primary.push(FakeOpenAI.error(500, "a", type="server_error"))
    stack.backup.push(FakeOpenAI.error(500, "b", type="server_error"))
    failed = http.post("/v1/chat/completions", {"model": "chat", "messages": HI})
    assert failed.status == 502
    assert failed.headers["x-failover-route"] == "chat"
    assert failed.headers["x-failover-attempts"] == "2"
    assert failed.headers["x-failover-deployment"] == "backup/gpt-4o-mini"
    assert "primary/gpt-4o:server_error" in failed.headers["x-failover-trace"]
    early = http.post("/v1/chat/completions", b"{")
    assert early.headers["x-failover-attempts"] == "0"


def test_health_endpoints(http: Raw) -> None:
    """Liveness and readiness answer 200 with no credentials."""
    assert http.get("/health/live").json == {"status": "ok"}
    ready = http.get("/health/ready")
    assert ready.status == 200 and ready.json["routes"] == ["chat", "solo", "claude", "embed"]


def test_malformed_requests_never_open_a_breaker(stack: Stack, http: Raw) -> None:
    """Garbage from one client is its own 400, not a failure that takes a deployment out."""
    bad = {"model": "claude", "messages": HI, "temperature": [], "stop": 5}
    for _ in range(5):
        assert http.post("/v1/chat/completions", bad).status == 400
    assert http.post("/v1/chat/completions", {"model": "claude", "messages": HI}).status == 200
    routes = http.get("/admin/status").json["routes"]
    assert routes["claude"]["deployments"][0]["breaker"]["state"] == "closed"
