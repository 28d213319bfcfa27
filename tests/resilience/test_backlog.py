"""The backlog of shed clients told to come back: counted by when they are due, and drained."""

from __future__ import annotations

import pytest

from failover.resilience.backlog import BUCKET, Backlog


def test_a_client_is_pending_until_it_is_due() -> None:
    backlog = Backlog(30.0)
    backlog.add(100.0, 2.0)
    backlog.add(100.0, 5.0)
    assert backlog.pending(100.0) == 2
    assert backlog.pending(101.9) == 2
    assert backlog.pending(102.0 + BUCKET) == 1
    assert backlog.pending(105.0 + BUCKET) == 0


def test_a_wait_past_the_horizon_is_due_at_the_horizon() -> None:
    backlog = Backlog(5.0)
    backlog.add(0.0, 60.0)
    assert backlog.pending(4.9) == 1
    assert backlog.pending(5.0 + 2 * BUCKET) == 0


def test_a_client_told_no_wait_is_due_at_the_next_bucket() -> None:
    """Never counted into the bucket being expired, where it would wait a whole ring."""
    backlog = Backlog(5.0)
    backlog.add(1.0, 0.0)
    assert backlog.pending(1.0) == 1
    assert backlog.pending(1.0 + 2 * BUCKET) == 0


def test_a_spell_longer_than_the_ring_finds_everyone_due() -> None:
    backlog = Backlog(1.0)
    for wait in (0.3, 0.6, 1.0):
        backlog.add(10.0, wait)
    assert backlog.pending(10.0) == 3
    assert backlog.pending(500.0) == 0
    backlog.add(500.0, 0.5)  # and the ring is usable again
    assert backlog.pending(500.2) == 1


def test_the_drain_time_is_those_waiting_and_one_more_over_the_rate() -> None:
    backlog = Backlog(30.0)
    for _ in range(99):
        backlog.add(0.0, 10.0)
    assert backlog.drain(1.0, 50.0) == pytest.approx(100 / 50)
    assert backlog.drain(1.0, 0.0) == 0.0  # a rate not known says nothing
    assert backlog.drain(11.0, 50.0) == pytest.approx(1 / 50)


def test_the_horizon_must_be_positive() -> None:
    with pytest.raises(ValueError, match="horizon"):
        Backlog(0.0)
