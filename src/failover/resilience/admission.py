"""Admission control: how much work the process takes on at once, and who is turned away
first when it is full (SRE "Handling Overload": shed early, by criticality, never queue).

    gate       a count in flight against a limit: the process's whole requests, its streams,
               each limited route's requests and streams, each limited client key's
    priority   a request of priority p passes a gate only while the gate is below `shed[p]`
               of its limit: low from 70%, normal from 90%, high at 100% (a key's own quota
               applies at 100% whatever the priority: it is that client's budget)
    line       while its own CPU is what limits it, the process holds a line on its whole
               requests in flight (`failover.resilience.saturation`: drawn, lowered and
               raised on the loop's lag and the process's CPU, sampled every STEP); the line
               is a gate like the others, priorities and all. Streams have a patient line of
               their own, held to where low-priority streams start to be shed in
               proportion (the low share of max_lag, or target_lag if later)
    late       how late the process is for a request: its event loop's lag (smoothed), or
               how long this request waited to be looked at, whichever is longer. From
               shed[p] * max_lag, a request of priority p is shed with a probability that
               grows with the lateness: at max_lag every low and normal request is shed,
               high ones from then on, all of them at 2 * max_lag (shedding in proportion,
               as toobusy does, settles the lag instead of swinging it): what a burst meets
               before the line has caught up with it. Only while the process's own CPU was
               saturated at the last `sample` (or it is not sampled): late with CPU to spare,
               it is starved by its neighbours, and shedding would not help it
               Both only while at least `lag_min_in_flight` requests and streams are in
               flight (and the line never goes below that): a process with few requests in
               flight queues them for little, and shedding its few requests would not help
    shed       a request turned away gets a `Shed` (why, how full, when to retry) and is
               answered at once: nothing waits for room
    come back  the wait a shed client is told adapts to the pressure: each second, it doubles
               while more than PRESSURE sheds per admitted request are answered and the
               process had no room (its CPU saturated, or its loop late past target_lag, in
               most samples of that second), and halves otherwise (a second without a shed
               too: the clients told the last wait are still waiting), between `retry_after`
               and `max_retry_after`; it is never more than the episode has lasted (a burst's
               clients are not sent away for longer than the burst), and a new episode starts
               it again from `retry_after`. But it is never less than the backlog's drain
               time: the clients already told to come back and not yet due (`Backlog`), over
               the requests the process admitted a second over the last second (no less
               than RATE_HOLD of the rate of the second before: a second in which nearly all
               were shed for lateness does not send the next clients away for the longest
               wait; none known after a quiet spell: a burst's clients are told the wait
               alone). Told less, a client only comes back to a process still busy with
               those before it, to be shed, and cost it, once more: past its best
               concurrency a shed costs the process about a fifth of a served stream,
               counting the lateness a wave of them leaves. Each shed is told up to as much
               again at random, so that the clients shed together do not come back
               together. Clients that honour the wait (the SDKs do) come back about as often
               as there is room for them

`admit` is O(1): a dict lookup or two and a few integer comparisons, no allocation when the
request is admitted. Pure: no I/O; the caller passes how late it measured the process to be
(to `admit`, and with its CPU use to `sample` once a STEP), and the clock paces the
suggested wait and dates sheds.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ..clock import Clock, SystemClock
from .backlog import Backlog
from .saturation import SATURATED_CPU, Line

__all__ = [
    "OTHER",
    "PRIORITIES",
    "REASONS",
    "Admission",
    "AdmissionPolicy",
    "Gate",
    "Limits",
    "Shed",
    "Ticket",
]

PRIORITIES = ("high", "normal", "low")  # the values of `failover.Priority`, most important first
OTHER = "_other"  # the route label of a shed request whose route is not configured
# why a request was shed: the limit it met (named after its config field), or the loop lag
REASONS = (
    "max_requests",
    "max_streams",
    "route_max_requests",
    "route_max_streams",
    "key_max_requests",
    "key_max_streams",
    "loop_lag",
)
QUIET = 10.0  # seconds without a shed that end a shedding episode
WINDOW = 1.0  # seconds over which the sheds per admitted request are counted
RATE_HOLD = 0.75  # a second's share of the admission rate before it that it keeps, at least
PRESSURE = 0.05  # sheds per admitted request the wait is adjusted to


@dataclass(frozen=True, slots=True)
class Limits:
    """Requests and streams one route or one client key may have in flight (None: no limit)."""

    max_requests: int | None = None
    max_streams: int | None = None

    def __post_init__(self) -> None:
        for value in (self.max_requests, self.max_streams):
            if value is not None and value < 1:
                raise ValueError("admission limits must be at least 1")


@dataclass(frozen=True, slots=True)
class AdmissionPolicy:
    """What the process admits: limits in flight, loop lag, and each priority's share."""

    enabled: bool = True
    max_requests: int = 2000  # whole (non-streamed) requests in flight in the process
    max_streams: int = 20_000  # streams in flight in the process
    max_lag: float | None = 0.2  # seconds late from which requests are shed; None: ignore
    target_lag: float | None = 0.015  # loop lag a CPU-saturated process holds to; None: no line
    lag_min_in_flight: int = 100  # requests and streams in flight before the lag is ours
    shed: Mapping[str, float] = field(
        default_factory=lambda: {"high": 1.0, "normal": 0.9, "low": 0.7}
    )  # from what share of a limit (and of max_lag) each priority is shed
    retry_after: float = 1.0  # seconds a shed client is told to wait, at the least
    max_retry_after: float = 30.0  # and at the most, however many are shed
    routes: Mapping[str, Limits] = field(default_factory=dict)
    keys: Mapping[str, Limits] = field(default_factory=dict)  # by client key name

    def __post_init__(self) -> None:
        if self.max_requests < 1 or self.max_streams < 1:
            raise ValueError("max_requests and max_streams must be at least 1")
        if self.max_lag is not None and not self.max_lag > 0:
            raise ValueError("max_lag must be more than 0 (or None to ignore the loop lag)")
        if self.target_lag is not None and not self.target_lag > 0:
            raise ValueError("target_lag must be more than 0 (or None to hold no line)")
        if set(self.shed) != set(PRIORITIES):
            raise ValueError(f"shed needs a share for each of {', '.join(PRIORITIES)}")
        high, normal, low = (self.shed[p] for p in PRIORITIES)
        if not 0 < low <= normal <= high <= 1:
            raise ValueError("shed shares need 0 < low <= normal <= high <= 1")
        if not 0 < self.retry_after <= self.max_retry_after:
            raise ValueError("retry_after must be more than 0 and at most max_retry_after")
        if self.lag_min_in_flight < 0:
            raise ValueError("lag_min_in_flight must be 0 or more")


