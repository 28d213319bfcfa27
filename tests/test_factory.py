"""Building a router from config: adapters, per-route policies, chaos, single deployments."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from failover import Config, ConfigError, FakeClock, Kind, UnknownRoute
from failover.factory import from_config

YAML = textwrap.dedent(
    """
    providers:
      sim: {kind: simulated, options: {latency: 10ms, reply: "sim {model}"}}
      broken: {kind: simulated, options: {down: true}}
    routes:
      smart:
        deployments:
          - {provider: broken, model: big}
          - {provider: sim, model: big}
        retry: {attempts: 1}
        fallbacks: [fast]
      fast:
        deployments: [{provider: sim, model: small}]
      flaky:
        deployments:
          - {provider: sim, model: flaky, chaos: {faults: [{type: error, status: 503}]}}
        retry: {attempts: 1}
        timeouts: {total: 5s}
    defaults:
      breaker: {consecutive_failures: 2}
    """
)


@pytest.fixture
def config() -> Config:
    return Config.from_yaml(YAML, env={})


async def test_from_config_fails_over(config: Config, clock: FakeClock) -> None:
    """A down simulated provider fails over to the next deployment of the route."""
    router = from_config(config, clock=clock)
    async with clock.autojump():
        reply = await router.complete("smart", {"messages": [{"role": "user", "content": "x"}]})
    assert reply.deployment == "sim/big"
    assert reply.text == "sim big"
    assert reply.trace.attempts[0].deployment == "broken/big"
    await router.aclose()


async def test_route_overrides_are_applied(config: Config, clock: FakeClock) -> None:
    """Route-level retry/timeouts override defaults; breaker defaults apply to all routes."""
    router = from_config(config, clock=clock)
    assert router.plan("smart").retry.attempts == 1
    assert router.plan("fast").retry.attempts == 2
    assert router.plan("flaky").timeouts.total == 5.0
    assert router.plan("flaky").breaker.consecutive_failures == 2
    await router.aclose()


async def test_chaos_from_config_injects_faults(config: Config, clock: FakeClock) -> None:
    """A deployment with `chaos:` fails as its faults say."""
    router = from_config(config, clock=clock)
    with pytest.raises(Exception) as info:
        async with clock.autojump():
            await router.complete("flaky", {"messages": [{"role": "user", "content": "x"}]})
    assert getattr(info.value, "kind", None) is Kind.OVERLOADED
    await router.aclose()


async def test_provider_slash_model_addresses_one_deployment(
    config: Config, clock: FakeClock
) -> None:
    """`provider/model` of a configured provider works as a model name; others do not."""
    router = from_config(config, clock=clock)
    async with clock.autojump():
        reply = await router.complete("sim/other", {"messages": [{"role": "user", "content": "x"}]})
    assert reply.text == "sim other"
    with pytest.raises(UnknownRoute):
        await router.complete("nowhere/other", {"messages": []})
    await router.aclose()


async def test_from_config_path(tmp_path: Path, clock: FakeClock) -> None:
    """A YAML path works as well as a Config."""
    path = tmp_path / "failover.yaml"
    path.write_text(YAML)
    router = from_config(path, clock=clock)
    assert router.route_names() == ["smart", "fast", "flaky"]
    await router.aclose()


def test_redis_state_needs_a_url() -> None:
    """`state` must be memory or a redis URL."""
    with pytest.raises(ConfigError, match="state"):
        Config.from_dict({"state": "postgres://x"})
