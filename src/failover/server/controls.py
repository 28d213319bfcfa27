"""Per-request controls from `x-failover-*` headers, validated and bounded by the server.

    x-failover-route: fast            use this route (or `provider/model`) whatever `model` says
    x-failover-deadline: 8s           the whole request's deadline (250ms, 8s, 2m, or seconds);
                                      at most `server.max_deadline`
    x-failover-fallbacks: off         stay on the route's own deployments (on / off)
    x-failover-resume: off            how a broken stream is finished (continue / restart / off)
    x-failover-priority: low          who is shed first under overload (high / normal / low)

A bad value is the client's error: a 400 in the API's own format naming the header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import parse_duration
from ..controls import Priority
from ..resilience.streams import Resume
from .errors import ClientError, Failure

__all__ = ["HEADERS", "PRIORITIES", "RequestControls", "read_controls"]

HEADERS = frozenset(
    {
        b"x-failover-route",
        b"x-failover-deadline",
        b"x-failover-fallbacks",
        b"x-failover-resume",
        b"x-failover-priority",
    }
)
_SWITCH = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}
_RESUMES = {member.value: member for member in Resume}
PRIORITIES = {member.value: member for member in Priority}  # x-failover-priority values


@dataclass(frozen=True, slots=True)
class RequestControls:
    """What the headers asked for: a route to use instead of `model`, and router controls."""

    route: str | None
    router: dict[str, Any]  # keyword arguments for Router.complete / open_stream / embeddings


def read_controls(sent: Mapping[bytes, bytes] | None, max_deadline: float) -> RequestControls:
    """The controls of a request's `x-failover-*` headers (`Call.controls`: each header's
    value by its name, None when none was sent); `ClientError` 400 for a value that is not
    valid."""
    if not sent:
        return RequestControls(None, {})
    found = {name: value.decode("latin-1").strip() for name, value in sent.items()}
    kwargs: dict[str, Any] = {}
    if (deadline := found.get(b"x-failover-deadline")) is not None:
        kwargs["timeout"] = _deadline(deadline, max_deadline)
    if (fallbacks := found.get(b"x-failover-fallbacks")) is not None:
        kwargs["fallbacks"] = _choice(b"x-failover-fallbacks", fallbacks.lower(), _SWITCH)
    if (resume := found.get(b"x-failover-resume")) is not None:
        kwargs["resume"] = _choice(b"x-failover-resume", resume.lower(), _RESUMES)
    if (priority := found.get(b"x-failover-priority")) is not None:
        kwargs["priority"] = _choice(b"x-failover-priority", priority.lower(), PRIORITIES)
    route = found.get(b"x-failover-route") or None
    return RequestControls(route, kwargs)


def _deadline(text: str, limit: float) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError:
        raise _invalid(
            "x-failover-deadline", f"{text!r} is not a duration (8s, 250ms, 2m)"
        ) from None
    if seconds <= 0:
        raise _invalid("x-failover-deadline", "must be more than 0")
    if seconds > limit:
        raise _invalid("x-failover-deadline", f"{text} exceeds this server's {limit:g}s maximum")
    return seconds


def _choice(header: bytes, value: str, allowed: dict[str, Any]) -> Any:
    if value not in allowed:
        names = ", ".join(sorted(allowed))
        raise _invalid(header.decode(), f"{value!r} is not one of {names}")
    return allowed[value]


def _invalid(header: str, why: str) -> ClientError:
    return ClientError(Failure(400, f"invalid {header} header: {why}", param=header))
