"""The report: phases, fault timings, verdicts, JSON and the terminal tables."""

from __future__ import annotations

import io
import json

from rich.console import Console
from sim_helpers import CONFIG, make_scenario

from failover.simulate.record import Recording
from failover.simulate.render import print_report
from failover.simulate.report import build_report
from failover.simulate.runner import run_scenario
from failover.simulate.slo import parse_assertion


async def test_phases_follow_the_fault_timeline(recording: Recording) -> None:
    """One phase before, one during and one after the fault, each with its own numbers."""
    report = build_report(recording)
    assert [(p.start, p.end, p.faults) for p in report.phases] == [
        (0, 5, []),
        (5, 12, ["primary: reset"]),
        (12, 20, []),
    ]
    assert sum(p.stats.requests for p in report.phases) == report.overall.requests


async def test_failover_hides_a_hard_down_primary(recording: Recording) -> None:
    """Every request is answered while the primary is down."""
    report = build_report(recording)
    assert report.overall.failed == 0 and report.overall.availability == 1.0


async def test_calls_to_the_faulted_deployment_are_counted(recording: Recording) -> None:
    """Only the fault phase has calls that reached a faulted deployment."""
    faulted = [p.stats.faulted_calls for p in build_report(recording).phases]
    assert faulted[0] == 0 and faulted[1] is not None and faulted[1] > 0 and faulted[2] == 0


async def test_detection_is_the_breaker_opening(recording: Recording) -> None:
    """Time to detect runs from the fault's start to the primary's breaker opening."""
    (fault,) = build_report(recording).faults
    opened = next(c.at for c in recording.changes if c.state == "open")
    assert fault.detected_by == "breaker"
    assert fault.detect == opened - 5.0


async def test_recovery_is_the_first_answer_after_the_fault(recording: Recording) -> None:
    """Time to recover runs from the fault's end to the primary answering again."""
    (fault,) = build_report(recording).faults
    assert recording.calls is not None
    first_ok = min(
        c.end
        for c in recording.calls
        if c.deployment == "primary" and c.kind == "ok" and c.start >= 12
    )
    assert fault.recover == first_ok - 12.0


async def test_a_rate_limit_is_detected_by_the_cool_down() -> None:
    """429s do not open breakers; the cool-down they start is the detection."""
    scenario = make_scenario(
        timeline=[
            {
                "deployment": "primary",
                "start": "5s",
                "end": "12s",
                "fault": {"type": "rate_limit", "retry_after": "2s"},
            }
        ]
    )
    (fault,) = build_report(await run_scenario(scenario, fast=True)).faults
    assert fault.detected_by == "rate limit" and fault.opens == 0


async def test_recovery_cut_short_by_the_next_fault_is_not_counted() -> None:
    """When the next fault starts before the deployment answered again, recovery is unmeasured
    rather than failed."""
    scenario = make_scenario(
        timeline=[
            {
                "deployment": "primary",
                "start": "4s",
                "end": "18s",
                "every": "4s",
                "for": "3.9s",
                "fault": {"type": "reset"},
            }
        ]
    )
    report = build_report(await run_scenario(scenario, fast=True))
    notes = {f.recover_note for f in report.faults}
    assert "next fault began first" in notes


async def test_assertions_become_verdicts(recording: Recording) -> None:
    """A report passes only when every assertion holds, and lists the ones that do not."""
    report = build_report(
        recording, [parse_assertion("availability>=99%"), parse_assertion("p50<=1ms")]
    )
    assert not report.passed
    assert [str(v.assertion) for v in report.failures] == ["p50 <= 1ms"]


async def test_whole_run_metrics_are_available_by_name(recording: Recording) -> None:
    """Any percentile, attempts, detect and recover can be asked for by name."""
    report = build_report(recording)
    assert report.metric("p99.9") is not None and report.metric("ttft_p95") is not None
    assert report.metric("detect") == report.faults[0].detect
    assert report.metric("attempts") == report.overall.attempts


async def test_the_json_report_holds_phases_faults_and_verdicts(recording: Recording) -> None:
    """The JSON report is complete and serialisable."""
    report = build_report(recording, [parse_assertion("availability>=99%")])
    data = json.loads(json.dumps(report.to_dict()))
    assert data["scenario"] == "test" and data["passed"] is True
    assert len(data["phases"]) == 3 and data["faults"][0]["deployment"] == "primary"
    assert data["assertions"] == [
        {"assertion": "availability >= 99%", "value": 1.0, "passed": True}
    ]


async def test_the_terminal_report_shows_phases_faults_and_verdicts(
    recording: Recording,
) -> None:
    """The rich output has the phase table, the fault table and a PASS line."""
    report = build_report(recording, [parse_assertion("availability>=99%")])
    out = io.StringIO()
    print_report(report, Console(file=out, width=120, color_system=None))
    text = out.getvalue()
    assert "Phases" in text and "Faults" in text and "primary: reset" in text
    assert "PASS availability >= 99%: got 100%" in text


async def test_health_checks_detect_a_deployment_without_traffic() -> None:
    """A backup that gets no requests is still found down, by the health checker's probes."""
    config = {**CONFIG, "defaults": {**CONFIG["defaults"], "health": {"interval": "5s"}}}
    scenario = make_scenario(
        config=config,
        load={"rate": 10, "duration": "40s"},
        timeline=[
            {"deployment": "backup", "start": "2s", "end": "30s", "fault": {"type": "reset"}}
        ],
    )
    recording = await run_scenario(scenario, fast=True)
    (fault,) = build_report(recording).faults
    assert fault.detected_by == "health" and fault.calls == 0
    assert fault.detect is not None and fault.detect <= 2 * 5 * 1.1
