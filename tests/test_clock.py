"""Tests for failover.clock: the fake clock, autojump, and deadline_scope on both clocks."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from failover.clock import Clock, FakeClock, SystemClock, deadline_scope, running_loop


async def settle() -> None:
    """Let ready tasks run a few steps."""
    for _ in range(10):
        await asyncio.sleep(0)


# --- FakeClock -------------------------------------------------------------------------------


def test_fake_clock_starts_where_told() -> None:
    """now() and wall() start at the given values and move together."""
    clock = FakeClock(50.0, wall_start=1_000.0)
    assert (clock.now(), clock.wall()) == (50.0, 1_000.0)
    clock.advance_sync(2.5)
    assert (clock.now(), clock.wall()) == (52.5, 1_002.5)


def test_clocks_satisfy_the_protocol() -> None:
    """Both clocks are Clocks."""
    assert isinstance(FakeClock(), Clock)
    assert isinstance(SystemClock(), Clock)


async def test_sleep_does_not_wake_before_its_time() -> None:
    """A sleep is still pending when the clock has not reached its wake time."""
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(5))
    await settle()
    await clock.advance(4.999)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_sleep_wakes_exactly_at_advance() -> None:
    """A sleep of 5 s finishes when the clock is advanced by exactly 5 s."""
    clock = FakeClock()
    woke_at: list[float] = []

    async def sleeper() -> None:
        await clock.sleep(5)
        woke_at.append(clock.now())

    task = asyncio.create_task(sleeper())
    await settle()
    await clock.advance(5)
    assert task.done()
    assert woke_at == [1005.0]


async def test_zero_sleep_returns_without_advance() -> None:
    """sleep(0) and negative sleeps return without the clock moving."""
    clock = FakeClock()
    await clock.sleep(0)
    await clock.sleep(-1)
    assert clock.now() == 1000.0


async def test_timers_fire_in_time_order() -> None:
    """Timers fire in order of their time, ties in order of creation."""
    clock = FakeClock()
    fired: list[str] = []
    clock.call_at(1003, lambda: fired.append("c"))
    clock.call_at(1001, lambda: fired.append("a"))
    clock.call_at(1002, lambda: fired.append("b1"))
    clock.call_at(1002, lambda: fired.append("b2"))
    await clock.advance(10)
    assert fired == ["a", "b1", "b2", "c"]


def test_timer_sees_its_own_time() -> None:
    """While a timer's callback runs, now() is that timer's time."""
    clock = FakeClock()
    seen: list[float] = []
    clock.call_at(1002.0, lambda: seen.append(clock.now()))
    clock.advance_sync(10)
    assert seen == [1002.0]
    assert clock.now() == 1010.0


def test_cancelled_timer_does_not_fire() -> None:
    """A cancelled timer never runs and does not count as the next deadline."""
    clock = FakeClock()
    fired: list[int] = []
    handle = clock.call_at(1001, lambda: fired.append(1))
    handle.cancel()
    assert clock.next_deadline() is None
    clock.advance_sync(5)
    assert fired == []


async def test_sleeps_wake_in_order_during_one_advance() -> None:
    """Several sleepers woken by one advance run in the order of their wake times."""
    clock = FakeClock()
    order: list[int] = []

    async def sleeper(n: int) -> None:
        await clock.sleep(n)
        order.append(n)

    tasks = [asyncio.create_task(sleeper(n)) for n in (3, 1, 2)]
    await settle()
    await clock.advance(3)
    assert order == [1, 2, 3]
    assert all(t.done() for t in tasks)


async def test_advance_runs_sleeps_started_by_woken_tasks() -> None:
    """A sleep begun by a task woken during advance also fires if it falls inside the window."""
    clock = FakeClock()
    times: list[float] = []

    async def twice() -> None:
        await clock.sleep(1)
        times.append(clock.now())
        await clock.sleep(1)
        times.append(clock.now())

    task = asyncio.create_task(twice())
    await settle()
    await clock.advance(5)
    assert task.done()
    assert times == [1001.0, 1002.0]
    assert clock.now() == 1005.0


async def test_cancelled_sleep_removes_its_timer() -> None:
    """Cancelling a sleeping task cancels its timer."""
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(5))
    await settle()
    assert clock.next_deadline() == 1005.0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.next_deadline() is None


def test_fake_clock_repr_shows_time() -> None:
    """The repr shows the current virtual time."""
    assert "t=1000.000" in repr(FakeClock())


# --- autojump --------------------------------------------------------------------------------


async def test_autojump_runs_nested_sleeps_in_virtual_time() -> None:
    """Nested and concurrent sleeps complete without real waiting, at the right virtual times."""
    clock = FakeClock()
    log: list[tuple[str, float]] = []

    async def inner(name: str, first: float, second: float) -> None:
        await clock.sleep(first)
        log.append((name, clock.now()))
        await clock.sleep(second)
        log.append((name, clock.now()))

    async def outer() -> None:
        await asyncio.gather(inner("a", 10, 20), inner("b", 15, 100))
        await clock.sleep(3600)

    started = time.perf_counter()
    async with clock.autojump():
        await outer()
    elapsed = time.perf_counter() - started

    assert log == [("a", 1010.0), ("b", 1015.0), ("a", 1030.0), ("b", 1115.0)]
    assert clock.now() == 1115.0 + 3600
    assert elapsed < 1.0


async def test_autojump_stops_when_left() -> None:
    """After the autojump block, time no longer moves by itself."""
    clock = FakeClock()
    async with clock.autojump():
        await clock.sleep(1)
    task = asyncio.create_task(clock.sleep(1))
    for _ in range(5):
        await settle()
    assert not task.done()
    assert clock.now() == 1001.0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_autojump_drives_deadline_scope() -> None:
    """A clock sleep racing a clock deadline resolves in virtual time under autojump."""
    clock = FakeClock()
    async with clock.autojump():
        with pytest.raises(TimeoutError):
            async with deadline_scope(clock, clock.now() + 30):
                await clock.sleep(3600)
    assert clock.now() == 1030.0


# --- deadline_scope on FakeClock -------------------------------------------------------------


async def test_fake_deadline_raises_timeout_at_the_deadline() -> None:
    """The body is cancelled and TimeoutError raised exactly when the clock reaches the deadline."""
    clock = FakeClock()

    async def body() -> None:
        async with deadline_scope(clock, clock.now() + 5):
            await clock.sleep(100)

    task = asyncio.create_task(body())
    await settle()
    await clock.advance(4)
    assert not task.done()
    await clock.advance(1)
    assert task.done()
    with pytest.raises(TimeoutError):
        task.result()


async def test_fake_deadline_does_not_fire_when_body_finishes_first() -> None:
    """A body that finishes before the deadline returns normally and leaves no timer behind."""
    clock = FakeClock()
    async with clock.autojump(), deadline_scope(clock, clock.now() + 10):
        await clock.sleep(3)
    assert clock.now() == 1003.0
    assert clock.next_deadline() is None


async def test_fake_deadline_leaves_task_uncancelled() -> None:
    """After the TimeoutError the task is not left half-cancelled: it can await again."""
    clock = FakeClock()
    async with clock.autojump():
        with pytest.raises(TimeoutError):
            async with deadline_scope(clock, clock.now() + 1):
                await clock.sleep(5)
        current = asyncio.current_task()
        assert current is not None
        assert current.cancelling() == 0
        await clock.sleep(1)
    assert clock.now() == 1002.0


async def test_fake_past_deadline_raises_at_once() -> None:
    """A deadline already passed raises TimeoutError before the body runs."""
    clock = FakeClock()
    ran: list[bool] = []
    with pytest.raises(TimeoutError):
        async with deadline_scope(clock, clock.now()):
            ran.append(True)
    assert ran == []


async def test_none_deadline_never_fires() -> None:
    """A None deadline runs the body with no timer."""
    clock = FakeClock()
    async with clock.autojump(), deadline_scope(clock, None):
        assert clock.next_deadline() is None
        await clock.sleep(10_000)
    assert clock.now() == 11_000.0


async def test_fake_outer_cancel_propagates_as_cancelled() -> None:
    """Cancelling the task from outside raises CancelledError, not TimeoutError."""
    clock = FakeClock()

    async def body() -> None:
        async with deadline_scope(clock, clock.now() + 100):
            await clock.sleep(1000)

    task = asyncio.create_task(body())
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.next_deadline() is None


async def test_fake_nested_deadlines_inner_fires_first() -> None:
    """With nested scopes, the earlier inner deadline raises inside the outer one."""
    clock = FakeClock()
    caught: list[float] = []
    async with clock.autojump(), deadline_scope(clock, clock.now() + 10):
        try:
            async with deadline_scope(clock, clock.now() + 2):
                await clock.sleep(100)
        except TimeoutError:
            caught.append(clock.now())
        await clock.sleep(1)
    assert caught == [1002.0]
    assert clock.now() == 1003.0


async def test_fake_nested_deadlines_outer_fires_first() -> None:
    """When the outer deadline comes first, the TimeoutError escapes the outer scope."""
    clock = FakeClock()
    inner_timeouts: list[float] = []
    async with clock.autojump():
        with pytest.raises(TimeoutError):
            async with deadline_scope(clock, clock.now() + 3):
                try:
                    async with deadline_scope(clock, clock.now() + 50):
                        await clock.sleep(100)
                except TimeoutError:
                    inner_timeouts.append(clock.now())
    assert inner_timeouts == []
    assert clock.now() == 1003.0


# --- deadline_scope on SystemClock -----------------------------------------------------------


async def test_system_deadline_raises_timeout() -> None:
    """On the system clock a short deadline interrupts a long body with TimeoutError."""
    clock = SystemClock()
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        async with deadline_scope(clock, clock.now() + 0.05):
            await asyncio.sleep(10)
    elapsed = time.monotonic() - started
    assert 0.04 <= elapsed < 2.0


async def test_system_deadline_does_not_fire_when_body_finishes_first() -> None:
    """A body that completes before the system deadline returns its result normally."""
    clock = SystemClock()
    result = None
    async with deadline_scope(clock, clock.now() + 5):
        await asyncio.sleep(0)
        result = "done"
    assert result == "done"


async def test_system_past_deadline_raises() -> None:
    """A system-clock deadline already passed raises TimeoutError at the body's first await."""
    clock = SystemClock()
    with pytest.raises(TimeoutError):
        async with deadline_scope(clock, clock.now() - 1):
            await asyncio.sleep(1)


