"""What the commands that read a config share: the --config option, loading the config (or the
default one built from the environment), and printing an error before exiting."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..config import Config, load_config

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["Loaded", "config_option", "console", "die", "load"]

CONFIG_HELP = (
    "YAML config file (also $FAILOVER_CONFIG). Without one, a config is built from "
    "OPENAI_API_KEY, ANTHROPIC_API_KEY and GEMINI_API_KEY, or simulated providers."
)


def config_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """The `-c/--config FILE` option (also $FAILOVER_CONFIG), passed as `config_path`."""
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="FAILOVER_CONFIG",
        help=CONFIG_HELP,
    )(func)


@dataclass(frozen=True, slots=True)
class Loaded:
    """A config, where it came from, how to read it again (for reloads) and a note for people."""

    config: Config
    source: str
    loader: Callable[[], Config]
    note: str | None = None


def load(path: Path | None) -> Loaded:
    """The config from `path`, or the default one built from the environment."""
    if path is not None:
        config = load_config(path)
        return Loaded(config, str(path), lambda: load_config(path))
    from ..defaults import default_config

    built = default_config()
    return Loaded(
        built.config,
        "environment" + (" (simulated providers)" if built.simulated else ""),
        lambda: default_config().config,
        built.description,
    )


def console(stderr: bool = False) -> Console:
    """A rich console for the commands' output (no automatic highlighting)."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def die(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` on stderr and exit with `code`."""
    console(stderr=True).print(f"[bold red]error:[/] {message}", markup=True)
    sys.exit(code)
