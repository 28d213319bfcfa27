"""Tests for failover.config: YAML loading, interpolation, units, validation messages."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from failover.config import (
    Config,
    RetryConfig,
    Timeouts,
    interpolate,
    load_config,
    parse_duration,
    parse_rate,
    parse_size,
)
from failover.errors import ConfigError

DESIGN_SKETCH = """
server: {host: 127.0.0.1, port: 8080, api_keys: ["${FAILOVER_API_KEY}"], admin_key: "${FAILOVER_ADMIN_KEY}"}
providers:
  openai:    {kind: openai, base_url: https://api.openai.com/v1, api_key: "${OPENAI_API_KEY}"}
  anthropic: {kind: anthropic, api_key: "${ANTHROPIC_API_KEY}"}
  local:     {kind: openai, base_url: http://127.0.0.1:11434/v1}      # any OpenAI-compatible server
routes:
  smart:
    strategy: priority
    deployments:
      - {provider: openai, model: gpt-4o, timeout: 30s}
      - {provider: anthropic, model: claude-sonnet-4-5}
    fallbacks: [fast]
    hedge: {delay: p95, max_hedges: 1}
  fast:
    deployments: [{provider: local, model: llama3.1}]
defaults:
  retry: {attempts: 2, base: 200ms, max_backoff: 5s, retry_after_max: 30s, budget: 20%}
  breaker: {window: 20, min_calls: 5, failure_rate: 50%, consecutive_failures: 3, open_for: 30s}
  timeouts: {attempt: 60s, first_token: 20s, total: 120s}
  health: {interval: 15s, timeout: 2s, unhealthy_after: 2, healthy_after: 1}
state: memory            # or redis://127.0.0.1:6379/0 to share state between replicas
"""  # noqa: E501  (verbatim from DESIGN.md)

SKETCH_ENV = {
    "FAILOVER_API_KEY": "client-key-1",
    "FAILOVER_ADMIN_KEY": "admin-key-1",
    "OPENAI_API_KEY": "sk-openai-secret",
    "ANTHROPIC_API_KEY": "sk-ant-secret",
}


def one_route(**route: Any) -> dict[str, Any]:
    """A minimal valid config dict with one provider `p` and route `smart` (overridable)."""
    base: dict[str, Any] = {"deployments": [{"provider": "p", "model": "m"}]}
    return {
        "providers": {"p": {"kind": "openai"}},
        "routes": {"smart": {**base, **route}},
    }


def config_error(data: dict[str, Any]) -> str:
    """The message of the ConfigError that `data` raises."""
    with pytest.raises(ConfigError) as info:
        Config.from_dict(data)
    return str(info.value)


# --- the DESIGN.md sketch -------------------------------------------------------------------


def test_design_sketch_loads() -> None:
    """The config sketch from DESIGN.md validates."""
    config = Config.from_yaml(DESIGN_SKETCH, env=SKETCH_ENV)
    assert set(config.routes) == {"smart", "fast"}
    assert set(config.providers) == {"openai", "anthropic", "local"}


def test_design_sketch_values_are_parsed() -> None:
    """Durations, rates and nested sections of the sketch arrive as numbers."""
    config = Config.from_yaml(DESIGN_SKETCH, env=SKETCH_ENV)
    assert config.defaults.retry.base == 0.2
    assert config.defaults.retry.budget == 0.2
    assert config.defaults.breaker.failure_rate == 0.5
    assert config.defaults.timeouts.total == 120.0
    assert config.defaults.health.interval == 15.0
    assert config.routes["smart"].deployments[0].timeout == 30.0
    assert config.routes["smart"].hedge is not None
    assert config.routes["smart"].hedge.delay == "p95"
    assert config.routes["smart"].fallbacks == ["fast"]


def test_design_sketch_interpolates_secrets() -> None:
    """The sketch's ${VAR} secrets come from the env mapping passed in."""
    config = Config.from_yaml(DESIGN_SKETCH, env=SKETCH_ENV)
    openai = config.providers["openai"]
    assert openai.api_key is not None
    assert openai.api_key.get_secret_value() == "sk-openai-secret"
    assert [k.get_secret_value() for k in config.server.api_keys] == ["client-key-1"]


def test_design_sketch_without_env_drops_empty_keys() -> None:
    """With no variables set the sketch still loads, with no client keys and no admin key."""
    config = Config.from_yaml(DESIGN_SKETCH, env={})
    assert config.server.api_keys == []
    assert config.server.admin_key is None
    assert config.providers["openai"].api_key is None


def test_secrets_never_in_repr_or_str() -> None:
    """No SecretStr value shows in the repr or str of the config or its parts."""
    config = Config.from_yaml(DESIGN_SKETCH, env=SKETCH_ENV)
    for text in (repr(config), str(config), repr(config.server), repr(config.providers)):
        for secret in SKETCH_ENV.values():
            assert secret not in text


# --- loading ---------------------------------------------------------------------------------


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    """load_config reads YAML from a path and interpolates from the given env."""
    path = tmp_path / "failover.yaml"
    path.write_text(DESIGN_SKETCH, encoding="utf-8")
    config = load_config(path, env=SKETCH_ENV)
    assert config.routes["fast"].deployments[0].model == "llama3.1"


def test_load_config_missing_file_names_it(tmp_path: Path) -> None:
    """A missing file is a ConfigError whose message names the file."""
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match=r"nope\.yaml"):
        load_config(path, env={})


def test_empty_yaml_is_the_default_config() -> None:
    """An empty document gives the defaults: no routes, memory state."""
    config = Config.from_yaml("", env={})
    assert config.routes == {}
    assert config.state == "memory"


def test_invalid_yaml_is_a_config_error() -> None:
    """A YAML syntax error becomes a ConfigError."""
    with pytest.raises(ConfigError, match="invalid YAML"):
        Config.from_yaml("routes: [unclosed", env={})


def test_top_level_list_is_rejected() -> None:
    """A document that is not a mapping is a ConfigError."""
    with pytest.raises(ConfigError, match="mapping"):
        Config.from_yaml("- a\n- b\n", env={})


def test_config_error_is_a_value_error() -> None:
    """ConfigError can be caught as ValueError."""
    with pytest.raises(ValueError):
        Config.from_dict({"state": "postgres://x"})


# --- interpolation ---------------------------------------------------------------------------


def test_interpolate_replaces_variable() -> None:
    """${VAR} is replaced with the variable's value."""
    assert interpolate("key-${NAME}", {"NAME": "abc"}) == "key-abc"


def test_interpolate_unset_variable_is_empty() -> None:
    """An unset ${VAR} without default becomes the empty string."""
    assert interpolate("[${MISSING}]", {}) == "[]"


def test_interpolate_default_when_unset() -> None:
    """${VAR:-default} falls back to the default when VAR is unset."""
    assert interpolate("${PORT:-8080}", {}) == "8080"


def test_interpolate_default_when_empty() -> None:
    """${VAR:-default} also falls back when VAR is set but empty, like the shell."""
    assert interpolate("${PORT:-8080}", {"PORT": ""}) == "8080"


def test_interpolate_set_variable_beats_default() -> None:
    """A set variable wins over the default."""
    assert interpolate("${PORT:-8080}", {"PORT": "9090"}) == "9090"


def test_interpolate_several_in_one_string() -> None:
    """Several references in one string are all replaced."""
    env = {"HOST": "example.com"}
    assert interpolate("http://${HOST}:${PORT:-80}/v1", env) == "http://example.com:80/v1"


def test_interpolate_walks_lists_and_dicts() -> None:
    """Interpolation reaches strings nested in lists and mappings, and leaves keys alone."""
    tree = {"${K}": ["${A}", {"b": "${B:-x}"}, 3]}
    assert interpolate(tree, {"A": "1", "K": "no"}) == {"${K}": ["1", {"b": "x"}, 3]}


def test_interpolated_number_is_coerced() -> None:
    """An interpolated port string validates as an int."""
    text = 'server: {port: "${PORT:-8080}"}'
    assert Config.from_yaml(text, env={"PORT": "9191"}).server.port == 9191
    assert Config.from_yaml(text, env={}).server.port == 8080


def test_from_yaml_uses_env_argument_only() -> None:
    """from_yaml reads variables from the env argument, not the process environment."""
    text = 'providers: {p: {kind: openai, api_key: "${FAILOVER_TEST_ONLY_KEY}"}}'
    config = Config.from_yaml(text, env={"FAILOVER_TEST_ONLY_KEY": "from-arg"})
    key = config.providers["p"].api_key
    assert key is not None
    assert key.get_secret_value() == "from-arg"


# --- durations, rates, sizes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("9ms", 0.009),
        ("2s", 2.0),
        ("1.5s", 1.5),
        ("5m", 300.0),
        ("1.5m", 90.0),
        ("1h", 3600.0),
        ("3", 3.0),
        (" 2 s ", 2.0),
        (0, 0.0),
        (7, 7.0),
        (0.5, 0.5),
    ],
)
def test_parse_duration_valid(text: Any, seconds: float) -> None:
    """Durations with ms/s/m/h units or bare numbers are seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "value",
    ["", "abc", "2d", "-1s", "1.s", "2 sec", "1h30m", "2S", -1, -0.5, True, None, [1], "9" * 400],
)
def test_parse_duration_invalid(value: Any) -> None:
    """Anything that is not a non-negative duration raises ValueError."""
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_parse_duration_rejects_non_finite(value: float) -> None:
    """NaN and infinity (YAML's .nan/.inf) are not durations."""
    with pytest.raises(ValueError):
        parse_duration(value)


def test_yaml_nan_timeout_is_rejected() -> None:
    """A `.nan` timeout in YAML is a ConfigError naming the field, not a silent NaN."""
    with pytest.raises(ConfigError, match=r"defaults\.timeouts\.attempt"):
        Config.from_yaml("defaults: {timeouts: {attempt: .nan}}", env={})


@pytest.mark.parametrize(
    ("value", "fraction"),
    [("50%", 0.5), ("5%", 0.05), (" 20 % ", 0.2), ("0.5", 0.5), (0.5, 0.5), (1, 1.0)],
)
def test_parse_rate_valid(value: Any, fraction: float) -> None:
    """Rates are fractions, written as percentages or plain numbers."""
    assert parse_rate(value) == pytest.approx(fraction)


@pytest.mark.parametrize("value", ["half", "%", "50%%", True, None, [0.5]])
def test_parse_rate_invalid(value: Any) -> None:
    """Anything else raises ValueError."""
    with pytest.raises(ValueError):
        parse_rate(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ("10MB", 10_000_000),
        ("512KiB", 512 * 1024),
        ("1.5kb", 1500),
        ("2GiB", 2 * 1024**3),
        ("100", 100),
        ("64b", 64),
        (4096, 4096),
    ],
)
def test_parse_size_valid(value: Any, size: int) -> None:
    """Sizes with decimal and binary units become bytes."""
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["ten", "10TB", "-1", -1, 1.5, True, None])
def test_parse_size_invalid(value: Any) -> None:
    """Unknown units, negatives, floats and booleans raise ValueError."""
    with pytest.raises(ValueError):
        parse_size(value)


