"""The `failover` command: serve the gateway, check a config, explain its failover plan.

    failover serve [--config FILE] [--host H] [--port P] [--workers N]
    failover check --config FILE          validate, then probe every deployment
    failover explain [--config FILE] [ROUTE]

`demo`, `simulate` and `status` are registered lazily from `failover.demo`, `failover.simulate`
and `failover.status` when those modules exist: each exposes a click command named `command`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .. import __version__
from ..config import Config, load_config
from ..errors import ConfigError, Kind

if TYPE_CHECKING:
    from rich.console import Console

    from ..health import ProbeResult
    from ..router import Router
    from ..server.app import Gateway

__all__ = ["main"]

_STARTED = time.perf_counter()
# Commands whose modules pull in heavier imports (matplotlib, the demo's client) load only
# when used, so `failover serve` starts fast.
LAZY_COMMANDS = {
    "demo": ("failover.cli.demo", "command"),
    "simulate": ("failover.cli.simulate", "simulate_command"),
    "status": ("failover.cli.status_view", "status_command"),
}
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class _LazyGroup(click.Group):
    """A group whose heavier commands are imported only when used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in LAZY_COMMANDS:
            return command
        module, attribute = LAZY_COMMANDS[cmd_name]
        loaded = getattr(importlib.import_module(module), attribute)
        assert isinstance(loaded, click.Command), f"{module}.{attribute} is not a command"
        return loaded


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="failover")
def main() -> None:
    """Keep AI applications answering when models or providers fail.

    An OpenAI- and Anthropic-compatible gateway with retries, failover, fallbacks, circuit
    breakers and health checks. Start with `failover serve` (no config needed: it uses the
    API keys in your environment, or simulated providers when there are none).
    """


_CONFIG_HELP = (
    "YAML config file (also $FAILOVER_CONFIG). Without one, a config is built from "
    "OPENAI_API_KEY, ANTHROPIC_API_KEY and GEMINI_API_KEY, or simulated providers."
)


def _config_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-c",
        "--config",
        "config_path",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar="FAILOVER_CONFIG",
        help=_CONFIG_HELP,
    )(func)


@dataclass(frozen=True, slots=True)
class _Loaded:
    config: Config
    source: str
    loader: Callable[[], Config]
    note: str | None = None


def _load(path: Path | None) -> _Loaded:
    """The config from `path`, or the default one built from the environment."""
    if path is not None:
        config = load_config(path)
        return _Loaded(config, str(path), lambda: load_config(path))
    from ..defaults import default_config

    built = default_config()
    return _Loaded(
        built.config,
        "environment" + (" (simulated providers)" if built.simulated else ""),
        lambda: default_config().config,
        built.description,
    )


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _die(message: str, code: int = 2) -> NoReturn:
    _console(stderr=True).print(f"[bold red]error:[/] {message}", markup=True)
    sys.exit(code)


# -- serve -------------------------------------------------------------------------------


@main.command(short_help="Run the gateway (OpenAI + Anthropic APIs).")
@_config_option
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
        loaded = _load(config_path)
    except ConfigError as exc:
        _die(str(exc))
    config = loaded.config
    host = host or config.server.host
    port = config.server.port if port is None else port
    if workers > 1 and config.state == "memory":
        _die(
            "--workers > 1 needs shared state: with `state: memory` each worker would keep its "
            "own breakers, cool-downs and budgets, and they would disagree. Set "
            "`state: redis://HOST:6379/0` in the config (or run one worker per replica)."
        )
    log_level = _setup_logging(config, log_level)
    if workers > 1:
        _serve_workers(loaded, config_path, host, port, workers, log_level, access_log)
        return
    from ..router import Router
    from ..server.app import Gateway

    try:
        router = Router.from_config(config)
        gateway = Gateway(router, loader=loaded.loader, source=loaded.source, reload_on_sighup=True)
    except (ConfigError, ValueError) as exc:
        _die(str(exc))
    _run(gateway, loaded, host, port, log_level, access_log)


def _setup_logging(config: Config, level: str | None) -> str:
    """Structured logs on stderr as `observability.logs` says; returns the level in force."""
    from ..observability import configure_logging_for

    try:
        return configure_logging_for(config, level)
    except ConfigError as exc:
        _die(str(exc))


def _uvicorn_options(host: str, port: int, log_level: str, access_log: bool) -> dict[str, Any]:
    from ..server.protocol import GatewayHttpProtocol

    return {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": GatewayHttpProtocol,
        "lifespan": "on",
        "log_level": "warning" if log_level == "info" else log_level,
        "access_log": access_log,
        "server_header": False,
        "proxy_headers": False,
        "timeout_keep_alive": 30,
        "backlog": 2048,
    }


