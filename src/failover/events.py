"""Hooks: how observers (metrics, logs, the dashboard, webhooks) learn what the router does.

Listeners are plain callables run synchronously on the event loop; they must be quick and must
not raise (an exception is logged and swallowed so observing can never fail a request).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .kinds import Kind
from .trace import Attempt, Trace

__all__ = ["Event", "Hooks", "StreamBreak"]

log = logging.getLogger("failover")


@dataclass(frozen=True, slots=True)
class Event:
    """A state change worth telling people about: breaker, health, panic, fallback."""

    type: str  # "breaker", "health", "panic", "fallback", "chaos", "config"
    at: float  # wall-clock seconds
    message: str
    route: str | None = None
    deployment: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "at": self.at,
            "message": self.message,
            "route": self.route,
            "deployment": self.deployment,
            **({"data": self.data} if self.data else {}),
        }


@dataclass(frozen=True, slots=True)
class StreamBreak:
    """A stream broke after content reached the caller, and what became of it."""

    route: str
    deployment: str  # the deployment whose stream broke
    kind: Kind  # how it broke
    delivered: int  # chars the caller had received
    outcome: str  # "continued", "restarted" (on `by`), or "failed"
    by: str | None = None  # the deployment that finished the answer


AttemptListener = Callable[[Attempt], None]
StartListener = Callable[[Trace], None]
RequestListener = Callable[[Trace, Kind], None]
EventListener = Callable[[Event], None]
BudgetListener = Callable[[str, str], None]  # (route, "retry" | "hedge")
StreamListener = Callable[[StreamBreak], None]


class Hooks:
    """Listener lists. Empty lists cost one truthiness check on the hot path."""

    __slots__ = ("attempt", "budget", "event", "request", "start", "stream")

    def __init__(self) -> None:
        self.attempt: list[AttemptListener] = []
        self.start: list[StartListener] = []
        self.request: list[RequestListener] = []
        self.event: list[EventListener] = []
        self.budget: list[BudgetListener] = []
        self.stream: list[StreamListener] = []

    def attempted(self, attempt: Attempt) -> None:
        for listener in self.attempt:
            _safely(listener, attempt)

    def started(self, trace: Trace) -> None:
        """A request began. Listeners run in the request's own task, before any attempt, so
        what they put in a context variable is seen by the calls the request makes."""
        for listener in self.start:
            _safely(listener, trace)

    def finished(self, trace: Trace, kind: Kind) -> None:
        for listener in self.request:
            _safely(listener, trace, kind)

    def exhausted(self, route: str, budget: str) -> None:
        """A retry or hedge was not made: the route's `budget` ("retry"/"hedge") was empty."""
        for listener in self.budget:
            _safely(listener, route, budget)

    def broke(self, event: StreamBreak) -> None:
        """A committed stream broke: recovered on another deployment, or not."""
        for listener in self.stream:
            _safely(listener, event)

    def emit(self, event: Event) -> None:
        for listener in self.event:
            _safely(listener, event)


def _safely(listener: Callable[..., None], *args: Any) -> None:
    try:
        listener(*args)
    except Exception:  # an observer must never fail a request
        log.exception("listener %r failed", listener)
