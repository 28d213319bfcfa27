"""The policy sections: `retry`, `breaker`, `timeouts`, `streams` and `health` (under
`defaults:` and, but for health, overridable per route) and a route's `hedge`.

Defaults come from the policy classes themselves (`RetryPolicy`, `BreakerPolicy`,
`HedgePolicy`), so the numbers live in one place; and a section that validates here always
builds its policy, because validating builds it (a policy's own checks reject the rest).
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from ..resilience.breaker import BreakerPolicy
from ..resilience.concurrency import ConcurrencyPolicy
from ..resilience.hedging import HedgePolicy
from ..resilience.retry import RetryPolicy
from ..resilience.streams import Learning, Resume, StreamPolicy
from .base import Duration, Rate, StrictModel, parse_duration, policy_defaults

__all__ = [
    "BreakerConfig",
    "ConcurrencyConfig",
    "HealthConfig",
    "HedgeConfig",
    "LearningConfig",
    "RetryConfig",
    "StreamsConfig",
    "Timeouts",
]

_RETRY = policy_defaults(RetryPolicy)
_BREAKER = policy_defaults(BreakerPolicy)
_HEDGE = policy_defaults(HedgePolicy)
_LEARNING = policy_defaults(Learning)
_STREAMS = policy_defaults(StreamPolicy)
_CONCURRENCY = policy_defaults(ConcurrencyPolicy)


class RetryConfig(StrictModel):
    """Retries on one deployment. See `RetryPolicy`."""

    attempts: int = Field(_RETRY["attempts"], ge=1, le=10)
    base: Duration = _RETRY["base"]
    max_backoff: Duration = _RETRY["max_backoff"]
    retry_after_max: Duration = _RETRY["retry_after_max"]
    cooldown: Duration = _RETRY["cooldown"]
    budget: Rate = Field(_RETRY["budget"], ge=0, le=10)
    budget_min_per_second: float = Field(_RETRY["budget_min_per_second"], ge=0)
    budget_burst: float = Field(_RETRY["budget_burst"], ge=1)

    @model_validator(mode="after")
    def _builds(self) -> RetryConfig:
        self.to_policy()  # its ValueError ("max_backoff must be >= base") is the message
        return self

    def to_policy(self) -> RetryPolicy:
        """The `RetryPolicy` the router runs."""
        return RetryPolicy(**self.model_dump())


class BreakerConfig(StrictModel):
    """Circuit breaker thresholds. See `BreakerPolicy`."""

    window: int = Field(_BREAKER["window"], ge=1)
    window_seconds: Duration | None = Field(_BREAKER["window_seconds"], gt=0)
    min_calls: int = Field(_BREAKER["min_calls"], ge=1)
    failure_rate: Rate = Field(_BREAKER["failure_rate"], gt=0, le=1)
    slow_call_rate: Rate | None = Field(_BREAKER["slow_call_rate"], gt=0, le=1)
    slow_call_duration: Duration = _BREAKER["slow_call_duration"]
    consecutive_failures: int = Field(_BREAKER["consecutive_failures"], ge=0)
    open_for: Duration = Field(_BREAKER["open_for"], gt=0)
    max_open_for: Duration = _BREAKER["max_open_for"]
    jitter: Rate = Field(_BREAKER["jitter"], ge=0, lt=1)
    half_open_calls: int = Field(_BREAKER["half_open_calls"], ge=1)

    @model_validator(mode="after")
    def _builds(self) -> BreakerConfig:
        self.to_policy()  # its ValueError ("max_open_for must be >= open_for") is the message
        return self

    def to_policy(self) -> BreakerPolicy:
        """The `BreakerPolicy` each deployment's breaker runs."""
        return BreakerPolicy(**self.model_dump())


class HedgeConfig(StrictModel):
    """Hedged requests for a route. See `HedgePolicy`."""

    delay: float | Literal["p95"] = _HEDGE["delay"]
    max_hedges: int = Field(_HEDGE["max_hedges"], ge=1, le=5)
    budget: Rate = Field(_HEDGE["budget"], ge=0, le=10)

    @field_validator("delay", mode="before")
    @classmethod
    def _duration_or_p95(cls, value: Any) -> Any:
        return value if value == "p95" else parse_duration(value)

    @model_validator(mode="after")
    def _builds(self) -> HedgeConfig:
        self.to_policy()
        return self

    def to_policy(self) -> HedgePolicy:
        """The `HedgePolicy` of the route (its other fields keep the policy's defaults)."""
        return HedgePolicy(delay=self.delay, max_hedges=self.max_hedges, budget=self.budget)


