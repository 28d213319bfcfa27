"""Tests for failover.resilience.strategies: the candidate orderings."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from failover.resilience.strategies import (
    STRATEGIES,
    LeastBusy,
    LeastLatency,
    Priority,
    RoundRobin,
    Weighted,
    strategy_named,
)
from failover.stats import DeploymentStats


@dataclass(frozen=True)
class Cand:
    """A minimal candidate: a name and a weight."""

    name: str
    weight: float = 1.0


class StatsBook:
    """A stats lookup for strategies: one DeploymentStats per name, created on demand."""

    def __init__(self) -> None:
        self.by_name: dict[str, DeploymentStats] = {}

    def __call__(self, name: str) -> DeploymentStats:
        return self.by_name.setdefault(name, DeploymentStats(name))


def names(cands: list[Cand]) -> list[str]:
    return [c.name for c in cands]


ABC = [Cand("a"), Cand("b"), Cand("c")]


def test_priority_keeps_written_order() -> None:
    """priority returns the candidates in the order written, every time."""
    strategy = Priority()
    assert [names(strategy(ABC, StatsBook())) for _ in range(3)] == [["a", "b", "c"]] * 3


def test_priority_returns_a_new_list() -> None:
    """priority hands back a copy the router may reorder freely."""
    result = Priority()(ABC, StatsBook())
    assert result == ABC
    assert result is not ABC


def test_round_robin_rotates() -> None:
    """Each call starts one further along; the rest follow in written order."""
    strategy = RoundRobin()
    orders = [names(strategy(ABC, StatsBook())) for _ in range(4)]
    assert orders == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_round_robin_empty() -> None:
    """An empty candidate list gives an empty order."""
    assert RoundRobin()([], StatsBook()) == []


def test_round_robin_instances_are_independent() -> None:
    """Two round-robin strategies (two routes) keep separate counters."""
    first, second = RoundRobin(), RoundRobin()
    first(ABC, StatsBook())
    assert names(second(ABC, StatsBook())) == ["a", "b", "c"]


def test_weighted_first_pick_follows_weights() -> None:
    """The first candidate is drawn with probability proportional to its weight."""
    cands = [Cand("a", 1.0), Cand("b", 3.0), Cand("c", 6.0)]
    strategy = Weighted(random.Random(42))
    firsts = Counter(strategy(cands, StatsBook())[0].name for _ in range(10_000))
    assert firsts["a"] / 10_000 == pytest.approx(0.1, abs=0.02)
    assert firsts["b"] / 10_000 == pytest.approx(0.3, abs=0.03)
    assert firsts["c"] / 10_000 == pytest.approx(0.6, abs=0.03)


def test_weighted_returns_every_candidate_once() -> None:
    """weighted is a permutation of the candidates."""
    cands = [Cand("a", 1.0), Cand("b", 2.0), Cand("c", 0.0)]
    strategy = Weighted(random.Random(0))
    for _ in range(50):
        assert sorted(names(strategy(cands, StatsBook()))) == ["a", "b", "c"]


def test_weighted_zero_weight_goes_last() -> None:
    """A weight-0 candidate is always ordered after every weighted one."""
    cands = [Cand("off", 0.0), Cand("a", 1.0), Cand("b", 0.001)]
    strategy = Weighted(random.Random(5))
    assert {strategy(cands, StatsBook())[-1].name for _ in range(500)} == {"off"}


def test_weighted_is_reproducible_with_a_seed() -> None:
    """The same seed gives the same sequence of orders."""
    cands = [Cand(str(i), float(i + 1)) for i in range(5)]
    first = Weighted(random.Random(9))
    second = Weighted(random.Random(9))
    for _ in range(20):
        assert first(cands, StatsBook()) == second(cands, StatsBook())


def test_least_latency_orders_by_ewma() -> None:
    """least_latency puts the lowest latency EWMA first."""
    book = StatsBook()
    for name, latency in (("a", 0.9), ("b", 0.1), ("c", 0.5)):
        book(name).observe(True, latency)
    assert names(LeastLatency()(ABC, book)) == ["b", "c", "a"]


def test_least_latency_puts_unmeasured_first() -> None:
    """Deployments with no measurement yet go first, so they get measured."""
    book = StatsBook()
    book("a").observe(True, 0.05)
    book("b").observe(True, 0.01)
    assert names(LeastLatency()(ABC, book)) == ["c", "b", "a"]


def test_least_latency_follows_the_ewma_as_it_moves() -> None:
    """A deployment that slows down loses its place once its EWMA passes the others."""
    book = StatsBook()
    book("a").observe(True, 0.1)
    book("b").observe(True, 0.2)
    cands = ABC[:2]
    assert names(LeastLatency()(cands, book)) == ["a", "b"]
    for _ in range(10):
        book("a").observe(True, 1.0)
    assert names(LeastLatency()(cands, book)) == ["b", "a"]


def test_least_latency_counts_time_to_first_token() -> None:
    """With TTFT measured, the key is the mean of latency and TTFT EWMAs."""
    book = StatsBook()
    book("a").observe(True, 1.0, ttft=0.1)  # key 0.55
    book("b").observe(True, 0.7)  # key 0.7
    assert names(LeastLatency()(ABC[:2], book)) == ["a", "b"]


def test_least_busy_orders_by_in_flight() -> None:
    """least_busy puts the deployment with the fewest calls in flight first."""
    book = StatsBook()
    for name, busy in (("a", 3), ("b", 0), ("c", 1)):
        for _ in range(busy):
            book(name).started()
    assert names(LeastBusy()(ABC, book)) == ["b", "c", "a"]


def test_least_busy_ties_keep_written_order() -> None:
    """Equal in-flight counts keep the order written."""
    book = StatsBook()
    book("a").started()
    assert names(LeastBusy()(ABC, book)) == ["b", "c", "a"]


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_strategy_named_builds_each_builtin(name: str) -> None:
    """strategy_named returns a fresh strategy of the named type."""
    strategy = strategy_named(name)
    assert sorted(names(strategy(ABC, StatsBook()))) == ["a", "b", "c"]


def test_strategy_named_gives_fresh_objects() -> None:
    """Each call builds a new object, so round-robin counters are not shared."""
    assert strategy_named("round_robin") is not strategy_named("round_robin")


def test_strategy_named_weighted_uses_the_rng() -> None:
    """strategy_named("weighted", rng=...) draws from that rng."""
    cands = [Cand(str(i), 1.0) for i in range(6)]
    first = strategy_named("weighted", rng=random.Random(3))
    second = strategy_named("weighted", rng=random.Random(3))
    assert first(cands, StatsBook()) == second(cands, StatsBook())


def test_strategy_named_unknown_lists_choices() -> None:
    """An unknown name raises ValueError listing every built-in strategy."""
    with pytest.raises(ValueError, match="unknown strategy 'fastest'") as info:
        strategy_named("fastest")
    for name in STRATEGIES:
        assert name in str(info.value)
