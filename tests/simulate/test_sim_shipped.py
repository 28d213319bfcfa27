"""The scenarios shipped in scenarios/: each meets its own SLO in fast mode."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path

import pytest

from failover.simulate.report import Report, build_report
from failover.simulate.runner import run_scenario
from failover.simulate.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SHIPPED = sorted(p.stem for p in SCENARIOS.glob("*.yaml"))


def test_every_promised_scenario_is_shipped() -> None:
    """The eleven drills of the docs exist."""
    assert set(SHIPPED) >= {
        "primary-down",
        "brownout",
        "slow-provider",
        "rate-limit-storm",
        "flapping",
        "all-down-recovery",
        "slow-first-token",
        "stream-cuts",
        "stream-stalls",
        "stream-quirks",
        "stream-prefill-refused",
    }


@pytest.mark.parametrize("name", SHIPPED)
def test_each_scenario_declares_an_slo(name: str) -> None:
    """A shipped scenario says what passing means."""
    assert load_scenario(SCENARIOS / f"{name}.yaml").slo


@functools.cache
def run(name: str) -> Report:
    """A shipped scenario, run in virtual time (once per session), its assertions checked."""
    scenario = load_scenario(SCENARIOS / f"{name}.yaml")
    return build_report(asyncio.run(run_scenario(scenario, fast=True)), scenario.assertions())


@pytest.mark.parametrize("name", SHIPPED)
def test_each_scenario_meets_its_slo(name: str) -> None:
    """Run in virtual time, the scenario's own assertions all hold."""
    report = run(name)
    assert report.passed, [v.describe() for v in report.failures]


@pytest.fixture(scope="module")
def primary_down() -> Report:
    """primary-down.yaml at 200 req/s, in virtual time."""
    report = run("primary-down")
    assert report.recording.scenario.load.rate == 200
    return report


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


@pytest.fixture(scope="module")
def stream_stalls() -> Report:
    """stream-stalls.yaml, in virtual time."""
    return run("stream-stalls")


@pytest.fixture(scope="module")
def prefill_refused() -> Report:
    """stream-prefill-refused.yaml, in virtual time."""
    return run("stream-prefill-refused")


def test_stream_stalls_cost_the_silence_limit_not_the_stall(stream_stalls: Report) -> None:
    """Each stalled stream is given up after the 1 s silence limit, not the minute-long
    stall: a rescued request takes about one second more than a whole one."""
    rescued = [r.latency for r in stream_stalls.recording.requests if r.rescued]
    whole = [r.latency for r in stream_stalls.recording.requests if not r.broken]
    assert rescued and min(rescued) > 1.0 and max(rescued) < max(whole) + 1.2


def test_a_refused_prefill_is_learned_once(prefill_refused: Report) -> None:
    """The backup refuses the first prefill and is not asked to continue again: one refused
    call, every other break restarted and matched."""
    calls = prefill_refused.recording.calls
    assert calls is not None
    refused = [c for c in calls if c.deployment == "backup" and c.kind == "bad_request"]
    assert len(refused) == 1
    assert prefill_refused.metric("restarted_recoveries") == prefill_refused.overall.broken_streams


def test_a_refused_prefill_is_not_blamed(prefill_refused: Report) -> None:
    """The backup's refusal does not count against it: only the primary's cuts are blamed."""
    calls = prefill_refused.recording.calls
    assert calls is not None
    cuts = [c for c in calls if c.kind == "connection"]
    assert {c.deployment for c in cuts} == {"primary"}
    assert prefill_refused.overall.blamed_calls == len(cuts)
