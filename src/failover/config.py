"""Typed configuration: YAML with ${ENV} interpolation, durations ("250ms", "2s", "5m"),
rates ("50%"), validated by pydantic into models whose errors name the field's path
(`routes.smart.deployments[1].timeout`).

The top-level keys are `server`, `providers`, `routes`, `defaults`, `state` (and `health`,
`observability`, `chaos` where those features are configured).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import ConfigError
from .resilience.breaker import BreakerPolicy
from .resilience.hedging import HedgePolicy
from .resilience.retry import RetryPolicy

__all__ = [
    "BreakerConfig",
    "Config",
    "DefaultsConfig",
    "DeploymentConfig",
    "Duration",
    "HealthConfig",
    "HedgeConfig",
    "ProviderConfig",
    "Rate",
    "RetryConfig",
    "RouteConfig",
    "ServerConfig",
    "Timeouts",
    "TimeoutsConfig",
    "format_loc",
    "format_validation_error",
    "interpolate",
    "load_config",
    "parse_duration",
    "parse_rate",
    "parse_size",
    "validation_lines",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1,
    "b": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
}


def parse_duration(value: Any) -> float:
    """Seconds from 250ms / 2s / 1.5m / 1h / a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 250ms, 2s or 5m")
    if isinstance(value, int | float):
        return _finite_duration(float(value))
    if isinstance(value, str) and (m := _DURATION.match(value)):
        # divide for ms so that "9ms" is exactly 0.009 (9 * 0.001 is not)
        number = float(m[1])
        return _finite_duration(number / 1000 if m[2] == "ms" else number * _DURATION_UNITS[m[2]])
    raise ValueError(f"invalid duration {value!r} (use 250ms, 2s, 5m or 1h)")


def _finite_duration(seconds: float) -> float:
    if math.isnan(seconds) or seconds < 0:
        raise ValueError("a duration must be a number >= 0")
    if math.isinf(seconds):
        raise ValueError("a duration must be finite (leave the field out for no limit)")
    return seconds


def parse_rate(value: Any) -> float:
    """A fraction from "50%" or 0.5."""
    if isinstance(value, bool):
        raise ValueError("expected a rate such as 50% or 0.5")
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text[:-1]) / 100 if text.endswith("%") else float(text)
        except ValueError:
            raise ValueError(f"invalid rate {value!r} (use 50% or 0.5)") from None
    if isinstance(value, int | float):
        return float(value)
    raise ValueError(f"invalid rate {value!r} (use 50% or 0.5)")


