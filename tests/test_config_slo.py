"""Service level objectives in the config: `routes.<name>.slo` over `defaults.slo`, checked
when the config loads, each bad value named by its path."""

from __future__ import annotations

import pytest

from failover.config import QUANTILES, SLO_WINDOWS, Config, LatencyObjectives, SloConfig
from failover.errors import ConfigError

BASE = """\
providers:
  sim: {kind: simulated}
routes:
  chat:
    deployments: [{provider: sim, model: m}]
  fast:
    deployments: [{provider: sim, model: f}]
"""


def loaded(route_slo: str = "", defaults: str = "") -> Config:
    """BASE with `slo: route_slo` on route chat and `defaults: defaults`."""
    text = BASE
    if route_slo:
        text = BASE.replace("model: m}]\n", f"model: m}}]\n    slo: {route_slo}\n")
    return Config.from_yaml(text + (f"defaults: {defaults}\n" if defaults else ""), env={})


def error(route_slo: str = "", defaults: str = "") -> str:
    """The ConfigError message of loading that config."""
    with pytest.raises(ConfigError) as info:
        loaded(route_slo, defaults)
    return str(info.value)


def test_a_route_without_objectives_has_none() -> None:
    """No slo anywhere: slo_for answers None."""
    assert loaded().slo_for("chat") is None


def test_objectives_load_in_the_units_people_write() -> None:
    """99.9%, p99: 2s and 28d load as 0.999, 2.0 seconds and 28 days in seconds."""
    slo = loaded("{availability: 99.9%, latency: {p99: 2s, p50: 250ms}, window: 28d}").slo_for(
        "chat"
    )
    assert slo is not None
    assert slo.availability == 0.999
    assert slo.latency is not None and slo.latency.objectives() == {0.5: 0.25, 0.99: 2.0}
    assert slo.window == 28 * 86400
    assert slo.error_budget == pytest.approx(0.001)


def test_the_window_defaults_to_30_days() -> None:
    """An objective without a window is measured over 30 days."""
    slo = loaded("{availability: 99%}").slo_for("chat")
    assert slo is not None and slo.window == SLO_WINDOWS["30d"]


def test_weeks_and_hours_name_the_same_windows() -> None:
    """4w is 28d, and 720h is 30d."""
    assert SloConfig.model_validate({"window": "4w"}).window == SLO_WINDOWS["28d"]
    assert SloConfig.model_validate({"window": "720h"}).window == SLO_WINDOWS["30d"]


def test_defaults_apply_to_every_route() -> None:
    """defaults.slo is the objective of a route that sets none."""
    config = loaded(defaults="{slo: {availability: 99.5%}}")
    assert config.slo_for("fast") == SloConfig(availability=0.995)


def test_a_route_overrides_the_fields_it_sets() -> None:
    """A route's availability replaces the default's; the default's latency stays."""
    config = loaded("{availability: 99.9%}", "{slo: {availability: 99%, latency: {p95: 1s}}}")
    slo = config.slo_for("chat")
    assert slo is not None
    assert slo.availability == 0.999
    assert slo.latency == LatencyObjectives(p95=1.0)


def test_every_quantile_field_has_its_quantile() -> None:
    """The latency fields are exactly the quantiles exported as labels."""
    assert set(LatencyObjectives.model_fields) == set(QUANTILES)


@pytest.mark.parametrize(
    ("slo", "message"),
    [
        ("{availability: 100%}", "routes.chat.slo.availability: 100% leaves no error budget"),
        ("{availability: 0%}", "routes.chat.slo.availability: must be above 0%"),
        ("{availability: lots}", "routes.chat.slo.availability: invalid rate"),
        ("{latency: {}}", "routes.chat.slo.latency: name at least one objective"),
        ("{latency: {p99: 0s}}", "routes.chat.slo.latency.p99: Input should be greater than 0"),
        ("{latency: {p98: 1s}}", "routes.chat.slo.latency.p98: unknown field"),
        ("{latency: {p50: 3s, p99: 2s}}", "p50 (3s) is longer than p99 (2s)"),
        ("{window: 10d}", "routes.chat.slo.window: an SLO window must be one of 7d, 14d, 28d, 30d"),
        ("{availability: 99%, target: 1}", "routes.chat.slo.target: unknown field"),
    ],
)
def test_a_bad_objective_is_named_by_its_path(slo: str, message: str) -> None:
    """Each bad value fails the load with its field's path and why."""
    assert message in error(slo)


def test_a_bad_default_objective_is_named_by_its_path() -> None:
    """defaults.slo is checked like a route's."""
    assert "defaults.slo.window: an SLO window" in error(defaults="{slo: {window: 1h}}")
