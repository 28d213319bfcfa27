"""The outbox of a Redis store: which push of a breaker's state wins, and what it sends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from failover import BreakerPolicy, FakeClock
from failover.state.outbox import Outbox
from failover.state.redis import RedisStore
from failover.state.shared import SharedBreaker
from failover.state.snapshot import SetMode


@pytest.fixture
def breaker(clock: FakeClock) -> Iterator[SharedBreaker]:
    """A shared breaker of a store that never connects (no event loop runs here)."""
    store = RedisStore("redis://127.0.0.1:1/0", clock=clock)
    yield store.breaker("p/m", BreakerPolicy())


def test_set_modes_are_ordered_by_strength() -> None:
    """EARLY is weaker than MERGE, which is weaker than FORCE."""
    assert SetMode.EARLY < SetMode.MERGE < SetMode.FORCE


def test_set_modes_keep_the_scripts_names() -> None:
    """Each mode reaches the Lua script under the name it expects."""
    assert [mode.wire for mode in SetMode] == ["early", "merge", "force"]


@pytest.mark.parametrize("first", list(SetMode))
@pytest.mark.parametrize("second", list(SetMode))
def test_the_stronger_push_wins(breaker: SharedBreaker, first: SetMode, second: SetMode) -> None:
    """Two pushes of one breaker before a flush leave the stronger of the two queued."""
    box = Outbox()
    box.add_set(breaker, first)
    box.add_set(breaker, second)
    assert box.sets == {breaker: max(first, second)}


def test_a_restored_weaker_push_does_not_replace_a_newer_stronger_one(
    breaker: SharedBreaker,
) -> None:
    """After a failed flush, a drain queued meanwhile outranks the merge that was not sent."""
    box = Outbox()
    box.add_set(breaker, SetMode.MERGE)
    unsent = box.take()
    box.add_set(breaker, SetMode.FORCE)
    box.restore(unsent)
    assert box.sets == {breaker: SetMode.FORCE}