def test_max_body_size_in_config() -> None:
    """server.max_body accepts a size with units."""
    assert Config.from_dict({"server": {"max_body": "1MiB"}}).server.max_body == 1024**2


DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(sorted(DURATION_UNITS)))
def test_parse_duration_round_trips_integers(n: int, unit: str) -> None:
    """f"{n}{unit}" parses to exactly n times the unit in seconds."""
    expected = n / 1000 if unit == "ms" else n * DURATION_UNITS[unit]
    assert parse_duration(f"{n}{unit}") == expected


@given(
    st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False, allow_infinity=False),
    st.sampled_from(sorted(DURATION_UNITS)),
)
def test_parse_duration_round_trips_decimals(n: Any, unit: str) -> None:
    """Decimal values with a unit parse to (almost exactly) the value times the unit."""
    assert math.isclose(parse_duration(f"{n}{unit}"), float(n) * DURATION_UNITS[unit])


@given(st.text())
def test_parse_duration_arbitrary_text_raises_only_value_error(text: str) -> None:
    """Any text either parses to a finite non-negative float or raises ValueError."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        return
    assert math.isfinite(seconds)
    assert seconds >= 0


@given(st.text())
def test_parse_rate_arbitrary_text_raises_only_value_error(text: str) -> None:
    """Any text either parses to a float or raises ValueError."""
    try:
        rate = parse_rate(text)
    except ValueError:
        return
    assert isinstance(rate, float)


@given(st.integers(min_value=0, max_value=10**6))
def test_parse_rate_percent_is_hundredths(n: int) -> None:
    """parse_rate("N%") == N / 100."""
    assert parse_rate(f"{n}%") == n / 100


# --- field paths in error messages -----------------------------------------------------------


def test_bad_deployment_timeout_names_its_path() -> None:
    """An invalid duration names routes.<route>.deployments[i].<field>."""
    data = one_route(
        deployments=[
            {"provider": "p", "model": "a"},
            {"provider": "p", "model": "b", "timeout": "soon"},
        ]
    )
    message = config_error(data)
    assert "routes.smart.deployments[1].timeout" in message
    assert "invalid duration" in message


def test_unknown_provider_names_its_path() -> None:
    """A deployment of an unconfigured provider names the path and the known providers."""
    data = one_route(deployments=[{"provider": "nope", "model": "m"}])
    data["routes"] = {"x": data["routes"]["smart"]}
    message = config_error(data)
    assert "routes.x.deployments[0].provider" in message
    assert "'nope'" in message
    assert "known: p" in message


def test_unknown_provider_kind_names_its_path() -> None:
    """A provider kind that does not exist names providers.<name>.kind."""
    assert "providers.p.kind" in config_error({"providers": {"p": {"kind": "openia"}}})


def test_base_url_must_be_http() -> None:
    """A base_url without http(s):// is rejected at its path."""
    message = config_error({"providers": {"p": {"kind": "openai", "base_url": "api.x.com"}}})
    assert "providers.p.base_url" in message


