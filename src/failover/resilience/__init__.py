"""Pure policy objects: no I/O, time injected."""

from .breaker import BreakerEvent, BreakerPolicy, BreakerState, CircuitBreaker, Permit, Result
from .hedging import HedgePolicy
from .retry import RetryBudget, RetryPolicy, backoff
from .strategies import STRATEGIES, Strategy, strategy_named

__all__ = [
    "STRATEGIES",
    "BreakerEvent",
    "BreakerPolicy",
    "BreakerState",
    "CircuitBreaker",
    "HedgePolicy",
    "Permit",
    "Result",
    "RetryBudget",
    "RetryPolicy",
    "Strategy",
    "backoff",
    "strategy_named",
]
