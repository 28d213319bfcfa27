"""Turning outcomes into kinds: HTTP statuses, provider error bodies, plain exceptions, and
rate-limit headers (`Retry-After`, `retry-after-ms`, `x-ratelimit-reset-*`,
`anthropic-ratelimit-*`).

`Classifier` is the pluggable part: register your own exception types or status codes, or pass
any callable `(exc) -> ProviderError | None` that is consulted first.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from .errors import Kind, ProviderError, error_for

__all__ = [
    "Classifier",
    "classify_status",
    "parse_duration_header",
    "parse_retry_after",
]

_CONTEXT_MARKERS = (
    "context_length_exceeded",
    "context length",
    "context window",
    "maximum context",
    "too many tokens",
    "prompt is too long",
    "input is too long",
    "exceeds the maximum number of tokens",
    "string_above_max_length",
    "token limit",
)
_CONTENT_MARKERS = (
    "content_filter",
    "content_policy",
    "content management policy",
    "responsibleaipolicyviolation",
    "safety",
    "flagged",
    "prohibited_content",
)
_NOT_FOUND_MARKERS = ("model_not_found", "does not exist", "not found", "unknown model")


def classify_status(status: int, text: str = "") -> Kind:
    """The kind of an HTTP error status, refined by the provider's error text (code and message)."""
    lowered = text.lower()
    if status == 429:
        return Kind.RATE_LIMITED
    if status in (401, 403):
        return Kind.CONTENT_FILTER if _has(lowered, _CONTENT_MARKERS) else Kind.AUTH
    if status == 404:
        return Kind.NOT_FOUND
    if status == 408:
        return Kind.TIMEOUT
    if status == 413 or (400 <= status < 500 and _has(lowered, _CONTEXT_MARKERS)):
        return Kind.CONTEXT_WINDOW
    if 400 <= status < 500:
        if _has(lowered, _CONTENT_MARKERS):
            return Kind.CONTENT_FILTER
        if status == 400 and "model" in lowered and _has(lowered, _NOT_FOUND_MARKERS):
            return Kind.NOT_FOUND
        return Kind.BAD_REQUEST
    if status in (503, 529):
        return Kind.OVERLOADED
    return Kind.SERVER_ERROR  # 500, 502, 504 ("Gateway Timeout" is the upstream's, not ours)


def _has(text: str, markers: tuple[str, ...]) -> bool:
    return any(m in text for m in markers)


_GO_DURATION = re.compile(r"(?P<n>\d+(?:\.\d+)?)(?P<u>ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration_header(value: str) -> float | None:
    """OpenAI's `x-ratelimit-reset-*` values: "1s", "6m0s", "20ms", "1h2m3.5s", or bare seconds."""
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    total, pos = 0.0, 0
    for match in _GO_DURATION.finditer(value):
        if match.start() != pos:
            return None
        number = float(match["n"])
        total += number / 1000 if match["u"] == "ms" else number * _UNIT[match["u"]]
        pos = match.end()
    return total if pos == len(value) and pos > 0 else None


def parse_retry_after(headers: Mapping[str, str], now_wall: float) -> float | None:
    """Seconds to wait, from the first rate-limit header that parses; None when there is none.

    Order: `retry-after-ms`, `retry-after` (seconds or an HTTP date), OpenAI's
    `x-ratelimit-reset-requests` / `-tokens` (the later of the two), Anthropic's
    `anthropic-ratelimit-*-reset` (RFC 3339 timestamps).
    """
    lower = {k.lower(): v for k, v in headers.items()}
    if (ms := lower.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    if (ra := lower.get("retry-after")) is not None:
        parsed = _retry_after_value(ra, now_wall)
        if parsed is not None:
            return parsed
    resets = [
        d
        for key in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
        if (v := lower.get(key)) is not None and (d := parse_duration_header(v)) is not None
    ]
    if resets:
        return max(resets)
    stamps = [
        d
        for key, v in lower.items()
        if key.startswith("anthropic-ratelimit-") and key.endswith("-reset")
        if (d := _timestamp_delay(v, now_wall)) is not None
    ]
    return max(stamps) if stamps else None


def _retry_after_value(value: str, now_wall: float) -> float | None:
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000": an HTTP date is always UTC, never local time
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now_wall)


def _timestamp_delay(value: str, now_wall: float) -> float | None:
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now_wall)


Rule = Callable[[BaseException], ProviderError | None]


class Classifier:
    """Maps any exception to a `ProviderError`. Rules added with `add`/`on` are tried first."""

    def __init__(self, rules: list[Rule] | None = None) -> None:
        self._rules: list[Rule] = list(rules or [])

    def add(self, rule: Rule) -> Classifier:
        """Consult `rule` before the built-in classification; it returns None to pass."""
        self._rules.append(rule)
        return self

    def on(self, exc_type: type[BaseException], kind: Kind) -> Classifier:
        """Classify every `exc_type` (and subclasses) as `kind`."""

        def rule(exc: BaseException) -> ProviderError | None:
            return error_for(kind, _describe(exc)) if isinstance(exc, exc_type) else None

        return self.add(rule)

    def classify(self, exc: BaseException, *, now_wall: float | None = None) -> ProviderError:
        """The `ProviderError` for `exc` (itself when it already is one).

        `now_wall` (default: `time.time()`) turns an HTTP-date `Retry-After` into seconds.
        """
        if isinstance(exc, ProviderError):
            return exc
        for rule in self._rules:
            if (found := rule(exc)) is not None:
                return found
        return _builtin(exc, time.time() if now_wall is None else now_wall)


def _builtin(exc: BaseException, now_wall: float) -> ProviderError:
    if isinstance(exc, asyncio.CancelledError):
        return error_for(Kind.CANCELLED, "cancelled")
    if isinstance(exc, TimeoutError):
        return error_for(Kind.TIMEOUT, _describe(exc) or "timed out")
    if isinstance(exc, ConnectionError | OSError):
        return error_for(Kind.CONNECTION, _describe(exc))
    status = _status_of(exc)
    if status is not None:
        headers = _headers_of(exc)
        return error_for(
            classify_status(status, _text_of(exc)),
            _describe(exc),
            status=status,
            retry_after=parse_retry_after(headers, now_wall) if headers else None,
        )
    return error_for(_kind_by_name(exc), _describe(exc))


def _kind_by_name(exc: BaseException) -> Kind:
    """SDK exceptions without a status (e.g. openai.APIConnectionError) classified by name."""
    name = type(exc).__name__.lower()
    if "timeout" in name:
        return Kind.TIMEOUT
    if "connect" in name:  # APIConnectionError, httpx.ConnectError
        return Kind.CONNECTION
    if "ratelimit" in name:
        return Kind.RATE_LIMITED
    return Kind.SERVER_ERROR


def _status_of(exc: BaseException) -> int | None:
    for obj in (exc, getattr(exc, "response", None)):
        for attr in ("status_code", "status"):
            value = getattr(obj, attr, None)
            if isinstance(value, int) and 100 <= value < 600:
                return value
    return None


def _headers_of(exc: BaseException) -> Mapping[str, str] | None:
    for obj in (exc, getattr(exc, "response", None)):
        headers = getattr(obj, "headers", None)
        if isinstance(headers, Mapping):
            return headers
    return None


def _text_of(exc: BaseException) -> str:
    body: Any = getattr(exc, "body", None)
    return f"{_describe(exc)} {body!s}" if body is not None else _describe(exc)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return text if text else type(exc).__name__
