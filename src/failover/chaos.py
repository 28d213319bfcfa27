"""Fault injection: a `FaultInjector` wraps any deployment and speaks the same interface, the way
an httpx transport wraps another, so failover can be tested against errors, latency, hangs,
resets, 429s, cut streams and timed outages on demand.

Faults come from config (a deployment's `chaos:` mapping, validated by `ChaosConfig`) or from
Python, and can be replaced at runtime (`set_faults`, `clear`, `enabled`) by the admin API. All
waiting goes through the injected `Clock`, so a `FakeClock` makes outages run in virtual time.

    chaos:
      seed: 7
      faults:
        - {type: error, status: 503, rate: 30%}
        - {type: latency, dist: lognormal, median: 200ms, sigma: 0.5}
        - {type: hang, rate: 0.1, start: 30s, end: 60s}
        - {type: rate_limit, retry_after: 2s}
        - {type: cut_stream, after_chunks: 3}
        - {type: reset}
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from .classify import classify_status
from .clock import Clock, SystemClock
from .config import Duration, Rate, format_validation_error
from .errors import (
    AttemptTimeout,
    ConfigError,
    ConnectionFailed,
    Kind,
    ProviderError,
    RateLimited,
    error_for,
)
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
    "RateLimitFault",
    "ResetFault",
    "wrap_if_configured",
]

logger = logging.getLogger("failover.chaos")

Seconds = Duration
Fraction = Annotated[Rate, Field(ge=0, le=1)]
Operation = Literal["complete", "stream", "probe", "embeddings"]
_D = TypeVar("_D", bound="BaseDeployment")  # an Adapter stays an Adapter once wrapped

# A hang is a sleep on the clock rather than an unresolvable future, so that virtual time
# (autojump, the simulator's fast mode) still terminates if nothing ever cancels the call.
_HANG_FOR = 7 * 24 * 3600.0
_STATUS_OF_KIND = {
    Kind.RATE_LIMITED: 429,
    Kind.OVERLOADED: 503,
    Kind.SERVER_ERROR: 500,
    Kind.AUTH: 401,
    Kind.NOT_FOUND: 404,
    Kind.CONTEXT_WINDOW: 400,
    Kind.CONTENT_FILTER: 400,
    Kind.BAD_REQUEST: 400,
}
_DIST_FIELDS = {
    "fixed": frozenset({"value"}),
    "uniform": frozenset({"low", "high"}),
    "lognormal": frozenset({"median", "sigma", "max"}),
}
_ALL_DIST_FIELDS = frozenset().union(*_DIST_FIELDS.values())


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Delay(_Strict):
    """A random duration in seconds: fixed, uniform(low, high) or lognormal around a median."""

    dist: Literal["fixed", "uniform", "lognormal"] = "fixed"
    value: Seconds = 0.0
    low: Seconds = 0.0
    high: Seconds = 0.0
    median: Seconds = 0.0
    sigma: float = Field(0.5, ge=0, le=5)
    max: Seconds | None = None  # caps the lognormal's long tail

    @model_validator(mode="before")
    @classmethod
    def _scalar_is_fixed(cls, data: Any) -> Any:
        if isinstance(data, int | float | str) and not isinstance(data, bool):
            return {"dist": "fixed", "value": data}
        return data

    @model_validator(mode="after")
    def _fields_fit_dist(self) -> Delay:
        stray = sorted((self.model_fields_set & _ALL_DIST_FIELDS) - _DIST_FIELDS[self.dist])
        if stray:
            takes = ", ".join(sorted(_DIST_FIELDS[self.dist]))
            raise ValueError(f"{', '.join(stray)} not used by dist {self.dist} (it takes {takes})")
        if self.dist == "uniform" and self.high < self.low:
            raise ValueError("uniform needs high >= low")
        if self.dist == "lognormal" and self.median <= 0:
            raise ValueError("lognormal needs a median > 0")
        return self

    def sample(self, rng: random.Random) -> float:
        """One draw, in seconds."""
        if self.dist == "fixed":
            return self.value
        if self.dist == "uniform":
            return rng.uniform(self.low, self.high)
        drawn = rng.lognormvariate(math.log(self.median), self.sigma)
        return drawn if self.max is None else min(drawn, self.max)

    def label(self) -> str:
        if self.dist == "fixed":
            return f"{self.value:g}s"
        if self.dist == "uniform":
            return f"uniform {self.low:g}-{self.high:g}s"
        return f"lognormal median {self.median:g}s sigma {self.sigma:g}"


class BaseFault(_Strict):
    """What every fault has: how often it fires, and the time window it is active in."""

    type: str
    rate: Fraction = 1.0
    start: Seconds = 0.0  # seconds after the injector's epoch (creation or last set_faults)
    end: Seconds | None = None
    probe: bool = True  # also fail health probes, as a real outage would

    @model_validator(mode="after")
    def _window_ordered(self) -> BaseFault:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def active(self, elapsed: float) -> bool:
        return self.start <= elapsed and (self.end is None or elapsed < self.end)

    def applies(self, op: Operation) -> bool:
        return op != "probe" or self.probe

    async def inject(self, clock: Clock, rng: random.Random, deployment: str) -> None:
        """Act before the inner call: sleep, or raise the fault's error."""

    def label(self) -> str:
        rate = "" if self.rate == 1 else f" {self.rate:.0%}"
        start = f" from {self.start:g}s" if self.start else ""
        end = f" until {self.end:g}s" if self.end is not None else ""
        return f"{self._what()}{rate}{start}{end}"

    def _what(self) -> str:
        return self.type


