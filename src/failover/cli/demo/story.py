"""What `failover demo` saw, and the story it tells: one line per phase of the script, and a
table at the end.

`Watch` (see `watch`) is what the router told; `Answer`s are what the clients got. `Story`
turns both into sentences such as "sim-a is down: breaker opened after 3 failures in 2 ms;
smart traffic moved to sim-b; clients saw 0 errors in 360 requests".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from .watch import Watch, provider_of

__all__ = ["Answer", "Line", "Phase", "Row", "Step", "Story", "count"]

StepKind = Literal["calm", "outage", "brownout", "streams", "recovery"]


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the script: at `at` seconds (speed 1), set `faults` on `provider`."""

    at: float
    name: str
    action: str
    kind: StepKind
    provider: str | None = None
    faults: tuple[dict[str, Any], ...] = ()


@dataclass(slots=True)
class Answer:
    """One client request: when it was sent, who answered, what went wrong (if anything)."""

    sent: float
    route: str
    stream: bool
    deployment: str | None = None
    error: str | None = None
    done: float | None = None
    rescued: int = 0  # times its stream broke mid-answer and the gateway finished it

    @property
    def ok(self) -> bool:
        return self.done is not None and self.error is None


@dataclass(slots=True)
class Phase:
    """A step while it lasts: from its switch to the next one."""

    step: Step
    start: float
    deployments: list[str]  # the deployments its faults were set on
    end: float | None = None
    narrative: str = ""
    detect: str = "-"


@dataclass(frozen=True, slots=True)
class Line:
    """A line of the story."""

    at: float
    text: str
    style: str = ""


@dataclass(frozen=True, slots=True)
class Row:
    """A row of the summary table."""

    name: str
    span: str
    requests: int
    errors: int
    served: dict[str, str]  # route -> who answered it
    detect: str
    rescued: int = 0  # streams that broke mid-answer and were finished anyway


