"""`failover explain`: the failover plan of a config, in plain words."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import click

from ..errors import ConfigError
from .options import config_option, die, load

__all__ = ["explain"]


@click.command(short_help="Print the failover plan in plain words.")
@config_option
@click.argument("route", required=False)
def explain(config_path: Path | None, route: str | None) -> None:
    """Print the failover plan of every route (or ROUTE) in plain words: order and strategy,
    retries and backoff, breaker thresholds, timeouts, hedging, fallbacks and panic mode."""
    from ..explain import explain_config

    try:
        loaded = load(config_path)
        lines = explain_config(loaded.config, route)
    except ConfigError as exc:
        die(str(exc))
    except KeyError as exc:
        die(str(exc.args[0]))
    click.echo(f"config: {loaded.source}\n")
    for line in lines:
        click.echo(_hanging(line))


def _hanging(line: str, width: int = 100) -> str:
    """Wrap `line`, indenting continuation lines under its text ("  1. text...")."""
    marker = re.match(r"^(\s*(?:\d+\.|-)?\s*)", line)
    indent = " " * len(marker[1]) if marker else ""
    return textwrap.fill(line, width, subsequent_indent=indent) if line else line
