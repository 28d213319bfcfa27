"""Streams in a drill: a break mid-answer is recorded per request, recovered or not, and shows
in the report, the SLO metrics, the JSON, the terminal, the chart and the progress ticks."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from rich.console import Console
from sim_helpers import ANSWER, cut_streams

from failover.simulate.chart import Mark, chart_data
from failover.simulate.record import Recording, Tick
from failover.simulate.render import print_report
from failover.simulate.report import Report, build_report
from failover.simulate.runner import run_scenario
from failover.simulate.slo import parse_assertion


@pytest.fixture(scope="module")
def rescued() -> Recording:
    """Every request streams; the primary cuts every stream after 4 chunks from 2 s to 6 s."""
    return asyncio.run(run_scenario(cut_streams("primary"), fast=True))


@pytest.fixture(scope="module")
def report(rescued: Recording) -> Report:
    """The report of `rescued`."""
    return build_report(rescued)


def test_the_drill_answers_the_same_words_everywhere() -> None:
    """Both deployments give the same answer, so a recovery can continue or match it."""
    assert len(ANSWER.split()) == 12


def test_a_cut_stream_is_recorded_as_broken_and_recovered(rescued: Recording) -> None:
    """Streams cut during the fault are recorded as broken once, recovered once, answered
    by the backup that finished them."""
    broken = [r for r in rescued.requests if r.broken]
    assert broken and all(2 <= r.start < 6 for r in broken)
    assert all(
        (r.ok, r.breaks, r.recoveries, r.deployment) == (True, 1, 1, "backup") for r in broken
    )
    assert all(r.rescued for r in broken) and not any(
        r.rescued for r in rescued.requests if not r.broken
    )


def test_the_stream_hook_tells_how_each_break_ended(rescued: Recording) -> None:
    """Each break is in the recording with its deployment, how it was recovered and by whom."""
    assert rescued.stream_breaks is not None
    assert {(b.deployment, b.kind, b.outcome, b.by) for b in rescued.stream_breaks} == {
        ("primary", "connection", "continued", "backup")
    }
    assert len(rescued.stream_breaks) == sum(r.breaks for r in rescued.requests)
    assert all(b.delivered > 0 for b in rescued.stream_breaks)


def test_rescued_streams_count_as_answered(report: Report) -> None:
    """A rescued stream is a success: availability stays whole, every break recovered."""
    s = report.overall
    assert s.availability == 1.0 and s.streams == s.requests
    assert s.broken_streams == s.recovered_streams >= 3 and s.unrecovered_streams == 0
    assert s.stream_recovery == 1.0


def test_stream_metrics_are_available_by_name(report: Report) -> None:
    """The stream numbers can be asserted on, recoveries split by how they were made."""
    assert report.metric("recovered_streams") == report.overall.recovered_streams
    assert report.metric("stream_recovery") == 1.0
    assert report.metric("continued_recoveries") == report.overall.broken_streams
    assert report.metric("restarted_recoveries") == 0
    verdicts = report.check([parse_assertion("stream_recovery >= 100%")])
    assert verdicts[0].passed


def test_blamed_calls_are_the_cuts(rescued: Recording, report: Report) -> None:
    """The cut streams are the primary's failures; rescuing them blames nobody else."""
    assert rescued.calls is not None
    cuts = [c for c in rescued.calls if c.kind == "connection"]
    assert {c.deployment for c in cuts} == {"primary"}
    assert report.overall.blamed_calls == len(cuts) > 0
    assert [p.stats.blamed_calls for p in report.phases] == [0, len(cuts), 0]


async def test_an_unrecovered_break_counts_as_a_failure() -> None:
    """When the backup cuts its streams too, a break cannot be recovered: the request fails,
    and the report counts it as broken and unrecovered (other requests fail before any
    content, once both breakers are open: those are not broken streams)."""
    recording = await run_scenario(cut_streams("primary", "backup"), fast=True)
    lost = [r for r in recording.requests if r.broken and not r.ok]
    assert lost and all(r.breaks == r.recoveries + 1 for r in lost)
    s = build_report(recording).overall
    assert s.unrecovered_streams == s.broken_streams == len(lost) <= s.failed
    assert s.stream_recovery is not None and s.stream_recovery < 1
    assert recording.stream_breaks is not None
    assert "failed" in {b.outcome for b in recording.stream_breaks}


def test_the_json_report_holds_the_stream_numbers(report: Report) -> None:
    """The JSON has the stream counts overall and per phase, and how breaks ended."""
    data = json.loads(json.dumps(report.to_dict()))
    overall = data["overall"]
    assert overall["broken_streams"] == overall["recovered_streams"] > 0
    assert overall["unrecovered_streams"] == 0 and overall["stream_recovery"] == 1.0
    assert data["phases"][1]["broken_streams"] == overall["broken_streams"]
    assert data["stream_breaks"] == {
        "continued": overall["broken_streams"],
        "restarted": 0,
        "failed": 0,
    }


def test_the_terminal_report_shows_rescues(report: Report) -> None:
    """A `rescued` column and a line on what became of the streams."""
    out = io.StringIO()
    print_report(report, Console(file=out, width=140, color_system=None))
    text = out.getvalue()
    n = report.overall.broken_streams
    assert "rescued" in text and f"{n}/{n}" in text
    assert f"{n} broke after content reached the client: {n} recovered ({n} continued" in text


async def test_a_report_without_breaks_says_so(recording: Recording) -> None:
    """When no stream broke there is no `rescued` column, and the streams line says none did."""
    out = io.StringIO()
    print_report(build_report(recording), Console(file=out, width=140, color_system=None))
    text = out.getvalue()
    assert "none broke after content reached the client" in text and "rescued" not in text


def test_the_chart_notes_rescues_on_the_rescuer(rescued: Recording, report: Report) -> None:
    """The chart notes, on the backup's row at the fault's start, how many streams it rescued."""
    n = report.overall.recovered_streams
    assert Mark("backup", 2.0, f"{n} streams rescued") in chart_data(rescued, report).marks


async def test_progress_ticks_count_rescued_streams() -> None:
    """The progress display is told how many streams were rescued so far."""
    ticks: list[Tick] = []
    recording = await run_scenario(cut_streams("primary"), fast=True, on_tick=ticks.append)
    assert ticks[-1].rescued == sum(r.rescued for r in recording.requests) > 0
