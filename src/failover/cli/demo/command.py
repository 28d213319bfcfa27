"""`failover demo`: a gateway, live traffic and a scripted outage, watched in the terminal.

The real gateway runs in this process (uvicorn on 127.0.0.1) while `Clients` send it traffic
and the script (see `script`) breaks providers through the admin API. After each step one line
says what happened — how fast the breaker opened and after how many failures, where the traffic
went, how many streams broken mid-answer were rescued, whether any client saw an error — and
the run ends with a table per phase. Exit status 0 when clients saw no error and every
streamed answer arrived whole (every outage here leaves a healthy deployment to fail over to,
or to finish a stream on), 1 otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import click

from .clients import Clients
from .script import (
    HEALTH_EVERY,
    LENGTH,
    MAX_OPEN_FOR,
    MIX,
    OPEN_FOR,
    REPLY,
    SCRIPT,
    STREAMED,
    Options,
    Run,
    demo_config,
)
from .story import Phase, Step, Story
from .view import LogTap, Plain, Screen
from .watch import Watch

if TYPE_CHECKING:
    import aiohttp
    from rich.text import Text

    from ...server.app import Gateway
    from ..gateway_server import GatewayServer

__all__ = [
    "banner",
    "command",
    "listen",
    "play",
    "run_demo",
    "switch",
    "targets",
]


# -- the gateway -------------------------------------------------------------------------------


def listen(port: int) -> tuple[socket.socket, str | None]:
    """A socket bound to 127.0.0.1:`port`, or to a free port (and why) when that one is busy."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        return sock, None
    except OSError as exc:
        if port == 0:
            sock.close()
            raise
        sock.bind(("127.0.0.1", 0))
        free = sock.getsockname()[1]
        return (
            sock,
            f"port {port} is not available ({exc.strerror}): serving on port {free} instead",
        )


def _server(gateway: Gateway) -> GatewayServer:
    from ..gateway_server import GatewayServer

    # the demo handles Ctrl-C itself, and ends the server in order
    return GatewayServer(
        gateway,
        signals=False,
        loop="none",
        log_config=None,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )


async def _serve(server: GatewayServer, sock: socket.socket) -> asyncio.Task[None]:
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            raise click.ClickException("the gateway did not start")
        await asyncio.sleep(0.005)
    return task


def banner(run: Run, note: str | None) -> list[Text]:
    """What runs where, and how to watch it."""
    from rich.text import Text

    speed, rate = run.options.speed, run.options.rate
    mix = ", ".join(f"{share:.0%} to {route}" for route, share in MIX)
    lines = [
        Text.assemble(
            ("failover demo", "bold cyan"),
            "  the real gateway, three SIMULATED providers, a scripted outage",
            (f"  (x{speed:g} speed)" if speed != 1 else "", "yellow"),
        ),
        Text.assemble(("  OpenAI API  ", "dim"), f"{run.url}/v1"),
        Text.assemble(("  dashboard   ", "dim"), (f"{run.url}/dashboard/", "bold underline")),
        *(
            Text.assemble(("  routes      " if i == 0 else "              ", "dim"), chain)
            for i, chain in enumerate(_chains(run))
        ),
        Text.assemble(
            ("  traffic     ", "dim"), f"{rate:g} req/s: {mix}, {STREAMED:.0%} of them streamed"
        ),
        Text.assemble(
            ("  timings     ", "dim"),
            f"breakers open {OPEN_FOR / speed:g} s (up to {MAX_OPEN_FOR / speed:g} s), health "
            f"checks every {HEALTH_EVERY / speed:g} s: shortened for the demo",
        ),
    ]
    if note:
        lines.append(Text(f"  {note}", style="yellow"))
    return lines


def _chains(run: Run) -> Iterator[str]:
    routes = run.gateway.generation.router.routes
    for name, _ in MIX:
        chain = " -> ".join(d.name for d in routes[name].deployments)
        fallbacks = routes[name].fallbacks
        yield f"{name}: {chain}" + (f" (then {', '.join(fallbacks)})" if fallbacks else "")


# -- the script ------------------------------------------------------------------------------


def targets(story: Story, step: Step) -> list[str]:
    """The deployments of `step`'s provider that the clients' routes use."""
    if step.provider is None:
        return []
    used = dict.fromkeys(name for names in story.routes.values() for name in names)
    return [name for name in used if _provider(name) == step.provider]


async def switch(run: Run, session: aiohttp.ClientSession, names: list[str], step: Step) -> None:
    """Set `step`'s faults on `names` through the admin API, as an operator would."""
    body = {"enabled": True, "faults": list(step.faults)}
    for name in names:
        async with session.post(f"{run.url}/admin/chaos/{name}", json=body) as resp:
            if resp.status != 200:
                detail = (await resp.text())[:200]
                raise click.ClickException(f"POST /admin/chaos/{name}: HTTP {resp.status} {detail}")


def _provider(deployment: str) -> str:
    return deployment.partition("/")[0]


