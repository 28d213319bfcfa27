"""`failover serve`: run the gateway (OpenAI and Anthropic APIs, health, admin, dashboard)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..config import Config
from ..errors import ConfigError
from .group import STARTED
from .options import Loaded, config_option, console, die, load

if TYPE_CHECKING:
    from ..server.app import Gateway

__all__ = ["serve"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


@click.command(short_help="Run the gateway (OpenAI + Anthropic APIs).")
@config_option
@click.option("--host", help="Address to bind. Default: server.host, or 127.0.0.1.")
@click.option("--port", type=click.IntRange(0, 65535), help="Port. Default: server.port (8080).")
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Worker processes. More than one needs shared state (state: redis://...).",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    help="Log verbosity. Default: observability.logs.level (info).",
)
@click.option("--access-log/--no-access-log", default=False, help="Log every request.")
def serve(
    config_path: Path | None,
    host: str | None,
    port: int | None,
    workers: int,
    log_level: str | None,
    access_log: bool,
) -> None:
    """Run the gateway: OpenAI API at /v1/chat/completions, /v1/embeddings, /v1/models and
    Anthropic API at /v1/messages, plus /health/* and /admin/*.

    Binds 127.0.0.1:8080 by default. SIGHUP (or POST /admin/reload) reloads the config file;
    SIGTERM drains running requests for up to server.grace before exiting.
    """
    try:
        loaded = load(config_path)
    except ConfigError as exc:
        die(str(exc))
    config = loaded.config
    host = host or config.server.host
    port = config.server.port if port is None else port
    if workers > 1 and config.state == "memory":
        die(
            "--workers > 1 needs shared state: with `state: memory` each worker would keep its "
            "own breakers, cool-downs and budgets, and they would disagree. Set "
            "`state: redis://HOST:6379/0` in the config (or run one worker per replica)."
        )
    log_level = _setup_logging(config, log_level)
    if workers > 1:
        _serve_workers(loaded, config_path, host, port, workers, log_level, access_log)
        return
    from ..factory import from_config
    from ..server.app import Gateway

    try:
        router = from_config(config)
        gateway = Gateway(router, loader=loaded.loader, source=loaded.source, reload_on_sighup=True)
    except (ConfigError, ValueError) as exc:
        die(str(exc))
    _run(gateway, loaded, host, port, log_level, access_log)


def _setup_logging(config: Config, level: str | None) -> str:
    """Structured logs on stderr as `observability.logs` says; returns the level in force."""
    from ..observability import configure_logging_for

    try:
        return configure_logging_for(config, level)
    except ConfigError as exc:
        die(str(exc))


def _run(
    gateway: Gateway, loaded: Loaded, host: str, port: int, log_level: str, access_log: bool
) -> None:
    from ..server.process import tune_gc
    from .gateway_server import GatewayServer, serve_options

    server = GatewayServer(
        gateway,
        on_ready=lambda bound: _banner(gateway, loaded, host, bound),
        timeout_graceful_shutdown=int(gateway.grace + 1),
        **serve_options(host, port, log_level, access_log),
    )
    tune_gc()
    server.run()


def _serve_workers(
    loaded: Loaded,
    path: Path | None,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    access_log: bool,
) -> None:
    if path is None:
        die("--workers > 1 needs a config file (with state: redis://...)")
    from .gateway_server import run_workers, serve_options

    os.environ["FAILOVER_CONFIG"] = str(path.resolve())
    os.environ["FAILOVER_LOG_LEVEL"] = log_level  # each worker sets its logging up alike
    console().print(
        f"[bold]failover[/] starting {workers} workers on http://{_url_host(host)}:{port} "
        f"({len(loaded.config.routes)} routes, state {loaded.config.state})"
    )
    grace = loaded.config.server.grace
    run_workers(workers, grace, serve_options(host, port, log_level, access_log))


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _banner(gateway: Gateway, loaded: Loaded, host: str, port: int) -> None:
    from rich.table import Table

    out = console()
    gen = gateway.generation
    config = loaded.config
    elapsed = time.perf_counter() - STARTED
    url = f"http://{_url_host(host)}:{port}"
    out.print(f"[bold green]failover gateway ready[/] in {elapsed:.2f}s  [bold]{url}/v1[/]")
    if loaded.note:
        style = "bold yellow" if "SIMULATED" in loaded.note else "dim"
        out.print(f"[{style}]{loaded.note}[/]")
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="dim")
    table.add_column()
    table.add_row("config", loaded.source)
    table.add_row("OpenAI API", f"{url}/v1/chat/completions, /v1/embeddings, /v1/models")
    table.add_row("Anthropic API", f"{url}/v1/messages")
    for name, route in config.routes.items():
        chain = " -> ".join(d.key for d in route.deployments)
        fallback = f"  (falls back to {', '.join(route.fallbacks)})" if route.fallbacks else ""
        table.add_row(f"route {name}", chain + fallback)
    keys = len(gen.keys)
    table.add_row(
        "client keys",
        f"required ({keys} configured)" if keys else "[yellow]not required (open)[/]",
    )
    table.add_row("admin", "admin key required" if gen.admin.keyed else "loopback clients only")
    table.add_row("state", config.state)
    out.print(table)
    if not keys and host not in _LOOPBACK:
        out.print(
            f"[bold red]warning:[/] binding {host} with no server.api_keys: anyone who can reach "
            "this address can spend your provider credits. Set server.api_keys."
        )
