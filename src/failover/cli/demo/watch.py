"""What the router told `failover demo`: breaker and health transitions, every call to every
deployment, and every stream that broke mid-answer (and what became of it), from its hooks."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import Kind

if TYPE_CHECKING:
    from ...events import Event, StreamBreak
    from ...router import Router
    from ...trace import Attempt

__all__ = ["Break", "Change", "Watch", "provider_of"]


@dataclass(frozen=True, slots=True)
class Change:
    """A breaker or health transition of one deployment."""

    at: float
    deployment: str
    kind: str  # "breaker" | "health"
    state: str  # the breaker's new state, or "healthy" / "unhealthy"


@dataclass(frozen=True, slots=True)
class Break:
    """A stream that broke mid-answer, and what the gateway made of it."""

    at: float
    deployment: str  # whose stream broke
    words: int  # words the client had when it broke
    outcome: str  # "continued" / "restarted" on `by`, or "failed"
    by: str | None

    @property
    def rescued(self) -> bool:
        return self.outcome != "failed"

    def describe(self) -> str:
        """`stream rescued after 8 words: continued on sim-b`."""
        if not self.rescued:
            return f"stream from {provider_of(self.deployment)} lost after {self.words} words"
        return f"stream rescued after {self.words} words: {self.outcome} on {provider_of(self.by)}"


class Watch:
    """Breaker and health transitions, every call and every broken stream, from the router's
    hooks. `reply` is the answer every deployment gives: a break's position in words is read
    from it."""

    def __init__(self, router: Router, now: Callable[[], float], reply: str = "") -> None:
        self.router = router
        self.now = now
        self.reply = reply
        self.changes: list[Change] = []
        self.calls: list[tuple[float, str, bool]] = []  # (at, deployment, ok)
        self.breaks: list[Break] = []
        router.hooks.event.append(self._event)
        router.hooks.attempt.append(self._attempt)
        router.hooks.stream.append(self._break)

    def detach(self) -> None:
        hooks = self.router.hooks
        _unhook(hooks.event, self._event)
        _unhook(hooks.attempt, self._attempt)
        _unhook(hooks.stream, self._break)

    def _break(self, event: StreamBreak) -> None:
        words = len(self.reply[: event.delivered].split())
        self.breaks.append(Break(self.now(), event.deployment, words, event.outcome, event.by))

    def broke(self, names: Iterable[str], start: float, end: float) -> list[Break]:
        """Streams of `names` that broke in [start, end)."""
        wanted = set(names)
        return [b for b in self.breaks if b.deployment in wanted and start <= b.at < end]

    def _event(self, event: Event) -> None:
        if event.deployment is None:
            return
        if event.type == "breaker":
            state = str(event.data.get("new"))
        elif event.type == "health":
            state = "healthy" if event.data.get("healthy") else "unhealthy"
        else:
            return
        self.changes.append(Change(self.now(), event.deployment, event.type, state))

    def _attempt(self, attempt: Attempt) -> None:
        if attempt.skipped is None and not attempt.cancelled:
            self.calls.append((self.now(), attempt.deployment, attempt.kind is Kind.OK))

    def opened(self, names: Iterable[str], start: float, end: float) -> list[Change]:
        """Breakers of `names` opening in [start, end)."""
        wanted = set(names)
        return [
            c
            for c in self.changes
            if c.kind == "breaker" and c.state == "open" and c.deployment in wanted
            if start <= c.at < end
        ]

    def between(self, names: Iterable[str], start: float, end: float) -> list[Change]:
        wanted = set(names)
        return [c for c in self.changes if c.deployment in wanted and start <= c.at <= end]

    def calls_of(self, names: Iterable[str], start: float, end: float) -> list[tuple[float, bool]]:
        wanted = set(names)
        return [(at, ok) for at, name, ok in self.calls if name in wanted and start <= at < end]

    def out_of_rotation(self, name: str, at: float) -> bool:
        """Whether `name`'s breaker was not closed, or health checks had it unhealthy, at `at`."""
        state = {"breaker": "closed", "health": "healthy"}
        for change in self.changes:
            if change.at > at:
                break
            if change.deployment == name:
                state[change.kind] = change.state
        return state != {"breaker": "closed", "health": "healthy"}

    def unhealthy(self, names: Iterable[str], start: float, end: float) -> list[Change]:
        """Health checks marking `names` unhealthy in [start, end)."""
        wanted = set(names)
        return [
            c
            for c in self.changes
            if c.kind == "health" and c.state == "unhealthy" and c.deployment in wanted
            if start <= c.at < end
        ]


def _unhook(listeners: list[Any], listener: Any) -> None:
    if listener in listeners:
        listeners.remove(listener)


def provider_of(deployment: str | None) -> str:
    """The provider part of a deployment's name: `sim-a` of `sim-a/sim-large`."""
    return (deployment or "?").partition("/")[0]
