"""The one place uvicorn is embedded: `failover serve` (one process or several workers) and
`failover demo` run the gateway through `GatewayServer` and the settings here."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from ..server.listener import Listener
from ..server.protocol import GatewayHttpProtocol

if TYPE_CHECKING:
    import socket

    from ..server.app import Gateway

__all__ = ["GatewayServer", "run_workers", "serve_options"]

# what every embedded gateway runs with: our HTTP protocol, lifespan events, no Server header
_COMMON: dict[str, Any] = {"http": GatewayHttpProtocol, "lifespan": "on", "server_header": False}


def serve_options(host: str, port: int, log_level: str, access_log: bool) -> dict[str, Any]:
    """uvicorn settings of `failover serve`, in one process or in each worker."""
    return {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "log_level": "warning" if log_level == "info" else log_level,
        "access_log": access_log,
        "proxy_headers": False,
        "timeout_keep_alive": 30,
        "backlog": 2048,
    }


class GatewayServer(uvicorn.Server):
    """uvicorn serving one `Gateway`: connections are accepted by a `Listener` (all those
    waiting at each loop iteration), new requests are refused (503) once an exit signal
    arrives, `on_ready` is told the bound port, and a drained shutdown exits 0.

    With `signals=False` uvicorn installs no signal handlers: the caller stops the server
    itself (`should_exit = True`), as the demo does on Ctrl-C.
    """

    def __init__(
        self,
        gateway: Gateway,
        *,
        on_ready: Callable[[int], None] | None = None,
        signals: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(uvicorn.Config(gateway, **{**_COMMON, **options}))
        self.gateway = gateway
        self.on_ready = on_ready
        self.signals = signals

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        config = self.config
        if sockets is None and config.fd is None and config.uds is None and not config.is_ssl:
            await self._listen()
        else:
            await super().startup(sockets)
        if self.started and self.on_ready is not None:
            self.on_ready(self.port())

    async def _listen(self) -> None:
        """uvicorn's start-up for a host and port, on a `Listener`: a busy gateway still
        accepts every waiting connection at each loop iteration, not one."""
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        config, loop = self.config, asyncio.get_running_loop()

        def protocol() -> asyncio.Protocol:
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state,
                _loop=loop,
            )  # fmt: skip

        listener = Listener(config.bind_socket(), protocol, backlog=config.backlog)
        self.servers = [listener]  # type: ignore[list-item]
        self.started = True

    def port(self) -> int:
        """The port the server listens on (the configured one before it binds)."""
        if self.servers and self.servers[0].sockets:
            return int(self.servers[0].sockets[0].getsockname()[1])
        return self.config.port

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.gateway.draining = True  # requests arriving from now on get 503
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises SIGTERM after a graceful shutdown (exit status -15); a drained,
        # clean shutdown exits 0 here
        if not self.signals:
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def run_workers(workers: int, grace: float, options: dict[str, Any]) -> None:
    """Serve the gateway of $FAILOVER_CONFIG in `workers` processes (uvicorn's supervisor)."""
    uvicorn.run(
        "failover.server.app:app_from_environment",
        factory=True,
        workers=workers,
        timeout_graceful_shutdown=int(grace + 1),
        **_COMMON,
        **options,
    )
