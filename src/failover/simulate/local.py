"""The in-process target: the real `Router`, built from a gateway config, with every deployment
wrapped in a `FaultInjector` so the timeline can switch faults on and off.

Deployments of `kind: simulated` providers run as configured. Any other provider (openai,
anthropic, ...) is stood in by a simulated deployment, so a production config's routes, policies
and timeouts can be drilled without calling anyone.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Iterator
from typing import Any

from ..chaos import BaseFault, ChaosConfig, FaultInjector
from ..clock import Clock
from ..config import Config, DeploymentConfig, SimulatedOptions
from ..errors import FailoverError, Kind, RequestFailed, StreamInterrupted
from ..events import Event
from ..factory import from_config
from ..health import HealthChecker
from ..providers.simulated import SimulatedProvider
from ..reply import StreamReply
from ..resilience.breaker import BreakerEvent
from ..router import Router
from ..state.memory import MemoryStore
from ..trace import Attempt
from ..types import Request
from .record import Mode, Outcome, Recorder

__all__ = ["LocalTarget", "build_router"]

STAND_IN: dict[str, Any] = {
    "latency": {"dist": "lognormal", "median": "300ms", "sigma": 0.4, "max": "3s"},
    "ttft": {"dist": "lognormal", "median": "150ms", "sigma": 0.4, "max": "2s"},
    "tokens_per_second": 200,
}
_chaos_log = logging.getLogger("failover.chaos")


def build_router(
    config: Config, *, clock: Clock, seed: int, notes: list[str] | None = None
) -> tuple[Router, dict[str, FaultInjector]]:
    """A router for `config` whose deployments are simulated and fault-injectable."""
    injectors: dict[str, FaultInjector] = {}

    def deployment(dep: DeploymentConfig) -> FaultInjector:
        if dep.key not in injectors:
            inner = _simulated(config, dep, clock, seed, notes)
            base = ChaosConfig.model_validate(dep.chaos or {})
            rng = random.Random(f"{seed}:chaos:{dep.key}")
            with _quiet_chaos():  # a drill's own `chaos:` faults are the point, not news
                injectors[dep.key] = FaultInjector(inner, base, clock=clock, rng=rng)
        return injectors[dep.key]

    router = from_config(
        config,
        clock=clock,
        store=MemoryStore(clock=clock, rng=random.Random(f"{seed}:store")),
        deployment_factory=deployment,
        rng=random.Random(f"{seed}:router"),
    )
    return router, injectors


@contextlib.contextmanager
def _quiet_chaos() -> Iterator[None]:
    level = _chaos_log.level
    _chaos_log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        _chaos_log.setLevel(level)


def _simulated(
    config: Config, dep: DeploymentConfig, clock: Clock, seed: int, notes: list[str] | None
) -> SimulatedProvider:
    provider = config.providers[dep.provider]
    options = provider.options if isinstance(provider.options, SimulatedOptions) else STAND_IN
    if provider.kind != "simulated" and notes is not None:
        notes.append(
            f"{dep.key}: provider {dep.provider!r} is kind {provider.kind}; "
            "a simulated deployment stands in for it"
        )
    return SimulatedProvider(
        name=dep.key,
        model=dep.model,
        options=options,
        weight=dep.weight,
        timeout=dep.timeout,
        clock=clock,
        rng=random.Random(f"{seed}:sim:{dep.key}"),
    )


class LocalTarget:
    """Drives the real router in this process; sees every call, breaker and health change."""

    def __init__(
        self, config: Config, route: str, *, clock: Clock, seed: int, fast: bool = True
    ) -> None:
        self.mode: Mode = "fast" if fast else "real"
        self.route = route
        self.notes: list[str] = []
        self.router, self.injectors = build_router(config, clock=clock, seed=seed, notes=self.notes)
        self._base = {name: inj.faults for name, inj in self.injectors.items()}
        self.deployments = [s.name for s in self.router.plan(route).slots]
        for name in self.router.deployments():
            if name not in self.deployments:
                self.deployments.append(name)
        self._clock = clock
        self._recorder: Recorder | None = None
        self._log_level = _chaos_log.level
        health = config.defaults.health
        self.health: HealthChecker | None = None
        if health.enabled:  # as the gateway does: probes mark deployments down and back up
            rng = random.Random(f"{seed}:health")
            self.health = HealthChecker(self.router, health, clock=clock, rng=rng)

    def attach(self, recorder: Recorder) -> None:
        self._recorder = recorder
        self.router.hooks.attempt.append(self._on_attempt)
        self.router.hooks.event.append(self._on_event)
        self.router.hooks.stream.append(recorder.stream_break)
        self.router.store.subscribe(self._on_breaker)
        # switching faults on is the point here: the chaos warning would only be noise
        _chaos_log.setLevel(logging.ERROR)

    async def start(self) -> None:
        if self.health is not None:
            await self.health.start()

    async def send(self, request: Request, stream: bool) -> Outcome:
        start = self._clock.now()
        try:
            if stream:
                reply = await self.router.open_stream(self.route, request)
                return await self._read(reply, self._clock.now() - start)
            done = await self.router.complete(self.route, request)
            return Outcome(True, "ok", len(done.trace.calls), done.deployment)
        except RequestFailed as exc:
            return Outcome(False, exc.kind.value, len(exc.trace.calls))
        except FailoverError as exc:
            return Outcome(False, getattr(exc, "kind", Kind.SERVER_ERROR).value, 0)

    async def _read(self, reply: StreamReply, ttft: float) -> Outcome:
        """Read a committed stream to its end: whole (perhaps recovered), or broken."""
        try:
            async for _ in reply:
                pass
        except StreamInterrupted as exc:
            calls, recovered = len(exc.trace.calls), reply.recoveries
            kind = exc.kind.value
            return Outcome(False, kind, calls, None, ttft, recovered + 1, recovered)
        recovered = reply.recoveries
        calls = len(reply.trace.calls)
        return Outcome(True, "ok", calls, reply.deployment, ttft, recovered, recovered)

    async def switch(self, deployment: str, faults: list[BaseFault]) -> bool:
        # faults from the deployment's own `chaos:` config stay on under the timeline's
        base = self._base[deployment]
        self.injectors[deployment].set_faults(ChaosConfig(faults=[*base, *faults]))
        return True

    def breakers(self) -> dict[str, str]:
        return {d: self.router.breaker(d).state.value for d in self.deployments}

    def sample(self) -> None:
        if self._recorder is not None:
            for name in self.deployments:
                self._recorder.health(name, self.router.store.is_healthy(name))

    async def aclose(self) -> None:
        if self.health is not None:
            await self.health.stop()
        _chaos_log.setLevel(self._log_level)
        await self.router.aclose()

    # -- listeners --

    def _on_attempt(self, attempt: Attempt) -> None:
        if self._recorder is None:
            return
        kind = "cancelled" if attempt.cancelled else attempt.kind.value
        self._recorder.call(attempt.deployment, attempt.latency, kind)
        if attempt.kind is Kind.RATE_LIMITED:
            until = self.router.store.cooldown_until(attempt.deployment)
            self._recorder.cooldown(attempt.deployment, until)

    def _on_breaker(self, event: BreakerEvent) -> None:
        if self._recorder is not None:
            self._recorder.breaker(event.name, event.new.value)

    def _on_event(self, event: Event) -> None:
        # whatever shape the health checker's events take, the store knows the verdict
        if self._recorder is not None and event.type == "health" and event.deployment:
            healthy = self.router.store.is_healthy(event.deployment)
            self._recorder.health(event.deployment, healthy)
