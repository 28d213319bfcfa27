"""The scenarios shipped in scenarios/: each meets its own SLO in fast mode."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from failover.simulate.report import Report, build_report
from failover.simulate.runner import run_scenario
from failover.simulate.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SHIPPED = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))


def test_every_promised_scenario_is_shipped() -> None:
    """The seven drills of the docs exist."""
    assert set(SHIPPED) >= {
        "primary-down",
        "brownout",
        "slow-provider",
        "rate-limit-storm",
        "flapping",
        "all-down-recovery",
        "slow-first-token",
    }


@pytest.mark.parametrize("name", SHIPPED)
def test_each_scenario_declares_an_slo(name: str) -> None:
    """A shipped scenario says what passing means."""
    assert load_scenario(SCENARIOS / f"{name}.yaml").slo


@pytest.mark.parametrize("name", SHIPPED)
async def test_each_scenario_meets_its_slo(name: str) -> None:
    """Run in virtual time, the scenario's own assertions all hold."""
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    report = build_report(await run_scenario(scenario, fast=True), scenario.assertions())
    assert report.passed, [v.describe() for v in report.failures]


@pytest.fixture(scope="module")
def primary_down() -> Report:
    """primary-down.yaml at 200 req/s, in virtual time (run once for the module)."""
    scenario = load_scenario(SCENARIOS / "primary-down.yaml")
    assert scenario.load.rate == 200
    return build_report(asyncio.run(run_scenario(scenario, fast=True)))


def test_primary_down_loses_no_request(primary_down: Report) -> None:
    """With the primary hard down, no client sees an error."""
    assert primary_down.overall.requests > 15_000 and primary_down.overall.failed == 0


def test_primary_down_is_detected_within_a_second(primary_down: Report) -> None:
    """The primary's breaker opens less than a second after the outage starts."""
    (fault,) = primary_down.faults
    assert fault.detect is not None and fault.detect < 1.0


def test_primary_down_probes_once_per_open_period(primary_down: Report) -> None:
    """After the first opening, each open period lets exactly one probe reach the primary."""
    (fault,) = primary_down.faults
    assert fault.opens >= 1
    calls = primary_down.recording.calls
    assert calls is not None
    opens = [c.at for c in primary_down.recording.changes if c.state == "open"]
    later = [c for c in calls if c.deployment == "primary" and opens[0] < c.start < fault.end]
    assert len(later) == fault.opens - 1


def test_primary_down_calls_per_open_period_are_bounded(primary_down: Report) -> None:
    """The primary receives at most consecutive_failures + half_open_calls per open period."""
    (fault,) = primary_down.faults
    policy = primary_down.recording.scenario.gateway_config().breaker_for("chat")
    assert fault.max_calls_per_open is not None
    assert fault.max_calls_per_open <= policy.consecutive_failures + policy.half_open_calls