def _run(
    gateway: Gateway, loaded: _Loaded, host: str, port: int, log_level: str, access_log: bool
) -> None:
    import uvicorn

    options = _uvicorn_options(host, port, log_level, access_log)
    config = uvicorn.Config(gateway, timeout_graceful_shutdown=int(gateway.grace + 1), **options)
    _tune_gc()

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            if self.started:
                bound = self.servers[0].sockets[0].getsockname() if self.servers else (host, port)
                _banner(gateway, loaded, host, int(bound[1]))

        def handle_exit(self, sig: int, frame: Any) -> None:
            gateway.draining = True  # requests arriving from now on get 503
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn re-raises SIGTERM after a graceful shutdown (exit status -15); a drained,
            # clean shutdown exits 0 here
            handled = (signal.SIGINT, signal.SIGTERM)
            original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    Server(config).run()


def _tune_gc() -> None:
    """Fewer, cheaper garbage collections for a long-running server.

    Every request allocates a few short-lived containers (trace, attempt, coroutines); with
    CPython's default thresholds the young generation is collected every ~700 allocations.
    Objects alive now (modules, config, router) are frozen out of every future collection, and
    the young generation is collected ~30x less often: measured ~12% less CPU per request.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def _serve_workers(
    loaded: _Loaded,
    path: Path | None,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    access_log: bool,
) -> None:
    import uvicorn

    if path is None:
        _die("--workers > 1 needs a config file (with state: redis://...)")
    os.environ["FAILOVER_CONFIG"] = str(path.resolve())
    os.environ["FAILOVER_LOG_LEVEL"] = log_level  # each worker sets its logging up alike
    _console().print(
        f"[bold]failover[/] starting {workers} workers on http://{_url_host(host)}:{port} "
        f"({len(loaded.config.routes)} routes, state {loaded.config.state})"
    )
    uvicorn.run(
        "failover.server.app:app_from_environment",
        factory=True,
        workers=workers,
        timeout_graceful_shutdown=int(loaded.config.server.grace + 1),
        **_uvicorn_options(host, port, log_level, access_log),
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _banner(gateway: Gateway, loaded: _Loaded, host: str, port: int) -> None:
    from rich.table import Table

    console = _console()
    gen = gateway.generation
    config = loaded.config
    elapsed = time.perf_counter() - _STARTED
    url = f"http://{_url_host(host)}:{port}"
    console.print(f"[bold green]failover gateway ready[/] in {elapsed:.2f}s  [bold]{url}/v1[/]")
    if loaded.note:
        style = "bold yellow" if "SIMULATED" in loaded.note else "dim"
        console.print(f"[{style}]{loaded.note}[/]")
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
    console.print(table)
    if not keys and host not in _LOOPBACK:
        console.print(
            f"[bold red]warning:[/] binding {host} with no server.api_keys: anyone who can reach "
            "this address can spend your provider credits. Set server.api_keys."
        )


# -- check -------------------------------------------------------------------------------


@main.command(short_help="Validate a config and probe every deployment.")
@_config_option
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
        loaded = _load(config_path)
        from ..router import Router

        router = Router.from_config(loaded.config)
    except (ConfigError, ValueError) as exc:
        _die(str(exc))
    console = _console()
    console.print(f"[green]config OK[/]: {loaded.source} ({len(loaded.config.routes)} routes)")
    if no_probe:
        return
    results = asyncio.run(_probe_all(router, loaded.config, timeout))
    _probe_table(console, loaded.config, results)
    failed = sum(1 for r in results if r.kind is not Kind.OK)
    if failed:
        console.print(f"[red]{failed} of {len(results)} deployment(s) failed their probe[/]")
        sys.exit(1)


async def _probe_all(router: Router, config: Config, timeout: float) -> list[ProbeResult]:
    """Every deployment's health probe once, concurrently, as the health checker runs it."""
    from ..health import HealthChecker

    health = config.defaults.health.model_copy(update={"timeout": timeout})
    try:
        return list((await HealthChecker(router, health).check_all()).values())
    finally:
        await router.aclose()


def _probe_table(console: Console, config: Config, results: list[ProbeResult]) -> None:
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
    console.print(table)


# -- explain -----------------------------------------------------------------------------


@main.command(short_help="Print the failover plan in plain words.")
@_config_option
@click.argument("route", required=False)
def explain(config_path: Path | None, route: str | None) -> None:
    """Print the failover plan of every route (or ROUTE) in plain words: order and strategy,
    retries and backoff, breaker thresholds, timeouts, hedging, fallbacks and panic mode."""
    from ..explain import explain_config

    try:
        loaded = _load(config_path)
        lines = explain_config(loaded.config, route)
    except ConfigError as exc:
        _die(str(exc))
    except KeyError as exc:
        _die(str(exc.args[0]))
    click.echo(f"config: {loaded.source}\n")
    for line in lines:
        click.echo(_hanging(line))


def _hanging(line: str, width: int = 100) -> str:
    """Wrap `line`, indenting continuation lines under its text ("  1. text...")."""
    import re
    import textwrap

    marker = re.match(r"^(\s*(?:\d+\.|-)?\s*)", line)
    indent = " " * len(marker[1]) if marker else ""
    return textwrap.fill(line, width, subsequent_indent=indent) if line else line
