"""The time limits of one call: configured, or learned from its deployment's own streams.

    first content   from the start of a stream to its first content (not its role chunk)
    silence         between two chunks of a stream that has started

Both are `timeouts.first_token` and `timeouts.stall` until the deployment has enough history,
then a multiple of its own p99 (see `failover.resilience.streams.learned_limit`).
"""

from __future__ import annotations

from ._request import Call
from .resilience.streams import learned_limit
from .state.base import StateStore

__all__ = ["Limits"]


class Limits:
    """Reads each deployment's stream history from the store to set its limits."""

    def __init__(self, store: StateStore) -> None:
        self.store = store

    def first_content(self, call: Call) -> float | None:
        """Seconds a stream may take to its first content."""
        timeouts = call.plan.timeouts
        seen = self.store.stats(call.slot.name).first_content
        return learned_limit(timeouts.first_token, seen.p99, len(seen), timeouts.learning)

    def silence(self, call: Call) -> float | None:
        """Seconds a started stream may stay silent."""
        timeouts = call.plan.timeouts
        seen = self.store.stats(call.slot.name).silences
        return learned_limit(timeouts.stall, seen.p99, len(seen), timeouts.learning)