@dataclass
class Story:
    """The phases of the script and what each one showed."""

    watch: Watch
    answers: list[Answer]
    routes: dict[str, list[str]]  # route -> its deployments, in order
    phases: list[Phase] = field(default_factory=list)
    lines: list[Line] = field(default_factory=list)
    listeners: list[Callable[[Line], None]] = field(default_factory=list)

    def say(self, at: float, text: str, style: str = "") -> None:
        line = Line(at, text, style)
        self.lines.append(line)
        for listener in self.listeners:
            listener(line)

    def begin(self, phase: Phase) -> None:
        self.phases.append(phase)
        self.say(phase.start, f"▶ {phase.step.name}: {phase.step.action}", "bold")

    def close(self, now: float) -> None:
        """End the current phase and tell what it showed."""
        if not self.phases or self.phases[-1].end is not None:
            return
        phase = self.phases[-1]
        phase.end = now
        narrate = {
            "calm": self._calm,
            "outage": self._outage,
            "brownout": self._brownout,
            "streams": self._streams,
            "recovery": self._recovery,
        }[phase.step.kind]
        phase.narrative = narrate(phase)
        if self._errors(phase):
            self.say(now, f"✘ {phase.narrative}", "bold red")
        else:
            self.say(now, f"✔ {phase.narrative}", "green")

    # -- reading the record ----------------------------------------------------------------

    def sent(self, start: float, end: float) -> list[Answer]:
        return [a for a in self.answers if start <= a.sent < end]

    def _window(self, phase: Phase) -> tuple[float, float]:
        return phase.start, phase.end if phase.end is not None else float("inf")

    def _errors(self, phase: Phase) -> list[Answer]:
        return [a for a in self.sent(*self._window(phase)) if a.error is not None]

    def _clients(self, phase: Phase) -> str:
        errors = len(self._errors(phase))
        return f"clients saw {count(errors, 'error')}"

    def _routes_of(self, names: list[str]) -> list[str]:
        return [r for r, deps in self.routes.items() if set(deps) & set(names)]

    def served(self, route: str, start: float, end: float, *, top: int = 3) -> str:
        """Who answered `route`'s requests sent in [start, end): `sim-a`, or `sim-b 62%, ...`."""
        # answers still streaming count once their headers named who answers them
        counts = Counter(
            provider_of(a.deployment)
            for a in self.sent(start, end)
            if a.route == route and a.error is None and a.deployment
        )
        if not counts:  # none known yet (a short phase at high speed): the gateway's calls
            deployments = set(self.routes.get(route, ()))
            counts = Counter(
                provider_of(name)
                for at, name, ok in self.watch.calls
                if ok and name in deployments and start <= at < end
            )
        total = sum(counts.values())
        if not total:
            return "no answers"
        leader, most = counts.most_common(1)[0]
        if most / total >= 0.95:
            return leader
        return ", ".join(f"{name} {n / total:.0%}" for name, n in counts.most_common(top))

    def _traffic(self, routes: list[str], start: float, end: float) -> str:
        return "; ".join(f"{r} traffic on {self.served(r, start, end)}" for r in routes)

    # -- the narrative of each kind of step ------------------------------------------------

    def _calm(self, phase: Phase) -> str:
        start, end = self._window(phase)
        served = ", ".join(f"{r} answered by {self.served(r, start, end)}" for r in self.routes)
        return f"steady: {served}; {self._clients(phase)}"

    def _outage(self, phase: Phase) -> str:
        start, end = self._window(phase)
        provider, names = phase.step.provider or "?", phase.deployments
        routes = self._routes_of(names)
        opened = self.watch.opened(names, start, end)
        if opened:
            first = opened[0].at
            # the call that opens a breaker reaches the attempt hook just after the breaker's
            # own event: allow for it
            settled = first + 0.002
            failures = sum(1 for _, ok in self.watch.calls_of(names, start, settled) if not ok)
            detected = f"breaker opened after {count(failures, 'failure')} in {_dur(first - start)}"
            phase.detect = f"{_dur(first - start)} breaker"
            moved = ", ".join(f"{r} traffic moved to {self.served(r, first, end)}" for r in routes)
        else:
            failed = sum(1 for _, ok in self.watch.calls_of(names, start, end) if not ok)
            detected = f"its breaker did not open ({count(failed, 'failed call')})"
            moved = self._traffic(routes, start, end)
        lasted = _dur(end - start)
        return f"{provider} was down for {lasted}: {detected}; {moved}; {self._clients(phase)}"

    def _brownout(self, phase: Phase) -> str:
        start, end = self._window(phase)
        provider, names = phase.step.provider or "?", phase.deployments
        calls = self.watch.calls_of(names, start, end)
        failed = sum(1 for _, ok in calls if not ok)
        opened = self.watch.opened(names, start, end)
        sick = self.watch.unhealthy(names, start, end)
        times = {1: "once", 2: "twice"}.get(len(opened)) or f"{len(opened)} times"
        taken = [f"breaker opened {times}"] if opened else ["breaker held"]
        if sick:
            taken.append(f"health checks took it out after {_dur(sick[0].at - start)}")
        first = min([c.at for c in opened[:1] + sick[:1]], default=None)
        if first is not None:
            by = "breaker" if opened and opened[0].at == first else "health"
            phase.detect = f"{_dur(first - start)} {by}"
        traffic = self._traffic(self._routes_of(names), start, end)
        if failed:
            hit = f"{failed} of {count(len(calls), 'call')} failed, each retried or failed over"
        else:
            hit = f"none of its {count(len(calls), 'call')} happened to fail"
        told = "; ".join([hit, ", ".join(taken), traffic, self._clients(phase)])
        return f"{provider} browned out for {_dur(end - start)}: {told}"

    def _streams(self, phase: Phase) -> str:
        start, end = self._window(phase)
        provider, names = phase.step.provider or "?", phase.deployments
        breaks = self.watch.broke(names, start, end)
        if not breaks:
            return f"no stream from {provider} broke; {self._clients(phase)}"
        saved = [b for b in breaks if b.rescued]
        told = f"{len(saved)} rescued"
        if saved:
            how = Counter(f"{b.outcome} on {provider_of(b.by)}" for b in saved).most_common()
            told += f" ({', '.join(h for h, _ in how)}; e.g. {saved[-1].describe()})"
        if len(saved) < len(breaks):
            told += f", {len(breaks) - len(saved)} lost"
        opened = self.watch.opened(names, start, end)
        if opened:
            breaker = f"its breaker opened after {_dur(opened[0].at - start)}"
            phase.detect = f"{_dur(opened[0].at - start)} breaker"
        else:
            breaker = "its breaker held"
        return (
            f"{provider} cut {count(len(breaks), 'stream')} mid-answer: {told}; {breaker}; "
            f"{self._clients(phase)}"
        )

    def _recovery(self, phase: Phase) -> str:
        start, end = self._window(phase)
        provider, names = phase.step.provider or "?", phase.deployments
        routes = self._routes_of(names)
        back = next((at for at, ok in self.watch.calls_of(names, start, end) if ok), None)
        if back is None:
            return f"{provider} did not answer after its fault was cleared; {self._clients(phase)}"
        if any(self.watch.out_of_rotation(n, start) for n in names):
            phase.detect = f"back {_dur(back - start)}"
            how = self._how_back(names, start, back)
            recovered = f"answering again {_dur(back - start)} after the fault cleared{how}"
        else:
            phase.detect = "in rotation"
            recovered = "still in rotation, so answering normally at once"
        traffic = ", ".join(f"{r} traffic back on {self.served(r, back, end)}" for r in routes)
        return f"{provider} came back: {recovered}; {traffic}; {self._clients(phase)}"

    def _how_back(self, names: list[str], start: float, back: float) -> str:
        changes = self.watch.between(names, start, back + 0.5)
        steps = []
        if any(c.kind == "health" and c.state == "healthy" for c in changes):
            steps.append("health probe passed")
        if any(c.kind == "breaker" and c.state == "half_open" for c in changes):
            steps.append("breaker half-open")
        if any(c.kind == "breaker" and c.state == "closed" for c in changes):
            steps.append("trial call ok, breaker closed")
        return f" ({' -> '.join(steps)})" if steps else ""

    # -- the summary ------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        """One row per phase, then the whole run."""
        rows = []
        for phase in self.phases:
            start, end = self._window(phase)
            sent = self.sent(start, end)
            shown = end if phase.end is not None else _last(self.answers, start)
            rows.append(
                Row(
                    phase.step.name,
                    f"{_secs(start)}-{_secs(shown)}s",
                    len(sent),
                    sum(1 for a in sent if a.error is not None),
                    {r: self.served(r, start, end, top=1) for r in self.routes},
                    phase.detect,
                    sum(1 for a in sent if a.rescued and a.ok),
                )
            )
        return rows

    @property
    def errors(self) -> list[Answer]:
        return [a for a in self.answers if a.error is not None]

    @property
    def rescued(self) -> list[Answer]:
        """Streams that broke mid-answer and still arrived whole."""
        return [a for a in self.answers if a.rescued and a.ok]


def _last(answers: list[Answer], floor: float) -> float:
    return max([floor, *(a.sent for a in answers)])


def count(n: int, noun: str) -> str:
    """`1 error`, `3 errors`."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _secs(seconds: float) -> str:
    return f"{seconds:.1f}".removesuffix(".0")


def _dur(seconds: float) -> str:
    if seconds < 1:
        return f"{max(seconds, 0) * 1000:.0f} ms"
    return f"{seconds:.1f} s"
