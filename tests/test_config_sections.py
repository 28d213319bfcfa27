"""Each config section is checked when the config loads: a bad value in any of them is a
ConfigError from `load_config` naming the field's path, never a late failure at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover import from_config
from failover.config import (
    AnthropicOptions,
    BreakerConfig,
    ChaosConfig,
    Config,
    ErrorFault,
    GeminiOptions,
    HealthConfig,
    HedgeConfig,
    ObservabilityConfig,
    OpenAIOptions,
    RetryConfig,
    SimulatedOptions,
    Timeouts,
    load_config,
)
from failover.errors import ConfigError
from failover.providers import OpenAIAdapter
from failover.resilience.panic import Panic

BASE = """\
providers:
  sim: {kind: simulated}
routes:
  chat:
    deployments: [{provider: sim, model: m}]
"""


def load_error(tmp_path: Path, text: str, *, base: str = BASE) -> str:
    """The message of the ConfigError that `load_config` raises for `base` + `text`."""
    path = tmp_path / "failover.yaml"
    path.write_text(base + text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    return str(info.value)


def loaded(text: str) -> Config:
    """The config `text` (after BASE) loads to."""
    return Config.from_yaml(BASE + text, env={})


def provider(options: dict[str, Any], kind: str = "openai", **fields: Any) -> Config:
    """A config whose only provider, `p`, has `kind` and `options`."""
    return Config.from_dict({"providers": {"p": {"kind": kind, "options": options, **fields}}})


# --- server ----------------------------------------------------------------------------------


def test_server_bad_port_names_its_path(tmp_path: Path) -> None:
    """A port that is not a number is rejected at server.port."""
    assert "server.port: " in load_error(tmp_path, "server: {port: eighty}\n")


def test_server_bad_grace_names_its_path(tmp_path: Path) -> None:
    """A grace that is not a duration is rejected at server.grace."""
    assert "server.grace: invalid duration" in load_error(tmp_path, "server: {grace: soon}\n")


# --- providers -------------------------------------------------------------------------------


def test_unknown_option_names_provider_and_option(tmp_path: Path) -> None:
    """A misspelt option is an unknown field at providers.<name>.options.<option>."""
    text = "providers:\n  openai: {kind: openai, options: {max_conections: 10}}\n"
    message = load_error(tmp_path, text, base="")
    assert "providers.openai.options.max_conections: unknown field" in message


def test_unknown_kind_is_the_only_error() -> None:
    """A wrong kind is reported alone: its options are not also checked against every kind."""
    with pytest.raises(ConfigError) as info:
        provider({"anything": 1}, kind="openia")
    assert str(info.value).count("providers.p") == 1
    assert "providers.p.kind" in str(info.value)


def test_options_default_to_the_kind_defaults() -> None:
    """A provider without options gets its kind's options model with its defaults."""
    config = Config.from_dict(
        {"providers": {k: {"kind": k} for k in ("openai", "anthropic", "gemini", "simulated")}}
    )
    kinds = {name: type(p.options) for name, p in config.providers.items()}
    assert kinds == {
        "openai": OpenAIOptions,
        "anthropic": AnthropicOptions,
        "gemini": GeminiOptions,
        "simulated": SimulatedOptions,
    }


def test_http_options_are_typed() -> None:
    """read_timeout takes a duration and max_connections a positive count."""
    options = provider({"read_timeout": "90s", "max_connections": 8}).providers["p"].options
    assert options == OpenAIOptions(read_timeout=90.0, max_connections=8)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"read_timeout": "forever"}, "read_timeout"),
        ({"read_timeout": 0}, "read_timeout"),
        ({"max_connections": 0}, "max_connections"),
        ({"organization": ["a", "b"]}, "organization"),
        ({"probe_path": None}, "probe_path"),
    ],
)
def test_openai_bad_option_names_its_path(options: dict[str, Any], field: str) -> None:
    """A bad value of an openai option is rejected at providers.p.options.<option>."""
    with pytest.raises(ConfigError, match=rf"providers\.p\.options\.{field}: "):
        provider(options)


def test_azure_rejects_openai_account_headers() -> None:
    """organization is OpenAI's header: an azure provider refuses it instead of ignoring it."""
    with pytest.raises(ConfigError, match=r"providers\.p\.options\.organization: .*azure"):
        provider({"organization": "org-1"}, kind="azure", base_url="https://r.openai.azure.com")


