"""Fault injection: a `FaultInjector` wraps any deployment and speaks the same interface, the way
an httpx transport wraps another, so failover can be tested against errors, latency, hangs,
resets, 429s, broken or quirky streams, refused prefills and timed outages on demand.

Faults come from config (a deployment's `chaos:` section, typed by
`failover.config.ChaosConfig` and checked when the config loads) or from Python, and can be
replaced at runtime (`set_faults`, `clear`, `enabled`) by the admin API. All waiting goes
through the injected `Clock`, so a `FakeClock` makes outages run in virtual time.

    chaos:
      seed: 7
      faults:
        - {type: error, status: 503, rate: 30%}
        - {type: latency, dist: lognormal, median: 200ms, sigma: 0.5}
        - {type: hang, rate: 0.1, start: 30s, end: 60s}
        - {type: rate_limit, retry_after: 2s}
        - {type: cut_stream, after_chunks: 3}
        - {type: stall_stream, after_chunks: 5, duration: 30s}
        - {type: malformed_event, after_chunks: 2}
        - {type: no_terminator}
        - {type: refuse_prefill}
        - {type: reset}

Stream faults act inside a stream that has started: `cut_stream` drops it after N chunks,
`stall_stream` goes silent after N chunks (on the injector's clock) and then drops it,
`malformed_event` slips unreadable events into an otherwise whole stream, `no_terminator` ends
it right after its finish reason. `refuse_prefill` answers a request ending with an assistant
message with a 400, as a provider without assistant prefill does.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import TypeAdapter

from .clock import Clock, SystemClock
from .config import (
    BaseFault,
    ChaosConfig,
    CutStreamFault,
    Delay,
    ErrorFault,
    Fault,
    HangFault,
    LatencyFault,
    MalformedEventFault,
    NoTerminatorFault,
    Operation,
    RateLimitFault,
    RefusePrefillFault,
    ResetFault,
    StallStreamFault,
    StreamFault,
)
from .errors import ConnectionFailed
from .resilience.streams import Prefill
from .types import BaseDeployment, Chunk, Completion, Payload, Request

__all__ = [
    "BaseFault",
    "ChaosConfig",
    "CutStreamFault",
    "Delay",
    "ErrorFault",
    "Fault",
    "FaultInjector",
    "HangFault",
    "LatencyFault",
    "MalformedEventFault",
    "NoTerminatorFault",
    "RateLimitFault",
    "RefusePrefillFault",
    "ResetFault",
    "StallStreamFault",
    "StreamFault",
    "wrap_if_configured",
]

logger = logging.getLogger("failover.chaos")

_D = TypeVar("_D", bound="BaseDeployment")  # an Adapter stays an Adapter once wrapped


FaultsLike = ChaosConfig | Sequence[BaseFault | Mapping[str, Any]] | Mapping[str, Any] | None
_FAULT_LIST: TypeAdapter[list[Fault]] = TypeAdapter(list[Fault])
_GARBLED = b'{"choices": [{"delta": '  # what a malformed_event sends: a JSON object cut short


def _coerce(faults: FaultsLike) -> ChaosConfig:
    # a config's `chaos:` arrives typed; Python callers and the admin API may pass mappings
    if faults is None:
        return ChaosConfig()
    if isinstance(faults, ChaosConfig):
        return faults
    if isinstance(faults, Mapping):
        return ChaosConfig.model_validate(faults)
    return ChaosConfig(faults=_FAULT_LIST.validate_python(list(faults)))


class FaultInjector(BaseDeployment):
    """A deployment wrapped with fault injection; same interface as the deployment it wraps."""

    def __init__(
        self,
        inner: BaseDeployment,
        faults: FaultsLike = None,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        epoch: float | None = None,
    ) -> None:
        config = _coerce(faults)
        self.inner = inner
        self.name: str = inner.name
        self.model: str = inner.model
        self.weight: float = inner.weight
        self.timeout: float | None = inner.timeout
        self.injected: Counter[str] = Counter()  # faults fired, by type
        self._clock = clock or SystemClock()
        self._rng = rng or random.Random(config.seed)
        self._faults: tuple[BaseFault, ...] = ()
        self._on = False
        self._armed = False  # _on and _faults: the one check a call pays when nothing is set
        self._epoch = 0.0
        self._apply(config, epoch)

    @property
    def prefill(self) -> Prefill:
        """The wrapped deployment's: a recovery may continue an answer on it (or be refused,
        with a `refuse_prefill` fault)."""
        return self.inner.prefill

    @prefill.setter
    def prefill(self, value: Prefill) -> None:
        self.inner.prefill = value

    @property
    def dialects(self) -> frozenset[str]:  # type: ignore[override]
        """The wrapped deployment's: client APIs it takes as they are."""
        return self.inner.dialects

    # -- runtime switching (the admin API's outage button) --

    @property
    def faults(self) -> tuple[BaseFault, ...]:
        return self._faults

    @property
    def enabled(self) -> bool:
        """True when injection is switched on and there is something to inject."""
        return self._armed

    @enabled.setter
    def enabled(self, value: bool) -> None:
        was = self._armed
        self._on = value
        self._arm()
        if self._armed and not was:
            self._warn()

    def set_faults(self, faults: FaultsLike, *, epoch: float | None = None) -> None:
        """Replace the faults; time windows restart from `epoch` (default: now)."""
        config = _coerce(faults)
        if config.seed is not None:
            self._rng.seed(config.seed)
        self._apply(config, epoch)

    def clear(self) -> None:
        """Stop injecting anything."""
        self._faults = ()
        self._arm()
        logger.info("chaos cleared on %s", self.name)

    def describe(self) -> dict[str, Any]:
        """A JSON-able view: the faults (re-parseable), which are active now, how many fired."""
        elapsed = self._clock.now() - self._epoch
        return {
            "deployment": self.name,
            "enabled": self.enabled,
            "elapsed": elapsed,
            "faults": [_dump(f) for f in self._faults],
            "active": [self.enabled and f.active(elapsed) for f in self._faults],
            "injected": dict(self.injected),
        }

    def _apply(self, config: ChaosConfig, epoch: float | None) -> None:
        self._faults = tuple(config.faults)
        self._on = config.enabled
        self._epoch = self._clock.now() if epoch is None else epoch
        self._arm()
        if self._armed:
            self._warn()

    def _arm(self) -> None:
        self._armed = self._on and bool(self._faults)

    def _warn(self) -> None:
        # loud and once per (re)configuration, never per call: chaos in production must be noticed
        faults = "; ".join(f.label() for f in self._faults)
        logger.warning("CHAOS ENABLED on %s: calls will fail on purpose (%s)", self.name, faults)

    # -- the deployment interface --

    # Unarmed, `complete` and `stream` hand back the inner deployment's own coroutine and
    # iterator: no extra frame, await or per-chunk hop, so every deployment can carry an
    # injector for the admin API at the cost of one attribute check per call.

    def complete(self, request: Request) -> Coroutine[Any, Any, Completion]:
        if self._armed:
            return self._complete(request)
        return self.inner.complete(request)

    def stream(self, request: Request) -> AsyncIterator[Chunk]:
        if self._armed:
            return self._stream(request)
        return self.inner.stream(request)

    def complete_native(
        self, dialect: str, request: Request, headers: Mapping[str, str]
    ) -> Coroutine[Any, Any, Payload]:
        if self._armed:
            return self._complete_native(dialect, request, headers)
        return self.inner.complete_native(dialect, request, headers)

    def stream_native(
        self, dialect: str, request: Request, headers: Mapping[str, str]
    ) -> AsyncIterator[Chunk]:
        if self._armed:
            return self._stream(request, self.inner.stream_native(dialect, request, headers))
        return self.inner.stream_native(dialect, request, headers)

    async def _complete(self, request: Request) -> Completion:
        await self._before("complete", request)
        return await self.inner.complete(request)

    async def _complete_native(
        self, dialect: str, request: Request, headers: Mapping[str, str]
    ) -> Payload:
        await self._before("complete", request)
        return await self.inner.complete_native(dialect, request, headers)

    async def _stream(
        self, request: Request, inner: AsyncIterator[Chunk] | None = None
    ) -> AsyncIterator[Chunk]:
        due = await self._before("stream", request)
        source = inner if inner is not None else self.inner.stream(request)
        try:
            sent = 0  # chunks of the inner stream passed on
            async for chunk in source:
                for _ in range(due.malformed.pop(sent, 0)):
                    self.injected["malformed_event"] += 1
                    yield Chunk(raw=_GARBLED)
                if due.breaks is not None and sent >= due.breaks.after_chunks:
                    # the chunk just read is lost in transit, like everything after it
                    await self._break(due.breaks, sent)
                yield chunk
                sent += 1
                if due.no_terminator and _finishes(chunk):
                    self.injected["no_terminator"] += 1
                    return
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _break(self, fault: StreamFault, sent: int) -> None:
        """End the stream as `fault` says: cut now, or silent for its duration and then cut."""
        self.injected[fault.type] += 1
        if isinstance(fault, StallStreamFault):
            await self._clock.sleep(fault.duration)
            raise ConnectionFailed(
                f"stream silent for {fault.duration:g}s after {sent} chunks, then dropped (chaos)",
                deployment=self.name,
            )
        raise ConnectionFailed(f"stream cut after {sent} chunks (chaos)", deployment=self.name)

    async def probe(self) -> None:
        if self._armed:
            await self._before("probe", None)
        await self.inner.probe()

    async def embeddings(self, request: Request) -> Payload:
        if self._armed:
            await self._before("embeddings", request)
        return await self.inner.embeddings(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def _before(self, op: Operation, request: Request | None) -> _InStream:
        """Fire the faults due before this call answers; return those due inside its stream."""
        elapsed = self._clock.now() - self._epoch
        due = _InStream()
        for fault in self._faults:
            if not (
                fault.applies(op)
                and fault.active(elapsed)
                and fault.matches(request)
                and self._roll(fault.rate)
            ):
                continue
            if due.take(fault):
                continue
            self.injected[fault.type] += 1
            wait = fault.wait(self._rng)
            if wait is not None:
                await self._clock.sleep(wait)
            if (error := fault.error(self.name)) is not None:
                raise error
        return due

    def _roll(self, rate: float) -> bool:
        # rates of 0 and 1 draw nothing, so adding a certain fault keeps other draws reproducible
        return rate >= 1 or (rate > 0 and self._rng.random() < rate)

    def __repr__(self) -> str:
        state = "ON" if self.enabled else "off"
        faults = ", ".join(f.label() for f in self._faults) or "no faults"
        return f"<FaultInjector {self.name} {state}: {faults}>"


class _InStream:
    """The faults due inside one stream: where it breaks (the earliest cut or stall), where
    unreadable events go, and whether it ends at its finish reason."""

    __slots__ = ("breaks", "malformed", "no_terminator")

    def __init__(self) -> None:
        self.breaks: StreamFault | None = None
        self.malformed: dict[int, int] = {}  # after this many chunks -> unreadable events
        self.no_terminator = False

    def take(self, fault: BaseFault) -> bool:
        """Keep `fault` if it acts inside the stream; False if it acts before the call."""
        if isinstance(fault, CutStreamFault | StallStreamFault):
            if self.breaks is None or fault.after_chunks < self.breaks.after_chunks:
                self.breaks = fault
        elif isinstance(fault, MalformedEventFault):
            at = fault.after_chunks
            self.malformed[at] = self.malformed.get(at, 0) + fault.count
        elif isinstance(fault, NoTerminatorFault):
            self.no_terminator = True
        else:
            return False
        return True


def _finishes(chunk: Chunk) -> bool:
    """Whether `chunk` carries a finish reason."""
    try:
        choices = chunk.body.get("choices")
    except ValueError:
        return False
    return any(isinstance(c, dict) and c.get("finish_reason") for c in choices or ())


def _dump(fault: BaseFault) -> dict[str, Any]:
    return {"type": fault.type, **fault.model_dump(mode="json", exclude_defaults=True)}


def wrap_if_configured(
    adapter: _D,
    chaos: ChaosConfig | None,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    always: bool = False,
) -> _D | FaultInjector:
    """`adapter` inside a FaultInjector when `chaos` is configured (or `always`), else itself.

    `always` wraps every deployment, faultless, so the admin API can start an outage later.
    `chaos` comes validated from the config (`DeploymentConfig.chaos`).
    """
    if chaos is None and not always:
        return adapter
    return FaultInjector(adapter, chaos, clock=clock, rng=rng)