async def test_system_outer_cancel_propagates_as_cancelled() -> None:
    """Cancelling from outside under a system-clock deadline raises CancelledError."""
    clock = SystemClock()
    entered = asyncio.Event()

    async def body() -> None:
        async with deadline_scope(clock, clock.now() + 30):
            entered.set()
            await asyncio.sleep(30)

    task = asyncio.create_task(body())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_system_clock_call_at_fires() -> None:
    """SystemClock.call_at runs its callback at a monotonic time soon after it."""
    clock = SystemClock()
    fired = asyncio.Event()
    clock.call_at(clock.now() + 0.01, fired.set)
    await asyncio.wait_for(fired.wait(), timeout=2)
    assert fired.is_set()


# --- running_loop ----------------------------------------------------------------------------


async def _the_running_loop() -> tuple[asyncio.AbstractEventLoop, asyncio.AbstractEventLoop]:
    return running_loop(), asyncio.get_running_loop()


def test_running_loop_is_the_loop_running_the_caller() -> None:
    """running_loop() is the running loop, and the next loop's once that one runs."""
    for _ in range(2):
        remembered, running = asyncio.run(_the_running_loop())
        assert remembered is running


def test_running_loop_is_not_a_loop_now_running_in_another_thread() -> None:
    """A loop that ran in this thread and now runs in another is not taken for this thread's."""
    first = asyncio.new_event_loop()
    first.run_until_complete(_the_running_loop())  # remembered by this thread
    thread = threading.Thread(target=first.run_forever)
    thread.start()
    try:
        remembered, running = asyncio.run(_the_running_loop())
    finally:
        first.call_soon_threadsafe(first.stop)
        thread.join(5)
        first.close()
    assert remembered is running
    assert remembered is not first


def test_running_loop_outside_a_loop_is_an_error() -> None:
    """Outside a running loop, running_loop() raises as asyncio.get_running_loop() does."""
    with pytest.raises(RuntimeError):
        running_loop()