class LearningConfig(StrictModel):
    """How stream limits are learned from each deployment's history. See `Learning`."""

    multiple: float = Field(_LEARNING["multiple"], ge=1)
    floor: Duration = Field(_LEARNING["floor"], gt=0)
    min_samples: int = Field(_LEARNING["min_samples"], ge=1)

    @model_validator(mode="after")
    def _builds(self) -> LearningConfig:
        self.to_policy()
        return self

    def to_policy(self) -> Learning:
        """The `Learning` policy these settings describe."""
        return Learning(**self.model_dump())


class Timeouts(StrictModel):
    """Time limits in seconds. The router runs this model as it is: these defaults are the
    only copy.

    `attempt` bounds one call (for a stream: until its first content). `first_token` bounds a
    stream's wait for its first content and `stall` its silences once started; both are
    learned per deployment unless `learn: off`. `total` bounds the request until it is
    answered (for a stream: until its first content reached the caller). `stream` bounds a
    whole stream, recoveries included: a healthy answer that runs for minutes is not cut by
    a limit meant for the time to an answer.
    """

    attempt: Duration | None = 60.0
    first_token: Duration | None = 60.0
    stall: Duration | None = 10.0
    total: Duration | None = 120.0
    stream: Duration | None = 1800.0
    learn: LearningConfig | None = Field(default_factory=LearningConfig)

    @field_validator("learn", mode="before")
    @classmethod
    def _off(cls, value: Any) -> Any:
        return None if value in (False, "off") else value

    @functools.cached_property
    def learning(self) -> Learning | None:
        """The learning policy, or None when limits are not learned."""
        return self.learn.to_policy() if self.learn is not None else None

    @model_validator(mode="after")
    def _consistent(self) -> Timeouts:
        for name in ("attempt", "first_token", "stall", "total", "stream"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be > 0")
        # A limit left at its default shrinks to fit the one that was set; two limits that
        # were both set and contradict each other are an error.
        self._fit("attempt", "total")
        self._fit("first_token", "attempt")
        return self

    def _fit(self, inner: str, outer: str) -> None:
        low, high = getattr(self, inner), getattr(self, outer)
        if low is None or high is None or low <= high:
            return
        if inner in self.model_fields_set:
            raise ValueError(f"{inner} ({low:g}s) must not exceed {outer} ({high:g}s)")
        object.__setattr__(self, inner, high)


class StreamsConfig(StrictModel):
    """What a route's streams do when they break after content reached the caller.
    See `StreamPolicy`."""

    resume: Resume = _STREAMS["resume"]
    max_recoveries: int = Field(_STREAMS["max_recoveries"], ge=0, le=10)
    max_malformed: int = Field(_STREAMS["max_malformed"], ge=0, le=100)
    heartbeat: Duration = Field(_STREAMS["heartbeat"], gt=0)

    def to_policy(self) -> StreamPolicy:
        """The `StreamPolicy` these settings describe."""
        return StreamPolicy(**self.model_dump())


class ConcurrencyConfig(StrictModel):
    """Each deployment's adaptive concurrency limit. See `ConcurrencyPolicy`."""

    enabled: bool = _CONCURRENCY["enabled"]
    initial: int = Field(_CONCURRENCY["initial"], ge=1)
    min_limit: int = Field(_CONCURRENCY["min_limit"], ge=1)
    max_limit: int = Field(_CONCURRENCY["max_limit"], ge=1)
    backoff: Rate = Field(_CONCURRENCY["backoff"], gt=0, lt=1)

    @model_validator(mode="after")
    def _builds(self) -> ConcurrencyConfig:
        self.to_policy()
        return self

    def to_policy(self) -> ConcurrencyPolicy:
        """The `ConcurrencyPolicy` these settings describe."""
        return ConcurrencyPolicy(**self.model_dump())


class HealthConfig(StrictModel):
    """Active health checks of each deployment; `failover.health.HealthChecker` runs it as is."""

    enabled: bool = True
    interval: Duration = Field(15.0, gt=0)
    timeout: Duration = Field(2.0, gt=0)
    jitter: Rate = Field(0.1, ge=0, lt=1)
    unhealthy_after: int = Field(2, ge=1)
    healthy_after: int = Field(1, ge=1)
    probe: Literal["models", "canary"] = "models"
    # while a deployment's breaker is not closed (its traffic failed), probe it this often and
    # with a probe that exercises what failed: a one-token completion, not the models list
    recovery_interval: Duration = Field(3.0, gt=0)
    recovery_probe: Literal["models", "canary"] = "canary"
