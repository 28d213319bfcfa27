"""Running a scenario: open-loop arrivals on a clock, faults switched on and off per the
timeline, every outcome recorded.

In fast mode everything runs on a `FakeClock` that jumps to the next timer whenever the event
loop has nothing else to do, so an hour of traffic takes seconds. Without it the same code runs
on the system clock; with a URL it sends HTTP to a running gateway instead of the in-process
router.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import random
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from ..chaos import BaseFault
from ..clock import Clock, FakeClock, SystemClock, deadline_scope
from ..config import Config
from .local import LocalTarget
from .record import Outcome, Recorder, Recording, RequestRecord, Switch, Target, Tick
from .scenario import FaultWindow, Scenario

__all__ = ["default_resolution", "run_scenario", "run_target", "virtual_time"]

TickListener = Callable[[Tick], None]
_NICE_STEPS = (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600)
DEFAULT_DRAIN = 120.0


def default_resolution(duration: float) -> float:
    """A round bin width giving about 120 points over `duration` seconds."""
    want = duration / 120
    return float(next((s for s in _NICE_STEPS if s >= want), _NICE_STEPS[-1]))


async def run_scenario(
    scenario: Scenario,
    *,
    config: Config | str | Path | None = None,
    fast: bool | None = None,
    url: str | None = None,
    seed: int | None = None,
    api_key: str | None = None,
    admin_key: str | None = None,
    on_tick: TickListener | None = None,
) -> Recording:
    """Run `scenario` in-process (in virtual time when `fast`, the default) or against the
    gateway at `url` (in real time)."""
    seed = scenario.seed if seed is None else seed
    if url is not None:
        if fast:
            raise ValueError("--fast runs the in-process router; a gateway runs in real time")
        if config is not None:
            raise ValueError("--config is for in-process runs: a gateway runs on its own config")
        from .http import HttpTarget

        route = scenario.load.route or _first_route(scenario)
        http = HttpTarget(url, route, api_key=api_key, admin_key=admin_key)
        return await run_target(scenario, http, SystemClock(), seed=seed, on_tick=on_tick)
    cfg = config if isinstance(config, Config) else scenario.gateway_config(config)
    route = scenario.check_against(cfg)
    fast = True if fast is None else fast
    clock: Clock = FakeClock() if fast else SystemClock()
    target = LocalTarget(cfg, route, clock=clock, seed=seed, fast=fast)
    if isinstance(clock, FakeClock):
        async with virtual_time(clock):
            return await run_target(scenario, target, clock, seed=seed, on_tick=on_tick)
    return await run_target(scenario, target, clock, seed=seed, on_tick=on_tick)


async def run_target(
    scenario: Scenario,
    target: Target,
    clock: Clock,
    *,
    seed: int,
    on_tick: TickListener | None = None,
) -> Recording:
    """Drive `target` through `scenario` on `clock` and return what happened."""
    recording = Recording(
        scenario=scenario,
        mode=target.mode,
        seed=seed,
        route=target.route,
        deployments=list(target.deployments),
        duration=scenario.duration,
        calls=None if target.mode == "http" else [],  # a gateway's calls are not visible
        stream_breaks=None if target.mode == "http" else [],
    )
    real_start = time.perf_counter()
    try:
        run = _Run(scenario, target, clock, recording, seed, on_tick)
        await run.go()
    finally:
        await target.aclose()
    recording.notes.extend(target.notes)
    recording.deployments = list(target.deployments)  # a gateway's are learnt as it answers
    recording.real_seconds = time.perf_counter() - real_start
    return recording


class _Run:
    """One run's tasks: arrivals, the fault switcher, the progress ticker."""

    def __init__(
        self,
        scenario: Scenario,
        target: Target,
        clock: Clock,
        recording: Recording,
        seed: int,
        on_tick: TickListener | None,
    ) -> None:
        self.scenario = scenario
        self.target = target
        self.clock = clock
        self.recording = recording
        self.rng = random.Random(seed)
        self.on_tick = on_tick
        self.recorder = Recorder(clock, recording)
        self.in_flight: set[asyncio.Task[None]] = set()
        self.ok = 0
        self.failed = 0
        self.rescued = 0

    async def go(self) -> None:
        self.target.attach(self.recorder)
        await self.target.start()
        switcher = asyncio.ensure_future(self._switch_faults())
        ticker = asyncio.ensure_future(self._tick_forever())
        try:
            await self._send_load()
            await self._drain()
        finally:
            for task in (switcher, ticker):
                task.cancel()
            await asyncio.gather(switcher, ticker, return_exceptions=True)
            await self._clear_faults()
        self.recording.ended = self.recorder.now()
        self._tick()

    async def _sleep_until(self, at: float) -> None:
        delay = self.recorder.t0 + at - self.clock.now()
        if delay > 0:
            await self.clock.sleep(delay)

    async def _send_load(self) -> None:
        load = self.scenario.load
        for at, stream in load.arrivals_from(self.rng):
            await self._sleep_until(at)
            task = asyncio.ensure_future(self._one(load.request, stream))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
        await self._sleep_until(load.total)

    async def _one(self, request: dict[str, object], stream: bool) -> None:
        start = self.recorder.now()
        body = {**request, "stream": True} if stream else request
        try:
            outcome = await self.target.send(body, stream)
        except asyncio.CancelledError:
            self._record(start, stream, Outcome(False, "unfinished", 0))
            raise
        self._record(start, stream, outcome)

    def _record(self, start: float, stream: bool, out: Outcome) -> None:
        latency = self.recorder.now() - start
        record = RequestRecord(
            start,
            latency,
            out.ok,
            out.kind,
            out.calls,
            out.deployment,
            stream,
            out.ttft,
            out.breaks,
            out.recoveries,
        )
        self.recording.requests.append(record)
        if out.ok:
            self.ok += 1
        else:
            self.failed += 1
        self.rescued += record.rescued

    async def _drain(self) -> None:
        """Wait for requests in flight; cut the ones still going after `load.drain`."""
        if not self.in_flight:
            return
        drain = self.scenario.load.drain
        limit = DEFAULT_DRAIN if drain is None else drain
        try:
            async with deadline_scope(self.clock, self.clock.now() + limit):
                await asyncio.gather(*list(self.in_flight))
        except TimeoutError:
            pending = list(self.in_flight)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            self.recording.notes.append(
                f"{len(pending)} requests still in flight {limit:g}s after the load ended "
                "were cut and count as failed"
            )

    async def _switch_faults(self) -> None:
        for at, deployment, faults in _switch_plan(self.scenario.windows()):
            await self._sleep_until(at)
            applied = await self.target.switch(deployment, faults)
            labels = [f.label() for f in faults]
            self.recording.switches.append(Switch(deployment, self.recorder.now(), labels, applied))

    async def _clear_faults(self) -> None:
        """Leave a gateway as it was found: no timeline fault stays on after the run."""
        last = {s.deployment: s for s in self.recording.switches}  # in time order
        left_on = sorted(name for name, s in last.items() if s.faults and s.applied)
        for deployment in left_on:
            with contextlib.suppress(Exception):
                await self.target.switch(deployment, [])

    async def _tick_forever(self) -> None:
        step = min(1.0, default_resolution(self.scenario.duration))
        while True:
            await self.clock.sleep(step)
            self.target.sample()
            self._tick()

    def _tick(self) -> None:
        if self.on_tick is not None:
            self.on_tick(
                Tick(
                    now=min(self.recorder.now(), self.scenario.duration),
                    duration=self.scenario.duration,
                    sent=self.ok + self.failed + len(self.in_flight),
                    ok=self.ok,
                    failed=self.failed,
                    in_flight=len(self.in_flight),
                    breakers=self.target.breakers(),
                    rescued=self.rescued,
                )
            )


