"""The adaptive concurrency limit: slow start, backoff, reset, and fair waiting."""

from __future__ import annotations

import asyncio

import pytest

from failover.resilience.concurrency import AdaptiveLimit, ConcurrencyPolicy


def busy(limit: AdaptiveLimit) -> None:
    """Fill every slot."""
    while limit.try_acquire():
        pass


def test_slow_start_doubles_the_limit_per_round_of_answers() -> None:
    """A busy deployment that answers every call doubles its limit per round."""
    limit = AdaptiveLimit("d", ConcurrencyPolicy(initial=8))
    busy(limit)
    for _ in range(8):
        limit.answered()
        limit.release()
        assert limit.try_acquire()
    assert int(limit.limit) == 16


def test_a_first_stream_answer_makes_room_for_its_slot_and_one_more() -> None:
    """In slow start a stream's first content raises the limit by two: the stream keeps its
    slot, and the room for new calls still doubles per round."""
    limit = AdaptiveLimit("d", ConcurrencyPolicy(initial=8))
    busy(limit)
    for _ in range(8):  # a round: each of the eight streams answers and keeps its slot
        limit.answered(holding=True)
        busy(limit)
    assert limit.in_flight == 8 + 16  # sixteen new calls: twice the round before


def test_a_first_stream_answer_grows_slowly_after_an_overload() -> None:
    """After an overload signal, a stream's first content grows the limit like any answer."""
    limit = AdaptiveLimit("d", ConcurrencyPolicy(initial=20, backoff=0.5))
    busy(limit)
    limit.overloaded()
    limit.answered(holding=True)
    assert limit.limit == pytest.approx(10.1)


def test_an_idle_deployment_proves_nothing() -> None:
    """Answers while far below the limit do not raise it."""
    limit = AdaptiveLimit("d", ConcurrencyPolicy(initial=8))
    for _ in range(20):
        assert limit.try_acquire()
        limit.answered()
        limit.release()
    assert int(limit.limit) == 8


def test_overload_cuts_the_limit_and_ends_slow_start() -> None:
    """A 429/503/timeout multiplies the limit by backoff; growth is slow afterwards."""
    limit = AdaptiveLimit("d", ConcurrencyPolicy(initial=20, backoff=0.5))
    busy(limit)
    limit.overloaded()
    assert int(limit.limit) == 10 and not limit.slow_start
    limit.answered()
    assert limit.limit == pytest.approx(10.1)


def test_reset_eases_a_recovered_deployment_back_in() -> None:
    """After its breaker opened, a deployment restarts at min_limit, in slow start."""
    limit = AdaptiveLimit("d", ConcurrencyPolicy(initial=64, min_limit=4))
    limit.overloaded()
    limit.reset()
    assert (int(limit.limit), limit.slow_start) == (4, True)


def test_limit_stays_within_bounds() -> None:
    """Backoff never goes below min_limit, growth never above max_limit."""
    limit = AdaptiveLimit("d", ConcurrencyPolicy(initial=4, min_limit=2, max_limit=5))
    for _ in range(10):
        limit.overloaded()
    assert int(limit.limit) == 2
    limit.reset()  # back in slow start
    busy(limit)
    for _ in range(10):
        limit.answered()
    assert int(limit.limit) == 5


async def test_waiters_get_freed_slots_in_order() -> None:
    """Calls waiting for a slot are served first come, first served."""
    limit = AdaptiveLimit("d", ConcurrencyPolicy(initial=1, min_limit=1))
    assert limit.try_acquire()
    order: list[int] = []

    async def wait(n: int) -> None:
        await limit.acquire()
        order.append(n)

    tasks = [asyncio.ensure_future(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert not limit.try_acquire()  # waiters go first
    for _ in range(3):
        limit.release()
        await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2]


async def test_a_cancelled_waiter_leaks_no_slot() -> None:
    """A waiter cancelled while waiting (or just after it got a slot) gives the slot back."""
    limit = AdaptiveLimit("d", ConcurrencyPolicy(initial=1, min_limit=1))
    assert limit.try_acquire()
    waiting = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0)
    limit.release()  # the slot goes to the waiter...
    waiting.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert limit.in_flight == 0
    assert limit.try_acquire()


def test_disabled_never_saturates() -> None:
    """With enabled false every call gets a slot."""
    limit = AdaptiveLimit("d", ConcurrencyPolicy(enabled=False, initial=1, min_limit=1))
    assert all(limit.try_acquire() for _ in range(100))
    assert not limit.saturated


async def test_waiting_counts_the_calls_still_waiting_for_a_slot() -> None:
    """`waiting` counts callers blocked on the limit, and drops as slots are handed on."""
    limit = AdaptiveLimit("d", ConcurrencyPolicy(initial=1, min_limit=1))
    assert limit.try_acquire()
    tasks = [asyncio.ensure_future(limit.acquire()) for _ in range(2)]
    await asyncio.sleep(0)
    assert limit.waiting == 2
    limit.release()  # handed to the first waiter
    assert limit.waiting == 1
    tasks[1].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert limit.waiting == 0


async def test_room_the_limit_grows_goes_to_waiting_calls_at_once() -> None:
    """When an answer raises the limit, a waiting call gets the new slot right away instead
    of waiting for a call to end (long streams hold their slots for their whole length)."""
    limit = AdaptiveLimit("d", ConcurrencyPolicy(initial=2, min_limit=1))
    assert limit.try_acquire() and limit.try_acquire()
    waiting = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0)
    limit.answered()  # slow start: 2 -> 3
    await asyncio.sleep(0)
    assert waiting.done() and (limit.in_flight, limit.waiting) == (3, 0)


async def test_a_cancelled_waiter_whose_slot_frees_at_once_is_cancelled() -> None:
    """acquire() raises CancelledError when cancelled just before a release hands slots on."""
    limit = AdaptiveLimit("d", ConcurrencyPolicy(initial=1, min_limit=1))
    assert limit.try_acquire()
    waiting = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0)  # queued behind the held slot
    waiting.cancel()
    limit.release()  # in the same step as the cancellation
    with pytest.raises(asyncio.CancelledError):
        await waiting
