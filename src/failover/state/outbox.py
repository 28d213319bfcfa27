"""Updates on their way to Redis: batched per flush, bounded by the number of keys.

Outcomes and probe results are only worth sending while Redis answers (during an outage each
replica judges them itself); manual and locally decided breaker states, cool-downs, health
marks and the calls counted against a quota wait in the outbox until Redis is back, latest
value per key.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..resilience.breaker import Result
from .counts import SharedBudget, SharedQuota
from .shared import SharedBreaker
from .snapshot import SetMode

__all__ = ["Outbox", "Outcome"]

Outcome = tuple[int, str]  # (generation, "<failed><slow>" as two digits)


@dataclass
class Outbox:
    """What the next flush sends."""

    sets: dict[SharedBreaker, SetMode] = field(default_factory=dict)
    outcomes: dict[SharedBreaker, list[Outcome]] = field(default_factory=dict)
    probes: dict[SharedBreaker, list[tuple[int, Result]]] = field(default_factory=dict)
    reads: set[SharedBreaker] = field(default_factory=set)
    cooldowns: dict[str, float] = field(default_factory=dict)  # wall-clock until
    health: dict[str, bool] = field(default_factory=dict)
    budgets: set[SharedBudget] = field(default_factory=set)
    quotas: set[SharedQuota] = field(default_factory=set)  # calls to count, or a read

    def __bool__(self) -> bool:
        return bool(
            self.sets
            or self.outcomes
            or self.probes
            or self.reads
            or self.cooldowns
            or self.health
            or self.budgets
            or self.quotas
        )

    def add_set(self, breaker: SharedBreaker, mode: SetMode) -> None:
        """Queue a push of the breaker's state; a stronger mode wins (force > merge > early)."""
        current = self.sets.get(breaker)
        if current is None or mode >= current:
            self.sets[breaker] = mode

    def take(self) -> Outbox:
        """Everything queued, leaving this outbox empty."""
        taken = Outbox(
            self.sets,
            self.outcomes,
            self.probes,
            self.reads,
            self.cooldowns,
            self.health,
            self.budgets,
            self.quotas,
        )
        self.sets, self.outcomes, self.probes, self.reads = {}, {}, {}, set()
        self.cooldowns, self.health, self.budgets, self.quotas = {}, {}, set(), set()
        return taken

    def take_outcomes(self) -> dict[SharedBreaker, list[Outcome]]:
        """The queued outcomes alone (to judge locally when Redis failed)."""
        taken, self.outcomes = self.outcomes, {}
        return taken

    def take_probes(self) -> dict[SharedBreaker, list[tuple[int, Result]]]:
        """The queued probe results alone (to judge locally when Redis failed)."""
        taken, self.probes = self.probes, {}
        return taken

    def restore(self, unsent: Outbox) -> None:
        """Put back what a failed flush took; newer updates queued meanwhile win."""
        for breaker, mode in unsent.sets.items():
            self.add_set(breaker, mode)
        for breaker, outcomes in unsent.outcomes.items():
            self.outcomes[breaker] = outcomes + self.outcomes.get(breaker, [])
        for breaker, probes in unsent.probes.items():
            self.probes[breaker] = probes + self.probes.get(breaker, [])
        self.reads |= unsent.reads
        for key, until in unsent.cooldowns.items():
            self.cooldowns[key] = max(until, self.cooldowns.get(key, 0.0))
        for key, healthy in unsent.health.items():
            self.health.setdefault(key, healthy)
        # budget deltas were taken when sent: lost with the flush, the local balance goes on
        for quota in unsent.quotas:  # calls counted are not lost: they go with the next flush
            quota.give_back()
            self.quotas.add(quota)