def test_base_url_trailing_slash_is_removed() -> None:
    """A trailing slash on base_url is dropped."""
    config = Config.from_dict({"providers": {"p": {"kind": "openai", "base_url": "http://h/v1/"}}})
    assert config.providers["p"].base_url == "http://h/v1"


def test_unknown_fallback_route_is_rejected() -> None:
    """A fallback to a route that does not exist names the route and the path."""
    message = config_error(one_route(fallbacks=["ghost"]))
    assert "routes.smart.fallbacks[0]" in message
    assert "unknown route 'ghost'" in message


def test_unknown_context_window_fallback_is_rejected() -> None:
    """context_window_fallbacks are checked like fallbacks."""
    message = config_error(one_route(context_window_fallbacks=["ghost"]))
    assert "routes.smart.context_window_fallbacks[0]" in message


def test_self_fallback_is_rejected() -> None:
    """A route cannot fall back to itself."""
    message = config_error(one_route(fallbacks=["smart"]))
    assert "routes.smart.fallbacks[0]" in message
    assert "itself" in message


def test_fallback_cycle_is_rejected_and_named() -> None:
    """A fallback cycle a -> b -> a is rejected, with the cycle spelled out."""
    dep = [{"provider": "p", "model": "m"}]
    data = {
        "providers": {"p": {"kind": "openai"}},
        "routes": {
            "a": {"deployments": dep, "fallbacks": ["b"]},
            "b": {"deployments": dep, "fallbacks": ["a"]},
        },
    }
    message = config_error(data)
    assert "fallback cycle" in message
    assert "a -> b -> a" in message


