"""What a simulation run captures: every request (and whether its stream broke and was
recovered), every call to a deployment, every stream break, every breaker / health change,
cool-downs and fault switches — times in seconds after the run started."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from ..chaos import BaseFault
from ..clock import Clock
from ..events import StreamBreak
from ..types import Request
from .scenario import Scenario

__all__ = [
    "CallRecord",
    "Mode",
    "Outcome",
    "Recorder",
    "Recording",
    "RequestRecord",
    "StateChange",
    "StreamBreakRecord",
    "Switch",
    "Target",
    "Tick",
]

Mode = Literal["fast", "real", "http"]


@dataclass(slots=True)
class Outcome:
    """How one request ended, as its client saw it."""

    ok: bool
    kind: str  # "ok" or the error kind
    calls: int  # deployment calls it took (0 when unknown)
    deployment: str | None = None  # who answered (who finished a recovered stream)
    ttft: float | None = None  # streams: seconds to the first chunk
    breaks: int = 0  # streams: times it broke after content reached the client
    recoveries: int = 0  # streams: breaks recovered on another deployment (or a retry)


@dataclass(slots=True)
class RequestRecord:
    """One request: when it started, how long it took, how it ended."""

    start: float
    latency: float
    ok: bool
    kind: str
    calls: int
    deployment: str | None
    stream: bool
    ttft: float | None
    breaks: int = 0  # streams: times it broke after content reached the client
    recoveries: int = 0  # streams: breaks recovered

    @property
    def broken(self) -> bool:
        """A stream that broke after content reached the client (recovered or not)."""
        return self.breaks > 0

    @property
    def rescued(self) -> bool:
        """A stream that broke and still gave the client its whole answer."""
        return self.ok and self.breaks > 0


@dataclass(slots=True)
class CallRecord:
    """One call that reached a deployment (an attempt that was not skipped)."""

    deployment: str
    start: float
    end: float
    kind: str


@dataclass(slots=True)
class StreamBreakRecord:
    """A committed stream broke (seen in-process, from the router's stream hook): where, how
    far it had got, and what became of it: "continued" / "restarted" on `by`, or "failed"."""

    at: float
    deployment: str
    kind: str
    delivered: int  # chars the client had
    outcome: str
    by: str | None


@dataclass(slots=True)
class StateChange:
    """A deployment's breaker or health changed: `state` is a BreakerState value or
    "unhealthy"/"healthy"."""

    deployment: str
    at: float
    state: str
    source: Literal["breaker", "health"]


@dataclass(slots=True)
class Switch:
    """A fault switch on the timeline: what was set on a deployment, and whether it took."""

    deployment: str
    at: float
    faults: list[str]
    applied: bool


@dataclass(slots=True)
class Tick:
    """Progress of a run, handed to the progress display."""

    now: float
    duration: float
    sent: int
    ok: int
    failed: int
    in_flight: int
    breakers: dict[str, str]
    rescued: int = 0  # streams that broke and were recovered so far


@dataclass
class Recording:
    """Everything a run captured; `report.Report` turns it into numbers."""

    scenario: Scenario
    mode: Mode
    seed: int
    route: str
    deployments: list[str]
    duration: float
    requests: list[RequestRecord] = field(default_factory=list)
    calls: list[CallRecord] | None = field(default_factory=list)  # None: not observable
    stream_breaks: list[StreamBreakRecord] | None = field(default_factory=list)  # None: ditto
    changes: list[StateChange] = field(default_factory=list)
    cooldowns: list[tuple[str, float, float]] = field(default_factory=list)
    switches: list[Switch] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ended: float = 0.0
    real_seconds: float = 0.0


class Recorder:
    """Timestamps events against the run's start on the run's clock."""

    def __init__(self, clock: Clock, recording: Recording) -> None:
        self.clock = clock
        self.t0 = clock.now()
        self.recording = recording
        self._health: dict[str, bool] = {}

    def now(self) -> float:
        return self.clock.now() - self.t0

    def call(self, deployment: str, latency: float, kind: str) -> None:
        if self.recording.calls is not None:
            end = self.now()
            self.recording.calls.append(CallRecord(deployment, end - latency, end, kind))

    def stream_break(self, event: StreamBreak) -> None:
        if self.recording.stream_breaks is not None:
            self.recording.stream_breaks.append(
                StreamBreakRecord(
                    self.now(),
                    event.deployment,
                    event.kind.value,
                    event.delivered,
                    event.outcome,
                    event.by,
                )
            )

    def breaker(self, deployment: str, state: str) -> None:
        self.recording.changes.append(StateChange(deployment, self.now(), state, "breaker"))

    def health(self, deployment: str, healthy: bool) -> None:
        """Record a health change (repeats of the same state are dropped)."""
        if self._health.get(deployment, True) == healthy:
            return
        self._health[deployment] = healthy
        state = "healthy" if healthy else "unhealthy"
        self.recording.changes.append(StateChange(deployment, self.now(), state, "health"))

    def cooldown(self, deployment: str, until: float) -> None:
        now = self.now()
        if until - self.t0 > now:
            self.recording.cooldowns.append((deployment, now, until - self.t0))


class Target(Protocol):
    """What the runner drives: the in-process router, or a gateway over HTTP."""

    mode: Mode
    route: str
    deployments: list[str]
    notes: list[str]

    def attach(self, recorder: Recorder) -> None:
        """Report calls and state changes to `recorder` from now on."""

    async def start(self) -> None:
        """Start background work (health checks, status polling) before the load begins."""

    async def send(self, request: Request, stream: bool) -> Outcome: ...

    async def switch(self, deployment: str, faults: list[BaseFault]) -> bool:
        """Put exactly `faults` on `deployment` (none: clear); False if it could not."""

    def breakers(self) -> dict[str, str]:
        """Each deployment's breaker state now, where known."""

    def sample(self) -> None:
        """Poll state that has no events (health), once per tick."""

    async def aclose(self) -> None: ...
