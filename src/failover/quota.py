"""Quota-aware routing: keep traffic off a deployment before it starts answering 429.

Two sources of what is left of a deployment's rate limits:

    headers    every answer's `x-ratelimit-remaining-requests` / `-tokens` and
               `x-ratelimit-reset-*` (OpenAI, Azure, many compatible servers), or
               `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-remaining`
               and `-reset`: the provider's own count, the latest one wins
    config     `rpm` / `tpm` of a deployment: counted here, a minute at a time (with
               replicas on a shared store, `SharedQuota` counts every replica's calls)

A deployment with fewer than `reserve` requests (or tokens for this request) left before its
reset is passed over while others have room (and tried anyway when none has). Calls in flight
are counted against the provider's last figure until its next answer brings a new one.
Pure: no I/O; times come in as arguments (`now` monotonic, `wall` for header timestamps).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from .classify import parse_duration_header

__all__ = ["Quota", "QuotaPolicy", "estimate_tokens"]

_WINDOW = 60.0  # rpm / tpm count per minute


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    """A deployment's configured limits and how much to keep in reserve."""

    rpm: int | None = None  # requests per minute it may be sent (None: only headers count)
    tpm: int | None = None  # tokens per minute
    reserve_requests: int = 1  # pass a deployment over with this many requests left (or fewer)
    reserve_tokens: int = 0  # ... or with fewer tokens left than the request needs plus this


class Quota:
    """What one deployment has left of its rate limits."""

    __slots__ = (
        "_in_flight",
        "_minute",
        "_minute_tokens",
        "_requests",
        "_tokens",
        "_until",
        "name",
        "policy",
    )

    def __init__(self, name: str, policy: QuotaPolicy | None = None) -> None:
        self.name = name
        self.policy = policy or QuotaPolicy()
        self._requests: float = math.inf  # left per the provider's last answer
        self._tokens: float = math.inf
        self._until = 0.0  # monotonic time when those figures reset
        self._in_flight = 0  # calls sent since the figures came
        self._minute: deque[tuple[float, int]] = deque()  # (when, tokens) of calls this minute
        self._minute_tokens = 0  # their tokens, summed

    @property
    def counts_tokens(self) -> bool:
        """Whether `exhausted` looks at a request's tokens (worth estimating them)."""
        return self.policy.tpm is not None or not math.isinf(self._tokens)

    def exhausted(self, now: float, tokens: int = 0) -> bool:
        """Whether a call needing `tokens` would likely be refused now."""
        policy = self.policy
        if now < self._until:
            if self._requests - self._in_flight <= policy.reserve_requests:
                return True
            if tokens and self._tokens < tokens + policy.reserve_tokens:
                return True
        if policy.rpm is not None or policy.tpm is not None:
            requests, used = self.counted(now)
            if policy.rpm is not None and requests >= policy.rpm:
                return True
            if policy.tpm is not None and used + tokens > policy.tpm:
                return True
        return False

    def refuses(self, now: float, tokens: Callable[[], int]) -> bool:
        """`exhausted` for a call whose token count (`tokens()`) is worked out only when a
        limit in force looks at tokens."""
        policy = self.policy
        if now >= self._until and policy.rpm is None and policy.tpm is None:
            return False  # no figures from the provider in force, nothing counted here
        return self.exhausted(now, tokens() if self.counts_tokens else 0)

    def counted(self, now: float) -> tuple[float, float]:
        """(requests, tokens) sent in the minute before `now`, as counted against rpm / tpm:
        here, this process's own calls."""
        self._forget(now)
        return len(self._minute), self._minute_tokens

    def sent(self, now: float, tokens: int) -> None:
        """A call went out, estimated at `tokens`."""
        self._in_flight += 1
        if self.policy.rpm is not None or self.policy.tpm is not None:
            self._minute.append((now, tokens))
            self._minute_tokens += tokens

    def observe(self, headers: Mapping[str, str], now: float, wall: float) -> None:
        """Take the provider's figures from an answer's headers (when it sent any)."""
        lower = _rate_limit_headers(headers)
        if not lower:  # most answers of most servers: nothing to read
            return
        requests, tokens, resets = _openai(lower)
        if requests is None and tokens is None:
            requests, tokens, resets = _anthropic(lower, wall)
        if requests is None and tokens is None:
            return
        self._in_flight = 0
        self._requests = requests if requests is not None else math.inf
        self._tokens = tokens if tokens is not None else math.inf
        self._until = now + (max(resets) if resets else _WINDOW)

    def ended(self) -> None:
        """A call that was sent got no figures back (it failed): it no longer counts."""
        self._in_flight = max(0, self._in_flight - 1)

    def _forget(self, now: float) -> None:
        horizon = now - _WINDOW
        minute = self._minute
        while minute and minute[0][0] <= horizon:
            self._minute_tokens -= minute.popleft()[1]

    def __repr__(self) -> str:
        left = "?" if math.isinf(self._requests) else f"{self._requests - self._in_flight:g}"
        return f"<Quota {self.name} requests left {left}>"


def estimate_tokens(request: Mapping[str, object]) -> int:
    """A rough token count of a request (4 characters a token) plus what it may generate."""
    size = len(str(request.get("messages") or request.get("input") or ""))
    limit = request.get("max_completion_tokens") or request.get("max_tokens") or 0
    return size // 4 + (limit if isinstance(limit, int) else 0)


def _rate_limit_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The rate-limit headers of an answer, names in lower case (both vocabularies have
    "ratelimit" in every name)."""
    if "ratelimit" not in "\n".join(headers).lower():
        return {}  # one scan of all the names at once: most answers have none of these
    found = {}
    for key, value in headers.items():
        lower = key.lower()
        if "ratelimit" in lower:
            found[lower] = value
    return found


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _openai(headers: Mapping[str, str]) -> tuple[float | None, float | None, list[float]]:
    requests = _number(headers.get("x-ratelimit-remaining-requests"))
    tokens = _number(headers.get("x-ratelimit-remaining-tokens"))
    resets = [
        d
        for key in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens")
        if (v := headers.get(key)) is not None and (d := parse_duration_header(v)) is not None
    ]
    return requests, tokens, resets


def _anthropic(
    headers: Mapping[str, str], wall: float
) -> tuple[float | None, float | None, list[float]]:
    requests = _number(headers.get("anthropic-ratelimit-requests-remaining"))
    token_counts = [
        n
        for key in ("tokens", "input-tokens", "output-tokens")
        if (n := _number(headers.get(f"anthropic-ratelimit-{key}-remaining"))) is not None
    ]
    resets = []
    for key, value in headers.items():
        if key.startswith("anthropic-ratelimit-") and key.endswith("-reset"):
            try:
                when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                continue
            if when.tzinfo is not None:
                resets.append(max(0.0, when.timestamp() - wall))
    return requests, (min(token_counts) if token_counts else None), resets