class Gate:
    """A count in flight and, for each priority, the count from which it is shed."""

    __slots__ = ("caps", "in_flight", "limit", "reason")

    def __init__(self, reason: str, limit: int, shares: Mapping[str, float]) -> None:
        self.reason = reason
        self.in_flight = 0
        self.limit = limit
        self.caps: dict[str, int] = {}
        self.set_limit(limit, shares)

    def set_limit(self, limit: int, shares: Mapping[str, float]) -> None:
        """A new limit (the count in flight carries over)."""
        self.limit = limit
        # at least one: a tiny limit must still admit something of every priority
        self.caps = {p: max(1, math.floor(shares[p] * limit + 1e-9)) for p in PRIORITIES}

    def __repr__(self) -> str:
        return f"<Gate {self.reason} {self.in_flight}/{self.limit}>"


Ticket = tuple[Gate, ...]  # the gates an admitted request holds; give it back with `leave`


@dataclass(frozen=True, slots=True)
class Shed:
    """A request turned away: which limit it met, how full that was, and when to come back."""

    reason: str  # one of REASONS
    route: str  # the route label (OTHER when it is not a configured one)
    priority: str
    in_use: float  # requests or streams in flight (for a line: what it holds)
    limit: float  # the gate's limit; the line; or, shed in proportion to lateness, 0
    share: float  # the share of `limit` from which this priority is shed
    retry_after: float  # seconds
    starts_episode: bool = False  # the first shed after QUIET seconds without one
    late: float = 0.0  # how late the process was for it (loop_lag), in seconds
    late_from: float = 0.0  # how late it may be before this priority is shed (seconds)
    stream: bool = False  # shed for the line on streams, not the one on whole requests

    @property
    def client_quota(self) -> bool:
        """The client key's own quota (a 429), not the gateway's overload (a 503)."""
        return self.reason.startswith("key_")

    @property
    def message(self) -> str:
        """Why, in words a client's developer can act on."""
        if self.reason == "loop_lag":
            why = (
                f"the gateway is saturated (it came to this request {self.late * 1000:.0f} ms late"
            )
            if self.limit:
                why += (
                    f") and takes on no more than {self.limit:.0f} "
                    f"{'streams' if self.stream else 'whole requests'} until "
                    f"it catches up ({self.in_use:.0f} in flight; {self.priority}-priority "
                    f"requests are shed from {self.share:.0%})"
                )
            else:
                why += (
                    f"; {self.priority}-priority requests are shed from "
                    f"{self.late_from * 1000:.0f} ms)"
                )
        else:
            what = "streams" if self.reason.endswith("streams") else "requests"
            whose = {"route": f"route {self.route!r}", "key": "your key"}.get(
                self.reason.split("_", 1)[0], "the gateway"
            )
            why = (
                f"{whose} has {self.in_use:.0f} {what} in flight of its {self.limit:.0f} "
                f"({self.priority}-priority requests are shed from {self.share:.0%})"
            )
        return f"{why}; retry after {self.retry_after:.1f}s"


