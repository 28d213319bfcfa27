"""The outbox of a Redis store: which push of a breaker's state wins, and what it sends
(again, after a failed flush)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from failover import BreakerPolicy, FakeClock
from failover.quota import QuotaPolicy
from failover.state.counts import SharedQuota
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


def test_calls_counted_against_a_quota_survive_a_failed_flush(clock: FakeClock) -> None:
    """A quota's calls taken for a flush that failed are sent again with the next one."""
    store = RedisStore("redis://127.0.0.1:1/0", clock=clock)
    quota = store.quota("p/m", QuotaPolicy(rpm=10))
    assert isinstance(quota, SharedQuota)
    quota.sent(clock.now(), 7)
    quota.sent(clock.now(), 5)
    box = Outbox()
    box.quotas.add(quota)
    unsent = box.take()
    assert quota.take_delta() == (2, 12)  # what the failed flush carried
    box.restore(unsent)
    assert box.quotas == {quota}
    assert quota.take_delta() == (2, 12)


def test_calls_held_back_over_a_minute_are_not_sent(clock: FakeClock) -> None:
    """Calls that waited more than a minute for Redis no longer count in the shared minute."""
    store = RedisStore("redis://127.0.0.1:1/0", clock=clock)
    quota = store.quota("p/m", QuotaPolicy(rpm=10))
    assert isinstance(quota, SharedQuota)
    quota.sent(clock.now(), 7)
    clock.advance_sync(30)
    quota.sent(clock.now(), 5)
    clock.advance_sync(31)
    assert quota.take_delta() == (1, 5)
