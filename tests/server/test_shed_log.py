"""Shed requests' log lines are bounded per second, and say how many were left out."""

from __future__ import annotations

from failover import FakeClock
from failover.server.admission import ShedLines


def test_lines_past_the_budget_of_a_second_are_left_out(clock: FakeClock) -> None:
    """Within one second only `per_second` sheds are logged."""
    lines = ShedLines(3, clock=clock)
    taken = [lines.take() for _ in range(5)]
    assert taken == [0, 0, 0, None, None]


def test_the_next_line_says_how_many_were_left_out(clock: FakeClock) -> None:
    """In the next second the first line logged carries the count of the unlogged ones."""
    lines = ShedLines(2, clock=clock)
    for _ in range(6):
        lines.take()
    clock.advance_sync(1.0)
    assert lines.take() == 4
    assert lines.take() == 0