class Admission:
    """The process's gates and its shed counts; reconfigurable without losing its counts."""

    def __init__(
        self,
        policy: AdmissionPolicy | None = None,
        *,
        routes: Iterable[str] = (),
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """`routes`: the names a shed may be counted under (others count as OTHER)."""
        self.clock = clock or SystemClock()
        self.rng = rng or random.Random()
        self.policy = policy = policy or AdmissionPolicy()
        self.requests = Gate("max_requests", policy.max_requests, policy.shed)
        self.streams = Gate("max_streams", policy.max_streams, policy.shed)
        self.routes: dict[str, tuple[Gate | None, Gate | None]] = {}
        self.keys: dict[str, tuple[Gate | None, Gate | None]] = {}
        self.shed_counts: dict[tuple[str, str, str], int] = {}
        self.last_shed: float | None = None
        self.episode_started: float | None = None
        self.pressure = 0.0  # sheds per admitted request over the last whole window
        self.line: Gate | None = None  # what the process holds to while it is saturated
        self.saturated = True  # its CPU at the last sample (without samples: assumed)
        self.saturation = Line(None, floor=0, full=1.0)  # the line's level (configure sets it)
        self.stream_line: Gate | None = None  # and the one on streams
        self.stream_saturation = Line(None, floor=0, full=1.0, hold=policy.shed["normal"])
        self.wait = policy.retry_after  # what shed clients are told to wait (before jitter)
        self.backlog = Backlog(policy.max_retry_after)  # shed clients told to come back
        self.admit_rate = 0.0  # admitted a second over the last window, held (0: not known)
        self._window = self.clock.now()  # when the current window began (a shed closes it)
        self._admitted = 0  # requests admitted in the current window
        self._sheds = 0  # and shed
        self._samples = 0  # samples taken in the current window
        self._spare_samples = 0  # and of those, the ones with room (CPU to spare, on time)
        self._process: tuple[Ticket, Ticket] = ((self.requests,), (self.streams,))
        self._paths: tuple[dict[str, Ticket], dict[str, Ticket]] = ({}, {})
        self._lag_caps: dict[str, float] = {}  # the lag from which each priority is shed
        self._lag_spans: dict[str, float] = {}  # and how much more sheds all of it
        self._labels: frozenset[str] = frozenset()
        self.configure(policy, routes=routes)

    def configure(self, policy: AdmissionPolicy, *, routes: Iterable[str] = ()) -> None:
        """Apply a new policy (a config reload): limits change, counts in flight carry over."""
        self.policy = policy
        self.requests.set_limit(policy.max_requests, policy.shed)
        self.streams.set_limit(policy.max_streams, policy.shed)
        self.routes = _gates(self.routes, policy.routes, "route_", policy.shed)
        everyone = dict.fromkeys(PRIORITIES, 1.0)  # a key's quota is its own, whatever its priority
        self.keys = _gates(self.keys, policy.keys, "key_", everyone)
        self._paths = (self._routed(stream=False), self._routed(stream=True))
        lag = math.inf if policy.max_lag is None else policy.max_lag
        self._lag_caps = {p: lag * policy.shed[p] for p in PRIORITIES}
        # the ramp of a priority below max_lag ends at max_lag; one shed only from max_lag on
        # (high, by default) ends at twice max_lag
        self._lag_spans = {
            p: lag - start if start < lag else lag for p, start in self._lag_caps.items()
        }
        self._labels = frozenset(routes) | frozenset(policy.routes)
        if self.backlog.horizon != policy.max_retry_after:  # (those waiting are forgotten)
            self.backlog = Backlog(policy.max_retry_after)
        for saturation in (self.saturation, self.stream_saturation):
            saturation.target, saturation.floor = policy.target_lag, policy.lag_min_in_flight
            saturation.full = policy.shed["low"]
        self.stream_saturation.hold = policy.shed["normal"]
        if policy.max_lag is not None and policy.target_lag is not None:
            # streams: held to where the low ones begin to be shed in proportion anyway
            self.stream_saturation.target = max(policy.target_lag, self._lag_caps["low"])
        for line in (self.line, self.stream_line):
            if line is not None:
                line.set_limit(line.limit, policy.shed)

    def _routed(self, *, stream: bool) -> dict[str, Ticket]:
        process = self._process[stream]
        out = {}
        for name, pair in self.routes.items():
            gate = pair[stream]
            if gate is not None:
                out[name] = (*process, gate)
        return out

    # -- the hot path ------------------------------------------------------------------------

    def admit(
        self,
        route: str,
        *,
        stream: bool,
        priority: str,
        lag: float = 0.0,
        key: str | None = None,
        late: bool = True,
    ) -> Ticket | Shed:
        """Take room for a request (a `Ticket` to `leave` with), or the `Shed` that refuses it.
        `late=False`: how late the process is was already asked (`shed_late`), not again."""
        if not self.policy.enabled:
            return ()
        if late and (shed := self.shed_late(route, stream=stream, priority=priority, lag=lag)):
            return shed
        gates = self._paths[stream].get(route) or self._process[stream]
        if key is not None and key in self.keys and (own := self.keys[key][stream]) is not None:
            gates = (*gates, own)
        for gate in gates:
            if gate.in_flight >= gate.caps[priority]:
                return self._shed(gate.reason, route, priority, gate.in_flight, gate.limit)
        for gate in gates:
            gate.in_flight += 1
        self._admitted += 1
        return gates

    def pressed(self, lag: float, priority: str = "low") -> bool:
        """Whether `shed_late` may shed a request of `priority` (low, the first shed: any
        request), `lag` late, now: a line is full for it, or the loop is late past its share
        of max_lag. Cheap: asked before anything is read of a request, so that a process
        with room spends nothing more on it."""
        if not self.policy.enabled or not self.crowded:
            return False
        for line, gate in ((self.line, self.requests), (self.stream_line, self.streams)):
            if line is not None and gate.in_flight >= line.caps[priority]:
                return True
        return self.saturated and lag > self._lag_caps[priority]

    def shed_late(self, route: str, *, stream: bool, priority: str, lag: float) -> Shed | None:
        """The shed of a request the process is `lag` late for, if it is shed for that (the
        line, or in proportion to the lateness): the part of `admit` that needs neither the
        request's route (but for the label it is counted under) nor its key."""
        if not self.policy.enabled:
            return None
        busy = self._busy()
        if busy < self.policy.lag_min_in_flight:
            return None  # few in flight: not the process's own doing
        line, held = (self.stream_line, self.streams) if stream else (self.line, self.requests)
        if line is not None and held.in_flight >= line.caps[priority]:
            in_use, limit = held.in_flight, line.limit
            return self._shed("loop_lag", route, priority, in_use, limit, lag, stream=stream)
        start = self._lag_caps[priority]
        if lag > start and self.saturated:
            excess = (lag - start) / self._lag_spans[priority]
            if excess >= 1.0 or self.rng.random() < excess:
                return self._shed("loop_lag", route, priority, busy, 0, lag, start)
        return None

    @property
    def crowded(self) -> bool:
        """At least `lag_min_in_flight` requests and streams are in flight: from here, how
        late the process runs is its own doing, and it may be shed for."""
        return self._busy() >= self.policy.lag_min_in_flight

    def _busy(self) -> int:
        return self.requests.in_flight + self.streams.in_flight

    def sample(self, lag: float, cpu: float) -> None:
        """Once a STEP: the event loop's smoothed lag (seconds) and the share of a core the
        process used since the last sample. Draws, moves or lifts the lines."""
        self._close_window(self.clock.now())
        self.saturated = cpu >= SATURATED_CPU
        self._samples += 1  # room: CPU to spare, and on time
        target = self.policy.target_lag
        self._spare_samples += not self.saturated and (target is None or lag <= target)
        enabled = self.policy.enabled
        level = self.saturation.sample(self.requests.in_flight, lag, cpu) if enabled else None
        self.line = self._drawn(self.line, level)
        level = self.stream_saturation.sample(self.streams.in_flight, lag, cpu) if enabled else None
        self.stream_line = self._drawn(self.stream_line, level)

    def _drawn(self, line: Gate | None, level: int | None) -> Gate | None:
        """`line` moved to `level` (None: no line)."""
        if level is None:
            return None
        if line is None:
            return Gate("loop_lag", level, self.policy.shed)
        if level != line.limit:
            line.set_limit(level, self.policy.shed)
        return line

    def leave(self, ticket: Ticket) -> None:
        """An admitted request has finished."""
        for gate in ticket:
            gate.in_flight -= 1

    def _shed(
        self,
        reason: str,
        route: str,
        priority: str,
        in_use: float,
        limit: float,
        late: float = 0.0,
        late_from: float = 0.0,
        *,
        stream: bool = False,
    ) -> Shed:
        label = route if route in self._labels else OTHER
        priority = str(priority)  # a plain str: `Priority` members are not JSON object keys
        counted = (label, priority, reason)
        self.shed_counts[counted] = self.shed_counts.get(counted, 0) + 1
        now = self.clock.now()
        starts = self.last_shed is None or now - self.last_shed >= QUIET
        if starts:  # a new episode: what was learned of the last one no longer holds
            self.episode_started = now
            self.wait = self.policy.retry_after
            self._window, self._sheds, self._admitted = now, 0, 0
            self._samples = self._spare_samples = 0
        self.last_shed = now
        share = 1.0 if reason.startswith("key_") else self.policy.shed[priority]
        # jittered up to as much again: the clients shed together do not come back together
        retry_after = self._retry_after(now) * (1.0 + self.rng.random())
        retry_after = min(retry_after, self.policy.max_retry_after)
        self.backlog.add(now, retry_after)
        return Shed(
            reason, label, priority, in_use, limit, share, retry_after, starts, late, late_from,
            stream,
        )  # fmt: skip

    def _retry_after(self, now: float) -> float:
        """The wait to suggest before jitter (this shed counted in the window): never longer
        than the episode has lasted, so the clients of a burst are not sent away for longer
        than the burst (a long overload still reaches max_retry_after), unless the clients
        already told to come back need longer to be taken in at the rate the process admits."""
        self._close_window(now)
        self._sheds += 1
        began = now if self.episode_started is None else self.episode_started
        wait = min(self.wait, max(self.policy.retry_after, now - began))
        # at the last whole second's rate: a burst is let in at once, not at a rate, and what
        # it let in says nothing of how fast the process takes in those it sheds
        return max(wait, self.backlog.drain(now, self.admit_rate))

    def _close_window(self, now: float) -> None:
        """Once a window has passed, adjust the wait: doubled if it saw more than PRESSURE
        sheds per admitted request and no room, else halved."""
        elapsed = now - self._window
        if elapsed < WINDOW:
            return
        policy = self.policy
        # a window stretched by an idle spell (no request, no sample) says nothing of the rate,
        # nor one that admitted nothing; one that shed nearly everything for lateness says
        # little more: held, so that its few admissions do not tell the next clients to stay
        # away for max_retry_after while the process empties
        rate = self._admitted / elapsed if elapsed < 2 * WINDOW else 0.0
        self.admit_rate = max(rate, self.admit_rate * RATE_HOLD) if rate else 0.0
        self.pressure = self._sheds / max(1, self._admitted)
        # room most of the window (CPU to spare, on time): the shed clients wait longer
        # than the process needs them to. A second without a shed halves the wait
        # too, not more: the clients told the last one still wait, and would all come back
        # at once to a short one
        room = self._spare_samples * 2 > self._samples
        factor = 2.0 if self.pressure > PRESSURE and not room else 0.5
        self.wait = min(max(self.wait * factor, policy.retry_after), policy.max_retry_after)
        self._window, self._sheds, self._admitted = now, 0, 0
        self._samples = self._spare_samples = 0

    # -- what is visible ---------------------------------------------------------------------

    @property
    def shedding(self) -> bool:
        """A request was shed within the last QUIET seconds."""
        return self.last_shed is not None and self.clock.now() - self.last_shed < QUIET

    def shed_total(self) -> int:
        """Requests shed since the process started."""
        return sum(self.shed_counts.values())

    def describe(self) -> dict[str, object]:
        """Limits, counts in flight and sheds, for /admin/status."""
        now = self.clock.now()
        by_reason: dict[str, int] = {}
        by_priority: dict[str, int] = {}
        for (_, priority, reason), count in self.shed_counts.items():
            by_reason[reason] = by_reason.get(reason, 0) + count
            by_priority[priority] = by_priority.get(priority, 0) + count
        policy = self.policy
        return {
            "enabled": policy.enabled,
            "requests": _gauge(self.requests),
            "streams": _gauge(self.streams),
            "routes": {name: _pair(pair) for name, pair in self.routes.items()},
            "keys": {name: _pair(pair) for name, pair in self.keys.items()},
            "max_lag_ms": None if policy.max_lag is None else round(policy.max_lag * 1000, 3),
            "target_lag_ms": (None if policy.target_lag is None
                              else round(policy.target_lag * 1000, 3)),
            "line": None if self.line is None else {"in_flight": self.requests.in_flight,
                                                    "limit": self.line.limit},
            "stream_line": (None if self.stream_line is None
                            else {"in_flight": self.streams.in_flight,
                                  "limit": self.stream_line.limit}),
            "shed_from": dict(policy.shed),
            "pressure": round(self.pressure, 3),
            "retry_after_s": round(self.wait, 3),
            "told_to_retry": self.backlog.pending(now),
            "shed": {"total": sum(by_reason.values()), "by_reason": by_reason,
                     "by_priority": by_priority},
            "shedding": self.shedding,
            "shedding_for_s": (
                round(now - self.episode_started, 3)
                if self.shedding and self.episode_started is not None
                else None
            ),
        }  # fmt: skip

    def __repr__(self) -> str:
        state = "shedding" if self.shedding else "admitting"
        return (
            f"<Admission {state} requests {self.requests.in_flight}/{self.requests.limit} "
            f"streams {self.streams.in_flight}/{self.streams.limit} shed={self.shed_total()}>"
        )


def _gates(
    old: Mapping[str, tuple[Gate | None, Gate | None]],
    limits: Mapping[str, Limits],
    prefix: str,
    shares: Mapping[str, float],
) -> dict[str, tuple[Gate | None, Gate | None]]:
    """One (requests, streams) pair of gates per limited name, reusing the gates of `old` so
    requests admitted before a reload leave the same counters they entered."""
    out: dict[str, tuple[Gate | None, Gate | None]] = {}
    for name, limit in limits.items():
        previous = old.get(name, (None, None))
        out[name] = (
            _gate(previous[0], f"{prefix}max_requests", limit.max_requests, shares),
            _gate(previous[1], f"{prefix}max_streams", limit.max_streams, shares),
        )
    return out


def _gate(
    old: Gate | None, reason: str, limit: int | None, shares: Mapping[str, float]
) -> Gate | None:
    if limit is None:
        return None
    if old is None:
        return Gate(reason, limit, shares)
    old.set_limit(limit, shares)
    return old


def _gauge(gate: Gate | None) -> dict[str, int] | None:
    return None if gate is None else {"in_flight": gate.in_flight, "limit": gate.limit}


def _pair(pair: tuple[Gate | None, Gate | None]) -> dict[str, dict[str, int] | None]:
    return {"requests": _gauge(pair[0]), "streams": _gauge(pair[1])}
