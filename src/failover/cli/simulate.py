"""`failover simulate SCENARIO.yaml`: run an outage drill, print the report, gate CI on its SLO.

Exit status: 0 when every assertion holds, 1 when one fails (each failure listed), 2 when the
scenario, the config or the command line is invalid.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from ..errors import ConfigError
from ..simulate.chart import write_chart
from ..simulate.record import Recording, Tick
from ..simulate.render import print_report
from ..simulate.report import Report, build_report
from ..simulate.runner import run_scenario
from ..simulate.scenario import Scenario, load_scenario
from ..simulate.slo import Assertion, parse_assertion

__all__ = ["simulate_command"]


class _Invalid(click.ClickException):
    """A bad scenario, config or option: exit status 2."""

    exit_code = 2


@click.command("simulate", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Gateway config to run on, instead of the scenario's own.",
)
@click.option(
    "--fast",
    is_flag=True,
    help="Virtual time: an hour-long scenario takes seconds (in-process only).",
)
@click.option(
    "--url",
    metavar="URL",
    help="Send the load to a running gateway; faults via POST /admin/chaos/{name}.",
)
@click.option(
    "--api-key",
    envvar="FAILOVER_API_KEY",
    metavar="KEY",
    help="Client key for --url (default: $FAILOVER_API_KEY).",
)
@click.option(
    "--admin-key",
    envvar="FAILOVER_ADMIN_KEY",
    metavar="KEY",
    help="Admin key for --url (default: $FAILOVER_ADMIN_KEY).",
)
@click.option(
    "--assert",
    "asserts",
    multiple=True,
    metavar="EXPR",
    help="An SLO check such as 'availability>=99.9%' or 'p99<=500ms' (repeatable); "
    "added to the scenario's slo.",
)
@click.option("--no-slo", is_flag=True, help="Ignore the scenario's own slo block.")
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write a timeline chart: .png or self-contained .html.",
)
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the report as JSON.",
)
@click.option("--seed", type=int, help="Override the scenario's random seed.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def simulate_command(
    scenario: Path,
    config: Path | None,
    fast: bool,
    url: str | None,
    api_key: str | None,
    admin_key: str | None,
    asserts: tuple[str, ...],
    no_slo: bool,
    chart: Path | None,
    json_out: Path | None,
    seed: int | None,
    quiet: bool,
) -> None:
    """Run an outage SCENARIO against the real router and report how failover held up.

    \b
      failover simulate scenarios/primary-down.yaml --fast
      failover simulate scenarios/brownout.yaml --fast --assert 'p99<=800ms' --chart out.png
      failover simulate drill.yaml --url http://127.0.0.1:8080 --json report.json
    """
    loaded, checks = _prepare(scenario, asserts, no_slo)
    if url is not None and fast:
        raise _Invalid("--fast runs the in-process router in virtual time; drop it with --url")
    if chart is not None and chart.suffix.lower() not in (".png", ".html", ".htm"):
        raise _Invalid(f"--chart {chart}: use a .png or .html file name")
    out = Console()
    recording = _run(loaded, config, fast, url, seed, api_key, admin_key, quiet)
    report = build_report(recording, checks)
    print_report(report, out)
    _write_outputs(recording, report, chart, json_out, out)
    if not report.passed:
        failed = "\n".join(f"  {v.describe()}" for v in report.failures)
        raise click.ClickException(f"SLO not met:\n{failed}")


def _prepare(
    path: Path, asserts: tuple[str, ...], no_slo: bool
) -> tuple[Scenario, list[Assertion]]:
    try:
        scenario = load_scenario(path)
        own = [] if no_slo else scenario.assertions()
        return scenario, own + [parse_assertion(a) for a in asserts]
    except (ConfigError, ValueError) as exc:
        raise _Invalid(str(exc)) from None


def _run(
    scenario: Scenario,
    config: Path | None,
    fast: bool,
    url: str | None,
    seed: int | None,
    api_key: str | None,
    admin_key: str | None,
    quiet: bool,
) -> Recording:
    with _ProgressView(scenario, quiet) as view:
        try:
            return asyncio.run(
                run_scenario(
                    scenario,
                    config=config,
                    fast=fast,
                    url=url,
                    seed=seed,
                    api_key=api_key,
                    admin_key=admin_key,
                    on_tick=view.update,
                )
            )
        except (ConfigError, ValueError) as exc:
            raise _Invalid(str(exc)) from None


def _write_outputs(
    recording: Recording, report: Report, chart: Path | None, json_out: Path | None, out: Console
) -> None:
    if json_out is not None:
        json_out.write_text(json.dumps(report.to_dict(), indent=2) + "\n", encoding="utf-8")
        out.print(f"report written to {json_out}")
    if chart is not None:
        write_chart(recording, chart, report)
        out.print(f"chart written to {chart}")


class _ProgressView:
    """A progress bar on stderr with live counters, fed by the runner's ticks."""

    def __init__(self, scenario: Scenario, quiet: bool) -> None:
        self.progress: Progress | None = None
        self.task: TaskID | None = None
        if quiet:
            return
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[clock]}"),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self.task = self.progress.add_task(
            scenario.name, total=scenario.duration, clock="", counts=""
        )

    def __enter__(self) -> _ProgressView:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def update(self, tick: Tick) -> None:
        if self.progress is None or self.task is None:
            return
        out = [
            f"{name} {state.upper()}" for name, state in tick.breakers.items() if state != "closed"
        ]
        counts = (
            f"sent {tick.sent}  ok {tick.ok}  [red]failed {tick.failed}[/]  "
            f"in flight {tick.in_flight}"
        )
        if tick.rescued:
            counts += f"  [green]streams rescued {tick.rescued}[/]"
        if out:
            counts += "  [yellow]" + ", ".join(out) + "[/]"
        self.progress.update(
            self.task,
            completed=tick.now,
            clock=f"t={tick.now:.0f}/{tick.duration:g}s",
            counts=counts,
        )
