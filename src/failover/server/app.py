"""The gateway: a raw ASGI application with a dict dispatch (no framework on the hot path).

    request -> endpoint by path (405 wrong method, 404 unknown path)
            -> guard: client key (model APIs), admin key or loopback (/admin), none (/health)
            -> 503 while shutting down
            -> routed: shed at once if the process is too late for it (`admission.shed_early`,
               before the body is parsed)
            -> handler on the current `Generation` (its router, keys and limits); routed
               handlers take room in the process's admission first (`admission.admit`)
            -> any failure rendered in the format of the API the client spoke

Reload (`reload()`, POST /admin/reload, SIGHUP) validates and builds the new configuration
first, then swaps it in; requests already running finish on the old router, which is closed
once they are done. Shutdown refuses new requests with 503 and waits up to `server.grace` for
running ones (streams included) before closing the routers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Config, load_config
from ..errors import ConfigError
from ..events import Event
from ..factory import from_config
from ..resilience.breaker import BreakerState
from ..router import Router
from ..trace import Trace
from . import anthropic_api, chaos_api, openai_api, responses_api
from .admin import Operations
from .admission import shed_early
from .dashboard import dashboard_app
from .errors import ClientError, Failure, anthropic_body, failure_from, openai_body
from .generation import Generation
from .http import JSON_TYPE, Call, Receive, Scope, Send
from .process import tune_gc

__all__ = [
    "Endpoint",
    "Gateway",
    "app_from_environment",
    "create_app",
]

log = logging.getLogger("failover.server")

Handler = Callable[[Call, Generation], Awaitable[Trace | None]]
Loader = Callable[[], Config]

OPEN, CLIENT, ADMIN = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Endpoint:
    """What answers a path: methods, handler, who may call it, and its error format."""

    methods: tuple[str, ...]
    handler: Handler
    guard: int = CLIENT
    anthropic: bool = False  # errors in Anthropic's format
    refuse_when_draining: bool = True
    routed: bool = False  # uses the router: counted in flight, its overhead measured


class Gateway:
    """The OpenAI- and Anthropic-compatible ASGI app in front of a `Router`."""

    def __init__(
        self,
        router: Router,
        *,
        loader: Loader | None = None,
        source: str | None = None,
        grace: float | None = None,
        reload_on_sighup: bool = False,
    ) -> None:
        self.generation = Generation(router)
        self.draining = False
        self.source = source or ("config" if router.config is not None else "code")
        self.last_reload_error: str | None = None
        self.grace = grace if grace is not None else _grace(router.config)
        self.reload_on_sighup = reload_on_sighup
        self._loader = loader
        self._reload_lock = asyncio.Lock()
        self._retiring: set[Generation] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.ops = Operations(self)
        self._endpoints = self._table()

    @classmethod
    def from_config(cls, config: Config | str | Path, **kwargs: Any) -> Gateway:
        """A gateway for a config file (reloadable) or a `Config`."""
        if isinstance(config, Config):
            return cls(from_config(config), **kwargs)
        path = Path(config)
        return cls(
            from_config(load_config(path)),
            loader=lambda: load_config(path),
            source=str(path),
            **kwargs,
        )

    def _table(self) -> dict[str, Endpoint]:
        ops = self.ops
        chat = Endpoint(("POST",), openai_api.chat_completions, routed=True)
        always = {"refuse_when_draining": False}
        return {
            "/v1/chat/completions": chat,
            "/chat/completions": chat,
            "/v1/messages": Endpoint(
                ("POST",), anthropic_api.messages, anthropic=True, routed=True
            ),
            "/v1/embeddings": Endpoint(("POST",), openai_api.embeddings, routed=True),
            "/v1/responses": Endpoint(("POST",), responses_api.responses, routed=True),
            "/v1/models": Endpoint(("GET",), openai_api.models),
            "/health/live": Endpoint(("GET",), ops.live, OPEN, **always),
            "/health/ready": Endpoint(("GET",), ops.ready, OPEN, **always),
            "/metrics": Endpoint(("GET",), ops.metrics, ADMIN, **always),
            "/admin/status": Endpoint(("GET",), ops.status, ADMIN, **always),
            "/admin/events": Endpoint(("GET",), ops.events, ADMIN, **always),
            "/admin/reload": Endpoint(("POST",), ops.reload, ADMIN),
            "/admin/chaos": Endpoint(("GET",), chaos_api.chaos_all, ADMIN, **always),
        }

    def _match(self, path: str) -> Endpoint | None:
        found = self._endpoints.get(path)
        if found is not None:
            return found
        if path.startswith("/v1/models/"):
            return Endpoint(("GET",), openai_api.model)
        if path.startswith(("/admin/deployments/", "/admin/breakers/")):
            return Endpoint(("POST",), self.ops.action, ADMIN)
        if path.startswith(chaos_api.PREFIX) and len(path) > len(chaos_api.PREFIX):
            return _CHAOS
        if path == "/dashboard" or path.startswith("/dashboard/"):
            return _DASHBOARD
        return None

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        else:  # websockets are not spoken here
            await send({"type": "websocket.close", "code": 1000})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = Call(scope, receive, send)
        path = scope["path"]
        endpoint = self._endpoints.get(path) or self._match(path)
        gen = self.generation
        try:
            if endpoint is None:
                raise _refuse(404, f"no endpoint at {path}", "not_found")
            if scope["method"] not in endpoint.methods:
                allow = ", ".join(endpoint.methods).encode()
                message = f"{scope['method']} is not allowed on {path} (use {allow.decode()})"
                raise _refuse(405, message, "method_not_allowed", ((b"allow", allow),))
            self._guard(endpoint, call, gen)
            if self.draining and endpoint.refuse_when_draining:
                message = "the gateway is shutting down; retry on another replica"
                raise _refuse(503, message, "shutting_down", ((b"connection", b"close"),))
            if endpoint.routed:
                await shed_early(call, gen, anthropic=endpoint.anthropic)
        except Exception as exc:
            anthropic = endpoint.anthropic if endpoint else path.startswith("/v1/messages")
            await self._fail(call, exc, anthropic)
            return
        if not endpoint.routed:
            try:
                await endpoint.handler(call, gen)
            except Exception as exc:
                await self._fail(call, exc, endpoint.anthropic)
            return
        started = time.perf_counter()
        gen.active += 1
        # a client's traceparent becomes the request span's parent: the handler calls the
        # router in this task, where the router's start listener reads the current context
        tracing = gen.obs.tracing
        remote = tracing.continue_from(scope["headers"]) if tracing is not None else None
        try:
            trace = await endpoint.handler(call, gen)
        except Exception as exc:
            await self._fail(call, exc, endpoint.anthropic)
        else:
            if trace is not None and gen.obs.metrics is not None:
                elapsed = time.perf_counter() - started
                gen.obs.observe_overhead(max(0.0, elapsed - _upstream_time(trace)))
        finally:
            if remote is not None and tracing is not None:
                tracing.detach(remote)
            gen.leave()

    def _guard(self, endpoint: Endpoint, call: Call, gen: Generation) -> None:
        if endpoint.guard == CLIENT:
            if gen.keys.open:
                return
            call.client = gen.keys.match(call.credential)
            if call.client is None:
                message = "missing or invalid API key: send Authorization: Bearer KEY or x-api-key"
                raise _refuse(401, message, "invalid_api_key", ((b"www-authenticate", b"Bearer"),))
        elif endpoint.guard == ADMIN:
            status = gen.admin.check(call.credential, call.client_host)
            if status == 401:
                raise _refuse(401, "missing or invalid admin key", "invalid_admin_key")
            if status == 403:
                message = "admin endpoints answer loopback clients only (no admin_key is set)"
                raise _refuse(403, message, "forbidden")

    async def _fail(self, call: Call, exc: Exception, anthropic: bool) -> None:
        failure = failure_from(exc)
        if failure.status >= 500 and failure.trace is None and not isinstance(exc, ClientError):
            log.error("request %s failed: %r", call.request_id, exc, exc_info=exc)
        if call.started:  # too late for a status: the stream's relay already ended it
            return
        body = anthropic_body(failure) if anthropic else openai_body(failure)
        headers = call.headers(JSON_TYPE, *failure.response_headers())
        with contextlib.suppress(Exception):
            await call.respond(failure.status, body, headers)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- lifecycle -------------------------------------------------------------------------

    async def startup(self) -> None:
        """Start health checks and webhooks; listen for SIGHUP (reload) when asked to."""
        await _start_store(self.generation.router)
        await self.generation.obs.start()
        if not self.reload_on_sighup or not hasattr(signal, "SIGHUP"):
            return
        with contextlib.suppress(RuntimeError, ValueError, NotImplementedError):
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGHUP, self._sighup)

    def _sighup(self) -> None:
        log.info("SIGHUP: reloading %s", self.source)
        self._spawn(self._reload_logged())

    async def _reload_logged(self) -> None:
        try:
            gen = await self.reload()
        except ConfigError as exc:
            log.error("reload failed, still serving generation %d: %s", self.generation.number, exc)
        else:
            log.info("reloaded: generation %d, routes %s", gen.number, gen.router.route_names())

    def in_flight(self) -> int:
        """Requests running on any generation."""
        return self.generation.active + sum(g.active for g in self._retiring)

    async def reload(self) -> Generation:
        """Load, validate and build the config again, then swap it in. Raises `ConfigError`
        (and keeps serving the running config) when the new one is bad."""
        if self._loader is None:
            raise ConfigError("this gateway was not started from a config file: nothing to reload")
        async with self._reload_lock:
            old = self.generation
            try:
                new = self._build(old)
            except ConfigError as exc:
                self.last_reload_error = str(exc)
                _announce(old, f"config reload failed, still serving generation {old.number}")
                raise
            await _start_store(new.router)
            await new.obs.start()
            self.generation = new  # the swap: new requests see the new router from here on
            new.apply_admission()
            self.last_reload_error = None
            _announce(new, f"config reloaded: generation {new.number}")
            self._retiring.add(old)
            self._spawn(self._retire(old, None))
            return new

    def _build(self, old: Generation) -> Generation:
        assert self._loader is not None
        router = None
        try:
            router = from_config(self._loader())
            _carry_drains(old.router, router)
            return Generation(
                router,
                old.number + 1,
                events=old.obs.events,
                conversations=old.conversations,
                admission=old.admission,
                sampler=old.sampler,
            )
        except ConfigError:
            self._discard(router)
            raise
        except Exception as exc:  # a config that validates but cannot be built
            self._discard(router)
            raise ConfigError(f"cannot build the new config: {exc}") from exc

    def _discard(self, router: Router | None) -> None:
        if router is not None:
            self._spawn(router.aclose())

    async def _retire(self, gen: Generation, timeout: float | None) -> None:
        """Close a replaced generation's router once its last request has finished."""
        try:
            await gen.obs.stop()
            await gen.wait_idle(timeout)
            await gen.router.aclose()
            await gen.obs.aclose()
        except Exception:
            log.exception("closing the router of generation %d failed", gen.number)
        finally:
            self._retiring.discard(gen)

    async def shutdown(self, grace: float | None = None) -> None:
        """Refuse new requests, let running ones finish (up to `grace`), close every router."""
        self.draining = True
        grace = self.grace if grace is None else grace
        loop = asyncio.get_running_loop()
        until = loop.time() + grace
        for gen in [self.generation, *self._retiring]:
            if not await gen.wait_idle(max(0.0, until - loop.time())):
                log.warning("%d request(s) still running after %.3gs grace", gen.active, grace)
        for task in list(self._tasks):
            task.cancel()
        for gen in [*self._retiring, self.generation]:
            with contextlib.suppress(Exception):
                await gen.obs.stop()
            with contextlib.suppress(Exception):
                await gen.router.aclose()
            with contextlib.suppress(Exception):
                await gen.obs.aclose()
        self._retiring.clear()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def __repr__(self) -> str:
        state = "draining" if self.draining else "serving"
        return f"<Gateway {self.source} {state} generation={self.generation.number}>"


