"""How failures reach clients: one `Failure` (status, type, code, message, trace), rendered in
the format of the API the client spoke — OpenAI's `{"error": {...}}` or Anthropic's
`{"type": "error", "error": {...}}` — with the failover trace summarised in the message, in an
`x-failover-trace` header, and in full under a `failover` field. No secrets: messages come from
adapters that already removed credentials, and the client's own key is never echoed.

    status  when
    400     invalid JSON or fields; a request the providers rejected (bad_request);
            context_window (code context_length_exceeded); content_filter
    401     missing or wrong gateway key (the client's, never a provider's)
    404     unknown model / route (code model_not_found); unknown path
    405     wrong method;  413  body over server.max_body
    409     /admin/chaos on a deployment with no fault injector;  422  an invalid chaos config
    429     every deployment failed and the last was rate limited (with retry-after); a client
            key over its own quota of requests or streams in flight (admission)
    502     every deployment failed (server errors, connection errors, upstream auth/not found)
    503     every deployment failed and the last was overloaded; none could be tried (breakers
            open, drained); the gateway is shutting down; the gateway shed the request because
            it is overloaded (admission; 529 `overloaded_error` on the Anthropic API)
    504     the request's deadline ran out, or the last attempt timed out
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import (
    DeadlineExceeded,
    FailoverError,
    Kind,
    RequestFailed,
    StreamInterrupted,
    UnknownRoute,
)
from ..trace import Trace

__all__ = [
    "ClientError",
    "Failure",
    "anthropic_body",
    "anthropic_event",
    "ascii_header",
    "failure_from",
    "openai_body",
    "openai_event",
]

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "server_error",
    503: "service_unavailable",
    504: "timeout",
    529: "service_unavailable",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# the status a request gets when every deployment failed and the last failure was of this kind
_EXHAUSTED_STATUS = {
    Kind.RATE_LIMITED: 429,
    Kind.OVERLOADED: 503,
    Kind.TIMEOUT: 504,
    Kind.CANCELLED: 503,
}
_REJECTED = {
    Kind.CONTEXT_WINDOW: "context_length_exceeded",
    Kind.CONTENT_FILTER: "content_filter",
}
_MAX_TRACE_HEADER = 1000


@dataclass(frozen=True, slots=True)
class Failure:
    """A failed request as the client will see it."""

    status: int
    message: str
    code: str | None = None
    param: str | None = None
    trace: Trace | None = None
    retry_after: float | None = None
    headers: tuple[tuple[bytes, bytes], ...] = ()

    def response_headers(self) -> list[tuple[bytes, bytes]]:
        """Headers that go with this failure: trace, attempts, retry-after."""
        out = list(self.headers)
        if self.retry_after is not None:
            out.append((b"retry-after", b"%d" % max(1, math.ceil(self.retry_after))))
        if self.trace is not None:
            out.append((b"x-failover-route", ascii_header(self.trace.route)))
            calls = [a for a in self.trace.attempts if a.skipped is None]
            out.append((b"x-failover-attempts", b"%d" % len(calls)))
            if calls:
                out.append((b"x-failover-deployment", ascii_header(calls[-1].deployment)))
            out.append((b"x-failover-trace", ascii_header(self.trace.summary(), _MAX_TRACE_HEADER)))
        else:
            out.append((b"x-failover-attempts", b"0"))
        return out

    def _extra(self) -> dict[str, Any]:
        return {"failover": self.trace.to_dict()} if self.trace is not None else {}


def ascii_header(text: str, limit: int = 1024) -> bytes:
    """`text` as a header value: printable ASCII, at most `limit` bytes."""
    data = text.encode("ascii", "replace")[:limit]
    return bytes(c if 32 <= c < 127 else 63 for c in data)


class ClientError(Exception):
    """A request the gateway answers itself, before (or instead of) routing it."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


def failure_from(exc: BaseException) -> Failure:
    """The `Failure` for anything a handler met: client errors, router errors, surprises."""
    if isinstance(exc, ClientError):
        return exc.failure
    if isinstance(exc, UnknownRoute):
        return Failure(404, str(exc), code="model_not_found", param="model")
    if isinstance(exc, RequestFailed):
        return _request_failed(exc)
    if isinstance(exc, FailoverError):
        return Failure(502, str(exc), code="upstream_error")
    return Failure(500, "internal gateway error (see the gateway's log)", code="internal_error")


def _request_failed(exc: RequestFailed) -> Failure:
    kind, trace = exc.kind, exc.trace
    last = exc.last
    detail = last.message if last is not None else exc.message
    if isinstance(exc, StreamInterrupted):
        return Failure(502, exc.message, code="stream_interrupted", trace=trace)
    if kind in _REJECTED:
        return Failure(400, detail, code=_REJECTED[kind], trace=trace)
    if kind is Kind.BAD_REQUEST:
        code = last.code if last is not None and last.code else "invalid_request"
        return Failure(400, detail, code=code, trace=trace)
    if isinstance(exc, DeadlineExceeded):
        return Failure(504, exc.message, code="deadline_exceeded", trace=trace)
    if all(a.skipped is not None for a in trace.attempts):
        message = f"no deployment available (breakers open, drained or unhealthy): {exc.message}"
        return Failure(503, message, code="no_deployment_available", trace=trace)
    status = _EXHAUSTED_STATUS.get(kind, 502)
    retry_after = last.retry_after if last is not None and status == 429 else None
    code = "rate_limit_exceeded" if status == 429 else f"upstream_{kind.value}"
    return Failure(status, exc.message, code=code, trace=trace, retry_after=retry_after)


def openai_body(failure: Failure) -> bytes:
    """`{"error": {message, type, param, code}}` (OpenAI `ErrorResponse`)."""
    error = {
        "message": failure.message,
        "type": _OPENAI_TYPES.get(failure.status, "server_error"),
        "param": failure.param,
        "code": failure.code,
    }
    return orjson.dumps({"error": error, **failure._extra()})


def anthropic_body(failure: Failure) -> bytes:
    """`{"type": "error", "error": {type, message}}` (Anthropic's error shape)."""
    error = {"type": _ANTHROPIC_TYPES.get(failure.status, "api_error"), "message": failure.message}
    return orjson.dumps({"type": "error", "error": error, **failure._extra()})


def openai_event(failure: Failure) -> bytes:
    """An error inside an OpenAI event stream (the SDKs raise it as an APIError)."""
    return b"data: " + openai_body(failure) + b"\n\n"


def anthropic_event(failure: Failure) -> bytes:
    """An `event: error` inside an Anthropic event stream."""
    return b"event: error\ndata: " + anthropic_body(failure) + b"\n\n"
