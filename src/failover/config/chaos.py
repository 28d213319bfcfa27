"""The schema of fault injection: a deployment's `chaos:` section and the faults it lists.

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

Each fault says what it does (`wait`, `error`, where in a stream) without doing it:
`failover.chaos.FaultInjector` waits on its clock, raises and rewrites streams, and the
simulated provider fails with an `ErrorFault`'s error.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, model_validator

from ..classify import classify_status
from ..errors import (
    AttemptTimeout,
    BadRequest,
    ConnectionFailed,
    Kind,
    ProviderError,
    RateLimited,
    error_for,
)
from .base import Duration, Fraction, StrictModel

__all__ = [
    "BaseFault",
    "ChaosConfig",
    "CutStreamFault",
    "Delay",
    "ErrorFault",
    "Fault",
    "HangFault",
    "LatencyFault",
    "MalformedEventFault",
    "NoTerminatorFault",
    "Operation",
    "RateLimitFault",
    "RefusePrefillFault",
    "ResetFault",
    "StallStreamFault",
    "StreamFault",
]

Operation = Literal["complete", "stream", "probe", "embeddings"]
Request = Mapping[str, Any]  # a chat request, as `failover.types.Request` (types sits above)

# A hang is a wait on the clock rather than an unresolvable future, so that virtual time
# (autojump, the simulator's fast mode) still terminates if nothing ever cancels the call.
HANG_FOR = 7 * 24 * 3600.0
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


class Delay(StrictModel):
    """A random duration in seconds: fixed, uniform(low, high) or lognormal around a median."""

    dist: Literal["fixed", "uniform", "lognormal"] = "fixed"
    value: Duration = 0.0
    low: Duration = 0.0
    high: Duration = 0.0
    median: Duration = 0.0
    sigma: float = Field(0.5, ge=0, le=5)
    max: Duration | None = None  # caps the lognormal's long tail

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
        """The distribution in a few words, for logs and the admin API."""
        if self.dist == "fixed":
            return f"{self.value:g}s"
        if self.dist == "uniform":
            return f"uniform {self.low:g}-{self.high:g}s"
        return f"lognormal median {self.median:g}s sigma {self.sigma:g}"


class BaseFault(StrictModel):
    """What every fault has: how often it fires, and the time window it is active in."""

    type: str
    rate: Fraction = 1.0
    start: Duration = 0.0  # seconds after the injector's epoch (creation or last set_faults)
    end: Duration | None = None
    probe: bool = True  # also fail health probes, as a real outage would

    @model_validator(mode="after")
    def _window_ordered(self) -> BaseFault:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    def active(self, elapsed: float) -> bool:
        """Whether the fault's time window holds `elapsed` seconds after the epoch."""
        return self.start <= elapsed and (self.end is None or elapsed < self.end)

    def applies(self, op: Operation) -> bool:
        """Whether the fault can fire on this kind of call."""
        return op != "probe" or self.probe

    def matches(self, request: Request | None) -> bool:
        """Whether the fault can fire on this request (None: a probe)."""
        return True

    def wait(self, rng: random.Random) -> float | None:
        """Seconds the call waits when the fault fires, before its error (None: no wait)."""
        return None

    def error(self, deployment: str) -> ProviderError | None:
        """The error the call fails with when the fault fires (None: it goes on)."""
        return None

    def label(self) -> str:
        """The fault in a few words, for logs and the admin API."""
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
    retry_after: Duration | None = None

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

    def _what(self) -> str:
        return f"error {self.status or ''} {self.kind.value if self.kind else ''}".strip()


class LatencyFault(BaseFault, Delay):
    """Extra time before the call (before the first chunk of a stream)."""

    type: Literal["latency"] = "latency"

    def wait(self, rng: random.Random) -> float:
        return self.sample(rng)

    def _what(self) -> str:
        return f"latency {Delay.label(self)}"


class HangFault(BaseFault):
    """The call never answers: it waits until the caller's timeout cancels it."""

    type: Literal["hang"] = "hang"

    def wait(self, rng: random.Random) -> float:
        return HANG_FOR

    def error(self, deployment: str) -> ProviderError:
        return AttemptTimeout("hung until given up (chaos)", deployment=deployment)


