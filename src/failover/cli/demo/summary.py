"""The end of `failover demo`: the whole story, a table per phase, how many streams broke and
were rescued, and the verdict (the exit status)."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .script import Run
from .story import Line, Story, count

__all__ = ["print_story", "print_summary", "serving_lines", "story_line", "summary_table"]


def _urls(run: Run) -> tuple[str, str]:
    return f"{run.url}/v1", f"{run.url}/dashboard/"


def summary_table(story: Story) -> Table:
    """A row per phase: requests, client errors, who served each route, detection/recovery."""
    table = Table(
        title="what happened (errors: seen by clients; smart, fast: who answered them)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        show_edge=False,
        collapse_padding=True,
    )
    table.add_column("phase", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("requests", justify="right", no_wrap=True)
    table.add_column("errors", justify="right", no_wrap=True)
    table.add_column("rescued", justify="right", no_wrap=True)
    for route in story.routes:
        table.add_column(route, no_wrap=True)
    table.add_column("detect/recover", no_wrap=True)
    for row in story.rows():
        served = [row.served.get(route, "") for route in story.routes]
        table.add_row(
            row.name,
            row.span,
            str(row.requests),
            _errors(row.errors),
            _rescued(row.rescued),
            *served,
            row.detect,
        )
    table.add_section()
    blank = [""] * len(story.routes)
    table.add_row(
        "whole run",
        "",
        str(len(story.answers)),
        _errors(len(story.errors)),
        _rescued(len(story.rescued)),
        *blank,
        "",
    )
    return table


def print_story(console: Console, story: Story) -> None:
    """Every line of the story, in full."""
    console.print(Text("story", style="bold underline"))
    for line in story.lines:
        console.print(story_line(line))


def _errors(count: int) -> Text:
    return Text(str(count), style="green" if count == 0 else "bold red")


def _rescued(count: int) -> Text:
    return Text(str(count) if count else "-", style="cyan" if count else "dim")


def print_summary(console: Console, run: Run, story: Story) -> int:
    """The summary table and verdict; returns the exit status."""
    console.print()
    console.print(summary_table(story))
    errors, total = story.errors, len(story.answers)
    if run.interrupted:
        console.print(Text("interrupted: the script did not finish", style="yellow"))
    rescued = _rescues(story)
    if rescued is not None:
        console.print(Text(rescued, style="bold cyan"))
    if total and not errors:
        console.print(
            Text(
                f"clients saw 0 errors in {total} requests: every outage failed over "
                "without a client noticing",
                style="bold green",
            )
        )
        return 0
    if not total:
        console.print(Text("no requests were sent", style="bold red"))
        return 1
    phases = sorted({r.name for r in story.rows() if r.errors})
    console.print(
        Text(
            f"clients saw {count(len(errors), 'error')} in {total} requests "
            f"(during: {', '.join(phases)})",
            style="bold red",
        )
    )
    for answer in errors[:5]:
        console.print(Text(f"  {answer.sent:6.2f}s {answer.route}: {answer.error}", style="red"))
    return 1


def _rescues(story: Story) -> str | None:
    """What became of the streams that broke mid-answer, or None when none did."""
    breaks = story.watch.breaks
    if not breaks:
        return None
    saved = sum(1 for b in breaks if b.rescued)
    lost = f", {len(breaks) - saved} lost" if saved < len(breaks) else ""
    whole = len(story.rescued)
    return (
        f"{count(len(breaks), 'stream')} broke mid-answer, {saved} rescued{lost}: "
        f"{count(whole, 'caller')} still got the whole answer, once"
    )


def serving_lines(run: Run) -> list[str]:
    """What to try while --keep-serving keeps the gateway up."""
    api, dashboard = _urls(run)
    return [
        f"The gateway keeps serving at {api} (dashboard {dashboard}); Ctrl-C to stop. Try:",
        f"  curl {api}/chat/completions -H 'content-type: application/json' "
        """-d '{"model": "smart", "messages": [{"role": "user", "content": "hi"}]}'""",
        f"  curl -X POST {run.url}/admin/chaos/sim-a/sim-large "
        """-d '{"faults": [{"type": "reset"}]}'   # break sim-a""",
        f"  curl -X DELETE {run.url}/admin/chaos/sim-a/sim-large                  # mend it",
    ]


def story_line(line: Line) -> Text:
    """One line of the story, timestamped."""
    return Text.assemble((f"{line.at:6.1f}s ", "dim"), (line.text, line.style))
