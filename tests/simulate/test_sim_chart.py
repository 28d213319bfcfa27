"""The timeline chart: its data, the PNG and the self-contained HTML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sim_helpers import make_scenario

from failover.simulate._png import figure
from failover.simulate.chart import chart_data, write_chart
from failover.simulate.record import Recording
from failover.simulate.report import build_report
from failover.simulate.runner import run_scenario

EXPECTED = [
    "traffic:primary",
    "traffic:backup",
    "errors:failed",
    "latency:p50",
    "latency:p99",
    "breakers:primary",
    "breakers:backup",
]


async def test_chart_data_holds_every_series(recording: Recording) -> None:
    """Traffic per deployment, client errors, latency and a breaker row per deployment."""
    assert chart_data(recording).names() == EXPECTED


async def test_traffic_moves_to_the_backup_during_the_fault(recording: Recording) -> None:
    """The stacked traffic series show the backup answering while the primary is down."""
    data = chart_data(recording)
    step = data.resolution
    primary, backup = (s for s in data.panel("traffic"))
    during = [i for i, x in enumerate(primary.x) if 6 <= x < 11]
    assert all(primary.y[i] == 0 for i in during)
    assert sum(backup.y[i] or 0 for i in during) * step > 150


async def test_breaker_bands_show_the_primary_open(recording: Recording) -> None:
    """The primary's band goes closed -> open -> ... -> closed; the fault window is shaded."""
    data = chart_data(recording)
    bands = [b for b in data.bands if b.deployment == "primary"]
    states = [b.state for b in bands if b.state != "unhealthy"]  # health is drawn over them
    assert states[0] == "closed" and "open" in states and states[-1] == "closed"
    assert all(b.start >= 5 and b.end <= 14 for b in bands if b.state == "unhealthy")
    assert [(w.start, w.end) for w in data.windows] == [(5, 12)]


async def test_failed_latency_is_drawn_only_when_requests_failed() -> None:
    """A `p99 failed` series appears when some requests failed."""
    scenario = make_scenario(
        timeline=[
            {"deployment": "primary", "start": "5s", "end": "8s", "fault": {"type": "reset"}},
            {"deployment": "backup", "start": "5s", "end": "8s", "fault": {"type": "reset"}},
        ]
    )
    data = chart_data(await run_scenario(scenario, fast=True))
    assert "latency:p99 failed" in data.names()


async def test_the_png_figure_draws_every_series(recording: Recording) -> None:
    """The figure builder reports the series it drew."""
    _, drawn = figure(chart_data(recording))
    assert sorted(drawn) == sorted(EXPECTED)


async def test_a_png_chart_is_written(recording: Recording, tmp_path: Path) -> None:
    """`--chart out.png` writes a real, reasonably sized PNG."""
    path = tmp_path / "out.png"
    drawn = write_chart(recording, path, build_report(recording))
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert sorted(drawn) == sorted(EXPECTED)


async def test_an_html_chart_is_self_contained(recording: Recording, tmp_path: Path) -> None:
    """The HTML chart has an element and a legend entry per series, and loads nothing."""
    path = tmp_path / "out.html"
    write_chart(recording, path, build_report(recording))
    page = path.read_text()
    for ident in (
        "series-traffic-primary",
        "series-traffic-backup",
        "series-errors-failed",
        "series-latency-p50",
        "series-latency-p99",
        "breakers-primary",
        "breakers-backup",
    ):
        assert f'id="{ident}"' in page
    for name in ("primary", "backup", "failed", "p50", "p99", "open", "closed"):
        assert re.search(rf'class="legend-item"[^>]*>.*?<text x="16">{name}', page)
    assert not re.search(r'(src|href)="(https?:)?//', page)


async def test_an_unknown_chart_format_is_refused(recording: Recording, tmp_path: Path) -> None:
    """Only .png and .html charts exist."""
    with pytest.raises(ValueError, match=r"\.png or \.html"):
        write_chart(recording, tmp_path / "out.svg")