class ResetFault(BaseFault):
    """The connection is reset before any answer."""

    type: Literal["reset"] = "reset"

    def error(self, deployment: str) -> ProviderError:
        return ConnectionFailed("connection reset by peer (chaos)", deployment=deployment)


class RateLimitFault(BaseFault):
    """A 429 with a Retry-After."""

    type: Literal["rate_limit"] = "rate_limit"
    retry_after: Duration | None = 1.0

    def error(self, deployment: str) -> ProviderError:
        return RateLimited(
            "rate limited (chaos)", status=429, retry_after=self.retry_after, deployment=deployment
        )


class StreamFault(BaseFault):
    """A fault inside a stream, after it delivered `after_chunks` chunks (streams only)."""

    after_chunks: int = Field(1, ge=0)

    def applies(self, op: Operation) -> bool:
        return op == "stream"


class CutStreamFault(StreamFault):
    """A stream's connection dies after `after_chunks` chunks."""

    type: Literal["cut_stream"] = "cut_stream"

    def _what(self) -> str:
        return f"cut_stream after {self.after_chunks} chunks"


class StallStreamFault(StreamFault):
    """After `after_chunks` chunks a stream sends nothing for `duration`, then its connection
    drops: a provider that hangs mid-answer."""

    type: Literal["stall_stream"] = "stall_stream"
    duration: Duration = Field(60.0, gt=0)

    def _what(self) -> str:
        return f"stall_stream {self.duration:g}s after {self.after_chunks} chunks"


class MalformedEventFault(StreamFault):
    """After `after_chunks` chunks, `count` unreadable events, in a stream that then goes on
    to its end: a provider (or a proxy) that garbles an event now and then."""

    type: Literal["malformed_event"] = "malformed_event"
    count: int = Field(1, ge=1, le=100)

    def _what(self) -> str:
        events = "malformed_event" if self.count == 1 else f"{self.count} malformed_events"
        return f"{events} after {self.after_chunks} chunks"


class NoTerminatorFault(BaseFault):
    """A stream ends right after its finish reason: what would follow (the usage chunk,
    `[DONE]`) never comes, as from a provider that omits the terminator (streams only)."""

    type: Literal["no_terminator"] = "no_terminator"

    def applies(self, op: Operation) -> bool:
        return op == "stream"


_PREFILL_REFUSED = (
    "This model does not support assistant message prefill. "
    "The conversation must end with a user message. (chaos)"
)


class RefusePrefillFault(BaseFault):
    """A request whose last message is the assistant's is refused with a 400, as by a
    provider or model without assistant prefill; other requests pass."""

    type: Literal["refuse_prefill"] = "refuse_prefill"

    def applies(self, op: Operation) -> bool:
        return op in ("complete", "stream")

    def matches(self, request: Request | None) -> bool:
        messages = request.get("messages") if request is not None else None
        if not isinstance(messages, list) or not messages:
            return False
        last = messages[-1]
        return isinstance(last, Mapping) and last.get("role") == "assistant"

    def error(self, deployment: str) -> ProviderError:
        return BadRequest(
            _PREFILL_REFUSED, status=400, code="invalid_request_error", deployment=deployment
        )


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
    | Annotated[CutStreamFault, Tag("cut_stream")]
    | Annotated[StallStreamFault, Tag("stall_stream")]
    | Annotated[MalformedEventFault, Tag("malformed_event")]
    | Annotated[NoTerminatorFault, Tag("no_terminator")]
    | Annotated[RefusePrefillFault, Tag("refuse_prefill")],
    Discriminator(
        _fault_tag,
        custom_error_type="fault_type",
        custom_error_message=(
            "a fault needs a type: error, latency, hang, reset, rate_limit, cut_stream, "
            "stall_stream, malformed_event, no_terminator or refuse_prefill"
        ),
    ),
]


class ChaosConfig(StrictModel):
    """The faults to inject into one deployment, as written under a deployment's `chaos:`."""

    enabled: bool = True
    seed: int | None = None  # makes the random draws reproducible
    faults: list[Fault] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _bare_list(cls, data: Any) -> Any:
        return {"faults": data} if isinstance(data, list | tuple) else data
