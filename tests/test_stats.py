"""Tests for failover.stats: percentile, and DeploymentStats (EWMA, percentiles, window, success
rate)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from failover.stats import DeploymentStats, percentile


def test_new_stats_are_empty() -> None:
    """Before any call there is no EWMA, percentile or success rate."""
    stats = DeploymentStats("d")
    assert stats.latency_ewma is None
    assert stats.ttft_ewma is None
    assert stats.percentile(50) is None
    assert stats.p95 is None
    assert stats.success_rate is None
    assert stats.samples == 0


def test_first_sample_sets_the_ewma() -> None:
    """The first latency becomes the EWMA as is."""
    stats = DeploymentStats("d")
    stats.observe(True, 0.4)
    assert stats.latency_ewma == 0.4


def test_ewma_blends_with_alpha() -> None:
    """Each later sample moves the EWMA by alpha of the difference."""
    stats = DeploymentStats("d", alpha=0.25)
    stats.observe(True, 1.0)
    stats.observe(True, 2.0)
    assert stats.latency_ewma == pytest.approx(1.25)
    stats.observe(True, 0.0)
    assert stats.latency_ewma == pytest.approx(0.9375)


def test_ttft_ewma_tracked_separately() -> None:
    """Time to first token has its own EWMA, only when given."""
    stats = DeploymentStats("d", alpha=0.5)
    stats.observe(True, 1.0, ttft=0.2)
    stats.observe(True, 1.0)
    stats.observe(True, 1.0, ttft=0.4)
    assert stats.ttft_ewma == pytest.approx(0.3)


def test_failures_do_not_move_latency() -> None:
    """Failed calls count for the success rate but not for latency."""
    stats = DeploymentStats("d")
    stats.observe(True, 0.1)
    stats.observe(False, 30.0)
    assert stats.latency_ewma == 0.1
    assert stats.samples == 1


def test_success_rate() -> None:
    """success_rate is the share of recent calls that succeeded."""
    stats = DeploymentStats("d")
    for ok in (True, True, False, True):
        stats.observe(ok, 0.1)
    assert stats.success_rate == 0.75


def test_success_rate_window_is_bounded() -> None:
    """Only the last `window` outcomes count."""
    stats = DeploymentStats("d", window=4)
    for ok in (False, False, False, False, True, True, True, True):
        stats.observe(ok, 0.1)
    assert stats.success_rate == 1.0


def test_latency_window_is_bounded() -> None:
    """Only the last `window` latencies are kept for percentiles."""
    stats = DeploymentStats("d", window=3)
    for latency in (100.0, 1.0, 2.0, 3.0):
        stats.observe(True, latency)
    assert stats.samples == 3
    assert stats.percentile(100) == 3.0


@pytest.mark.parametrize(
    ("q", "expected"),
    [(0, 1.0), (10, 1.0), (11, 2.0), (50, 5.0), (90, 9.0), (95, 10.0), (100, 10.0)],
)
def test_percentile_nearest_rank(q: float, expected: float) -> None:
    """percentile uses the nearest-rank method: the ceil(q/100 * n)-th smallest value."""
    stats = DeploymentStats("d")
    for latency in (5.0, 3.0, 9.0, 1.0, 7.0, 2.0, 10.0, 4.0, 8.0, 6.0):
        stats.observe(True, latency)
    assert stats.percentile(q) == expected


def test_percentile_exact_ranks_are_not_rounded_up() -> None:
    """P7 of 1..100 is 7: an exact rank is not pushed up by float error (0.07 * 100)."""
    stats = DeploymentStats("d")
    for latency in range(1, 101):
        stats.observe(True, float(latency))
    assert stats.percentile(7) == 7.0
    assert stats.percentile(55) == 55.0


@given(
    st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=200),
    st.integers(min_value=0, max_value=100),
)
def test_percentile_matches_integer_nearest_rank(values: list[int], q: int) -> None:
    """For integer q, percentile equals nearest rank computed in exact integer arithmetic."""
    stats = DeploymentStats("d", window=200)
    for value in values:
        stats.observe(True, float(value))
    rank = max(1, -(-q * len(values) // 100))
    assert stats.percentile(q) == sorted(values)[rank - 1]


def test_p95_is_refreshed_after_new_samples() -> None:
    """p95 reflects samples recorded after it was last read."""
    stats = DeploymentStats("d")
    stats.observe(True, 1.0)
    assert stats.p95 == 1.0
    for _ in range(20):
        stats.observe(True, 5.0)
    assert stats.p95 == 5.0


def test_in_flight_counts_and_never_goes_negative() -> None:
    """started/finished track calls in flight, floored at zero."""
    stats = DeploymentStats("d")
    stats.started()
    stats.started()
    stats.finished()
    assert stats.in_flight == 1
    stats.finished()
    stats.finished()
    assert stats.in_flight == 0


def test_speed_key_unmeasured_is_zero() -> None:
    """An unmeasured deployment sorts first for least_latency."""
    assert DeploymentStats("d").speed_key() == 0.0


def test_speed_key_averages_latency_and_ttft() -> None:
    """With TTFT known, the speed key is the mean of both EWMAs."""
    stats = DeploymentStats("d")
    stats.observe(True, 1.0, ttft=0.2)
    assert stats.speed_key() == pytest.approx(0.6)


def test_repr_shows_ewma_and_in_flight() -> None:
    """The repr shows the EWMA in milliseconds and the calls in flight."""
    stats = DeploymentStats("openai/gpt-4o")
    stats.observe(True, 0.25)
    stats.started()
    assert repr(stats) == "<DeploymentStats openai/gpt-4o ewma=250.0ms in_flight=1>"


def test_percentile_of_nothing_is_none() -> None:
    """An empty sample has no percentile."""
    assert percentile([], 50) is None


def test_percentile_is_one_of_the_values() -> None:
    """p50 of 1..10 is 5 and p99 is 10: nearest rank picks a value seen, never a blend."""
    values = [float(v) for v in range(1, 11)]
    assert (percentile(values, 50), percentile(values, 99)) == (5.0, 10.0)


def test_percentile_above_100_is_the_largest_value() -> None:
    """A q past 100 is read as 100 rather than reaching past the end."""
    assert percentile([1.0, 2.0, 3.0], 150) == 3.0


def test_deployment_stats_use_the_shared_percentile() -> None:
    """DeploymentStats.percentile is `percentile` of its recent latencies."""
    stats = DeploymentStats("d")
    latencies = [0.3, 0.1, 0.5, 0.2]
    for latency in latencies:
        stats.observe(True, latency)
    assert all(stats.percentile(q) == percentile(sorted(latencies), q) for q in (0, 50, 75, 100))
