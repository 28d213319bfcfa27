"""Tests for failover.resilience.retry: full-jitter backoff, RetryPolicy, RetryBudget."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from failover.clock import FakeClock
from failover.resilience.retry import RetryBudget, RetryPolicy, backoff

# --- backoff ---------------------------------------------------------------------------------


@given(
    base=st.floats(min_value=0, max_value=10, allow_nan=False),
    extra=st.floats(min_value=0, max_value=100, allow_nan=False),
    retry=st.integers(min_value=0, max_value=200),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_backoff_is_within_full_jitter_bounds(
    base: float, extra: float, retry: int, seed: int
) -> None:
    """0 <= delay <= min(max_backoff, base * 2**n) for any policy and retry number."""
    policy = RetryPolicy(base=base, max_backoff=base + extra)
    delay = backoff(policy, retry, random.Random(seed))
    assert 0.0 <= delay <= min(policy.max_backoff, policy.base * 2**retry)


def test_backoff_uses_the_rng() -> None:
    """The delay is uniform(0, ceiling) drawn from the given rng."""
    policy = RetryPolicy(base=1.0, max_backoff=100.0)
    expected = random.Random(7).uniform(0.0, 8.0)
    assert backoff(policy, 3, random.Random(7)) == expected


def test_backoff_ceiling_doubles_per_retry() -> None:
    """With the rng always at its top, the delay doubles each retry until max_backoff."""

    class Top(random.Random):
        def random(self) -> float:
            return 1.0

    policy = RetryPolicy(base=0.25, max_backoff=3.0)
    delays = [backoff(policy, n, Top()) for n in range(6)]
    assert delays == [0.25, 0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_spreads_out() -> None:
    """Full jitter spreads delays over the whole range rather than clustering at the top."""
    policy = RetryPolicy(base=1.0, max_backoff=1.0)
    rng = random.Random(1)
    delays = [backoff(policy, 0, rng) for _ in range(2000)]
    assert min(delays) < 0.05
    assert max(delays) > 0.95
    assert 0.45 < sum(delays) / len(delays) < 0.55


def test_backoff_with_zero_base_is_zero() -> None:
    """A base of 0 means retry at once."""
    assert backoff(RetryPolicy(base=0.0, max_backoff=0.0), 5, random.Random(0)) == 0.0


def test_backoff_huge_retry_number_is_capped() -> None:
    """A very large retry number does not overflow and stays within max_backoff."""
    policy = RetryPolicy(base=0.2, max_backoff=5.0)
    assert 0.0 <= backoff(policy, 10_000, random.Random(3)) <= 5.0


# --- RetryPolicy -----------------------------------------------------------------------------


def test_policy_defaults() -> None:
    """The defaults are DESIGN.md's: 2 attempts, 200 ms base, 5 s cap, 30 s Retry-After cap."""
    policy = RetryPolicy()
    assert (policy.attempts, policy.base, policy.max_backoff, policy.retry_after_max) == (
        2,
        0.2,
        5.0,
        30.0,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attempts": 0}, "attempts must be >= 1"),
        ({"base": -0.1}, "base must be >= 0"),
        ({"base": 2.0, "max_backoff": 1.0}, "max_backoff must be >= base"),
        ({"retry_after_max": -1}, "retry_after_max must be >= 0"),
        ({"cooldown": -1}, "cooldown must be >= 0"),
        ({"budget": -0.1}, "budget must be in"),
        ({"budget": 11}, "budget must be in"),
        ({"budget_min_per_second": -1}, "budget_min_per_second must be >= 0"),
        ({"budget_burst": 0.5}, "budget_burst must be >= 1"),
        ({"base": float("nan")}, "base must be >= 0"),
    ],
)
def test_policy_validation(kwargs: dict[str, Any], message: str) -> None:
    """Invalid policies raise ValueError naming the field."""
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**kwargs)


def test_policy_is_frozen() -> None:
    """A policy cannot be changed after creation."""
    policy = RetryPolicy()
    with pytest.raises(AttributeError):
        policy.attempts = 5  # type: ignore[misc]


# --- RetryBudget -----------------------------------------------------------------------------


def make_budget(clock: FakeClock, **kwargs: Any) -> RetryBudget:
    options: dict[str, Any] = {"ratio": 0.2, "min_per_second": 0.0, "burst": 10.0}
    options.update(kwargs)
    return RetryBudget("route", clock=clock, **options)


def test_budget_starts_full() -> None:
    """A new budget holds `burst` tokens."""
    assert make_budget(FakeClock(), burst=4.0).tokens == 4.0


def test_spend_takes_one_token() -> None:
    """Each successful spend removes one token."""
    budget = make_budget(FakeClock(), burst=3.0)
    assert budget.spend()
    assert budget.tokens == 2.0


def test_spend_fails_when_empty() -> None:
    """With less than one token, spend refuses and takes nothing."""
    budget = make_budget(FakeClock(), burst=2.0)
    assert [budget.spend() for _ in range(3)] == [True, True, False]
    assert budget.tokens == 0.0


def test_deposit_adds_ratio() -> None:
    """Each request deposits `ratio` tokens; five requests at 20% pay for one retry."""
    budget = make_budget(FakeClock(), ratio=0.2, burst=2.0)
    budget.spend()
    budget.spend()
    assert not budget.spend()
    for _ in range(5):
        budget.deposit()
    assert budget.tokens == pytest.approx(1.0)
    assert budget.spend()


def test_deposit_is_capped_at_burst() -> None:
    """Deposits never raise the bucket above `burst`."""
    budget = make_budget(FakeClock(), ratio=0.5, burst=3.0)
    for _ in range(100):
        budget.deposit()
    assert budget.tokens == 3.0


def test_floor_refills_by_time() -> None:
    """With min_per_second, an empty budget regains tokens as virtual time passes."""
    clock = FakeClock()
    budget = make_budget(clock, min_per_second=2.0, burst=1.0)
    assert budget.spend()
    assert not budget.spend()
    clock.advance_sync(0.25)
    assert not budget.spend()
    assert budget.tokens == pytest.approx(0.5)
    clock.advance_sync(0.25)
    assert budget.spend()


def test_floor_refill_is_capped_at_burst() -> None:
    """A long idle period refills up to `burst`, not beyond."""
    clock = FakeClock()
    budget = make_budget(clock, min_per_second=1.0, burst=5.0)
    for _ in range(5):
        budget.spend()
    clock.advance_sync(3600)
    assert budget.tokens == 5.0


def test_no_floor_means_no_time_refill() -> None:
    """With min_per_second 0 time alone refills nothing."""
    clock = FakeClock()
    budget = make_budget(clock, min_per_second=0.0, burst=1.0)
    budget.spend()
    clock.advance_sync(1000)
    assert not budget.spend()


def test_budget_stops_a_retry_storm() -> None:
    """Under sustained failure at 20%, retries are limited to burst plus a fifth of requests."""
    clock = FakeClock()
    budget = make_budget(clock, ratio=0.2, burst=10.0)
    granted = 0
    for _ in range(1000):
        budget.deposit()
        granted += budget.spend()
    assert 200 <= granted <= 210


def test_budget_repr_shows_tokens() -> None:
    """The repr shows name and tokens over burst."""
    assert repr(make_budget(FakeClock(), burst=10.0)) == "<RetryBudget route 10.0/10 tokens>"