def test_azure_needs_a_base_url() -> None:
    """An azure provider without base_url is rejected at load, at providers.<name>.base_url."""
    with pytest.raises(ConfigError, match=r"providers\.p\.base_url: an azure provider needs"):
        provider({}, kind="azure")


def test_anthropic_beta_takes_one_or_many() -> None:
    """beta may be one string or a list; either way it is a tuple of names."""
    one = provider({"beta": "b-1"}, kind="anthropic").providers["p"].options
    many = provider({"beta": ["b-1", "b-2"]}, kind="anthropic").providers["p"].options
    assert isinstance(one, AnthropicOptions) and isinstance(many, AnthropicOptions)
    assert (one.beta, many.beta) == (("b-1",), ("b-1", "b-2"))


def test_anthropic_bad_max_tokens_names_its_path() -> None:
    """default_max_tokens below 1 is rejected at its path."""
    with pytest.raises(ConfigError, match=r"providers\.p\.options\.default_max_tokens: "):
        provider({"default_max_tokens": 0}, kind="anthropic")


def test_gemini_takes_only_the_http_options() -> None:
    """An OpenAI option given to a gemini provider is an unknown field."""
    with pytest.raises(ConfigError, match=r"providers\.p\.options\.organization: unknown field"):
        provider({"organization": "org-1"}, kind="gemini")


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"error_rate": "150%"}, "error_rate"),
        ({"latency": "soon"}, "latency"),
        ({"reply": "{nope}"}, "reply"),
        ({"latnecy": "1s"}, "latnecy"),
    ],
)
def test_simulated_bad_option_names_its_path(options: dict[str, Any], field: str) -> None:
    """A bad simulated option is rejected at load, at providers.p.options.<option>."""
    with pytest.raises(ConfigError, match=rf"providers\.p\.options\.{field}"):
        provider(options, kind="simulated")


def test_adapter_made_in_python_checks_its_options() -> None:
    """Options given to an adapter in Python are checked as its kind's, naming the option."""
    with pytest.raises(
        ConfigError, match=r"invalid options of openai/m:\n  max_conections: unknown"
    ):
        OpenAIAdapter(model="m", options={"max_conections": 4})


# --- routes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "panic"),
    [("true", Panic.HEALTH), ("false", Panic.OFF), ("health", Panic.HEALTH), ("all", Panic.ALL)],
)
def test_panic_is_stored_as_the_enum(written: str, panic: Panic) -> None:
    """Every spelling of panic loads as a Panic."""
    config = loaded(f"    panic: {written}\n")
    assert config.routes["chat"].panic is panic


def test_route_bad_panic_names_its_path(tmp_path: Path) -> None:
    """An unknown panic mode is rejected at routes.<name>.panic, naming the choices."""
    message = load_error(tmp_path, "    panic: sometimes\n")
    assert "routes.chat.panic: panic must be true, false, 'health', 'all' or 'off'" in message


def test_route_override_error_names_the_field(tmp_path: Path) -> None:
    """A bad route override names routes.<name>.<section>.<field>."""
    message = load_error(tmp_path, "    retry: {attempts: 0}\n")
    assert "routes.chat.retry.attempts: Input should be greater than or equal to 1" in message


# --- defaults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("retry: {budget: lots}", "defaults.retry.budget"),
        ("breaker: {window_seconds: 0}", "defaults.breaker.window_seconds"),
        ("timeouts: {total: never}", "defaults.timeouts.total"),
        ("health: {probe: ping}", "defaults.health.probe"),
    ],
)
def test_defaults_bad_value_names_its_path(tmp_path: Path, text: str, path: str) -> None:
    """A bad value under defaults is rejected at its path."""
    assert f"{path}: " in load_error(tmp_path, f"defaults: {{{text}}}\n")


def test_policy_check_is_a_config_error(tmp_path: Path) -> None:
    """A combination the policy refuses is refused when loading, with the policy's reason."""
    message = load_error(tmp_path, "defaults: {retry: {base: 2s, max_backoff: 1s}}\n")
    assert "defaults.retry: max_backoff must be >= base" in message


# --- state -----------------------------------------------------------------------------------


def test_state_empty_namespace_is_rejected(tmp_path: Path) -> None:
    """A Redis URL with an empty namespace= is rejected at load, at `state`."""
    message = load_error(tmp_path, "state: redis://127.0.0.1:6379/0?namespace=\n")
    assert "state: namespace= must not be empty" in message


# --- observability ---------------------------------------------------------------------------


