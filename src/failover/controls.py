"""What one request may choose for itself: its deadline, whether it may fall back to other
routes or resume a broken stream, and its priority.

The library takes them as keyword arguments of `Router.complete` / `open_stream` /
`embeddings`; the gateway reads them from `x-failover-*` request headers (bounded by what the
server allows). Every request's trace echoes the controls it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from .resilience.streams import Resume

__all__ = ["Controls", "Priority"]


class Priority(StrEnum):
    """Who is shed first when the gateway is overloaded: `low`, then `normal`."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


@dataclass(frozen=True, slots=True)
class Controls:
    """One request's own choices; the defaults leave everything to the route."""

    timeout: float | None = None  # seconds for the whole request; None: the route's `total`
    fallbacks: bool = True  # False: only the route's own deployments, no fallback routes
    resume: Resume | None = None  # a broken stream's recovery; None: the route's `streams`
    priority: Priority = Priority.NORMAL

    def __post_init__(self) -> None:
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError("a request's timeout must be > 0 seconds")

    def to_dict(self) -> dict[str, Any]:
        """The controls that differ from the defaults, for traces and logs."""
        out: dict[str, Any] = {}
        if self.timeout is not None:
            out["timeout_s"] = self.timeout
        if not self.fallbacks:
            out["fallbacks"] = False
        if self.resume is not None:
            out["resume"] = self.resume.value
        if self.priority is not Priority.NORMAL:
            out["priority"] = self.priority.value
        return out


DEFAULT = Controls()