def parse_size(value: Any) -> int:
    """Bytes from 10MB / 512KiB / a bare number."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, str) and (m := _SIZE.match(value)):
        return int(float(m[1]) * _SIZE_UNITS[m[2].lower() if m[2] else None])
    raise ValueError(f"invalid size {value!r} (use 10MB or 512KiB)")


Duration = Annotated[float, BeforeValidator(parse_duration)]
Rate = Annotated[float, BeforeValidator(parse_rate)]
Size = Annotated[int, BeforeValidator(parse_size)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Model):
    """The gateway's listener and its clients' credentials."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    api_keys: list[SecretStr] = Field(default_factory=list)
    admin_key: SecretStr | None = None
    max_body: Size = 10 * 1024 * 1024
    grace: Duration = 30.0

    @field_validator("api_keys", mode="before")
    @classmethod
    def _drop_empty(cls, value: Any) -> Any:
        return [k for k in value if k] if isinstance(value, list) else value

    @field_validator("admin_key", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None


ProviderKind = Literal["openai", "azure", "anthropic", "gemini", "bedrock", "simulated"]


class ProviderConfig(_Model):
    """One provider endpoint and its credentials. `options` holds kind-specific settings."""

    kind: ProviderKind
    base_url: str | None = None
    api_key: SecretStr | None = None
    api_version: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    connect_timeout: Duration = 5.0
    options: dict[str, Any] = Field(default_factory=dict)

    @field_validator("api_key", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return value or None

    @field_validator("api_version", mode="before")
    @classmethod
    def _date_as_text(cls, value: Any) -> Any:
        # YAML reads an unquoted 2024-10-21 as a date
        return value.isoformat() if hasattr(value, "isoformat") else value

    @field_validator("base_url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("base_url must start with http:// or https://")
        return value.rstrip("/") if value else value


class RetryConfig(_Model):
    """Retries on one deployment. See `RetryPolicy`."""

    attempts: int = Field(2, ge=1, le=10)
    base: Duration = 0.2
    max_backoff: Duration = 5.0
    retry_after_max: Duration = 30.0
    cooldown: Duration = 1.0
    budget: Rate = Field(0.2, ge=0, le=10)
    budget_min_per_second: float = Field(1.0, ge=0)
    budget_burst: float = Field(10.0, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> RetryConfig:
        if self.max_backoff < self.base:
            raise ValueError("max_backoff must be >= base")
        return self

    def to_policy(self) -> RetryPolicy:
        return RetryPolicy(**self.model_dump())


class BreakerConfig(_Model):
    """Circuit breaker thresholds. See `BreakerPolicy`."""

    window: int = Field(20, ge=1)
    window_seconds: Duration | None = None
    min_calls: int = Field(5, ge=1)
    failure_rate: Rate = Field(0.5, gt=0, le=1)
    slow_call_rate: Rate | None = Field(None, gt=0, le=1)
    slow_call_duration: Duration = 60.0
    consecutive_failures: int = Field(3, ge=0)
    open_for: Duration = Field(30.0, gt=0)
    max_open_for: Duration = 300.0
    jitter: Rate = Field(0.2, ge=0, lt=1)
    half_open_calls: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> BreakerConfig:
        if self.max_open_for < self.open_for:
            raise ValueError("max_open_for must be >= open_for")
        return self

    def to_policy(self) -> BreakerPolicy:
        return BreakerPolicy(**self.model_dump())


class Timeouts(_Model):
    """Time limits in seconds: per attempt, to a stream's first chunk, and for the request."""

    attempt: Duration | None = 60.0
    first_token: Duration | None = 20.0
    total: Duration | None = 120.0

    @model_validator(mode="after")
    def _consistent(self) -> Timeouts:
        for name in ("attempt", "first_token", "total"):
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


TimeoutsConfig = Timeouts


class HealthConfig(_Model):
    """Active health checks of each deployment."""

    enabled: bool = True
    interval: Duration = Field(15.0, gt=0)
    timeout: Duration = Field(2.0, gt=0)
    jitter: Rate = Field(0.1, ge=0, lt=1)
    unhealthy_after: int = Field(2, ge=1)
    healthy_after: int = Field(1, ge=1)
    probe: Literal["models", "canary"] = "models"


class HedgeConfig(_Model):
    """Hedged requests for a route. See `HedgePolicy`."""

    delay: float | Literal["p95"] = "p95"
    max_hedges: int = Field(1, ge=1, le=5)
    budget: Rate = Field(0.1, ge=0, le=10)

    @field_validator("delay", mode="before")
    @classmethod
    def _duration_or_p95(cls, value: Any) -> Any:
        return value if value == "p95" else parse_duration(value)

    def to_policy(self) -> HedgePolicy:
        return HedgePolicy(delay=self.delay, max_hedges=self.max_hedges, budget=self.budget)


class DeploymentConfig(_Model):
    """One model at one provider, inside a route."""

    provider: str
    model: str
    name: str | None = None  # defaults to "provider/model"
    weight: float = Field(1.0, ge=0)
    timeout: Duration | None = None  # per-attempt timeout for this deployment
    chaos: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        return self.name or f"{self.provider}/{self.model}"


class RouteConfig(_Model):
    """A model name clients ask for: its deployments, strategy and fallbacks.

    `retry`, `breaker` and `timeouts` here override single fields of `defaults`.
    """

    strategy: Literal["priority", "round_robin", "weighted", "least_latency", "least_busy"] = (
        "priority"
    )
    deployments: list[DeploymentConfig] = Field(min_length=1)
    fallbacks: list[str] = Field(default_factory=list)
    context_window_fallbacks: list[str] = Field(default_factory=list)
    content_filter_fallbacks: list[str] = Field(default_factory=list)
    hedge: HedgeConfig | None = None
    retry: dict[str, Any] = Field(default_factory=dict)
    breaker: dict[str, Any] = Field(default_factory=dict)
    timeouts: dict[str, Any] = Field(default_factory=dict)
    panic: bool | Literal["health", "all", "off"] = True

    @model_validator(mode="after")
    def _unique_names(self) -> RouteConfig:
        keys = [d.key for d in self.deployments]
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        if dupes:
            raise ValueError(f"deployment names must be unique in a route: {dupes} repeated")
        return self


class DefaultsConfig(_Model):
    """Policies every route starts from."""

    retry: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    health: HealthConfig = Field(default_factory=HealthConfig)


class Config(_Model):
    """The whole configuration of a router or gateway."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)
    state: str = "memory"
    observability: dict[str, Any] = Field(default_factory=dict)

    @field_validator("state")
    @classmethod
    def _known_store(cls, value: str) -> str:
        if value != "memory" and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("state must be 'memory' or a redis:// URL")
        return value

    @model_validator(mode="after")
    def _references(self) -> Config:
        for name, route in self.routes.items():
            if "/" in name:
                raise _located(f"routes.{name}", "route names cannot contain '/'")
            for i, dep in enumerate(route.deployments):
                if dep.provider not in self.providers:
                    known = ", ".join(sorted(self.providers)) or "none configured"
                    raise _located(
                        f"routes.{name}.deployments[{i}].provider",
                        f"unknown provider {dep.provider!r} (known: {known})",
                    )
            for field in _FALLBACK_FIELDS:
                for j, target in enumerate(getattr(route, field)):
                    if target not in self.routes:
                        raise _located(f"routes.{name}.{field}[{j}]", f"unknown route {target!r}")
                    if target == name:
                        raise _located(
                            f"routes.{name}.{field}[{j}]", "a route cannot fall back to itself"
                        )
            for section in ("retry", "breaker", "timeouts"):
                self._merged(name, section)
        _reject_cycles(self.routes)
        return self

    def _merged(self, route: str, section: str) -> Any:
        base: BaseModel = getattr(self.defaults, section)
        overrides: dict[str, Any] = getattr(self.routes[route], section)
        try:
            return type(base).model_validate({**base.model_dump(exclude_unset=True), **overrides})
        except ValidationError as exc:
            raise _located(f"routes.{route}.{section}", _first_message(exc)) from None

    def retry_for(self, route: str) -> RetryConfig:
        merged: RetryConfig = self._merged(route, "retry")
        return merged

    def breaker_for(self, route: str) -> BreakerConfig:
        merged: BreakerConfig = self._merged(route, "breaker")
        return merged

    def timeouts_for(self, route: str) -> Timeouts:
        merged: Timeouts = self._merged(route, "timeouts")
        return merged

    @classmethod
    def from_yaml(cls, text: str, *, env: Mapping[str, str] | None = None) -> Config:
        """Parse YAML text, interpolating ${VAR} and ${VAR:-default} from `env`."""
        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"invalid YAML: {exc}") from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError("the config must be a mapping with keys such as providers, routes")
        return cls.from_dict(interpolate(raw, os.environ if env is None else env))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        """Validate a mapping; errors become one `ConfigError` naming each bad field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc)) from None


def load_config(path: str | Path, *, env: Mapping[str, str] | None = None) -> Config:
    """Read and validate a YAML config file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {str(path)!r}: {exc.strerror}") from None
    return Config.from_yaml(text, env=env)


_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Replace ${VAR} / ${VAR:-default} in every string of a YAML tree (unset VAR -> "")."""
    if isinstance(value, str):
        return _ENV.sub(lambda m: env.get(m[1]) or (m[2] or ""), value)
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    return value


def format_loc(loc: tuple[int | str, ...]) -> str:
    """('routes', 'smart', 'deployments', 1, 'timeout') -> routes.smart.deployments[1].timeout"""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "function_")):
            continue
        else:
            out += f".{part}" if out else part
    return out


