"""State stores: where breakers, budgets and stats live."""

from .base import BreakerLike, StateStore
from .memory import MemoryStore

__all__ = ["BreakerLike", "MemoryStore", "StateStore"]
