"""The report in a terminal: a phase table, a fault table and the SLO verdicts (rich)."""

from __future__ import annotations

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .report import FaultReport, PhaseReport, Report, Stats
from .slo import format_seconds

__all__ = ["print_report", "report_renderable"]

_MODES = {"fast": "virtual time", "real": "real time", "http": "HTTP to a gateway"}


def print_report(report: Report, console: Console | None = None) -> None:
    """Print the tables and verdicts of `report`."""
    (console or Console()).print(report_renderable(report))


def report_renderable(report: Report) -> Group:
    rec = report.recording
    load = rec.scenario.load
    rates = sorted({r for _, _, r, _ in load.stretches()})
    rate = "/".join(f"{r:g}" for r in rates)
    head = Text.assemble(
        (rec.scenario.name, "bold"),
        f"  {rate} req/s for {_secs(rec.duration)} on route {rec.route!r}, "
        f"{_MODES[rec.mode]}, seed {rec.seed}, ran in {rec.real_seconds:.1f}s",
    )
    parts: list[Text | Table] = [head, _phase_table(report)]
    streams = _streams_line(report)
    if streams is not None:
        parts.append(streams)
    if report.faults:
        parts.append(_fault_table(report.faults, rec.calls is not None))
    parts.extend(_verdicts(report))
    parts.extend(Text(f"note: {n}", style="dim") for n in rec.notes)
    return Group(*parts)


def _phase_table(report: Report) -> Table:
    http = report.recording.calls is None
    table = Table(
        title="Phases",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    rescues = report.overall.broken_streams > 0  # a column only when streams broke
    table.add_column("time", no_wrap=True)
    table.add_column("faults on", ratio=1, min_width=12)
    names = ["reqs", "avail", "p50", "p95", "p99", "attempts", "faulted"]
    for name in [*names, "rescued"] if rescues else names:
        table.add_column(name, justify="right", no_wrap=True)
    for phase in report.phases:
        table.add_row(*_phase_row(phase, http, rescues))
    table.add_section()
    table.add_row(
        f"0-{_secs(report.recording.duration)}",
        Text("all", style="bold"),
        *_stat_cells(report.overall, http, rescues),
        style="bold",
    )
    return table


def _phase_row(phase: PhaseReport, http: bool, rescues: bool) -> list[str | Text]:
    when = f"{_secs(phase.start)}-{_secs(phase.end)}"
    faults = Text(phase.label, style="red" if phase.faults else "green")
    return [when, faults, *_stat_cells(phase.stats, http, rescues)]


def _stat_cells(s: Stats, http: bool, rescues: bool = False) -> list[str | Text]:
    cells = _base_cells(s, http)
    if rescues:
        cells.append(_rescued(s))
    return cells


def _rescued(s: Stats) -> str | Text:
    """Broken streams recovered, out of those that broke: `12/12`."""
    if not s.broken_streams:
        return "-"
    style = "green" if s.unrecovered_streams == 0 else "red"
    return Text(f"{s.recovered_streams}/{s.broken_streams}", style=style)


def _streams_line(report: Report) -> Text | None:
    """What became of the streams: how many broke mid-answer, how each break ended."""
    s = report.overall
    if not s.streams:
        return None
    head = Text.assemble(("Streams", "bold"), f"  {s.streams} streamed; ")
    if not s.broken_streams:
        head.append("none broke after content reached the client", style="green")
        return head
    head.append(f"{s.broken_streams} broke after content reached the client: ")
    head.append(f"{s.recovered_streams} recovered", style="green")
    how = report.stream_outcomes()
    if how is not None and (how["continued"] or how["restarted"]):
        head.append(f" ({how['continued']} continued, {how['restarted']} restarted)")
    head.append(", ")
    head.append(
        f"{s.unrecovered_streams} ended in an error",
        style="red" if s.unrecovered_streams else "green",
    )
    return head


def _base_cells(s: Stats, http: bool) -> list[str | Text]:
    avail: str | Text = "-"
    if s.availability is not None:
        style = "green" if s.failed == 0 else ("yellow" if s.availability >= 0.99 else "red")
        avail = Text(f"{s.availability * 100:.2f}%", style=style)
    return [
        str(s.requests),
        avail,
        _ms(s.p50),
        _ms(s.p95),
        _ms(s.p99),
        "-" if s.attempts is None else f"{s.attempts:.2f}",
        "n/a" if http or s.faulted_calls is None else str(s.faulted_calls),
    ]


def _fault_table(faults: list[FaultReport], calls_known: bool) -> Table:
    table = Table(
        title="Faults",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    table.add_column("deployment", no_wrap=True)
    table.add_column("fault", ratio=1, min_width=6)
    for name in ("window", "detect", "by", "recover", "calls", "opens", "max/open"):
        table.add_column(name, justify="left" if name == "by" else "right", no_wrap=True)
    for f in faults:
        table.add_row(
            f.deployment,
            f.fault,
            f"{_secs(f.start)}-{_secs(f.end)}",
            _ms(f.detect) if f.detect is not None else Text(f.detect_note or "-", "yellow"),
            f.detected_by or "",
            _ms(f.recover) if f.recover is not None else Text(f.recover_note or "-", "yellow"),
            str(f.calls) if calls_known else "n/a",
            str(f.opens),
            "n/a" if f.max_calls_per_open is None else str(f.max_calls_per_open),
        )
    return table


def _verdicts(report: Report) -> list[Text]:
    if not report.verdicts:
        return []
    lines = [Text("SLO", style="bold")]
    for v in report.verdicts:
        mark, style = ("PASS", "green") if v.passed else ("FAIL", "bold red")
        lines.append(Text.assemble((f"  {mark} ", style), v.describe()))
    return lines


def _ms(value: float | None) -> str:
    return "-" if value is None else format_seconds(value)


def _secs(value: float) -> str:
    return f"{value:g}s"
