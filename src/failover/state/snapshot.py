"""A breaker's shared state as it travels between a replica and Redis.

`Snapshot` is what Redis answers (and publishes) about a breaker; `SetMode` says how a state
this replica decided itself is merged into the cluster's when it is pushed. Both speak the Lua
script's vocabulary (`_lua.py`), so the values here are wire values.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import orjson

from ..resilience.breaker import BreakerState

__all__ = ["SetMode", "Snapshot"]

_STATES = {state.value: state for state in BreakerState}


class SetMode(IntEnum):
    """How a pushed breaker state meets the cluster's, weakest first: a stronger one queued
    for the same breaker replaces a weaker one."""

    EARLY = 0  # a health probe passed: HALF_OPEN early, if the cluster is still OPEN
    MERGE = 1  # decided alone while Redis was unreachable: kept if the cluster is CLOSED
    FORCE = 2  # set by hand (drain, disable, reset): wins over anything

    @property
    def wire(self) -> str:
        """The mode's name in the Lua script."""
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A breaker's shared state as Redis returned or published it. `until` is wall time."""

    name: str
    exists: bool
    state: BreakerState
    gen: int
    until: float
    reopens: int
    probes: int
    fails: int
    calls: int
    grant: int = 0  # admit: 0 refused, 1 a probe, 2 a plain permit
    reason: str = ""
    open_for: float | None = None

    @classmethod
    def parse(cls, raw: str | bytes | dict[str, Any]) -> Snapshot:
        """Read the script's JSON reply (or a published message already decoded)."""
        data = raw if isinstance(raw, dict) else orjson.loads(raw)
        return cls(
            name=data["k"],
            exists=bool(data["e"]),
            state=_STATES[data["s"]],
            gen=int(data["g"]),
            until=float(data["u"]),
            reopens=int(data["r"]),
            probes=int(data["p"]),
            fails=int(data["f"]),
            calls=int(data["n"]),
            grant=int(data["a"]),
            reason=data["why"],
            open_for=float(data["d"]) if data["d"] else None,
        )