def test_longer_fallback_cycle_is_named() -> None:
    """A three-route cycle is named in full."""
    dep = [{"provider": "p", "model": "m"}]
    data = {
        "providers": {"p": {"kind": "openai"}},
        "routes": {
            "a": {"deployments": dep, "fallbacks": ["b"]},
            "b": {"deployments": dep, "fallbacks": ["c"]},
            "c": {"deployments": dep, "fallbacks": ["a"]},
        },
    }
    assert "a -> b -> c -> a" in config_error(data)


def test_fallback_chain_without_cycle_is_accepted() -> None:
    """A diamond of fallbacks (a -> b, a -> c, b -> c) is not a cycle."""
    dep = [{"provider": "p", "model": "m"}]
    data = {
        "providers": {"p": {"kind": "openai"}},
        "routes": {
            "a": {"deployments": dep, "fallbacks": ["b", "c"]},
            "b": {"deployments": dep, "fallbacks": ["c"]},
            "c": {"deployments": dep},
        },
    }
    assert Config.from_dict(data).routes["a"].fallbacks == ["b", "c"]


def test_route_name_with_slash_is_rejected() -> None:
    """Route names cannot contain '/', which separates provider/model."""
    data = one_route()
    data["routes"] = {"a/b": data["routes"]["smart"]}
    assert "routes.a/b" in config_error(data)


def test_route_needs_a_deployment() -> None:
    """A route with no deployments is rejected at routes.<name>.deployments."""
    assert "routes.smart.deployments" in config_error(one_route(deployments=[]))


def test_duplicate_deployment_names_are_rejected() -> None:
    """Two deployments with the same provider/model in one route are rejected."""
    dep = {"provider": "p", "model": "m"}
    message = config_error(one_route(deployments=[dep, dep]))
    assert "p/m" in message
    assert "unique" in message