class ErrorFault(BaseFault):
    """The call fails with an HTTP-like error: `status` (500 -> ServerError, 529 -> Overloaded)."""

    type: Literal["error"] = "error"
    status: int | None = Field(None, ge=400, le=599)
    kind: Kind | None = None  # defaults to what `status` classifies as
    message: str | None = None
    retry_after: Seconds | None = None

    @model_validator(mode="after")
    def _kind_is_failure(self) -> ErrorFault:
        if self.kind is Kind.OK:
            raise ValueError("kind must be a failure, not ok")
        return self

    def error(self, deployment: str) -> ProviderError:
        kind = self.kind or classify_status(self.status or 500, self.message or "")
        status = self.status if self.status is not None else _STATUS_OF_KIND.get(kind)
        what = f"{status} {kind.value}" if status is not None else kind.value
        message = self.message or f"injected {what} (chaos)"
        return error_for(
            kind, message, status=status, retry_after=self.retry_after, deployment=deployment
        )

    async def inject(self, clock: Clock, rng: random.Random, deployment: str) -> None:
        raise self.error(deployment)

    def _what(self) -> str:
        return f"error {self.status or ''} {self.kind.value if self.kind else ''}".strip()


class LatencyFault(BaseFault, Delay):
    """Extra time before the call (before the first chunk of a stream)."""

    type: Literal["latency"] = "latency"

    async def inject(self, clock: Clock, rng: random.Random, deployment: str) -> None:
        await clock.sleep(self.sample(rng))

    def _what(self) -> str:
        return f"latency {Delay.label(self)}"


class HangFault(BaseFault):
    """The call never answers: it waits until the caller's timeout cancels it."""

    type: Literal["hang"] = "hang"

    async def inject(self, clock: Clock, rng: random.Random, deployment: str) -> None:
        await clock.sleep(_HANG_FOR)
        raise AttemptTimeout("hung until given up (chaos)", deployment=deployment)


class ResetFault(BaseFault):
    """The connection is reset before any answer."""

    type: Literal["reset"] = "reset"

    async def inject(self, clock: Clock, rng: random.Random, deployment: str) -> None:
        raise ConnectionFailed("connection reset by peer (chaos)", deployment=deployment)


class RateLimitFault(BaseFault):
    """A 429 with a Retry-After."""

    type: Literal["rate_limit"] = "rate_limit"
    retry_after: Seconds | None = 1.0

    async def inject(self, clock: Clock, rng: random.Random, deployment: str) -> None:
        raise RateLimited(
            "rate limited (chaos)", status=429, retry_after=self.retry_after, deployment=deployment
        )


class CutStreamFault(BaseFault):
    """A stream's connection dies after `after_chunks` chunks (streams only)."""

    type: Literal["cut_stream"] = "cut_stream"
    after_chunks: int = Field(1, ge=0)

    def applies(self, op: Operation) -> bool:
        return op == "stream"

    def _what(self) -> str:
        return f"cut_stream after {self.after_chunks} chunks"


