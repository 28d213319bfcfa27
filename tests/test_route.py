"""Routes as users write them, and plans as the router compiles them."""

from __future__ import annotations

import random

import pytest

from failover import Deployment, Route
from failover.config import Timeouts
from failover.kinds import Failover
from failover.resilience.breaker import BreakerPolicy
from failover.resilience.panic import Panic
from failover.resilience.retry import RetryBudget, RetryPolicy
from failover.resilience.strategies import strategy_named
from failover.resilience.streams import StreamPolicy
from failover.route import Plan, Slot, resolve_strategy
from failover.testing import ScriptedDeployment


def plan_of(**fallbacks: list[str]) -> Plan:
    slot = Slot.of(ScriptedDeployment("a"))
    return Plan(
        name="chat",
        slots=[slot],
        strategy=strategy_named("priority"),
        fallbacks=fallbacks.get("fallbacks", []),
        context_window_fallbacks=fallbacks.get("context_window", []),
        content_filter_fallbacks=fallbacks.get("content_filter", []),
        hedge=None,
        retry=RetryPolicy(),
        breaker=BreakerPolicy(),
        timeouts=Timeouts(),
        panic=Panic.HEALTH,
        streams=StreamPolicy(),
        budget=RetryBudget("retry:chat", ratio=0.2),
        hedge_budget=None,
    )


def test_a_route_needs_a_deployment() -> None:
    """An empty route is refused at once."""
    with pytest.raises(ValueError, match="at least one deployment"):
        Route([])


def test_deployment_names_are_unique_in_a_route() -> None:
    """Two deployments of one name in a route would share a breaker: refused."""
    with pytest.raises(ValueError, match="unique"):
        Route([ScriptedDeployment("a"), ScriptedDeployment("a")])


def test_a_route_takes_only_deployments() -> None:
    """A plain function is refused with a hint to wrap it in failover.Deployment."""
    with pytest.raises(TypeError, match=r"failover\.Deployment"):
        Route([lambda request: "hi"])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("given", "mode"),
    [(True, Panic.HEALTH), (False, Panic.OFF), ("all", Panic.ALL), ("health", Panic.HEALTH)],
)
def test_panic_is_read_into_its_enum(given: bool | str, mode: Panic) -> None:
    """`panic` accepts booleans and the mode names, and holds a `Panic`."""
    assert Route([ScriptedDeployment("a")], panic=given).panic is mode


def test_unknown_panic_mode_is_refused() -> None:
    """A misspelt panic mode is an error naming the valid ones."""
    with pytest.raises(ValueError, match="'health', 'all' or 'off'"):
        Route([ScriptedDeployment("a")], panic="sometimes")


def test_slot_takes_weight_and_timeout_from_the_deployment() -> None:
    """A slot copies the deployment's name, weight and per-attempt timeout."""
    slot = Slot.of(Deployment("d", lambda r: "x", weight=3, timeout=2.5))
    assert (slot.name, slot.weight, slot.timeout) == ("d", 3.0, 2.5)


def test_each_failover_way_has_its_own_fallbacks() -> None:
    """NEXT continues with `fallbacks`; the context-window and content-filter ways with
    their own lists; NO with none."""
    plan = plan_of(fallbacks=["f"], context_window=["big"], content_filter=["lenient"])
    assert plan.fallbacks_for(Failover.NEXT) == ["f"]
    assert plan.fallbacks_for(Failover.CONTEXT_WINDOW) == ["big"]
    assert plan.fallbacks_for(Failover.CONTENT_FILTER) == ["lenient"]
    assert plan.fallbacks_for(Failover.NO) == []
    assert plan.targets() == ["f", "big", "lenient"]


def test_strategy_names_resolve_and_objects_pass_through() -> None:
    """A strategy given by name is built; a strategy object is used as it is."""
    rng = random.Random(1)
    named = resolve_strategy("round_robin", rng)
    assert callable(named)
    assert resolve_strategy(named, rng) is named
