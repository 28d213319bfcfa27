"""Running scenarios: virtual and real time, fault switching, draining, progress ticks."""

from __future__ import annotations

import asyncio
import time

from sim_helpers import CONFIG, make_scenario

from failover.clock import FakeClock
from failover.config import Config
from failover.simulate.record import Recording, Tick
from failover.simulate.runner import default_resolution, run_scenario, virtual_time
from failover.simulate.scenario import Scenario


async def test_virtual_time_jumps_whenever_every_task_waits() -> None:
    """A long sleep on the fake clock returns at once in real time."""
    clock = FakeClock()
    began = time.perf_counter()
    async with virtual_time(clock):
        await asyncio.gather(clock.sleep(3600), clock.sleep(1800))
    assert clock.now() == 1000 + 3600
    assert time.perf_counter() - began < 1


async def test_fast_mode_runs_an_hour_in_seconds() -> None:
    """An hour of traffic in virtual time takes seconds of real time."""
    scenario = make_scenario(load={"rate": 2, "duration": "1h"}, timeline=[])
    recording = await run_scenario(scenario, fast=True)
    assert recording.duration == 3600
    assert 6_800 < len(recording.requests) < 7_600
    assert recording.real_seconds < 20


async def test_the_same_seed_gives_the_same_run(scenario: Scenario) -> None:
    """Fast runs are reproducible: same seed, same requests and outcomes."""
    first = await run_scenario(scenario, fast=True)
    second = await run_scenario(scenario, fast=True)
    assert [(r.start, r.latency, r.deployment) for r in first.requests] == [
        (r.start, r.latency, r.deployment) for r in second.requests
    ]


async def test_another_seed_gives_another_run(scenario: Scenario) -> None:
    """`seed=` overrides the scenario's seed."""
    first = await run_scenario(scenario, fast=True)
    second = await run_scenario(scenario, fast=True, seed=99)
    assert second.seed == 99
    assert [r.start for r in first.requests] != [r.start for r in second.requests]


async def test_real_time_mode_runs_on_the_system_clock() -> None:
    """Without fast mode a one-second scenario takes about a second."""
    scenario = make_scenario(load={"rate": 20, "duration": "1s"}, timeline=[])
    recording = await run_scenario(scenario, fast=False)
    assert recording.mode == "real"
    assert recording.real_seconds >= 1.0
    assert len(recording.requests) > 5 and all(r.ok for r in recording.requests)


async def test_faults_reach_the_deployment_only_inside_their_window(
    recording: Recording,
) -> None:
    """Calls to the primary fail exactly while its fault is on, and succeed outside it."""
    assert recording.calls is not None
    primary = [c for c in recording.calls if c.deployment == "primary"]
    inside = [c for c in primary if 5 <= c.start < 12]
    outside = [c for c in primary if not 5 <= c.start < 12]
    assert inside and all(c.kind == "connection" for c in inside)
    assert outside and all(c.kind == "ok" for c in outside)


async def test_switches_are_recorded_on_and_off(recording: Recording) -> None:
    """The run logs each fault switch: on at the window's start, off at its end."""
    assert [(s.deployment, s.at, bool(s.faults)) for s in recording.switches] == [
        ("primary", 5.0, True),
        ("primary", 12.0, False),
    ]


async def test_breaker_changes_are_recorded(recording: Recording) -> None:
    """The primary's breaker opening and closing again are in the recording."""
    states = [c.state for c in recording.changes if c.deployment == "primary"]
    assert states[0] == "open" and states[-1] == "closed"


async def test_requests_still_hanging_after_the_drain_are_cut() -> None:
    """Requests in flight `drain` seconds after the load ends count as failed."""
    config = {
        **CONFIG,
        "defaults": {"timeouts": {"attempt": None, "first_token": None, "total": None}},
    }
    scenario = make_scenario(
        config=config,
        load={"rate": 10, "duration": "2s", "drain": "5s"},
        timeline=[
            {"deployment": "primary", "fault": {"type": "hang"}},
            {"deployment": "backup", "fault": {"type": "hang"}},
        ],
    )
    recording = await run_scenario(scenario, fast=True)
    assert recording.requests and all(r.kind == "unfinished" for r in recording.requests)
    assert "were cut" in recording.notes[0]


async def test_other_providers_are_stood_in_by_simulated_ones() -> None:
    """A production config runs with simulated stand-ins, and the run says so."""
    config = Config.from_dict(
        {
            "providers": {
                "openai": {"kind": "openai", "api_key": "sk-test"},
                "sim": {"kind": "simulated"},
            },
            "routes": {
                "chat": {
                    "deployments": [
                        {"provider": "openai", "model": "gpt-4o"},
                        {"provider": "sim", "model": "m"},
                    ]
                }
            },
        }
    )
    scenario = make_scenario(load={"rate": 10, "duration": "2s"}, timeline=[], config=None)
    recording = await run_scenario(scenario, config=config, fast=True)
    assert all(r.ok for r in recording.requests)
    assert any("stands in" in note for note in recording.notes)


async def test_progress_ticks_reach_the_end(scenario: Scenario) -> None:
    """The progress listener sees time advance up to the scenario's duration."""
    ticks: list[Tick] = []
    await run_scenario(scenario, fast=True, on_tick=ticks.append)
    assert ticks[-1].now == scenario.duration
    assert ticks[-1].sent == ticks[-1].ok + ticks[-1].failed
    assert any(t.breakers.get("primary") == "open" for t in ticks)


def test_chart_bins_are_round_numbers() -> None:
    """The default resolution gives about 120 round-numbered bins."""
    assert [default_resolution(d) for d in (10, 60, 120, 3600)] == [0.1, 0.5, 1, 30]