def _fault_tag(value: Any) -> str | None:
    if isinstance(value, BaseFault):
        return value.type
    if isinstance(value, Mapping):
        tag = value.get("type")
        if tag is None and "kind" in value:
            return "error"  # {kind: server_error, ...} reads naturally as an error fault
        return tag if isinstance(tag, str) else None
    return None


Fault = Annotated[
    Annotated[ErrorFault, Tag("error")]
    | Annotated[LatencyFault, Tag("latency")]
    | Annotated[HangFault, Tag("hang")]
    | Annotated[ResetFault, Tag("reset")]
    | Annotated[RateLimitFault, Tag("rate_limit")]
    | Annotated[CutStreamFault, Tag("cut_stream")],
    Discriminator(
        _fault_tag,
        custom_error_type="fault_type",
        custom_error_message=(
            "a fault needs a type: error, latency, hang, reset, rate_limit or cut_stream"
        ),
    ),
]


class ChaosConfig(_Strict):
    """The faults to inject into one deployment, as written under a deployment's `chaos:`."""

    enabled: bool = True
    seed: int | None = None  # makes the random draws reproducible
    faults: list[Fault] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: Any) -> Any:
        return {"faults": data} if isinstance(data, list | tuple) else data


FaultsLike = ChaosConfig | Sequence[BaseFault | Mapping[str, Any]] | Mapping[str, Any] | None
_FAULT_LIST: TypeAdapter[list[Fault]] = TypeAdapter(list[Fault])


def _coerce(faults: FaultsLike) -> ChaosConfig:
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

    async def _complete(self, request: Request) -> Completion:
        await self._before("complete")
        return await self.inner.complete(request)

    async def _stream(self, request: Request) -> AsyncIterator[Chunk]:
        cut = await self._before("stream")
        source = self.inner.stream(request)
        try:
            sent = 0
            async for chunk in source:
                if cut is not None and sent >= cut:
                    # the chunk just read is lost in transit, like everything after it
                    self.injected["cut_stream"] += 1
                    raise ConnectionFailed(
                        f"stream cut after {sent} chunks (chaos)", deployment=self.name
                    )
                yield chunk
                sent += 1
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

    async def probe(self) -> None:
        if self._armed:
            await self._before("probe")
        await self.inner.probe()

    async def embeddings(self, request: Request) -> Payload:
        if self._armed:
            await self._before("embeddings")
        return await self.inner.embeddings(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def _before(self, op: Operation) -> int | None:
        """Fire the faults due for this call; for streams, return where to cut (or None)."""
        elapsed = self._clock.now() - self._epoch
        cut: int | None = None
        for fault in self._faults:
            if not (fault.applies(op) and fault.active(elapsed) and self._roll(fault.rate)):
                continue
            if isinstance(fault, CutStreamFault):
                cut = fault.after_chunks if cut is None else min(cut, fault.after_chunks)
                continue
            self.injected[fault.type] += 1
            await fault.inject(self._clock, self._rng, self.name)
        return cut

    def _roll(self, rate: float) -> bool:
        # rates of 0 and 1 draw nothing, so adding a certain fault keeps other draws reproducible
        return rate >= 1 or (rate > 0 and self._rng.random() < rate)

    def __repr__(self) -> str:
        state = "ON" if self.enabled else "off"
        faults = ", ".join(f.label() for f in self._faults) or "no faults"
        return f"<FaultInjector {self.name} {state}: {faults}>"


def _dump(fault: BaseFault) -> dict[str, Any]:
    return {"type": fault.type, **fault.model_dump(mode="json", exclude_defaults=True)}


def wrap_if_configured(
    adapter: _D,
    chaos: ChaosConfig | Mapping[str, Any] | None,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    always: bool = False,
) -> _D | FaultInjector:
    """`adapter` inside a FaultInjector when `chaos` is configured (or `always`), else itself.

    `always` wraps every deployment, faultless, so the admin API can start an outage later.
    """
    if not chaos and not always:
        return adapter
    try:
        config = _coerce(chaos)
    except ValidationError as exc:
        raise ConfigError(_chaos_error(adapter.name, exc)) from None
    return FaultInjector(adapter, config, clock=clock, rng=rng)


def _chaos_error(name: str, exc: ValidationError) -> str:
    header = f"invalid chaos config for deployment {name!r}"
    return format_validation_error(exc, header=header, prefix="chaos")