def validation_lines(
    exc: ValidationError, *, prefix: str = "", unknown: str = "unknown field"
) -> list[str]:
    """One `path: message` line per pydantic error, paths written the way users write YAML."""
    lines = []
    for err in exc.errors():
        where = format_loc(tuple(err["loc"]))
        if prefix:
            where = f"{prefix}.{where}" if where else prefix
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = unknown
        lines.append(f"{where}: {message}" if where else message)
    return lines


def format_validation_error(
    exc: ValidationError,
    *,
    header: str = "invalid config",
    prefix: str = "",
    unknown: str = "unknown field",
) -> str:
    """A readable multi-line message naming every bad field."""
    lines = validation_lines(exc, prefix=prefix, unknown=unknown)
    return f"{header}:\n  " + "\n  ".join(lines)


def _first_message(exc: ValidationError) -> str:
    return validation_lines(exc)[0]


def _located(path: str, message: str) -> ValueError:
    # raised inside a validator: pydantic reports it at the top level, so the path goes in front
    return ValueError(f"{path}: {message}")


_FALLBACK_FIELDS = ("fallbacks", "context_window_fallbacks", "content_filter_fallbacks")


def _reject_cycles(routes: Mapping[str, RouteConfig]) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for field in _FALLBACK_FIELDS:
            for target in getattr(routes[name], field):
                if state.get(target) == 1:
                    cycle = " -> ".join([*path[path.index(target) :], target])
                    raise _located(f"routes.{name}.{field}", f"fallback cycle: {cycle}")
                if target not in state:
                    visit(target, [*path, target])
        state[name] = 2

    for name in routes:
        if name not in state:
            visit(name, [name])
