"""What happened to one request: every attempt, its deployment, outcome, latency and wait."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from .kinds import Kind

__all__ = ["Answer", "Attempt", "Skip", "Trace"]


class Answer(Protocol):
    """What a deployment answered, as an OpenAI-shaped object read only when asked for:
    a `Completion` or `Payload`, or a stream's summary (id, model, finish reason, usage)."""

    @property
    def body(self) -> dict[str, Any]: ...


class Skip(StrEnum):
    """Why a candidate was passed over without being called."""

    OPEN = "open"  # its breaker is open (or every half-open probe is out)
    UNHEALTHY = "unhealthy"  # health checks marked it down
    COOLING_DOWN = "cooling_down"  # it answered 429 and sits out its Retry-After
    SATURATED = "saturated"  # every slot of its adaptive concurrency limit is taken
    QUOTA = "quota"  # its rate limit is all but spent until its reset


@dataclass(slots=True)
class Attempt:
    """One call (or one skip) of one deployment."""

    route: str
    deployment: str
    kind: Kind = Kind.OK
    latency: float = 0.0  # seconds from start to answer (or failure)
    waited: float = 0.0  # backoff slept before this attempt
    ttft: float | None = None  # streams: seconds to the first chunk
    status: int | None = None
    message: str = ""
    hedge: bool = False  # started as a hedge while another attempt was still running
    skipped: Skip | None = None  # why it was not called
    cancelled: bool = False  # lost a hedge race (not counted as a failure)
    recovery: str | None = None  # finishes a broken stream: "continue" or "restart"
    started: float | None = None  # the router clock's now() when the call began
    local: str | None = None  # it failed for our own reasons ("loop_lag", "pool_wait")
    delivered: int | None = None  # chars the caller had when this stream broke or resumed
    answer: Answer | None = None  # what it answered (successes only), for observers

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "route": self.route,
            "deployment": self.deployment,
            "outcome": self.kind.value,
            "latency_ms": round(self.latency * 1000, 3),
        }
        for key, value in (
            ("waited_ms", round(self.waited * 1000, 3) if self.waited else None),
            ("ttft_ms", round(self.ttft * 1000, 3) if self.ttft is not None else None),
            ("status", self.status),
            ("message", self.message or None),
            ("hedge", self.hedge or None),
            ("skipped", self.skipped.value if self.skipped else None),
            ("cancelled", self.cancelled or None),
            ("recovery", self.recovery),
            ("delivered_chars", self.delivered),
            ("local", self.local),
        ):
            if value is not None:
                out[key] = value
        return out


@dataclass(slots=True)
class Trace:
    """The attempts made for one request, in the order they started."""

    route: str
    request_id: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    started: float | None = None  # the router clock's now() when the request began
    controls: dict[str, Any] = field(default_factory=dict)  # what the request chose itself
    operation: str = "chat"  # what was asked: "chat" (whole or streamed) or "embeddings"

    @property
    def calls(self) -> list[Attempt]:
        """Attempts that actually called a deployment (skips left out)."""
        return [a for a in self.attempts if a.skipped is None]

    @property
    def winner(self) -> Attempt | None:
        for attempt in reversed(self.attempts):
            if attempt.kind is Kind.OK and attempt.skipped is None and not attempt.cancelled:
                return attempt
        return None

    def summary(self) -> str:
        """One line: `openai/gpt-4o:server_error(12ms) -> anthropic/claude:ok(340ms)`."""
        parts = []
        for a in self.attempts:
            if a.skipped:
                parts.append(f"{a.deployment}:skipped({a.skipped})")
            else:
                tag = "cancelled" if a.cancelled else a.kind.value
                parts.append(f"{a.deployment}:{tag}({a.latency * 1000:.0f}ms)")
        return " -> ".join(parts) or "no attempts"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "route": self.route,
            "request_id": self.request_id,
            "attempts": [a.to_dict() for a in self.attempts],
        }
        if self.controls:
            out["controls"] = self.controls
        return out
