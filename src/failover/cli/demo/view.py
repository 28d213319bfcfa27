"""How `failover demo` shows itself: a rich Live view in a terminal, plain lines elsewhere.

The live view: per deployment its breaker, health, share of the traffic over the last few
seconds, p50/p95 and any injected fault; what the clients see (sent, answered, errors, who is
answering each route, streams rescued mid-answer with the latest one); the story so far; and
the gateway's own log lines, which are kept here rather than written over the view.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import click
from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ...stats import percentile
from .script import LENGTH, SCRIPT, Run
from .story import Answer, Line, Story
from .summary import print_story, print_summary, serving_lines, story_line

__all__ = ["LogTap", "Plain", "Screen"]

BREAKER = {
    "closed": "green",
    "half_open": "yellow",
    "open": "bold red",
    "forced_open": "magenta",
    "disabled": "dim",
}
_TAPPED = ("failover", "uvicorn")


class LogTap(logging.Handler):
    """The gateway's warnings and events, kept for the view instead of written to stderr."""

    def __init__(self, now: Callable[[], float]) -> None:
        super().__init__(logging.INFO)
        self.now = now
        self.lines: deque[Line] = deque(maxlen=100)
        self.listeners: list[Callable[[Line], None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        # every event, and anything else at WARNING or above; the chaos module's own warning
        # says what the `chaos` event says
        if record.name == "failover.chaos":
            return
        if record.levelno < logging.WARNING and record.name != "failover.event":
            return
        fields = getattr(record, "fields", None)
        where = fields.get("deployment") if isinstance(fields, dict) else None
        message = record.getMessage()
        if isinstance(where, str) and where not in message:
            message = f"{where}: {message}"
        text = f"{record.levelname:<7} {message}"
        style = "red" if record.levelno >= logging.WARNING else "dim"
        line = Line(self.now(), text, style)
        self.lines.append(line)
        for listener in self.listeners:
            listener(line)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Route the gateway's loggers here (not to stderr) while the demo runs."""
        events = logging.getLogger("failover.event")
        saved_level = events.level
        saved = []
        for name in _TAPPED:
            logger = logging.getLogger(name)
            saved.append((logger, logger.propagate))
            logger.addHandler(self)
            logger.propagate = False
        events.setLevel(logging.INFO)
        try:
            yield
        finally:
            events.setLevel(saved_level)
            for logger, propagate in saved:
                logger.removeHandler(self)
                logger.propagate = propagate


# -- the live view -----------------------------------------------------------------------------


class Screen:
    """The rich Live view."""

    def __init__(self, run: Run, story: Story, tap: LogTap, console: Console | None = None):
        self.run = run
        self.story = story
        self.tap = tap
        self.console = console or Console(highlight=False)
        speed = run.options.speed
        self.window = max(1.0, 3.0 / speed)  # seconds of traffic the shares are taken over
        self.end = LENGTH / speed

    def banner(self, lines: list[Text]) -> None:
        for line in lines:
            self.console.print(line)
        self.console.print()

    @contextlib.asynccontextmanager
    async def showing(self) -> AsyncIterator[None]:
        # transient: once the script ends, the whole story and the summary replace the view
        with Live(
            get_renderable=self.render,
            console=self.console,
            refresh_per_second=4,
            transient=True,
        ):
            yield

    def summary(self) -> int:
        print_story(self.console, self.story)
        return print_summary(self.console, self.run, self.story)

    def serving(self) -> None:
        self.console.print()
        for line in serving_lines(self.run):
            self.console.print(line, markup=False)

    # -- frames ----------------------------------------------------------------------------

    def render(self) -> RenderableType:
        now = self.run.now()
        try:
            status = self.run.gateway.generation.obs.status(event_limit=0)
        except Exception:  # a frame must never take the demo down
            status = {"routes": {}}
        return Group(
            self._header(now),
            self._deployments(status, now),
            self._clients(now),
            self._story(),
            self._log(),
        )

    def _header(self, now: float) -> RenderableType:
        phase = self.story.phases[-1].step.name if self.story.phases else "starting"
        count = len(self.story.phases)
        grid = Table.grid(padding=(0, 2))
        grid.add_row(
            Text(f"t = {now:5.1f}s of {self.end:.0f}s", style="bold"),
            ProgressBar(total=self.end, completed=min(now, self.end), width=30),
            Text.assemble(("phase ", "dim"), f"{count}/{len(SCRIPT)} ", (phase, "bold yellow")),
        )
        return grid

    def _deployments(self, status: dict[str, Any], now: float) -> RenderableType:
        recent = [a for a in self.run.answers if a.ok and a.sent >= now - self.window]
        shares = Counter(a.deployment for a in recent)
        wide = self.console.width >= 100  # else leave out which route each one serves
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
        table.add_column("deployment", no_wrap=True)
        if wide:
            table.add_column("serves", no_wrap=True)
        table.add_column("breaker", no_wrap=True, min_width=9)
        table.add_column("health", no_wrap=True)
        table.add_column(f"traffic {self.window:g}s", no_wrap=True)
        table.add_column("p50", justify="right", no_wrap=True)
        table.add_column("p95", justify="right", no_wrap=True)
        table.add_column("fault", overflow="ellipsis", no_wrap=True)
        for dep, serves in _rows(status, self.story.routes):
            share = shares.get(dep.get("name"), 0) / len(recent) if recent else 0.0
            cells: list[RenderableType] = [str(dep.get("name"))]
            if wide:
                cells.append(serves)
            cells += [
                _breaker(dep.get("breaker") or {}),
                Text("healthy", "green") if dep.get("healthy") else Text("unhealthy", "bold red"),
                _bar(share, 10 if wide else 6),
                _ms(dep.get("p50_ms")),
                _ms(dep.get("p95_ms")),
                Text(", ".join(_short(f) for f in dep.get("chaos") or []), style="bold red"),
            ]
            table.add_row(*cells)
        return table

    def _clients(self, now: float) -> RenderableType:
        answers = self.run.answers
        done = [a for a in answers if a.done is not None]
        errors = sum(1 for a in done if a.error is not None)
        recent = sorted(
            a.done - a.sent for a in done if a.ok and a.done is not None and a.sent >= now - 3
        )
        latency = f"p50 {_ms(_pct(recent, 50))}  p95 {_ms(_pct(recent, 95))}" if recent else ""
        first = Text.assemble(
            ("clients  ", "bold"),
            f"sent {len(answers)}  answered {len(done) - errors}  errors ",
            (str(errors), "bold green" if errors == 0 else "bold red"),
            f"  in flight {len(answers) - len(done)}  ",
            (latency, "dim"),
        )
        answering = _answering(answers, self.story.routes)
        second = Text.assemble(("answering", "bold"), "  ", answering)
        return Group(first, second, _streams(self.story), Text())

    def _story(self, height: int = 6) -> RenderableType:
        """The newest lines of the story, wrapped, as many as fit in `height` rows."""
        shown: list[Text] = []
        rows = 0
        for line in reversed(self.story.lines):
            text = story_line(line)
            needed = len(text.wrap(self.console, self.console.width))
            if shown and rows + needed > height:
                break
            shown.insert(0, text)
            rows += needed
        return Group(Text("story", style="bold underline"), *shown)

    def _log(self, keep: int = 3) -> RenderableType:
        lines = [
            Text.assemble(
                (f"{line.at:6.1f}s ", "dim"), (line.text, line.style), no_wrap=True, end="\n"
            )
            for line in list(self.tap.lines)[-keep:]
        ]
        for line in lines:
            line.overflow = "ellipsis"
        return Group(Text("gateway log", style="bold underline"), *lines)


def _rows(status: dict[str, Any], routes: dict[str, list[str]]) -> list[tuple[dict[str, Any], str]]:
    """(deployment status, "smart 1st") for every deployment of the demo's routes, once."""
    seen: dict[str, tuple[dict[str, Any], str]] = {}
    ordinals = ("1st", "2nd", "3rd")
    for route in routes:
        listed = (status.get("routes") or {}).get(route, {}).get("deployments") or []
        for i, dep in enumerate(listed):
            name = str(dep.get("name"))
            role = f"{route} {ordinals[i] if i < 3 else f'{i + 1}th'}"
            if name in seen:
                seen[name] = (seen[name][0], f"{seen[name][1]}, {role}")
            else:
                seen[name] = (dep, role)
    return list(seen.values())


def _answering(answers: list[Answer], routes: dict[str, list[str]]) -> Text:
    latest: dict[str, str] = {}
    for answer in reversed(answers[-400:]):
        if answer.ok and answer.deployment and answer.route not in latest:
            latest[answer.route] = answer.deployment
    text = Text()
    for route in routes:
        text.append(f"{route} -> ", style="dim")
        text.append(f"{latest.get(route, '-'):<18}", style="cyan")
        text.append("  ")
    return text


def _streams(story: Story) -> Text:
    """Streams rescued mid-answer so far, and the latest one."""
    breaks = story.watch.breaks
    saved = sum(1 for b in breaks if b.rescued)
    lost = len(breaks) - saved
    text = Text.assemble(("streams", "bold"), "  rescued mid-answer ")
    text.append(str(saved), style="bold cyan" if saved else "dim")
    if lost:
        text.append(f"  lost {lost}", style="bold red")
    if breaks:
        text.append(f"  latest: {breaks[-1].describe()}", style="dim")
    return text


def _short(label: str) -> str:
    """A fault's label, short enough for the table: `error 503 40%` -> `503 40%`."""
    return label.removeprefix("error ")


def _breaker(breaker: dict[str, Any]) -> Text:
    state = str(breaker.get("state", "?"))
    text = Text(state.replace("_", "-"), style=BREAKER.get(state, ""))
    remaining = breaker.get("open_remaining_s")
    if isinstance(remaining, int | float) and remaining > 0:
        text.append(f" {remaining:.1f}s", style="dim")
    return text


def _bar(share: float, width: int) -> Text:
    filled = round(share * width)
    return Text.assemble(
        (f"{share:4.0%} ", "bold" if share else "dim"),
        ("█" * filled, "cyan"),
        ("·" * (width - filled), "dim"),
    )


def _ms(value: Any) -> str:
    return f"{value:.0f} ms" if isinstance(value, int | float) else "-"


def _pct(ordered: list[float], q: float) -> float | None:
    """Percentile `q` of latencies in seconds, in milliseconds."""
    value = percentile(ordered, q)
    return None if value is None else value * 1000


# -- plain lines -----------------------------------------------------------------------------


class Plain:
    """Plain log lines, for CI and anything that is not a terminal."""

    def __init__(
        self, run: Run, story: Story, tap: LogTap, out: Callable[[str], None] | None = None
    ) -> None:
        self.run = run
        self.story = story
        self.out = out or (lambda text: click.echo(text))
        story.listeners.append(self._line)
        tap.listeners.append(lambda line: self._line(line, prefix="  gateway "))

    def banner(self, lines: list[Text]) -> None:
        for line in lines:
            self.out(line.plain)

    @contextlib.asynccontextmanager
    async def showing(self) -> AsyncIterator[None]:
        ticker = asyncio.ensure_future(self._tick())
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker

    def summary(self) -> int:
        return print_summary(Console(highlight=False, width=140), self.run, self.story)

    def serving(self) -> None:
        for line in serving_lines(self.run):
            self.out(line)

    def _line(self, line: Line, prefix: str = "") -> None:
        self.out(f"[{line.at:6.2f}s] {prefix}{line.text}")

    async def _tick(self, every: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every)
            answers = self.run.answers
            errors = sum(1 for a in answers if a.error is not None)
            answering = _answering(answers, self.story.routes).plain.split()
            rescued = len(self.story.rescued)
            self.out(
                f"[{self.run.now():6.2f}s]   clients: sent {len(answers)}, errors {errors}, "
                f"streams rescued {rescued}; answering {' '.join(answering)}"
            )
