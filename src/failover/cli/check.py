"""`failover check`: validate a config, then probe every deployment once."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..config import Config
from ..errors import ConfigError, Kind
from .options import config_option, console, die, load

if TYPE_CHECKING:
    from rich.console import Console

    from ..health import ProbeResult
    from ..router import Router

__all__ = ["check"]


@click.command(short_help="Validate a config and probe every deployment.")
@config_option
@click.option(
    "--timeout",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds each probe may take.",
)
@click.option("--no-probe", is_flag=True, help="Only validate the config; call nothing.")
def check(config_path: Path | None, timeout: float, no_probe: bool) -> None:
    """Validate a config and probe every deployment (a cheap call such as GET /models).

    Exit status: 0 all good, 1 a deployment failed its probe, 2 the config is invalid.
    """
    try:
        loaded = load(config_path)
        from ..factory import from_config

        router = from_config(loaded.config)
    except (ConfigError, ValueError) as exc:
        die(str(exc))
    out = console()
    out.print(f"[green]config OK[/]: {loaded.source} ({len(loaded.config.routes)} routes)")
    if no_probe:
        return
    results = asyncio.run(_probe_all(router, loaded.config, timeout))
    _probe_table(out, loaded.config, results)
    failed = sum(1 for r in results if r.kind is not Kind.OK)
    if failed:
        out.print(f"[red]{failed} of {len(results)} deployment(s) failed their probe[/]")
        sys.exit(1)


async def _probe_all(router: Router, config: Config, timeout: float) -> list[ProbeResult]:
    """Every deployment's health probe once, concurrently, as the health checker runs it."""
    from ..health import HealthChecker

    health = config.defaults.health.model_copy(update={"timeout": timeout})
    try:
        return list((await HealthChecker(router, health).check_all()).values())
    finally:
        await router.aclose()


def _probe_table(out: Console, config: Config, results: list[ProbeResult]) -> None:
    from rich.table import Table

    kinds = {
        d.key: config.providers[d.provider].kind
        for r in config.routes.values()
        for d in r.deployments
    }
    table = Table(title="deployments")
    for column in ("deployment", "provider kind", "result", "latency"):
        table.add_column(column)
    for r in results:
        result = "[green]ok[/]" if r.kind is Kind.OK else f"[red]{r.kind.value}: {r.message}[/]"
        table.add_row(
            r.deployment, kinds.get(r.deployment, "?"), result, f"{r.latency * 1000:.0f} ms"
        )
    out.print(table)
