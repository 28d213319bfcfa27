"""The ring of recent events behind /admin/events, the dashboard and `failover status`.

Bounded (the last 500 by default). An event identical to the one just before it (same type,
route, deployment and message: the "falling back to fast" of every request during an outage)
is folded into that entry's `count` instead of pushing older, rarer events out.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import TYPE_CHECKING, Any

from ..events import Event
from .logs import redact

if TYPE_CHECKING:
    from ..router import Router

__all__ = ["EventLog"]


class _Entry:
    __slots__ = ("count", "event", "id", "last_at")

    def __init__(self, entry_id: int, event: Event) -> None:
        self.id = entry_id
        self.event = event
        self.count = 1
        self.last_at = event.at

    def key(self) -> tuple[str, str | None, str | None, str]:
        e = self.event
        return (e.type, e.route, e.deployment, e.message)

    def to_dict(self) -> dict[str, Any]:
        out = self.event.to_dict()
        out["id"] = self.id
        out["message"] = redact(self.event.message)
        if "data" in out:
            out["data"] = {
                k: redact(v) if isinstance(v, str) else v for k, v in out["data"].items()
            }
        if self.count > 1:
            out["count"] = self.count
            out["last_at"] = self.last_at
        return out


class EventLog:
    """The last `keep` events, oldest first, with ids that only grow."""

    def __init__(self, keep: int = 500) -> None:
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self.keep = keep
        self.total = 0  # events seen, folded repeats included
        self._entries: deque[_Entry] = deque(maxlen=keep)
        self._ids = itertools.count(1)

    def add(self, event: Event) -> None:
        """Record an event (an event listener: `router.hooks.event.append(log.add)`)."""
        self.total += 1
        last = self._entries[-1] if self._entries else None
        if last is not None and last.key() == (
            event.type,
            event.route,
            event.deployment,
            event.message,
        ):
            last.count += 1
            last.last_at = event.at
            return
        self._entries.append(_Entry(next(self._ids), event))

    __call__ = add

    def attach(self, router: Router) -> EventLog:
        """Listen to a router's events; returns self."""
        if self.add not in router.hooks.event:
            router.hooks.event.append(self.add)
        return self

    def recent(
        self, limit: int | None = None, *, after: int = 0, type: str | None = None
    ) -> list[dict[str, Any]]:
        """JSON-able events, oldest first: the newest `limit`, only ids > `after`, of `type`."""
        picked = [
            e for e in self._entries if e.id > after and (type is None or e.event.type == type)
        ]
        if limit is not None:
            picked = picked[-limit:] if limit > 0 else []
        return [e.to_dict() for e in picked]

    def events(self) -> list[Event]:
        """The kept events themselves (folded repeats appear once)."""
        return [e.event for e in self._entries]

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"<EventLog {len(self._entries)}/{self.keep} kept, {self.total} seen>"