def _first_route(scenario: Scenario) -> str:
    """The route to load on a gateway: `load.route`, else the scenario config's first one."""
    if isinstance(scenario.config, dict):
        routes = scenario.config.get("routes")
        if isinstance(routes, dict) and routes:
            return str(next(iter(routes)))
    raise ValueError("load.route: name the route to send requests to (the gateway's model name)")


def _switch_plan(windows: list[FaultWindow]) -> list[tuple[float, str, list[BaseFault]]]:
    """(time, deployment, the faults on it from then on) at every point where they change."""
    points = sorted({(t, w.deployment) for w in windows for t in (w.start, w.end)})
    plan: list[tuple[float, str, list[BaseFault]]] = []
    current: dict[str, list[BaseFault]] = {}
    for at, deployment in points:
        faults = [
            f for w in windows if w.deployment == deployment and w.covers(at) for f in w.faults
        ]
        if faults != current.get(deployment, []):
            current[deployment] = faults
            plan.append((at, deployment, faults))
    return plan


@contextlib.asynccontextmanager
async def virtual_time(clock: FakeClock) -> AsyncIterator[FakeClock]:
    """Jump `clock` to its next timer whenever no task can run: virtual time at full speed.

    `FakeClock.autojump` settles a fixed number of loop rounds before each jump; looking at the
    loop's ready queue instead jumps as soon as every task waits, about three times faster. On
    loops without one (uvloop) autojump is used.
    """
    loop = asyncio.get_running_loop()
    ready = getattr(loop, "_ready", None)
    if not isinstance(ready, collections.deque):
        async with clock.autojump():
            yield clock
        return

    async def jumper() -> None:
        while True:
            await asyncio.sleep(0)
            if ready:
                continue
            when = clock.next_deadline()
            if when is None or math.isinf(when):
                await asyncio.sleep(0.001)  # nothing scheduled: do not spin
            else:
                clock.advance_sync(when - clock.now())

    task = loop.create_task(jumper())
    try:
        yield clock
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
