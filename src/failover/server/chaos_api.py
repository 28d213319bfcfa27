"""Fault injection at runtime: the admin API's outage button.

    GET    /admin/chaos                  every deployment's faults: {"deployments": {name: {...}}}
    GET    /admin/chaos/{deployment}     one deployment's (`FaultInjector.describe()`)
    POST   /admin/chaos/{deployment}     replace its faults with a `chaos:` block as JSON:
                                         {"enabled": true, "faults": [{"type": "reset"}]};
                                         {"enabled": true, "faults": []} clears them
    DELETE /admin/chaos/{deployment}     clear them

Every deployment the factory builds sits in a `FaultInjector`, faultless (one attribute check
a call) until this API arms it. Arming it logs a WARNING and emits a `chaos` event, so an
outage started on purpose shows in /admin/events, the dashboard's timeline, the logs and
webhooks like any other. Faults belong to the router's deployments: a config reload builds new
deployments and so clears them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from ..chaos import ChaosConfig, FaultInjector
from ..config import format_validation_error
from ..events import Event
from .errors import ClientError, Failure

if TYPE_CHECKING:
    from .generation import Generation
    from .http import Call

__all__ = ["PREFIX", "chaos_all", "chaos_one"]

PREFIX = "/admin/chaos/"


async def chaos_all(call: Call, gen: Generation) -> None:
    """GET /admin/chaos"""
    deployments = {name: _describe(name, dep) for name, dep in gen.router.deployments().items()}
    await call.respond_json(200, {"deployments": deployments})


async def chaos_one(call: Call, gen: Generation) -> None:
    """GET, POST, DELETE /admin/chaos/{deployment}"""
    name = call.scope["path"][len(PREFIX) :]
    injector = _injector(gen, name)
    method = call.scope["method"]
    if method == "POST":
        config = _parse(await call.json(gen.max_body), name)
        injector.set_faults(config)
        _announce(gen, injector)
    elif method == "DELETE":
        injector.clear()
        _announce(gen, injector)
    await call.respond_json(200, {**injector.describe(), "injectable": True})


def _describe(name: str, deployment: object) -> dict[str, Any]:
    if isinstance(deployment, FaultInjector):
        return {**deployment.describe(), "injectable": True}
    return {"deployment": name, "enabled": False, "faults": [], "injectable": False}


def _injector(gen: Generation, name: str) -> FaultInjector:
    deployment = gen.router.deployments().get(name)
    if deployment is None:
        known = ", ".join(gen.router.deployments()) or "none"
        message = f"unknown deployment {name!r}; known: {known}"
        raise ClientError(Failure(404, message, code="deployment_not_found"))
    if not isinstance(deployment, FaultInjector):
        message = (
            f"deployment {name!r} has no fault injector: deployments built from a config always "
            "have one; wrap your own in failover.chaos.FaultInjector"
        )
        raise ClientError(Failure(409, message, code="chaos_unavailable"))
    return deployment


def _parse(data: Any, name: str) -> ChaosConfig:
    """The body as a `ChaosConfig`; 422 naming every bad field."""
    try:
        return ChaosConfig.model_validate(data)
    except ValidationError as exc:
        header = f"invalid chaos config for deployment {name!r}"
        message = format_validation_error(exc, header=header)
        raise ClientError(Failure(422, message, code="invalid_chaos_config")) from None


def _announce(gen: Generation, injector: FaultInjector) -> None:
    """A `chaos` event on the router: events ring, dashboard, logs (WARNING when on), webhooks."""
    labels = [fault.label() for fault in injector.faults]
    if injector.enabled:
        message = f"CHAOS ON: calls will fail on purpose ({'; '.join(labels)})"
    elif labels:
        message = f"chaos set but switched off ({'; '.join(labels)})"
    else:
        message = "chaos cleared: no faults injected"
    data = {"enabled": injector.enabled, "faults": labels, "source": "admin API"}
    router = gen.router
    router.hooks.emit(
        Event("chaos", router.clock.wall(), message, deployment=injector.name, data=data)
    )
