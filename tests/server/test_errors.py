"""How failures map onto HTTP statuses and each API's error shape."""

from __future__ import annotations

import json

import pytest

from failover.errors import (
    AllDeploymentsFailed,
    AttemptTimeout,
    AuthFailed,
    BadRequest,
    ConnectionFailed,
    ContentFiltered,
    ContextWindowExceeded,
    DeadlineExceeded,
    Kind,
    Overloaded,
    ProviderError,
    RateLimited,
    RequestRejected,
    ServerError,
    StreamInterrupted,
    UnknownRoute,
)
from failover.server.errors import Failure, anthropic_body, failure_from, openai_body
from failover.trace import Attempt, Skip, Trace
from openapi_schema import validate


def failed(cls: type, last: ProviderError | None, *, skipped: bool = False) -> Exception:
    trace = Trace("smart", "r1")
    kind = last.kind if last is not None else Kind.SERVER_ERROR
    trace.attempts.append(
        Attempt("smart", "a/m", kind=kind, skipped=Skip.OPEN if skipped else None)
    )
    return cls("all failed", trace=trace, last=last)


@pytest.mark.parametrize(
    ("exc", "status", "code"),
    [
        (UnknownRoute("x", ["smart"]), 404, "model_not_found"),
        (failed(RequestRejected, BadRequest("bad", code="invalid_value")), 400, "invalid_value"),
        (failed(RequestRejected, ContextWindowExceeded("long")), 400, "context_length_exceeded"),
        (failed(RequestRejected, ContentFiltered("no")), 400, "content_filter"),
        (
            failed(AllDeploymentsFailed, RateLimited("slow", retry_after=2.5)),
            429,
            "rate_limit_exceeded",
        ),
        (failed(AllDeploymentsFailed, AttemptTimeout("slow")), 504, "upstream_timeout"),
        (failed(DeadlineExceeded, ServerError("x")), 504, "deadline_exceeded"),
        (failed(AllDeploymentsFailed, Overloaded("busy")), 503, "upstream_overloaded"),
        (failed(AllDeploymentsFailed, ServerError("boom")), 502, "upstream_server_error"),
        (failed(AllDeploymentsFailed, ConnectionFailed("reset")), 502, "upstream_connection"),
        (failed(AllDeploymentsFailed, AuthFailed("bad key")), 502, "upstream_auth"),
        (failed(AllDeploymentsFailed, None, skipped=True), 503, "no_deployment_available"),
        (failed(StreamInterrupted, ServerError("cut")), 502, "stream_interrupted"),
        (RuntimeError("bug"), 500, "internal_error"),
    ],
)
def test_status_mapping(exc: Exception, status: int, code: str) -> None:
    """Each failure gets its status and code, and valid bodies in both formats."""
    failure = failure_from(exc)
    assert (failure.status, failure.code) == (status, code)
    validate("ErrorResponse", json.loads(openai_body(failure)))
    body = json.loads(anthropic_body(failure))
    assert body["type"] == "error" and body["error"]["message"]


def test_rate_limit_failure_carries_retry_after() -> None:
    """A 429 tells the client when to come back (rounded up to whole seconds)."""
    failure = failure_from(failed(AllDeploymentsFailed, RateLimited("slow", retry_after=2.5)))
    assert (b"retry-after", b"3") in failure.response_headers()


def test_internal_errors_do_not_leak_details() -> None:
    """An unexpected exception's text stays in the log, not in the answer."""
    failure = failure_from(RuntimeError("password=hunter2"))
    assert "hunter2" not in failure.message


def test_trace_header_is_ascii_and_bounded() -> None:
    """The trace header survives any deployment name and stays short."""
    trace = Trace("smart", "r")
    trace.attempts += [Attempt("smart", "dépl/øy\n" * 20, kind=Kind.SERVER_ERROR)] * 30
    headers = dict(Failure(502, "x", trace=trace).response_headers())
    value = headers[b"x-failover-trace"]
    assert len(value) <= 1000 and all(32 <= c < 127 for c in value)