async def play(run: Run, story: Story) -> None:
    """Run the script: switch faults on time, send traffic throughout, narrate each phase."""
    import aiohttp

    speed = run.options.speed
    end = LENGTH / speed
    timeout = aiohttp.ClientTimeout(total=15)
    connector = aiohttp.TCPConnector(limit=100)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        clients = Clients(run, session, random.Random(run.options.seed))
        run.t0 = time.monotonic()
        load = asyncio.ensure_future(clients.send(end))
        try:
            for index, step in enumerate(SCRIPT):
                if not await _until(run, step.at / speed):
                    break
                if index:
                    story.close(run.now())
                names = targets(story, step)
                story.begin(Phase(step, run.now(), names))
                await switch(run, session, names, step)
            await _until(run, end)
            ended = run.now()
            await load
            await clients.drain(timeout=5.0)  # the last phase's answers, before telling it
            story.close(ended)
        finally:
            load.cancel()
            await clients.drain(timeout=0.0)


async def _until(run: Run, at: float) -> bool:
    """Wait until script time `at`; False when the run was stopped first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.stop.wait(), max(0.0, at - run.now()))
    return not run.stop.is_set()


async def run_demo(options: Options, out: Callable[[str], None] | None = None) -> int:
    """The whole demo; returns the exit status."""
    from ...factory import from_config
    from ...server.app import Gateway

    gateway = Gateway(from_config(demo_config(options.speed)), source="demo")
    sock, note = listen(options.port)
    port = sock.getsockname()[1]
    run = Run(options, gateway, f"http://127.0.0.1:{port}")
    router = gateway.generation.router
    routes = {name: [d.name for d in router.routes[name].deployments] for name, _ in MIX}
    watch = Watch(router, run.now, REPLY)
    story = Story(watch, run.answers, routes)
    tap = LogTap(run.now)
    screen: Screen | Plain = (
        Screen(run, story, tap) if options.live else Plain(run, story, tap, out)
    )
    server = _server(gateway)
    with tap.installed(), _on_interrupt(run):
        task = await _serve(server, sock)
        try:
            screen.banner(banner(run, note))
            async with screen.showing():
                await play(run, story)
            status = screen.summary()
            if options.keep_serving and not run.stop.is_set():
                screen.serving()
                await run.stop.wait()
        finally:
            watch.detach()
            server.should_exit = True
            await task
            sock.close()
    return status


@contextlib.contextmanager
def _on_interrupt(run: Run) -> Iterator[None]:
    """Ctrl-C (or SIGTERM) ends the run in order, rather than killing it."""
    loop = asyncio.get_running_loop()
    added = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, _interrupt, run)
            added.append(sig)
    try:
        yield
    finally:
        for sig in added:
            loop.remove_signal_handler(sig)


def _interrupt(run: Run) -> None:
    run.interrupted = True
    run.stop.set()


@click.command(
    "demo", short_help="Watch an outage fail over: gateway, traffic and a scripted outage."
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="Port on 127.0.0.1 for the gateway; a free one is used (and named) if it is busy.",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0.1, max=100),
    help="Run the script this many times faster (breakers and health checks too). [default: 1]",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0.5),
    help=f"Stretch or shrink the whole script to this many seconds (it is {LENGTH:g} s).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=1, max=500),
    default=30.0,
    show_default=True,
    help="Client requests per second.",
)
@click.option(
    "--live/--no-live",
    default=True,
    help="Live terminal view, or plain log lines (for CI; automatic when not a terminal).",
)
@click.option(
    "--keep-serving", is_flag=True, help="After the script, keep the gateway up until Ctrl-C."
)
@click.option("--seed", type=int, help="Seed for the clients' choices (routes, streaming).")
def command(
    port: int,
    speed: float | None,
    duration: float | None,
    rate: float,
    live: bool,
    keep_serving: bool,
    seed: int | None,
) -> None:
    """Start a gateway on three simulated providers, send it live traffic and break things.

    The gateway (the real one, in this process, on 127.0.0.1:PORT) serves the simulated
    default config: routes `smart` (sim-a, then sim-b) and `fast` (sim-c, then sim-b). Clients
    send OpenAI Chat Completions at --rate per second, 40% of them streamed, while the
    script switches faults through the admin API:

    \b
       0s  calm                every provider healthy
       6s  sim-a down          sim-a refuses every connection
      15s  sim-a back          its fault is cleared
      20s  sim-a cuts streams  every stream from sim-a is cut after 8 words
      29s  sim-a mended        its fault is cleared
      33s  sim-c brownout      40% of sim-c's calls fail with 503
      40s  all clear           the run ends at 45s

    The terminal shows each deployment's breaker, health, share of traffic, p50/p95, what the
    clients saw (streams rescued mid-answer too), and a line per step saying what happened;
    the dashboard is at http://127.0.0.1:PORT/dashboard/ meanwhile. A table per phase ends
    the run.

    Exit status: 0 when no client saw an error (and every streamed answer arrived whole), 1
    otherwise. Ctrl-C ends early, cleanly.
    """
    if speed is not None and duration is not None:
        raise click.UsageError("give --speed or --duration, not both")
    if duration is not None:
        speed = LENGTH / duration
    options = Options(
        port=port,
        speed=speed or 1.0,
        rate=rate,
        live=live and sys.stdout.isatty(),
        keep_serving=keep_serving,
        seed=seed,
    )
    status = asyncio.run(run_demo(options))
    sys.exit(status)
