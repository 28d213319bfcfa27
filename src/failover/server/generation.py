"""A `Generation` is one loaded configuration: its router, observability (metrics, events,
health checks, webhooks), client keys, admin guard and limits.

The process's `Admission` (requests and streams in flight, sheds) outlives generations: a new
one is handed the old one's and applies its own policy when it is swapped in (`apply_admission`),
so requests admitted before a reload leave the counters they entered.

A reload builds a new generation and swaps it in atomically; each request keeps the generation
it started on (it holds a reference and is counted in `active`), so in-flight requests and
streams finish on the router they began with. The old router is closed once its last request
has left.
"""

from __future__ import annotations

import asyncio
import time

import orjson

from ..config import Config, ServerConfig
from ..observability import EventLog, Observability
from ..resilience.admission import Admission, AdmissionPolicy
from ..router import Router
from .auth import AdminGuard, KeyRing
from .conversations import Conversations
from .sampler import Sampler

__all__ = ["Generation", "observe"]

DEFAULT_MAX_BODY = 10 * 1024 * 1024


class Generation:
    """One configuration's router and server settings, with a count of requests using it."""

    __slots__ = (
        "_idle",
        "active",
        "admin",
        "admission",
        "admission_policy",
        "config",
        "conversations",
        "keys",
        "loaded_at",
        "max_body",
        "max_deadline",
        "models_body",
        "number",
        "obs",
        "router",
        "sampler",
    )

    def __init__(
        self,
        router: Router,
        number: int = 1,
        *,
        events: EventLog | None = None,
        conversations: Conversations | None = None,
        admission: Admission | None = None,
        sampler: Sampler | None = None,
    ) -> None:
        """`events`, `conversations`, `admission`, `sampler`: the previous generation's, to
        keep (on a config reload)."""
        self.router = router
        self.conversations = conversations or Conversations()  # /v1/responses follow-ups
        self.obs = observe(router, events=events)
        self.config: Config | None = router.config
        self.number = number
        self.loaded_at = time.time()
        self.active = 0
        self._idle: asyncio.Event | None = None
        server = self.config.server if self.config is not None else None
        self.keys = KeyRing(server.api_keys if server else [])
        admin_key = server.admin_key.get_secret_value() if server and server.admin_key else None
        self.admin = AdminGuard(admin_key)
        self.max_body = server.max_body if server else DEFAULT_MAX_BODY
        self.max_deadline = server.max_deadline if server else ServerConfig().max_deadline
        self.models_body = self._models()
        self.admission_policy = server.admission_policy() if server else AdmissionPolicy()
        if admission is None:
            admission = Admission(self.admission_policy, routes=self._labels())
        self.admission = admission
        self.sampler = sampler or Sampler()  # feeds `admission` how busy the process is
        if self.obs.metrics is not None:
            self.obs.metrics.watch_admission(admission)

    def _labels(self) -> list[str]:
        """Names a shed is counted under: routes, and deployments addressed by name."""
        return [*self.router.route_names(), *self.router.deployments()]

    def apply_admission(self) -> None:
        """Apply this generation's admission policy (when it is swapped in)."""
        self.admission.configure(self.admission_policy, routes=self._labels())

    def _models(self) -> bytes:
        created = int(self.loaded_at)
        data = [
            {"id": name, "object": "model", "created": created, "owned_by": "failover"}
            for name in self.router.route_names()
        ]
        return orjson.dumps({"object": "list", "data": data})

    def leave(self) -> None:
        """A request that entered (`active += 1`) has finished."""
        self.active -= 1
        if self.active == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self, timeout: float | None) -> bool:
        """Wait until no request uses this generation; False if `timeout` ran out first."""
        if self.active == 0:
            return True
        self._idle = self._idle or asyncio.Event()
        self._idle.clear()
        try:
            async with asyncio.timeout(timeout):
                while self.active:
                    await self._idle.wait()
                    self._idle.clear()
        except TimeoutError:
            return False
        return True

    def __repr__(self) -> str:
        routes = self.router.route_names()
        return f"<Generation #{self.number} routes={routes} active={self.active}>"


def observe(router: Router, *, events: EventLog | None = None) -> Observability:
    """Metrics, logs, events, webhooks and (when enabled) health checks for `router`, as its
    config's `observability:` section (checked when the config loaded) says."""
    config = router.config
    checker = None
    if config is not None and config.defaults.health.enabled:
        from ..health import HealthChecker

        checker = HealthChecker(router, config.defaults.health)
    return Observability(
        router, config.observability if config else None, health=checker, events=events
    )
