"""The `routes:` section: the model names clients ask for, each a list of deployments with a
strategy, fallbacks, hedging, panic mode, policy overrides and service level objectives."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from ..resilience.panic import Panic
from ..resilience.strategies import StrategyName
from .base import Duration, StrictModel
from .chaos import ChaosConfig
from .policies import HedgeConfig
from .slo import SloConfig

__all__ = ["FALLBACK_FIELDS", "DeploymentConfig", "RouteConfig"]

FALLBACK_FIELDS = ("fallbacks", "context_window_fallbacks", "content_filter_fallbacks")


class DeploymentConfig(StrictModel):
    """One model at one provider, inside a route."""

    provider: str
    model: str
    name: str | None = None  # defaults to "provider/model"
    weight: float = Field(1.0, ge=0)
    timeout: Duration | None = None  # per-attempt timeout for this deployment
    rpm: int | None = Field(None, ge=1)  # its rate limit, requests per minute
    tpm: int | None = Field(None, ge=1)  # its rate limit, tokens per minute
    chaos: ChaosConfig | None = None  # faults injected from start-up

    @property
    def key(self) -> str:
        """The deployment's name: `name`, else "provider/model"."""
        return self.name or f"{self.provider}/{self.model}"


class RouteConfig(StrictModel):
    """A model name clients ask for: its deployments, strategy and fallbacks.

    `retry`, `breaker`, `timeouts` and `streams` here override single fields of `defaults`;
    they are validated merged over the defaults (`Config.retry_for` ...).
    """

    strategy: StrategyName = "priority"
    deployments: list[DeploymentConfig] = Field(min_length=1)
    fallbacks: list[str] = Field(default_factory=list)
    context_window_fallbacks: list[str] = Field(default_factory=list)
    content_filter_fallbacks: list[str] = Field(default_factory=list)
    hedge: HedgeConfig | None = None
    retry: dict[str, Any] = Field(default_factory=dict)
    breaker: dict[str, Any] = Field(default_factory=dict)
    timeouts: dict[str, Any] = Field(default_factory=dict)
    streams: dict[str, Any] = Field(default_factory=dict)
    panic: Panic = Panic.HEALTH
    slo: SloConfig | None = None  # merged over `defaults.slo` (`Config.slo_for`)

    @field_validator("panic", mode="before")
    @classmethod
    def _panic(cls, value: Any) -> Any:
        return Panic.parse(value) if isinstance(value, bool | str) else value

    @model_validator(mode="after")
    def _unique_names(self) -> RouteConfig:
        keys = [d.key for d in self.deployments]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"deployment names must be unique in a route: {dupes} repeated")
        return self
