"""The `failover` command group: every subcommand is imported only when it is used.

    failover serve [--config FILE] [--host H] [--port P] [--workers N]
    failover check [--config FILE]        validate, then probe every deployment
    failover explain [--config FILE] [ROUTE]
    failover status [--url URL] [--once]
    failover simulate SCENARIO.yaml [--fast] [--assert EXPR] [--chart FILE]
    failover demo [--speed X] [--no-live]
    failover --version

Each subcommand lives in its own module and is found through `COMMANDS`, so `failover serve`
never imports matplotlib or the demo's client, and starts fast.
"""

from __future__ import annotations

import importlib
import time

import click

from .. import __version__

__all__ = ["COMMANDS", "STARTED", "main"]

STARTED = time.perf_counter()  # when the command started: `serve` reports how fast it was ready
COMMANDS = {
    "serve": ("failover.cli.serve", "serve"),
    "check": ("failover.cli.check", "check"),
    "explain": ("failover.cli.explain", "explain"),
    "status": ("failover.cli.status_view", "status_command"),
    "simulate": ("failover.cli.simulate", "simulate_command"),
    "demo": ("failover.cli.demo", "command"),
}


class _LazyGroup(click.Group):
    """A group whose commands are imported only when used (or listed by --help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in COMMANDS:
            return command
        module, attribute = COMMANDS[cmd_name]
        loaded = getattr(importlib.import_module(module), attribute)
        assert isinstance(loaded, click.Command), f"{module}.{attribute} is not a command"
        return loaded


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="failover", message="%(prog)s %(version)s")
def main() -> None:
    """Keep AI applications answering when models or providers fail.

    An OpenAI- and Anthropic-compatible gateway with retries, failover, fallbacks, circuit
    breakers and health checks. Start with `failover serve` (no config needed: it uses the
    API keys in your environment, or simulated providers when there are none).
    """