def test_bad_strategy_names_its_path() -> None:
    """An unknown strategy is rejected at routes.<name>.strategy."""
    assert "routes.smart.strategy" in config_error(one_route(strategy="fastest"))


def test_attempt_timeout_over_total_is_rejected() -> None:
    """attempt > total is rejected and the message names both values."""
    message = config_error({"defaults": {"timeouts": {"attempt": "90s", "total": "60s"}}})
    assert "defaults.timeouts" in message
    assert "attempt (90s)" in message
    assert "total (60s)" in message


def test_first_token_over_attempt_is_rejected() -> None:
    """first_token > attempt is rejected and names both."""
    message = config_error({"defaults": {"timeouts": {"first_token": "30s", "attempt": "10s"}}})
    assert "first_token (30s)" in message
    assert "attempt (10s)" in message


def test_zero_timeout_is_rejected() -> None:
    """A timeout of zero is rejected."""
    assert "attempt must be > 0" in config_error({"defaults": {"timeouts": {"attempt": 0}}})


def test_timeouts_can_be_disabled_with_null() -> None:
    """null switches one timeout off and skips the comparisons that involve it."""
    timeouts = Timeouts(attempt=None, total=5)
    assert timeouts.attempt is None
    assert timeouts.total == 5.0


def test_max_backoff_below_base_is_rejected() -> None:
    """retry.max_backoff must be >= retry.base."""
    message = config_error({"defaults": {"retry": {"base": "2s", "max_backoff": "1s"}}})
    assert "max_backoff must be >= base" in message


def test_breaker_max_open_for_below_open_for_is_rejected() -> None:
    """breaker.max_open_for must be >= breaker.open_for."""
    message = config_error({"defaults": {"breaker": {"open_for": "10m", "max_open_for": "1m"}}})
    assert "max_open_for must be >= open_for" in message


def test_failure_rate_above_one_is_rejected() -> None:
    """A failure rate of 150% is out of range at its path."""
    message = config_error({"defaults": {"breaker": {"failure_rate": "150%"}}})
    assert "defaults.breaker.failure_rate" in message


def test_several_errors_are_all_listed() -> None:
    """Independent field errors are reported together, one per line."""
    message = config_error({"server": {"port": 70000}, "defaults": {"retry": {"attempts": 0}}})
    assert "server.port" in message
    assert "defaults.retry.attempts" in message


# --- unknown fields --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"server": {"prot": 1}}, "server.prot"),
        ({"providers": {"p": {"kind": "openai", "key": "x"}}}, "providers.p.key"),
        ({"defaults": {"retry": {"tries": 3}}}, "defaults.retry.tries"),
        (one_route(retries=3), "routes.smart.retries"),
    ],
)
def test_unknown_fields_are_rejected(data: dict[str, Any], path: str) -> None:
    """A misspelt field is reported as "unknown field" at its path."""
    assert f"{path}: unknown field" in config_error(data)


def test_unknown_deployment_field_is_rejected() -> None:
    """A misspelt deployment field names its index."""
    message = config_error(one_route(deployments=[{"provider": "p", "model": "m", "tiemout": 1}]))
    assert "routes.smart.deployments[0].tiemout: unknown field" in message


# --- state and server ------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["memory", "redis://127.0.0.1:6379/0", "rediss://h:1/2"])
def test_valid_state(state: str) -> None:
    """state is 'memory' or a Redis URL."""
    assert Config.from_dict({"state": state}).state == state


@pytest.mark.parametrize("state", ["postgres://h/db", "disk", ""])
def test_bad_state_is_rejected(state: str) -> None:
    """Any other state store is rejected at `state`."""
    message = config_error({"state": state})
    assert "state:" in message
    assert "redis://" in message


def test_api_keys_empty_strings_are_dropped() -> None:
    """Empty api_keys (unset variables) are dropped, the rest kept in order."""
    config = Config.from_yaml('server: {api_keys: ["${A}", "", "k2", "${B:-k3}"]}', env={})
    assert [k.get_secret_value() for k in config.server.api_keys] == ["k2", "k3"]


def test_empty_admin_key_is_none() -> None:
    """An empty admin_key means no admin key."""
    assert Config.from_yaml('server: {admin_key: "${X}"}', env={}).server.admin_key is None


