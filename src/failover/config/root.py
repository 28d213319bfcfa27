"""The whole configuration: its sections put together, the references between them checked
(providers of deployments, fallback routes, cycles), route overrides merged over `defaults`,
and YAML read with ${ENV} interpolation."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from .base import StrictModel, format_validation_error, validation_lines
from .observability import ObservabilityConfig
from .policies import (
    BreakerConfig,
    ConcurrencyConfig,
    HealthConfig,
    RetryConfig,
    StreamsConfig,
    Timeouts,
)
from .providers import ProviderConfig
from .routes import FALLBACK_FIELDS, RouteConfig
from .server import ServerConfig
from .slo import SloConfig
from .state import parse_redis_url

__all__ = ["Config", "DefaultsConfig", "interpolate", "load_config"]


class DefaultsConfig(StrictModel):
    """Policies every route starts from."""

    retry: RetryConfig = Field(default_factory=RetryConfig)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    streams: StreamsConfig = Field(default_factory=StreamsConfig)
    concurrency: ConcurrencyConfig = Field(default_factory=ConcurrencyConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    slo: SloConfig | None = None  # objectives of every route that sets none of its own


class Config(StrictModel):
    """The whole configuration of a router or gateway."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    defaults: DefaultsConfig = Field(default_factory=DefaultsConfig)
    state: str = "memory"
    observability: ObservabilityConfig = Field(default_factory=ObservabilityConfig)

    @field_validator("state")
    @classmethod
    def _known_store(cls, value: str) -> str:
        # the whole URL is checked here (schemes, hosts, options, certificate files), so
        # that `failover check` refuses exactly what building the store would
        if value != "memory":
            parse_redis_url(value)
        return value

    @model_validator(mode="after")
    def _references(self) -> Config:
        for name, route in self.routes.items():
            if "/" in name:
                raise _located(f"routes.{name}", "route names cannot contain '/'")
            self._check_providers(name, route)
            self._check_fallbacks(name, route)
            for section in ("retry", "breaker", "timeouts", "streams"):
                self._merged(name, section)
        _reject_cycles(self.routes)
        self._check_admission()
        return self

    def _check_providers(self, name: str, route: RouteConfig) -> None:
        for i, dep in enumerate(route.deployments):
            if dep.provider not in self.providers:
                known = ", ".join(sorted(self.providers)) or "none configured"
                raise _located(
                    f"routes.{name}.deployments[{i}].provider",
                    f"unknown provider {dep.provider!r} (known: {known})",
                )

    def _check_fallbacks(self, name: str, route: RouteConfig) -> None:
        for field in FALLBACK_FIELDS:
            for j, target in enumerate(getattr(route, field)):
                if target not in self.routes:
                    raise _located(f"routes.{name}.{field}[{j}]", f"unknown route {target!r}")
                if target == name:
                    raise _located(
                        f"routes.{name}.{field}[{j}]", "a route cannot fall back to itself"
                    )

    def _check_admission(self) -> None:
        for name in self.server.admission.routes:
            if name not in self.routes:
                known = ", ".join(sorted(self.routes)) or "none configured"
                raise _located(
                    f"server.admission.routes.{name}", f"unknown route {name!r} (known: {known})"
                )

    def _merged(self, route: str, section: str) -> Any:
        base: BaseModel = getattr(self.defaults, section)
        overrides: dict[str, Any] = getattr(self.routes[route], section)
        try:
            return type(base).model_validate({**base.model_dump(exclude_unset=True), **overrides})
        except ValidationError as exc:
            lines = validation_lines(exc, prefix=f"routes.{route}.{section}")
            raise ValueError("\n  ".join(lines)) from None

    def retry_for(self, route: str) -> RetryConfig:
        """The route's retry settings: its overrides merged over `defaults.retry`."""
        merged: RetryConfig = self._merged(route, "retry")
        return merged

    def breaker_for(self, route: str) -> BreakerConfig:
        """The route's breaker settings: its overrides merged over `defaults.breaker`."""
        merged: BreakerConfig = self._merged(route, "breaker")
        return merged

    def timeouts_for(self, route: str) -> Timeouts:
        """The route's time limits: its overrides merged over `defaults.timeouts`."""
        merged: Timeouts = self._merged(route, "timeouts")
        return merged

    def streams_for(self, route: str) -> StreamsConfig:
        """What the route's broken streams do: its overrides merged over `defaults.streams`."""
        merged: StreamsConfig = self._merged(route, "streams")
        return merged

    def slo_for(self, route: str) -> SloConfig | None:
        """The route's objectives: the fields it sets over `defaults.slo`; None without either."""
        own, base = self.routes[route].slo, self.defaults.slo
        if own is None or base is None:
            return own or base
        merged = {**base.model_dump(exclude_unset=True), **own.model_dump(exclude_unset=True)}
        return SloConfig.model_validate(merged)

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


def _located(path: str, message: str) -> ValueError:
    # raised inside a validator: pydantic reports it at the top level, so the path goes in front
    return ValueError(f"{path}: {message}")


def _reject_cycles(routes: Mapping[str, RouteConfig]) -> None:
    state: dict[str, int] = {}  # 1 visiting, 2 done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for field in FALLBACK_FIELDS:
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