async def _start_store(router: Router) -> None:
    """A shared store connects and reads the cluster's state before the first request, so a
    new replica does not report CLOSED for a breaker the others hold OPEN."""
    for name in router.deployments():
        router.breaker(name)  # a shared store mirrors only breakers it knows of
    await router.start()


def _upstream_time(trace: Trace) -> float:
    """Seconds spent in attempts (and backing off between them): not the gateway's own time."""
    spent = 0.0
    for attempt in trace.attempts:
        if attempt.skipped is None and not attempt.hedge:
            spent += attempt.latency + attempt.waited
    return spent


def _announce(gen: Generation, message: str) -> None:
    """A `config` event on the generation's router (events ring, logs, webhooks)."""
    event = Event("config", time.time(), message, data={"generation": gen.number})
    gen.router.hooks.emit(event)


async def _dashboard(call: Call, gen: Generation) -> None:
    await dashboard_app(call.scope, call.receive, call.send)


_DASHBOARD = Endpoint(("GET", "HEAD"), _dashboard, OPEN, refuse_when_draining=False)
_CHAOS = Endpoint(("GET", "POST", "DELETE"), chaos_api.chaos_one, ADMIN)


def _refuse(status: int, message: str, code: str, headers: tuple[Any, ...] = ()) -> Exception:
    return ClientError(Failure(status, message, code=code, headers=headers))


def _grace(config: Config | None) -> float:
    return config.server.grace if config is not None else 30.0


def _carry_drains(old: Router, new: Router) -> None:
    """Deployments drained by hand stay drained across a reload."""
    targets = new.deployments()
    for name in old.deployments():
        if name in targets and old.breaker(name).state is BreakerState.FORCED_OPEN:
            new.breaker(name).force_open()


def create_app(config: Config | str | Path, **kwargs: Any) -> Gateway:
    """The ASGI app for `config` (a `Config` or a YAML path): `uvicorn.run(create_app(...))`."""
    return Gateway.from_config(config, **kwargs)


def app_from_environment() -> Gateway:
    """The app of each `failover serve --workers N` process: the config in $FAILOVER_CONFIG."""
    from ..observability import configure_logging_for

    path = os.environ.get("FAILOVER_CONFIG")
    if not path:
        raise ConfigError("FAILOVER_CONFIG is not set: name the config file to serve")
    configure_logging_for(load_config(path), os.environ.get("FAILOVER_LOG_LEVEL"))
    gateway = Gateway.from_config(path)
    tune_gc()  # each worker is a long-running server, as `failover serve` alone is
    return gateway
