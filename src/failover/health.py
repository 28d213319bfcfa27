"""Active health checks: every deployment is probed in the background, Envoy style.

    every `interval` (+-`jitter`)   probe the deployment: `adapter.probe()` (a cheap GET of the
                                    models list), or a one-token canary completion when
                                    `probe: canary`; at most one probe in flight per deployment
    `unhealthy_after` failures      in a row mark it unhealthy: the router skips it
    `healthy_after` successes       in a row mark it healthy again
    any success                     tells its breaker, so an OPEN breaker may go HALF_OPEN early

While a deployment's breaker is not closed its traffic failed, and a models list that still
answers proves little: it is probed every `recovery_interval` (3 s) with `recovery_probe` (a
one-token completion by default), so a recovered deployment is back within seconds, and one
that still fails is not let half-open only to fail its trial and stay out for longer.

A probe that ends in a rate limit (or another outcome that is not the deployment's fault, such as
a canary the provider rejects as a bad request) proves nothing either way and changes nothing.
Nor does one that failed while the process itself was saturated — the event loop lagging, or
the probe waiting for one of our own connections — by the router's own rule (`local_cause`).
HTTP probes go over each provider's small probe pool, never queued behind traffic.
Every healthy <-> unhealthy change is an `Event` of type "health" on the router's hooks.
With a shared store that offers leases (Redis), one replica at a time probes each deployment.
Everything runs on the injected clock, so tests drive it with a `FakeClock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ._local import CURRENT_CALL, CallInfo, LoopLag, local_cause
from .clock import Clock, SystemClock, deadline_scope
from .config import HealthConfig
from .errors import Kind, ProviderError
from .events import Event, Hooks
from .resilience.breaker import BreakerState
from .router import Router
from .state.base import BreakerLike, StateStore
from .types import BaseDeployment

__all__ = ["CANARY_REQUEST", "HealthChecker", "ProbeResult"]

log = logging.getLogger("failover.health")

CANARY_REQUEST: dict[str, Any] = {
    "messages": [{"role": "user", "content": "ping"}],
    "max_tokens": 1,
}
_MESSAGE_MAX = 200


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """How one probe ended. `ok` is None when the outcome proves nothing (a rate limit, or a
    failure of our own making: then `local` says which, "loop_lag" or "pool_wait")."""

    deployment: str
    ok: bool | None
    kind: Kind
    latency: float  # seconds
    at: float  # wall-clock seconds when the probe finished
    message: str = ""
    local: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "outcome": self.kind.value,
            "latency_ms": round(self.latency * 1000, 3),
            "at": self.at,
            **({"message": self.message} if self.message else {}),
            **({"local": self.local} if self.local else {}),
        }


ProbeListener = Callable[[ProbeResult], None]


class _Target:
    """One probed deployment: its counters and whether a probe of it is running."""

    __slots__ = ("deployment", "failures", "idle", "last", "name", "probes", "successes")

    def __init__(self, name: str, deployment: BaseDeployment) -> None:
        self.name = name
        self.deployment = deployment
        self.failures = 0  # consecutive failed probes
        self.successes = 0  # consecutive passed probes
        self.probes = 0
        self.idle = asyncio.Event()
        self.idle.set()
        self.last: ProbeResult | None = None

    def busy(self) -> bool:
        """A probe of this deployment is in flight."""
        return not self.idle.is_set()


class HealthChecker:
    """Probes every deployment in the background and marks them healthy or unhealthy."""

    def __init__(
        self,
        source: Router | Mapping[str, BaseDeployment] | Iterable[BaseDeployment],
        config: HealthConfig | None = None,
        *,
        store: StateStore | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        hooks: Hooks | None = None,
        breaker: Callable[[str], BreakerLike] | None = None,
        lag: LoopLag | None = None,
    ) -> None:
        """`lag`: the event-loop lag sampler that tells our saturation from a deployment's
        failure (default: the router's)."""
        router: Router | None = None
        deployments: Mapping[str, BaseDeployment]
        if isinstance(source, Router):
            router = source
            deployments = router.deployments()
        elif isinstance(source, Mapping):
            deployments = source
        else:
            deployments = {d.name: d for d in source}
        resolved_store = store or (router.store if router is not None else None)
        if resolved_store is None:
            raise ValueError("HealthChecker needs a router or a store")
        self.config = config or HealthConfig()
        self.store: StateStore = resolved_store
        self.clock: Clock = clock or (router.clock if router is not None else SystemClock())
        self.rng = rng or random.Random()
        self.hooks = hooks or (router.hooks if router is not None else None)
        self._breaker = breaker or (router.breaker if router is not None else None)
        self.lag = lag or (router.lag if router is not None else None)
        self.listeners: list[ProbeListener] = []
        self._targets = {
            name: _Target(name, dep)
            for name, dep in deployments.items()
            if self.config.probe == "canary" or dep.probes
        }
        self._tasks: list[asyncio.Task[None]] = []

    # -- reading -----------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return bool(self._tasks)

    def names(self) -> list[str]:
        """The deployments this checker probes."""
        return list(self._targets)

    def last(self, name: str) -> ProbeResult | None:
        """The latest probe result of a deployment, or None before its first probe."""
        target = self._targets.get(name)
        return target.last if target is not None else None

    def status(self, name: str) -> dict[str, Any] | None:
        """A JSON-able summary of a deployment's probes (None when it is not probed)."""
        target = self._targets.get(name)
        if target is None:
            return None
        return {
            "probe": self.config.probe,
            "probes": target.probes,
            "consecutive_failures": target.failures,
            "consecutive_successes": target.successes,
            "in_flight": target.busy(),
            "last": target.last.to_dict() if target.last is not None else None,
        }

    # -- running -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start one background probe loop per deployment (nothing when disabled)."""
        if self._tasks or not self.config.enabled:
            return
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._loop(target), name=f"failover-health:{target.name}")
            for target in self._targets.values()
        ]
        await asyncio.sleep(0)  # let every loop reach its first wait on the clock

    async def stop(self) -> None:
        """Cancel the probe loops and wait for them to end."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def __aenter__(self) -> HealthChecker:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def check_all(self) -> dict[str, ProbeResult]:
        """Probe every deployment once, now, concurrently (for `failover check`)."""
        names = list(self._targets)
        results = await asyncio.gather(*(self.check(name) for name in names))
        return dict(zip(names, results, strict=True))

    async def check(self, name: str) -> ProbeResult:
        """Probe one deployment now and record the result.

        While a probe of it is already in flight, wait for that one instead of starting another.
        """
        target = self._targets[name]
        if target.busy():
            seen = target.probes
            while target.busy():
                await target.idle.wait()
            if target.probes != seen and target.last is not None:
                return target.last
        target.idle.clear()
        try:
            result = await self._probe(target)
        finally:
            target.idle.set()
        self._record(target, result)
        return result

    async def _loop(self, target: _Target) -> None:
        await self.clock.sleep(self.rng.uniform(0.0, self.config.interval * self.config.jitter))
        while True:
            started = self.clock.now()
            try:
                if await self._leased(target.name):
                    await self.check(target.name)
            except Exception:  # a bug in a listener or the store must not end the loop
                log.exception("health check of %s failed", target.name)
            await self._wait_after(target.name, started)

    async def _wait_after(self, name: str, started: float) -> None:
        """Sleep until the next probe of `name` is due. A breaker that opens meanwhile makes
        it due `recovery_interval` after the last one, so a regular interval of 15 s does not
        delay the first canary by up to 15 s."""
        due = started + self._interval_of(name)
        step = self.config.recovery_interval
        while (now := self.clock.now()) < due:
            await self.clock.sleep(min(due - now, step))
            if self._recovering(name):
                due = min(due, started + step)

    def _recovering(self, name: str) -> bool:
        """Its breaker opened on failed traffic (not drained or disabled by an operator, whom
        a passing probe does not overrule)."""
        if self._breaker is None:
            return False
        return self._breaker(name).state in (BreakerState.OPEN, BreakerState.HALF_OPEN)

    def _interval_of(self, name: str) -> float:
        if self._recovering(name):
            return self.config.recovery_interval
        return self.next_interval()

    async def _leased(self, name: str) -> bool:
        """With a shared store, one replica probes each deployment: the one holding its lease
        (renewed at every probe, so it expires only when that replica stops probing)."""
        config = self.config
        ttl = config.interval * (1 + config.jitter) + config.timeout + 1.0
        return await self.store.try_lease(f"health:{name}", ttl)

    def next_interval(self) -> float:
        """Seconds from one probe's start to the next: interval +- jitter, uniformly."""
        spread = self.config.jitter * (2 * self.rng.random() - 1)
        return self.config.interval * (1 + spread)

    # -- one probe ---------------------------------------------------------------------------

    async def _probe(self, target: _Target) -> ProbeResult:
        started = self.clock.now()
        info = CallInfo(started=asyncio.get_running_loop().time(), probe=True)
        kind, message = await self._outcome(target, info)
        latency = self.clock.now() - started
        local = local_cause(kind, info, latency, self.lag)  # the router's own rule
        ok = True if kind is Kind.OK else (False if kind.policy.breaker_failure else None)
        return ProbeResult(
            target.name,
            None if local is not None else ok,
            kind,
            latency,
            self.clock.wall(),
            message[:_MESSAGE_MAX],
            local,
        )

    async def _outcome(self, target: _Target, info: CallInfo) -> tuple[Kind, str]:
        """Probe within the timeout: the kind it ended with, and a message when it failed.

        The call is marked as a probe (`info`): HTTP adapters send it over their probe pool,
        which notes any wait for a connection in `info`, as it does for a routed call."""
        timeout = self.config.timeout
        token = CURRENT_CALL.set(info)
        try:
            async with deadline_scope(self.clock, self.clock.now() + timeout):
                await self._call(target.deployment, self._probe_kind(target.name))
        except TimeoutError:
            return Kind.TIMEOUT, f"no answer within {timeout:g}s"
        except ProviderError as err:
            return err.kind, err.message
        except Exception as exc:  # adapters should raise ProviderErrors only; be robust anyway
            log.debug("probe of %s raised %r", target.name, exc)
            return Kind.SERVER_ERROR, f"{type(exc).__name__}: {exc}"
        finally:
            CURRENT_CALL.reset(token)
        return Kind.OK, ""

    def _probe_kind(self, name: str) -> str:
        return self.config.recovery_probe if self._recovering(name) else self.config.probe

    async def _call(self, deployment: BaseDeployment, kind: str) -> None:
        if kind == "canary":
            await deployment.complete(dict(CANARY_REQUEST))
            return
        await deployment.probe()

    def _record(self, target: _Target, result: ProbeResult) -> None:
        target.probes += 1
        target.last = result
        if result.ok is True:
            target.successes += 1
            target.failures = 0
            self._tell_breaker(target.name)
            if target.successes >= self.config.healthy_after:
                self._mark(target, True, result)
        elif result.ok is False:
            target.failures += 1
            target.successes = 0
            if target.failures >= self.config.unhealthy_after:
                self._mark(target, False, result)
        for listener in self.listeners:
            try:
                listener(result)
            except Exception:
                log.exception("probe listener %r failed", listener)

    def _tell_breaker(self, name: str) -> None:
        if self._breaker is not None:
            self._breaker(name).probe_succeeded()

    def _mark(self, target: _Target, healthy: bool, result: ProbeResult) -> None:
        # read the store each time: another replica (or an operator) may have changed it
        if self.store.is_healthy(target.name) == healthy:
            return
        self.store.set_healthy(target.name, healthy)
        if healthy:
            text = f"{target.name} is healthy again after {target.successes} passed probe(s)"
            count = {"successes": target.successes}
        else:
            text = (
                f"{target.name} is unhealthy after {target.failures} failed probe(s): "
                f"{result.kind.value}"
            )
            count = {"failures": target.failures}
        if self.hooks is not None and self.hooks.event:
            data = {"healthy": healthy, "outcome": result.kind.value, **count}
            if result.message:
                data["error"] = result.message
            self.hooks.emit(
                Event("health", self.clock.wall(), text, deployment=target.name, data=data)
            )

    def __repr__(self) -> str:
        unhealthy = [n for n in self._targets if not self.store.is_healthy(n)]
        state = "running" if self._tasks else "stopped"
        return f"<HealthChecker {state} deployments={len(self._targets)} unhealthy={unhealthy}>"
