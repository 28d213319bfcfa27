"""The sliding window a breaker judges by: count- and time-based, counters and streak."""

from __future__ import annotations

from failover.resilience.window import SlidingWindow


def add(window: SlidingWindow, at: float, *, failed: bool = False, slow: bool = False) -> None:
    window.record(at, failed, slow, at)


def test_count_window_keeps_the_last_calls() -> None:
    """A count-based window holds the last `size` calls and their failures only."""
    window = SlidingWindow(3)
    for failed in (True, True, False, False, True):
        add(window, 0.0, failed=failed)
    assert window.counts(0.0) == (1, 3)


def test_time_window_drops_calls_as_time_passes() -> None:
    """A time-based window forgets a call `seconds` after it ended."""
    window = SlidingWindow(100, seconds=10)
    add(window, 0.0, failed=True)
    add(window, 5.0)
    assert window.counts(9.9) == (1, 2)
    assert window.counts(10.0) == (0, 1)


def test_slow_calls_are_counted_apart_from_failures() -> None:
    """Slow calls have their own count, whether or not they failed."""
    window = SlidingWindow(10)
    add(window, 0.0, slow=True)
    add(window, 0.0, failed=True, slow=True)
    add(window, 0.0)
    assert (window.slow, window.failures, window.total, len(window)) == (2, 1, 3, 3)


def test_counts_leave_with_evicted_calls() -> None:
    """Failed and slow counts drop when their calls fall out of the window."""
    window = SlidingWindow(1)
    add(window, 0.0, failed=True, slow=True)
    add(window, 0.0)
    assert (window.failures, window.slow) == (0, 0)


def test_failures_in_a_row_make_a_streak() -> None:
    """Each failure extends the streak; a success started after the last failure ends it."""
    window = SlidingWindow(10)
    add(window, 1.0, failed=True)
    add(window, 2.0, failed=True)
    assert window.consecutive == 2
    add(window, 3.0)
    assert window.consecutive == 0


def test_a_success_started_before_the_streak_does_not_end_it() -> None:
    """A slow success that began before the latest failure proves nothing about now."""
    window = SlidingWindow(10)
    add(window, 5.0, failed=True)
    window.record(6.0, False, False, 4.0)
    assert window.consecutive == 1


def test_clear_forgets_calls_and_streak() -> None:
    """After clear the window is as new: the forgotten streak no longer decides what ends one."""
    window = SlidingWindow(10)
    add(window, 5.0, failed=True)
    window.clear()
    assert window.counts(5.0) == (0, 0) and window.consecutive == 0
    window.record(6.0, True, False, 2.0)
    window.record(6.0, False, False, 3.0)  # after the streak's failure
    assert window.consecutive == 0 and len(window) == 2


def test_repr_shows_span_and_counts() -> None:
    """The repr names the kind of window and how many of its calls failed."""
    window = SlidingWindow(20)
    add(window, 0.0, failed=True)
    assert repr(window) == "<SlidingWindow last 20: 1/1 failed>"
    assert repr(SlidingWindow(5, seconds=30.0)) == "<SlidingWindow 30.0s: 0/0 failed>"