def test_observability_section_is_typed() -> None:
    """observability: loads as an ObservabilityConfig."""
    config = loaded("observability: {metrics: false, logs: {level: DEBUG}}\n")
    assert config.observability == ObservabilityConfig.model_validate(
        {"metrics": False, "logs": {"level": "debug"}}
    )


@pytest.mark.parametrize(
    ("text", "path"),
    [
        ("{metrics: maybe}", "observability.metrics"),
        ("{logs: {level: loud}}", "observability.logs.level"),
        ("{events: {keep: 0}}", "observability.events.keep"),
        ("{tracing: true}", "observability.tracing"),
    ],
)
def test_observability_bad_value_names_its_path(tmp_path: Path, text: str, path: str) -> None:
    """A bad value under observability is rejected at load at its path."""
    assert f"{path}: " in load_error(tmp_path, f"observability: {text}\n")


@pytest.mark.parametrize(
    ("hook", "path"),
    [
        ("{url: ftp://h/x}", "url"),
        ("{url: https://h/x, events: [breakr]}", "events[0]"),
        ("{url: https://h/x, timeout: 0}", "timeout"),
        ("{url: https://h/x, attempts: 11}", "attempts"),
        ("{url: https://h/x, retries: 3}", "retries"),
    ],
)
def test_webhook_bad_value_names_its_path(tmp_path: Path, hook: str, path: str) -> None:
    """A bad webhook setting is rejected at observability.webhooks[i].<field>."""
    message = load_error(tmp_path, f"observability: {{webhooks: [{hook}]}}\n")
    assert f"observability.webhooks[0].{path}: " in message


# --- chaos -----------------------------------------------------------------------------------


def test_chaos_section_is_typed() -> None:
    """A deployment's chaos: loads as a ChaosConfig of typed faults."""
    config = Config.from_yaml(
        BASE.replace("model: m}", "model: m, chaos: {faults: [{type: error, status: 503}]}}"),
        env={},
    )
    chaos = config.routes["chat"].deployments[0].chaos
    assert chaos == ChaosConfig(faults=[ErrorFault(status=503)])


@pytest.mark.parametrize(
    ("chaos", "path"),
    [
        ("{faults: [{type: meteor}]}", "chaos.faults[0]: a fault needs a type"),
        ("{faults: [{type: error, status: 200}]}", "chaos.faults[0].error.status"),
        ("{faults: [{type: hang, start: 60s, end: 30s}]}", "chaos.faults[0].hang"),
        ("{seed: many}", "chaos.seed"),
    ],
)
def test_chaos_bad_value_names_its_path(tmp_path: Path, chaos: str, path: str) -> None:
    """A bad fault is rejected at load, at routes.<name>.deployments[i].chaos...."""
    text = BASE.replace("model: m}", f"model: m, chaos: {chaos}}}")
    assert f"routes.chat.deployments[0].{path}" in load_error(tmp_path, text, base="")


# --- what loads, runs ------------------------------------------------------------------------

VALUES = st.one_of(
    st.integers(min_value=0, max_value=100),
    st.floats(min_value=0, max_value=100),
    st.sampled_from([None, True, -1, "0", "0s", "1ms", "2s", "5m", "50%", "150%", "p95", "canary"]),
)
SECTIONS = {
    "retry": RetryConfig,
    "breaker": BreakerConfig,
    "timeouts": Timeouts,
    "health": HealthConfig,
    "hedge": HedgeConfig,
    "route retry": RetryConfig,
}


def config_with(where: str, values: dict[str, Any]) -> dict[str, Any]:
    """A config of one simulated route whose section `where` holds `values`."""
    route: dict[str, Any] = {"deployments": [{"provider": "sim", "model": "m"}]}
    defaults: dict[str, Any] = {}
    if where == "hedge":
        route["hedge"] = values
    elif where == "route retry":
        route["retry"] = values
    else:
        defaults[where] = values
    return {
        "providers": {"sim": {"kind": "simulated"}},
        "routes": {"chat": route},
        "defaults": defaults,
    }


@pytest.mark.parametrize("where", sorted(SECTIONS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_config_that_loads_builds_its_router(where: str, data: st.DataObject) -> None:
    """Whatever a policy section holds, the config either fails to load or builds a router."""
    names = st.sampled_from(sorted(SECTIONS[where].model_fields))
    values = data.draw(st.dictionaries(names, VALUES, max_size=3))
    try:
        config = Config.from_dict(config_with(where, values))
    except ConfigError:
        return
    assert from_config(config).route_names() == ["chat"]
