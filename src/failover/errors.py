"""The error tree. Every failure a deployment can have is classified into one `Kind`.

    FailoverError
    ├── ProviderError                 one attempt failed; `.kind` says how
    │   ├── RateLimited               rate_limited    (429; carries retry_after)
    │   ├── Overloaded                overloaded      (503, Anthropic 529)
    │   ├── ServerError               server_error    (500, 502, 504, unknown exceptions)
    │   ├── AttemptTimeout            timeout         (connect / first token / attempt timeout)
    │   ├── ConnectionFailed          connection      (refused, reset, DNS, TLS, cut stream)
    │   ├── AuthFailed                auth            (401, 403)
    │   ├── ModelNotFound             not_found       (404)
    │   ├── ContextWindowExceeded     context_window  (400 context_length_exceeded)
    │   ├── ContentFiltered           content_filter  (provider refused on policy)
    │   ├── BadRequest                bad_request     (other 400/422: the caller's fault)
    │   └── Cancelled                 cancelled       (the caller went away)
    ├── RequestFailed                 the request as a whole failed; carries the trace
    │   ├── AllDeploymentsFailed      every candidate was tried (or skipped) and none answered
    │   ├── DeadlineExceeded          the request's total deadline ran out
    │   ├── RequestRejected           a non-retryable error returned to the caller (wraps it)
    │   └── StreamInterrupted         a stream broke after content reached the caller, and
    │                                 no deployment could finish it
    ├── UnknownRoute                  no route of that name
    └── ConfigError                   invalid configuration; names the field

The `Kind` decides everything: retry on the same deployment, fail over, count against the
breaker, or hand back to the caller (the table is in `failover.kinds`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .kinds import Kind  # every error carries one: importable from here too
from .trace import Trace

__all__ = [
    "AllDeploymentsFailed",
    "AttemptTimeout",
    "AuthFailed",
    "BadRequest",
    "Cancelled",
    "ConfigError",
    "ConnectionFailed",
    "ContentFiltered",
    "ContextWindowExceeded",
    "DeadlineExceeded",
    "FailoverError",
    "Kind",
    "ModelNotFound",
    "Overloaded",
    "ProviderError",
    "RateLimited",
    "RequestFailed",
    "RequestRejected",
    "ServerError",
    "StreamInterrupted",
    "UnknownRoute",
    "callers_fault",
    "error_for",
    "last_error",
]


class FailoverError(Exception):
    """Base of every error this library raises."""


class ProviderError(FailoverError):
    """One attempt at one deployment failed. `kind` classifies it."""

    kind: Kind = Kind.SERVER_ERROR

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        deployment: str | None = None,
        code: str | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.deployment = deployment
        self.code = code
        self.body = body  # the provider's error body, secrets already removed

    def __repr__(self) -> str:
        parts = [f"kind={self.kind.value}"]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.deployment:
            parts.append(f"deployment={self.deployment!r}")
        if self.retry_after is not None:
            parts.append(f"retry_after={self.retry_after:g}")
        return f"<{type(self).__name__} {' '.join(parts)}: {self.message!r}>"


class RateLimited(ProviderError):
    """429 or an exhausted rate-limit header."""

    kind = Kind.RATE_LIMITED


class Overloaded(ProviderError):
    """The provider is overloaded (503, Anthropic 529)."""

    kind = Kind.OVERLOADED


class ServerError(ProviderError):
    """5xx, or an exception nobody recognised."""

    kind = Kind.SERVER_ERROR


class AttemptTimeout(ProviderError):
    """The attempt (or its first token) took longer than allowed."""

    kind = Kind.TIMEOUT


class ConnectionFailed(ProviderError):
    """Connection refused, reset, DNS/TLS failure, or a stream cut short."""

    kind = Kind.CONNECTION


class AuthFailed(ProviderError):
    """401/403: the deployment is misconfigured."""

    kind = Kind.AUTH


class ModelNotFound(ProviderError):
    """404: unknown model or endpoint."""

    kind = Kind.NOT_FOUND


class ContextWindowExceeded(ProviderError):
    """The prompt does not fit this model's context window."""

    kind = Kind.CONTEXT_WINDOW


class ContentFiltered(ProviderError):
    """The provider refused on content policy."""

    kind = Kind.CONTENT_FILTER


class BadRequest(ProviderError):
    """The request itself is invalid: retrying elsewhere will not help."""

    kind = Kind.BAD_REQUEST


class Cancelled(ProviderError):
    """The caller went away."""

    kind = Kind.CANCELLED


ERROR_CLASSES: dict[Kind, type[ProviderError]] = {
    cls.kind: cls
    for cls in (
        RateLimited,
        Overloaded,
        ServerError,
        AttemptTimeout,
        ConnectionFailed,
        AuthFailed,
        ModelNotFound,
        ContextWindowExceeded,
        ContentFiltered,
        BadRequest,
        Cancelled,
    )
}


def error_for(kind: Kind, message: str, **kwargs: Any) -> ProviderError:
    """Build the `ProviderError` subclass for `kind`."""
    return ERROR_CLASSES[kind](message, **kwargs)


def last_error(trace: Trace) -> ProviderError | None:
    """The last failed call of a trace, as an error (what a `DeadlineExceeded` carries)."""
    for attempt in reversed(trace.attempts):
        if attempt.skipped is None and attempt.kind is not Kind.OK and not attempt.cancelled:
            return error_for(
                attempt.kind, attempt.message, status=attempt.status, deployment=attempt.deployment
            )
    return None


@contextlib.contextmanager
def callers_fault(what: str, *, deployment: str | None = None) -> Iterator[None]:
    """Errors while reading the caller's request are the caller's fault: `BadRequest`.

    Without this, a malformed field crashing a translation would count as the deployment's
    server error, and a few bad requests could open the breaker of a healthy deployment.
    """
    try:
        yield
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        raise BadRequest(
            f"invalid request for {what}: {exc}", status=400, deployment=deployment
        ) from exc


class RequestFailed(FailoverError):
    """A whole request failed. `trace` says which attempts were made and how each ended."""

    def __init__(self, message: str, *, trace: Trace, last: ProviderError | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.trace = trace
        self.last = last

    @property
    def kind(self) -> Kind:
        """The kind of the last attempt's failure (server_error when nothing was attempted)."""
        return self.last.kind if self.last is not None else Kind.SERVER_ERROR

    @property
    def status(self) -> int | None:
        return self.last.status if self.last is not None else None


class AllDeploymentsFailed(RequestFailed):
    """Every candidate of the route and its fallbacks failed or was unavailable."""


class DeadlineExceeded(RequestFailed):
    """The request's total deadline ran out before any deployment answered."""


class RequestRejected(RequestFailed):
    """A failure that no other deployment would fix (bad request, content filter, ...)."""


class StreamInterrupted(RequestFailed):
    """A stream broke after content reached the caller and no deployment could finish it:
    `last` is the original cause (never a recovery's own failure)."""


class UnknownRoute(FailoverError, KeyError):
    """No route (and no deployment) has this name."""

    def __init__(self, name: str, known: list[str], *, reason: str | None = None) -> None:
        super().__init__(name)
        self.name = name
        self.known = known
        self.reason = reason

    def __str__(self) -> str:
        if self.reason:
            return self.reason
        known = ", ".join(self.known[:20]) or "none"
        return f"unknown model or route {self.name!r}; known: {known}"


class ConfigError(FailoverError, ValueError):
    """The configuration is invalid. The message names the field (`routes.smart.fallbacks`)."""
