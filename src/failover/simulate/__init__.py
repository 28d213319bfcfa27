"""The outage simulator: run a scenario (load + a timeline of faults) against the real router,
in virtual time or real time, or against a running gateway; report availability, latency,
attempts, time to detect and time to recover per phase; gate CI on an SLO; chart the timeline.

    scenario = load_scenario("scenarios/primary-down.yaml")
    recording = await run_scenario(scenario, fast=True)
    report = build_report(recording, scenario.assertions())
    report.passed, report.metric("p99"), report.faults[0].detect
    write_chart(recording, "primary-down.png", report)

On the command line: `failover simulate SCENARIO.yaml --fast` (see `failover.cli.simulate`).
"""

from __future__ import annotations

from .chart import ChartData, chart_data, write_chart
from .record import Recording
from .report import FaultReport, PhaseReport, Report, Stats, build_report
from .runner import run_scenario
from .scenario import LoadProfile, Scenario, TimelineEntry, load_scenario
from .slo import Assertion, Verdict, parse_assertion

__all__ = [
    "Assertion",
    "ChartData",
    "FaultReport",
    "LoadProfile",
    "PhaseReport",
    "Recording",
    "Report",
    "Scenario",
    "Stats",
    "TimelineEntry",
    "Verdict",
    "build_report",
    "chart_data",
    "load_scenario",
    "parse_assertion",
    "run_scenario",
    "write_chart",
]
