"""The line a process holds on its whole requests in flight while its own CPU is what limits
it: past its best concurrency a process only stretches every request it holds (its event loop
runs late, and the more it holds the less it serves), so it keeps near that concurrency and
sheds the rest at once (`failover.resilience.admission` turns the line into a gate).

    sample     every STEP the caller gives the event loop's lag (smoothed), the share of a core
               the process used since the last sample, and its whole requests in flight
    draw       saturated (at least SATURATED_CPU of a core) and late past `target`, with no
               line: one at target / lag of what is in flight (between LOWEST and LOWER of it)
    lower      still so with the line full (at least `full` of it in flight): by as much again
    raise      on time with the line full: by RAISE (twice as much with CPU to spare)
    hold       below the line (less than `full` of it in flight): what the process sees says
               nothing about the line, which stays; after SPARE samples in a row on time
               (under half `target`) with CPU to spare, it is lifted
    floor      the line never goes below `floor`, and is drawn only from `floor` in flight

A process late with CPU to spare is starved by its neighbours, not saturated, and one whose
upstreams are slow is not late: neither draws a line.

Streams get a patient line of their own, with a target of its own (where streams begin to be
shed in proportion anyway: a ramp of held streams that keeps the process a little late draws
none). A stream's cost is spread over its whole length, and shedding new ones does not lighten
those in flight until they end: a line lowered every STEP while the process stays late would
fall to its floor under thousands of long streams and shed every new one for as long as they
last. So a patient line is drawn where what is in flight is its `hold` (normal priority's
share: no more streams of normal priority, one in for one out; low ones are shed, high ones
have a little room), and is lowered only once what is in flight has come down to that: with
short streams that is a STEP or two; with long ones it holds.
Pure: no I/O, no clock; the caller paces the samples.
"""

from __future__ import annotations

import math

__all__ = ["LOWER", "LOWEST", "RAISE", "SATURATED_CPU", "SPARE", "STEP", "Line"]

STEP = 0.1  # seconds between samples of the process's lag and CPU (as often as the lag's)
SATURATED_CPU = 0.85  # the share of a core from which the process's own CPU is what limits it
LOWER = 0.9  # each STEP saturated and late, the line is lowered to at most this share ...
LOWEST = 0.5  # ... and at least this share of what it was
RAISE = 0.05  # each STEP on time, the line is raised by this share (twice, with CPU to spare)
SPARE = 10  # STEPs in a row with CPU to spare, on time, below the line, that lift it


class Line:
    """The level of the line (None: no line) and what moves it."""

    __slots__ = ("_spare", "floor", "full", "hold", "level", "target")

    def __init__(
        self,
        target: float | None,
        *,
        floor: int,
        full: float,
        hold: float | None = None,
    ) -> None:
        """`target`: the lag held to (None: never a line); `full`: the share of the line in
        flight from which it is full (the share low priority is shed from); `hold`, for a
        patient line: drawn so that `hold` of it is what is in flight, and lowered only once
        no more than that is in flight (streams: the share normal priority is shed from, so
        that it keeps one in for one out); None: a quick line."""
        self.target = target
        self.floor = floor
        self.full = full
        self.hold = hold
        self.level: int | None = None
        self._spare = 0  # samples in a row with CPU to spare, on time, below the line

    def below(self, in_flight: int) -> bool:
        """A line is held and fewer than `full` of it are in flight."""
        return self.level is not None and in_flight < int(self.full * self.level + 1e-9)

    def sample(self, in_flight: int, lag: float, cpu: float) -> int | None:
        """One STEP's sample; the level of the line after it."""
        target = self.target
        if target is None:
            self.level = None
            return None
        saturated = cpu >= SATURATED_CPU
        level = self.level
        if level is None:
            if saturated and lag > target and in_flight >= self.floor:
                hold = self.hold
                self.level = (
                    self._lowered(in_flight, target, lag)
                    if hold is None
                    else max(self.floor, math.ceil(in_flight / hold - 1e-9))
                )
        elif self.below(in_flight):
            self._spare = self._spare + 1 if not saturated and lag <= target / 2 else 0
            if self._spare >= SPARE:
                self.level, self._spare = None, 0
        elif saturated and lag > target:
            # patient: only once the last lowering has taken effect
            if self.hold is None or in_flight <= self.hold * level + 1e-9:
                self.level = self._lowered(level, target, lag)
        elif lag <= target:  # on time: more room, faster while there is CPU to spare
            self.level = level + max(1, int(level * (RAISE if saturated else 2 * RAISE)))
        return self.level

    def _lowered(self, level: int, target: float, lag: float) -> int:
        return max(self.floor, int(level * max(LOWEST, min(LOWER, target / lag))))

    def __repr__(self) -> str:
        return f"<Line {self.level} target={self.target}>"
