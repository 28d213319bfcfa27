"""Building a `Router` from a `Config`: adapters over one shared transport, policies per route,
fault injection where configured, and the state store."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .clock import Clock, SystemClock
from .config import Config, DeploymentConfig, load_config
from .errors import ConfigError
from .route import Route
from .router import Router
from .state.base import StateStore
from .types import BaseDeployment

__all__ = ["DeploymentFactory", "build_store", "from_config", "routes_from_config"]

log = logging.getLogger("failover")


DeploymentFactory = Callable[[DeploymentConfig], BaseDeployment]


def from_config(
    config: Config | str | Path,
    *,
    clock: Clock | None = None,
    store: StateStore | None = None,
    deployment_factory: DeploymentFactory | None = None,
    **kwargs: Any,
) -> Router:
    """A router for `config` (a `Config` or a YAML file path).

    `deployment_factory` replaces the provider adapters (the simulator builds simulated,
    fault-injectable deployments with it); each deployment is built once per name.
    """
    if not isinstance(config, Config):
        config = load_config(config)
    clock = clock or SystemClock()
    on_close = pools = None
    if deployment_factory is None:
        from .transport import Transport

        transport = Transport()
        on_close, pools = transport.aclose, transport.pools

        def deployment_factory(dep: DeploymentConfig) -> BaseDeployment:
            return _adapter(config, dep, transport, clock)

    built: dict[str, BaseDeployment] = {}

    def deployment(dep: DeploymentConfig) -> BaseDeployment:
        if dep.key not in built:
            made = built[dep.key] = deployment_factory(dep)
            made.rpm, made.tpm = dep.rpm, dep.tpm  # its configured rate limits
        return built[dep.key]

    def resolve(name: str) -> BaseDeployment | None:
        """`provider/model` addresses one deployment of a configured provider."""
        provider, _, model = name.partition("/")
        if not model or provider not in config.providers:
            return None
        return deployment(DeploymentConfig(provider=provider, model=model))

    return Router(
        routes_from_config(config, deployment),
        retry=config.defaults.retry.to_policy(),
        breaker=config.defaults.breaker.to_policy(),
        streams=config.defaults.streams.to_policy(),
        concurrency=config.defaults.concurrency.to_policy(),
        timeouts=config.defaults.timeouts,
        store=store or build_store(config, clock),
        clock=clock,
        resolver=resolve,
        on_close=on_close,
        pools=pools,
        config=config,
        **kwargs,
    )


def routes_from_config(config: Config, deployment: DeploymentFactory) -> dict[str, Route]:
    """Every route of `config`, its deployments made by `deployment` and its policies merged
    over the defaults."""
    return {
        name: Route(
            [deployment(d) for d in route.deployments],
            strategy=route.strategy,
            fallbacks=route.fallbacks,
            context_window_fallbacks=route.context_window_fallbacks,
            content_filter_fallbacks=route.content_filter_fallbacks,
            hedge=route.hedge.to_policy() if route.hedge else None,
            retry=config.retry_for(name).to_policy(),
            breaker=config.breaker_for(name).to_policy(),
            timeouts=config.timeouts_for(name),
            streams=config.streams_for(name).to_policy(),
            panic=route.panic,
        )
        for name, route in config.routes.items()
    }


def _adapter(config: Config, dep: DeploymentConfig, transport: Any, clock: Clock) -> BaseDeployment:
    from .providers import create_adapter

    adapter: BaseDeployment = create_adapter(
        dep,
        config.providers[dep.provider],
        provider_name=dep.provider,
        transport=transport,
        clock=clock,
    )
    from .chaos import wrap_if_configured

    # every deployment gets an injector (faultless unless `chaos:` says otherwise), so the
    # admin API can start an outage at runtime; unarmed it costs one attribute check a call
    injector = wrap_if_configured(adapter, dep.chaos, clock=clock, always=True)
    injector.prefill = adapter.prefill  # it continues broken answers as its adapter does
    return injector


def build_store(config: Config, clock: Clock) -> StateStore:
    """The store named by `config.state`: `memory`, or a Redis URL shared by replicas.

    `redis://host:6379/0?namespace=prod` keeps this gateway's keys under `prod:` (default
    `failover:`); replicas share state exactly when they share the Redis and the namespace.
    `redis+sentinel://` finds the master through Sentinel, `redis+cluster://` uses a Redis
    Cluster (`failover.config.state` describes the URLs, checked when the config loads).
    Nothing connects here: the store connects on first use (or `await store.start()`), so it
    can be built before a fork.
    """
    if config.state == "memory":
        from .state.memory import MemoryStore

        return MemoryStore(clock=clock)
    from .state.redis import RedisStore

    try:
        return RedisStore(config.state, clock=clock)
    except ValueError as exc:
        raise ConfigError(f"state: {exc}") from exc
