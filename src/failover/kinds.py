"""How an attempt ended (`Kind`), and what the router does next for each kind (`KindPolicy`).

This table is the one place that says it; the router only reads it:

    kind            retry same deployment   fail over to                    breaker   cool down
    rate_limited    after its cool-down     next candidate, then fallbacks  no        yes
    overloaded      backoff                 next candidate, then fallbacks  yes
    server_error    backoff                 next candidate, then fallbacks  yes
    timeout         no                      next candidate, then fallbacks  yes
    connection      once                    next candidate, then fallbacks  yes
    auth            no                      next candidate, then fallbacks  yes
    not_found       no                      next candidate, then fallbacks  yes
    context_window  no                      context_window_fallbacks only   no
    content_filter  no                      content_filter_fallbacks only   no
    bad_request     no                      nothing: back to the caller     no
    cancelled       no                      nothing: the caller left        no
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, StrEnum

__all__ = ["Failover", "Kind", "KindPolicy", "Retry"]


class Kind(StrEnum):
    """How an attempt ended. `OK` for success; the rest are DESIGN.md's taxonomy."""

    OK = "ok"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    AUTH = "auth"
    NOT_FOUND = "not_found"
    CONTEXT_WINDOW = "context_window"
    CONTENT_FILTER = "content_filter"
    BAD_REQUEST = "bad_request"
    CANCELLED = "cancelled"

    @property
    def policy(self) -> KindPolicy:
        """What the router does after an attempt of this kind."""
        return _POLICIES[self]


class Retry(Enum):
    """Whether the same deployment is tried again for this request."""

    NO = "no"
    BACKOFF = "backoff"  # after full-jitter backoff, up to `retry.attempts`, within the budget
    ONCE = "once"  # at most one more try: a fresh connection usually works
    AFTER_COOLDOWN = "after_cooldown"  # fail over at once; if nothing else answers, wait out
    # the deployment's Retry-After (up to `retry_after_max`) and try it once more


class Failover(Enum):
    """Where the request goes when the deployment will not answer it."""

    NEXT = "next"  # the route's next candidate, then the route's fallback routes
    CONTEXT_WINDOW = "context_window"  # only to `context_window_fallbacks`; none: the caller
    CONTENT_FILTER = "content_filter"  # only to `content_filter_fallbacks`; none: the caller
    NO = "no"  # back to the caller now: no other deployment would do better


@dataclass(frozen=True, slots=True)
class KindPolicy:
    """What the router does after an attempt of one kind."""

    retry: Retry
    failover: Failover
    breaker_failure: bool  # counts as a failure in the deployment's breaker
    cool_down: bool = False  # the deployment sits out its Retry-After (or `retry.cooldown`)

    @property
    def tries_next(self) -> bool:
        """Whether the route's next candidate may answer instead."""
        return self.failover is Failover.NEXT


_NEXT = Failover.NEXT
_POLICIES: dict[Kind, KindPolicy] = {
    Kind.OK: KindPolicy(Retry.NO, Failover.NO, breaker_failure=False),
    Kind.RATE_LIMITED: KindPolicy(
        Retry.AFTER_COOLDOWN, _NEXT, breaker_failure=False, cool_down=True
    ),
    Kind.OVERLOADED: KindPolicy(Retry.BACKOFF, _NEXT, breaker_failure=True),
    Kind.SERVER_ERROR: KindPolicy(Retry.BACKOFF, _NEXT, breaker_failure=True),
    Kind.TIMEOUT: KindPolicy(Retry.NO, _NEXT, breaker_failure=True),
    Kind.CONNECTION: KindPolicy(Retry.ONCE, _NEXT, breaker_failure=True),
    Kind.AUTH: KindPolicy(Retry.NO, _NEXT, breaker_failure=True),
    Kind.NOT_FOUND: KindPolicy(Retry.NO, _NEXT, breaker_failure=True),
    Kind.CONTEXT_WINDOW: KindPolicy(Retry.NO, Failover.CONTEXT_WINDOW, breaker_failure=False),
    Kind.CONTENT_FILTER: KindPolicy(Retry.NO, Failover.CONTENT_FILTER, breaker_failure=False),
    Kind.BAD_REQUEST: KindPolicy(Retry.NO, Failover.NO, breaker_failure=False),
    Kind.CANCELLED: KindPolicy(Retry.NO, Failover.NO, breaker_failure=False),
}
