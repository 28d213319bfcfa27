"""`failover status`: a live terminal view of a running gateway, from GET {url}/admin/status.

Refreshes every second: one table per route, a row per deployment with its breaker state,
health, success rate, p50/p95 latency, time to first token, calls in flight and last error;
the latest events below. `--once` prints one picture and exits (1 when the gateway is down).
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import datetime
from typing import Any

import click
import orjson
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

__all__ = ["StatusUnavailable", "fetch_status", "render_status", "status_command"]

BREAKER_STYLES = {
    "closed": "green",
    "half_open": "yellow",
    "open": "bold red",
    "forced_open": "magenta",
    "disabled": "dim",
}
ROUTE_STYLES = {"ok": "green", "degraded": "yellow", "down": "bold red"}
EVENT_STYLES = {"breaker": "red", "health": "yellow", "panic": "bold red", "fallback": "cyan"}


class StatusUnavailable(Exception):
    """The gateway could not be asked for its status; the message says why, for people."""


def fetch_status(url: str, admin_key: str | None = None, *, timeout: float = 3.0) -> dict[str, Any]:
    """GET {url}/admin/status as a dict, or raise `StatusUnavailable` with a clear message."""
    endpoint = url.rstrip("/") + "/admin/status"
    request = urllib.request.Request(endpoint, headers={"accept": "application/json"})
    if admin_key:
        request.add_header("authorization", f"Bearer {admin_key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the response's socket
        if exc.code in (401, 403):
            raise StatusUnavailable(
                f"the gateway at {url} refused the admin key (HTTP {exc.code}): "
                "pass --admin-key or set FAILOVER_ADMIN_KEY"
            ) from None
        raise StatusUnavailable(f"the gateway at {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise StatusUnavailable(f"cannot reach the gateway at {url}: {reason}") from None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise StatusUnavailable(
            f"{endpoint} did not answer JSON: is it a failover gateway?"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("routes"), dict):
        raise StatusUnavailable(f"{endpoint} did not answer a failover status")
    return data


# -- rendering ----------------------------------------------------------------------------------


def _ms(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    return f"{value:.0f}ms" if value >= 10 else f"{value:.1f}ms"


def _rate(value: Any) -> Text:
    if not isinstance(value, int | float):
        return Text("-", style="dim")
    style = "green" if value >= 0.99 else ("yellow" if value >= 0.9 else "red")
    return Text(f"{value * 100:.1f}%", style=style)


def _breaker_cell(breaker: dict[str, Any]) -> Text:
    state = str(breaker.get("state", "?"))
    text = Text(state.replace("_", "-"), style=BREAKER_STYLES.get(state, ""))
    remaining = breaker.get("open_remaining_s")
    if isinstance(remaining, int | float):
        text.append(f" {remaining:.0f}s" if remaining > 0 else " (probe due)", style="dim")
    return text


def _health_cell(dep: dict[str, Any]) -> Text:
    text = Text("healthy", style="green") if dep.get("healthy") else Text("unhealthy", "bold red")
    cooldown = dep.get("cooldown_remaining_s")
    if dep.get("cooling_down") and isinstance(cooldown, int | float):
        text.append(f" cooling {cooldown:.0f}s", style="yellow")
    return text


_COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("breaker", "left", 18),
    ("health", "left", 22),
    ("success", "right", 8),
    ("p50", "right", 8),
    ("p95", "right", 8),
    ("ttft", "right", 8),
    ("in flight", "right", 9),
    ("last error", "left", None),
)


def _deployments(route: dict[str, Any], shared: dict[str, Any]) -> list[dict[str, Any]]:
    """A route's deployments in `snapshot()`'s shape; a flat shape (names, with the details
    in a top-level "deployments" map, breaker as a string) is read too."""
    out = []
    for dep in route.get("deployments") or []:
        if isinstance(dep, str):
            dep = {"name": dep, **(shared.get(dep) or {})}
        if not isinstance(dep, dict):
            continue
        dep = dict(dep)
        if not isinstance(dep.get("breaker"), dict):
            dep["breaker"] = {"state": dep.get("breaker") or "closed"}
        latency = dep.get("latency_ms")
        if isinstance(latency, dict):
            dep.setdefault("p50_ms", latency.get("p50"))
            dep.setdefault("p95_ms", latency.get("p95"))
        if "cooldown_remaining_s" not in dep and dep.get("cooldown_s"):
            dep["cooldown_remaining_s"] = dep["cooldown_s"]
            dep["cooling_down"] = True
        out.append(dep)
    return out


def _route_table(
    name: str, route: dict[str, Any], deployments: list[dict[str, Any]], name_width: int
) -> Table:
    state = str(route.get("state", "?"))
    title = Text.assemble(
        (name, "bold"),
        "  ",
        (state, ROUTE_STYLES.get(state, "")),
        (f"  {route.get('strategy', '')}", "dim"),
    )
    fallbacks = route.get("fallbacks") or []
    if fallbacks:
        title.append(f"  -> {', '.join(map(str, fallbacks))}", style="dim")
    # fixed widths, so the tables of every route line up under each other
    table = Table(title=title, title_justify="left", expand=True)
    table.add_column("deployment", width=name_width, no_wrap=True)
    for column, justify, width in _COLUMNS:
        table.add_column(
            column,
            justify=justify,  # type: ignore[arg-type]
            width=width,
            no_wrap=width is not None,
            ratio=1 if width is None else None,
        )
    for dep in deployments:
        table.add_row(
            str(dep.get("name", "?")),
            _breaker_cell(dep.get("breaker") or {}),
            _health_cell(dep),
            _rate(dep.get("success_rate")),
            _ms(dep.get("p50_ms")),
            _ms(dep.get("p95_ms")),
            _ms(dep.get("ttft_ewma_ms")),
            str(dep.get("in_flight", 0)),
            Text(str(dep.get("last_error") or ""), style="red", overflow="ellipsis"),
        )
    return table


def _events(events: list[dict[str, Any]], limit: int = 8) -> RenderableType:
    table = Table(title="recent events", title_justify="left", expand=True, show_header=False)
    table.add_column("when", style="dim", no_wrap=True, width=8)
    table.add_column("type", no_wrap=True, width=9)
    table.add_column("where", no_wrap=True)
    table.add_column("message", ratio=1)
    for event in events[-limit:]:
        at = event.get("at")
        when = (
            datetime.fromtimestamp(at).strftime("%H:%M:%S") if isinstance(at, int | float) else ""
        )
        kind = str(event.get("type", ""))
        message = str(event.get("message", ""))
        if isinstance(event.get("count"), int):
            message += f" (x{event['count']})"
        where = str(event.get("deployment") or event.get("route") or "")
        table.add_row(when, Text(kind, style=EVENT_STYLES.get(kind, "")), where, message)
    return table


def render_status(data: dict[str, Any], url: str = "") -> RenderableType:
    """The status view of one /admin/status answer."""
    at = data.get("at")
    stamp = datetime.fromtimestamp(at).strftime("%H:%M:%S") if isinstance(at, int | float) else "?"
    header = Text.assemble(("failover", "bold cyan"), f"  {url}  ", (f"updated {stamp}", "dim"))
    parts: list[RenderableType] = [header]
    gateway = data.get("gateway")
    admission = gateway.get("admission") if isinstance(gateway, dict) else None
    if isinstance(admission, dict):
        parts.append(_load(admission))
    routes = data.get("routes") or {}
    found = data.get("deployments")
    shared: dict[str, Any] = found if isinstance(found, dict) else {}
    listed = {str(name): _deployments(route, shared) for name, route in routes.items()}
    names = [str(dep.get("name", "")) for deps in listed.values() for dep in deps]
    width = max([10, *map(len, names)])
    parts.extend(
        _route_table(name, route, listed[str(name)], width) for name, route in routes.items()
    )
    if not routes:
        parts.append(Text("no routes configured", style="yellow"))
    events = data.get("events") or []
    if events:
        parts.append(_events(events))
    return Group(*parts)


def _load(admission: dict[str, Any]) -> Text:
    """The gateway's own load: whether it is shedding, how much it shed, how late its loop
    runs, and what each line holds (the providers are not to blame for any of it)."""
    shed = admission.get("shed")
    total = shed.get("total", 0) if isinstance(shed, dict) else 0
    text = Text("gateway  ", style="bold")
    if admission.get("shedding"):
        since = admission.get("shedding_for_s")
        text.append("shedding", style="bold yellow")
        if isinstance(since, int | float):
            text.append(f" for {since:.0f}s")
    else:
        text.append("not shedding", style="green")
    text.append(f" · {total:,} shed")
    lag = admission.get("smoothed_lag_ms")
    if isinstance(lag, int | float):
        text.append(f" · event loop {_ms(lag)} late")
    for key, what in (("line", "requests"), ("stream_line", "streams")):
        line = admission.get(key)
        if isinstance(line, dict):
            text.append(f" · {line.get('in_flight')}/{line.get('limit')} {what} (line)")
    wait = admission.get("retry_after_s")
    if admission.get("shedding") and isinstance(wait, int | float):
        text.append(f" · retry after {wait:g}s+", style="dim")
        pending = admission.get("told_to_retry")
        if isinstance(pending, int) and pending:
            text.append(f" ({pending:,} not due back yet)", style="dim")
    return text


def _unreachable(message: str) -> RenderableType:
    return Group(
        Text.assemble(("failover", "bold cyan"), "  ", ("gateway unreachable", "bold red")),
        Text(message, style="red"),
        Text("retrying every second; Ctrl-C to quit", style="dim"),
    )


def _frame(url: str, admin_key: str | None) -> RenderableType:
    try:
        return render_status(fetch_status(url, admin_key), url)
    except StatusUnavailable as exc:
        return _unreachable(str(exc))


@click.command("status")
@click.option(
    "--url",
    default="http://127.0.0.1:8080",
    envvar="FAILOVER_URL",
    show_default=True,
    help="Base URL of the gateway.",
)
@click.option("--admin-key", envvar="FAILOVER_ADMIN_KEY", help="The gateway's admin key.")
@click.option("--once", is_flag=True, help="Print the status once and exit.")
@click.option("--interval", default=1.0, show_default=True, help="Seconds between refreshes.")
def status_command(url: str, admin_key: str | None, once: bool, interval: float) -> None:
    """Show a running gateway's routes, breakers, health and latency, live."""
    console = Console()
    if once:
        try:
            data = fetch_status(url, admin_key)
        except StatusUnavailable as exc:
            click.echo(f"error: {exc}", err=True)
            raise SystemExit(1) from None
        console.print(render_status(data, url))
        return
    try:
        with Live(_frame(url, admin_key), console=console, refresh_per_second=4) as live:
            while True:
                time.sleep(max(0.1, interval))
                live.update(_frame(url, admin_key))
    except KeyboardInterrupt:
        pass
