"""Operations endpoints: health for load balancers, status and controls for operators.

    GET  /health/live                        200 while the process serves HTTP
    GET  /health/ready                       200 when a config is loaded and not shutting down
    GET  /metrics                            Prometheus metrics
    GET  /admin/status                       routes, deployments (breaker, health, cool-down,
                                             success rate, latency p50/p95, in flight,
                                             concurrency limit, last error), the process's own
                                             saturation (event-loop lag, each provider's
                                             connection pools), recent events, and the
                                             gateway's own state
    GET  /admin/events?after=ID              recent events (breaker, health, config ...)
    POST /admin/deployments/{name}/drain     take a deployment out of rotation (breaker forced open)
    POST /admin/deployments/{name}/restore   put it back (breaker closed, counts cleared)
    POST /admin/breakers/{name}/reset        close a breaker and clear its window
    POST /admin/reload                       re-read the config; a bad one changes nothing
    GET|POST|DELETE /admin/chaos[/{name}]    fault injection at runtime (see `chaos_api`)

`/admin/*` and `/metrics` need `server.admin_key` when one is configured, and a loopback client
otherwise. The handlers see the gateway they serve only through `Served`: what it is doing
(draining, requests in flight, where its config came from) and how to reload it.
Deployment names contain '/', so `{name}` is everything between the prefix and the action.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs

from ..errors import ConfigError, UnknownRoute
from .errors import ClientError, Failure
from .http import Call

if TYPE_CHECKING:
    from .generation import Generation

__all__ = ["Operations", "Served"]

_ACTIONS = {
    ("/admin/deployments/", "/drain"): "drain",
    ("/admin/deployments/", "/restore"): "restore",
    ("/admin/breakers/", "/reset"): "reset",
}


class Served(Protocol):
    """What the operations endpoints need from the gateway they serve (`Gateway` is one)."""

    @property
    def draining(self) -> bool:
        """True once the gateway is shutting down: readiness answers 503."""

    @property
    def source(self) -> str:
        """Where the running config came from (a file, the environment, code)."""

    @property
    def last_reload_error(self) -> str | None:
        """Why the last reload was refused, if it was."""

    def in_flight(self) -> int:
        """Requests running now, on every config generation."""

    async def reload(self) -> Generation:
        """Load, validate and swap in the config again; raises `ConfigError` if it is bad."""


class Operations:
    """The health and admin handlers of one gateway."""

    def __init__(self, gateway: Served) -> None:
        self.gateway = gateway
        self.started = time.time()

    async def live(self, call: Call, gen: Generation) -> None:
        await call.respond_json(200, {"status": "ok"})

    async def ready(self, call: Call, gen: Generation) -> None:
        if self.gateway.draining:
            await call.respond_json(503, {"status": "draining"})
            return
        await call.respond_json(200, {"status": "ready", "routes": gen.router.route_names()})

    async def status(self, call: Call, gen: Generation) -> None:
        await call.respond_json(200, self.snapshot(gen))

    def snapshot(self, gen: Generation) -> dict[str, Any]:
        """The router's status document (see `failover.observability.snapshot`) plus the
        gateway's own: serving or draining, uptime, which config generation, requests in flight."""
        status = gen.obs.status()
        status["gateway"] = {
            "status": "draining" if self.gateway.draining else "ok",
            "uptime_s": round(time.time() - self.started, 3),
            "in_flight": self.gateway.in_flight(),
            "config": {
                "source": self.gateway.source,
                "generation": gen.number,
                "loaded_at": gen.loaded_at,
                "last_reload_error": self.gateway.last_reload_error,
            },
            "state": gen.router.store.describe(),
            "admission": {
                **gen.admission.describe(),
                "smoothed_lag_ms": round(gen.router.lag.smoothed * 1000, 3),
            },
        }
        return status

    async def events(self, call: Call, gen: Generation) -> None:
        """GET /admin/events?after=ID&limit=N&type=T: recent events, oldest first."""
        query = parse_qs(call.scope.get("query_string", b"").decode("latin-1"))
        after = _int(query, "after", 0)
        limit = _int(query, "limit", 500)
        kind = query.get("type", [None])[-1]
        events = gen.obs.events.recent(limit, after=after, type=kind)
        await call.respond_json(200, {"events": events})

    async def metrics(self, call: Call, gen: Generation) -> None:
        """GET /metrics: Prometheus text format."""
        content_type = (b"content-type", gen.obs.content_type.encode())
        await call.respond(200, gen.obs.metrics_text(), call.headers(content_type))

    async def action(self, call: Call, gen: Generation) -> None:
        """POST /admin/deployments/{name}/drain|restore, /admin/breakers/{name}/reset"""
        path = call.scope["path"]
        verb, name = _parse_action(path)
        try:
            breaker = gen.router.breaker(name)
        except UnknownRoute:
            known = ", ".join(gen.router.deployments()) or "none"
            message = f"unknown deployment {name!r}; known: {known}"
            raise ClientError(Failure(404, message, code="deployment_not_found")) from None
        if verb == "drain":
            breaker.force_open()
        else:
            breaker.reset()
        await call.respond_json(
            200, {"deployment": name, "action": verb, "breaker": breaker.state.value}
        )

    async def reload(self, call: Call, gen: Generation) -> None:
        """POST /admin/reload"""
        try:
            new = await self.gateway.reload()
        except ConfigError as exc:
            await call.respond_json(
                422,
                {"reloaded": False, "error": str(exc), "generation": gen.number},
            )
            return
        payload = {"reloaded": True, "generation": new.number, "routes": new.router.route_names()}
        await call.respond_json(200, payload)


def _parse_action(path: str) -> tuple[str, str]:
    """(verb, deployment name) of an action path."""
    for (prefix, suffix), verb in _ACTIONS.items():
        if path.startswith(prefix) and path.endswith(suffix) and len(path) > len(prefix + suffix):
            return verb, path[len(prefix) : -len(suffix)]
    raise ClientError(Failure(404, f"no admin endpoint at {path}", code="not_found"))


def _int(query: dict[str, list[str]], key: str, default: int) -> int:
    values = query.get(key)
    if not values:
        return default
    try:
        return max(0, int(values[-1]))
    except ValueError:
        message = f"'{key}' must be a whole number"
        raise ClientError(Failure(400, message, code="invalid_request_error")) from None
