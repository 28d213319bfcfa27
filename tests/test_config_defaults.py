"""A config that leaves a section out runs exactly what the runtime object does by default:
the config models take their defaults from the policies, and agree with every other class
built from a section. Also the one list of strategy names, and panic's spellings."""

from __future__ import annotations

import inspect

import pytest

from failover.config import (
    BreakerConfig,
    Config,
    EventsConfig,
    HealthConfig,
    HedgeConfig,
    OpenAIOptions,
    ProviderConfig,
    RetryConfig,
    RouteConfig,
    ServerConfig,
    SimulatedOptions,
    Timeouts,
    WebhookConfig,
)
from failover.explain import STRATEGY_TEXT
from failover.health import HealthChecker
from failover.observability import EventLog, WebhookSender
from failover.providers import HTTPAdapter, OpenAIAdapter
from failover.providers.simulated import SimulatedProvider
from failover.resilience.breaker import BreakerPolicy
from failover.resilience.hedging import HedgePolicy
from failover.resilience.panic import Panic
from failover.resilience.retry import RetryPolicy
from failover.resilience.strategies import STRATEGIES, STRATEGY_NAMES
from failover.route import Route
from failover.router import Router
from failover.server.generation import DEFAULT_MAX_BODY

# --- the policies ----------------------------------------------------------------------------


def test_retry_defaults_are_the_policy_defaults() -> None:
    """An empty retry section builds the default RetryPolicy."""
    assert RetryConfig().to_policy() == RetryPolicy()


def test_breaker_defaults_are_the_policy_defaults() -> None:
    """An empty breaker section builds the default BreakerPolicy."""
    assert BreakerConfig().to_policy() == BreakerPolicy()


def test_hedge_defaults_are_the_policy_defaults() -> None:
    """An empty hedge section builds the default HedgePolicy."""
    assert HedgeConfig().to_policy() == HedgePolicy()


def test_streams_defaults_are_the_policy_defaults() -> None:
    """`defaults.streams` and `timeouts.learn` build the policies' own defaults."""
    from failover.config import LearningConfig, StreamsConfig
    from failover.resilience.streams import Learning, StreamPolicy

    assert StreamsConfig().to_policy() == StreamPolicy()
    assert LearningConfig().to_policy() == Learning()


def test_concurrency_defaults_are_the_policy_defaults() -> None:
    """`defaults.concurrency` builds `ConcurrencyPolicy()`."""
    from failover.config import ConcurrencyConfig
    from failover.resilience.concurrency import ConcurrencyPolicy

    assert ConcurrencyConfig().to_policy() == ConcurrencyPolicy()


def test_router_default_timeouts_are_the_config_defaults() -> None:
    """A router built without timeouts runs the limits an empty timeouts section gives."""
    assert Router({}).timeouts == Config().defaults.timeouts == Timeouts()


def test_health_checker_default_is_the_config_default() -> None:
    """A health checker built without a config runs what an empty health section gives."""
    assert HealthChecker({}, store=Router({}).store).config == Config().defaults.health
    assert Config().defaults.health == HealthConfig()


def test_route_default_panic_is_the_config_default() -> None:
    """A Route built in Python and a route config without panic mean the same panic mode."""
    sim = SimulatedProvider(name="s", model="m")
    config = RouteConfig.model_validate({"deployments": [{"provider": "p", "model": "m"}]})
    assert Panic.parse(Route([sim]).panic) is config.panic is Panic.HEALTH


# --- the other sections ----------------------------------------------------------------------


def test_event_log_default_is_the_config_default() -> None:
    """The event ring keeps as many events by default as an empty events section says."""
    assert EventLog().keep == EventsConfig().keep


def test_webhook_sender_defaults_are_the_config_defaults() -> None:
    """A sender built from a webhook section of only a url behaves like the constructor's."""
    url = "https://hooks.example.test/x"
    built = WebhookSender.from_config(WebhookConfig(url=url))
    plain = WebhookSender(url)
    fields = ("timeout", "attempts", "backoff", "repeat_after", "types", "url_label")
    assert [getattr(built, f) for f in fields] == [getattr(plain, f) for f in fields]


def test_http_adapter_options_default_to_the_config_defaults() -> None:
    """An adapter made in Python without options has its kind's default options."""
    assert OpenAIAdapter(model="m").options == OpenAIOptions()


def test_adapter_connect_timeout_default_is_the_config_default() -> None:
    """An adapter's connect_timeout defaults to what a provider section without one says."""
    default = inspect.signature(HTTPAdapter.__init__).parameters["connect_timeout"].default
    assert default == ProviderConfig(kind="openai").connect_timeout


def test_simulated_provider_default_options_are_the_config_defaults() -> None:
    """A simulated provider made in Python without options has the default options."""
    assert SimulatedProvider(name="s", model="m").options == SimulatedOptions()


def test_gateway_default_body_limit_is_the_config_default() -> None:
    """A gateway without a config limits bodies as a server section without max_body does."""
    assert ServerConfig().max_body == DEFAULT_MAX_BODY


# --- strategy names and panic ----------------------------------------------------------------


def test_every_strategy_name_has_a_strategy() -> None:
    """The strategies dict holds exactly the names of StrategyName."""
    assert tuple(STRATEGIES) == STRATEGY_NAMES


def test_every_strategy_name_is_explained() -> None:
    """`failover explain` describes exactly the names of StrategyName."""
    assert tuple(STRATEGY_TEXT) == STRATEGY_NAMES


@pytest.mark.parametrize("name", STRATEGY_NAMES)
def test_every_strategy_name_is_a_valid_route_strategy(name: str) -> None:
    """A route config accepts each strategy name."""
    route = RouteConfig.model_validate(
        {"strategy": name, "deployments": [{"provider": "p", "model": "m"}]}
    )
    assert route.strategy == name


@pytest.mark.parametrize(
    ("value", "panic"),
    [(True, Panic.HEALTH), (False, Panic.OFF), ("health", Panic.HEALTH), ("all", Panic.ALL)],
)
def test_panic_parse(value: bool | str, panic: Panic) -> None:
    """Panic.parse reads true as health, false as off, and the names as they are."""
    assert Panic.parse(value) is panic


@pytest.mark.parametrize("value", ["sometimes", "", "HEALTH"])
def test_panic_parse_rejects_other_values(value: str) -> None:
    """Any other value is a ValueError naming the choices."""
    with pytest.raises(ValueError, match="panic must be true, false, 'health', 'all' or 'off'"):
        Panic.parse(value)
