"""How busy the process is, sampled from the requests that arrive: once a STEP, the event
loop's smoothed lag and the share of a core the process used are fed to one `Admission`.
Each gateway has its own sampler, handed on with its admission when the config reloads."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..resilience.admission import Admission
from ..resilience.saturation import STEP

__all__ = ["Sampler"]


class Sampler:
    """Feeds `Admission.sample` at most once a STEP, from the requests that arrive: the loop's
    smoothed lag and the share of a core this process used since the last sample
    (`time.process_time`, a system call: not one a request)."""

    __slots__ = ("_at", "_cpu", "cpu_time")

    def __init__(self, cpu_time: Callable[[], float] = time.process_time) -> None:
        self.cpu_time = cpu_time  # seconds of CPU the process has used
        self._at: float | None = None
        self._cpu = 0.0

    def tick(self, admission: Admission, lag: float, now: float) -> None:
        """Sample if a STEP has passed since the last sample (loop time `now`)."""
        at = self._at
        if at is not None and now - at < STEP:
            return
        cpu = self.cpu_time()
        if at is not None:
            admission.sample(lag, (cpu - self._cpu) / (now - at))
        self._at, self._cpu = now, cpu