def test_port_out_of_range_is_rejected() -> None:
    """A port above 65535 is rejected at server.port."""
    assert "server.port" in config_error({"server": {"port": 65536}})


# --- route-level overrides -------------------------------------------------------------------


def test_route_retry_override_is_merged_over_defaults() -> None:
    """A route's retry fields override the defaults one by one; the rest are inherited."""
    data = {**one_route(retry={"attempts": 4}), "defaults": {"retry": {"base": "100ms"}}}
    retry = Config.from_dict(data).retry_for("smart")
    assert retry.attempts == 4
    assert retry.base == 0.1
    assert retry.max_backoff == RetryConfig().max_backoff


def test_route_breaker_override_is_merged_over_defaults() -> None:
    """A route's breaker fields override the defaults, with units parsed."""
    data = {**one_route(breaker={"open_for": "1m"}), "defaults": {"breaker": {"window": 50}}}
    breaker = Config.from_dict(data).breaker_for("smart")
    assert breaker.open_for == 60.0
    assert breaker.window == 50


def test_route_timeouts_override_is_merged_over_defaults() -> None:
    """A route's timeouts override the defaults."""
    timeouts = Config.from_dict(one_route(timeouts={"total": "5m"})).timeouts_for("smart")
    assert timeouts.total == 300.0
    assert timeouts.attempt == 60.0


def test_route_without_overrides_gets_defaults() -> None:
    """A route with no overrides gets exactly the defaults."""
    config = Config.from_dict(one_route())
    assert config.retry_for("smart") == config.defaults.retry
    assert config.timeouts_for("smart") == config.defaults.timeouts


def test_route_override_is_validated_with_route_path() -> None:
    """An invalid override value names routes.<name>.<section> and the field."""
    message = config_error(one_route(retry={"attempts": 0}))
    assert "routes.smart.retry" in message
    assert "attempts" in message


def test_route_override_unknown_field_is_rejected() -> None:
    """A misspelt override field is an unknown field under routes.<name>.<section>."""
    message = config_error(one_route(breaker={"windw": 5}))
    assert "routes.smart.breaker" in message
    assert "windw: unknown field" in message


def test_route_timeouts_override_checked_against_merged_defaults() -> None:
    """A route attempt timeout above the default total is rejected after merging."""
    message = config_error(one_route(timeouts={"attempt": "200s"}))
    assert "routes.smart.timeouts" in message
    assert "attempt (200s)" in message
    assert "total (120s)" in message


def test_route_override_bad_duration_names_route_and_field() -> None:
    """An invalid duration in an override names the route section and the field."""
    message = config_error(one_route(retry={"base": "fast"}))
    assert "routes.smart.retry" in message
    assert "base" in message


# --- conversions -----------------------------------------------------------------------------


def test_retry_config_to_policy_carries_values() -> None:
    """RetryConfig.to_policy copies every field into a RetryPolicy."""
    policy = RetryConfig(attempts=3, base=0.5, budget=0.3).to_policy()
    assert (policy.attempts, policy.base, policy.budget) == (3, 0.5, 0.3)


def test_hedge_delay_accepts_duration() -> None:
    """A hedge delay may be a duration instead of p95."""
    config = Config.from_dict(one_route(hedge={"delay": "750ms"}))
    hedge = config.routes["smart"].hedge
    assert hedge is not None
    assert hedge.delay == 0.75


def test_deployment_key_defaults_to_provider_slash_model() -> None:
    """A deployment without a name is keyed provider/model."""
    dep = Config.from_dict(one_route()).routes["smart"].deployments[0]
    assert dep.key == "p/m"


def test_config_is_frozen() -> None:
    """A loaded config cannot be mutated by accident."""
    config = Config.from_dict(one_route())
    with pytest.raises(ValueError):
        config.state = "redis://h"  # type: ignore[misc]


def test_deployment_weight_from_indented_yaml() -> None:
    """A deployment's weight is read from YAML as a float."""
    text = textwrap.dedent(
        """
        providers:
          p: {kind: simulated}
        routes:
          r:
            deployments: [{provider: p, model: m, weight: 2}]
        """
    )
    assert Config.from_yaml(text, env={}).routes["r"].deployments[0].weight == 2.0


def test_misspelt_top_level_key_is_rejected() -> None:
    """A typo such as `rotues:` is an error naming the key, not a silently empty config."""
    with pytest.raises(ConfigError, match="rotues: unknown field"):
        Config.from_yaml("rotues: {}\n", env={})
