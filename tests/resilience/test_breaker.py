"""The circuit breaker state machine: thresholds, open periods, probes, manual states."""

from __future__ import annotations

import random

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from failover import BreakerPolicy, BreakerState, CircuitBreaker, FakeClock
from failover.resilience.breaker import BreakerEvent, Permit, Result


def breaker(clock: FakeClock, **policy: object) -> CircuitBreaker:
    return CircuitBreaker(
        "p/m",
        BreakerPolicy(**policy),
        clock=clock,  # type: ignore[arg-type]
        rng=random.Random(1),
    )


def call(b: CircuitBreaker, result: Result, duration: float = 0.0) -> bool:
    permit = b.try_acquire()
    if permit is None:
        return False
    b.record(permit, result, duration=duration)
    return True


def test_opens_after_consecutive_failures(clock: FakeClock) -> None:
    """Three failures in a row open the breaker, as the seed's CircuitBreaker did."""
    b = breaker(clock, consecutive_failures=3, min_calls=100)
    for _ in range(2):
        call(b, Result.FAILURE)
    assert b.state is BreakerState.CLOSED
    call(b, Result.FAILURE)
    assert b.state is BreakerState.OPEN
    assert b.try_acquire() is None


def test_success_resets_the_streak(clock: FakeClock) -> None:
    """A success between failures resets the consecutive count."""
    b = breaker(clock, consecutive_failures=3, min_calls=100)
    for result in (Result.FAILURE, Result.FAILURE, Result.SUCCESS, Result.FAILURE, Result.FAILURE):
        call(b, result)
    assert b.state is BreakerState.CLOSED


def test_opens_on_failure_rate_once_min_calls_reached(clock: FakeClock) -> None:
    """Failure rate >= threshold opens, but only with at least min_calls in the window."""
    b = breaker(clock, consecutive_failures=0, min_calls=6, failure_rate=0.5, window=10)
    for result in (Result.FAILURE, Result.SUCCESS) * 2 + (Result.FAILURE,):
        call(b, result)
    assert b.state is BreakerState.CLOSED  # 3/5 failed, but only 5 calls
    call(b, Result.SUCCESS)
    assert b.state is BreakerState.OPEN  # 3/6 = 50%


def test_count_window_forgets_old_calls(clock: FakeClock) -> None:
    """Only the last `window` calls count towards the failure rate."""
    b = breaker(clock, consecutive_failures=0, min_calls=4, failure_rate=0.5, window=4)
    for result in (
        Result.FAILURE,
        Result.SUCCESS,
        Result.SUCCESS,
        Result.SUCCESS,
        Result.SUCCESS,
        Result.FAILURE,
    ):
        call(b, result)
    assert b.counts() == (1, 4)
    assert b.state is BreakerState.CLOSED


def test_time_window_forgets_old_calls(clock: FakeClock) -> None:
    """With window_seconds, calls older than the window stop counting."""
    b = breaker(clock, consecutive_failures=0, min_calls=3, failure_rate=0.5, window_seconds=10)
    call(b, Result.FAILURE)
    call(b, Result.FAILURE)
    clock.advance_sync(11)
    call(b, Result.SUCCESS)
    call(b, Result.SUCCESS)
    call(b, Result.FAILURE)
    assert b.counts() == (1, 3)
    assert b.state is BreakerState.CLOSED


def test_slow_calls_open_the_breaker(clock: FakeClock) -> None:
    """A slow-call rate above the threshold opens the breaker even when calls succeed."""
    b = breaker(
        clock, consecutive_failures=0, min_calls=4, slow_call_rate=0.5, slow_call_duration=2.0
    )
    for duration in (3.0, 0.1, 3.0, 0.1):
        call(b, Result.SUCCESS, duration)
    assert b.state is BreakerState.OPEN


def test_ignored_results_do_not_count(clock: FakeClock) -> None:
    """IGNORE outcomes (bad requests, lost hedges) never move the breaker."""
    b = breaker(clock, consecutive_failures=1, min_calls=1)
    for _ in range(10):
        call(b, Result.IGNORE)
    assert b.state is BreakerState.CLOSED
    assert b.counts() == (0, 0)


def test_half_open_after_open_for(clock: FakeClock) -> None:
    """After open_for the next admission is a probe; its success closes the breaker."""
    b = breaker(clock, consecutive_failures=1, open_for=10, jitter=0)
    call(b, Result.FAILURE)
    clock.advance_sync(9.9)
    assert b.try_acquire() is None
    clock.advance_sync(0.1)
    permit = b.try_acquire()
    assert permit is not None and permit.probe
    assert b.state is BreakerState.HALF_OPEN
    b.record(permit, Result.SUCCESS)
    assert b.state is BreakerState.CLOSED


def test_half_open_admits_exactly_half_open_calls(clock: FakeClock) -> None:
    """HALF_OPEN hands out half_open_calls permits and no more until they return."""
    b = breaker(clock, consecutive_failures=1, open_for=1, jitter=0, half_open_calls=2)
    call(b, Result.FAILURE)
    clock.advance_sync(1)
    permits = [b.try_acquire() for _ in range(5)]
    granted = [p for p in permits if p is not None]
    assert len(granted) == 2
    b.record(granted[0], Result.SUCCESS)
    assert b.state is BreakerState.HALF_OPEN
    assert b.try_acquire() is None  # the successful probe does not free a new permit
    b.record(granted[1], Result.SUCCESS)
    assert b.state is BreakerState.CLOSED


def test_failed_probe_reopens_for_twice_as_long(clock: FakeClock) -> None:
    """Each consecutive re-open doubles the open period, up to max_open_for."""
    b = breaker(clock, consecutive_failures=1, open_for=10, max_open_for=25, jitter=0)
    call(b, Result.FAILURE)
    durations = [b.last_open_duration]
    for _ in range(3):
        clock.advance_sync(b.open_until - clock.now())
        call(b, Result.FAILURE)
        durations.append(b.last_open_duration)
    assert durations == [10, 20, 25, 25]


def test_jitter_stays_within_bounds(clock: FakeClock) -> None:
    """Open periods vary by at most +-jitter around the base."""
    seen = []
    for seed in range(50):
        b = CircuitBreaker(
            "x",
            BreakerPolicy(consecutive_failures=1, open_for=30, jitter=0.2),
            clock=clock,
            rng=random.Random(seed),
        )
        call(b, Result.FAILURE)
        seen.append(b.last_open_duration)
    assert min(seen) >= 24 and max(seen) <= 36
    assert max(seen) - min(seen) > 5


def test_stale_permit_cannot_close_an_open_breaker(clock: FakeClock) -> None:
    """A slow call admitted while CLOSED that succeeds after the breaker opened is ignored."""
    b = breaker(clock, consecutive_failures=2, open_for=10)
    slow = b.try_acquire()
    assert slow is not None
    call(b, Result.FAILURE)
    call(b, Result.FAILURE)
    assert b.state is BreakerState.OPEN
    b.record(slow, Result.SUCCESS)
    assert b.state is BreakerState.OPEN


def test_forced_open_and_disabled(clock: FakeClock) -> None:
    """FORCED_OPEN admits nothing, DISABLED admits everything and records nothing."""
    b = breaker(clock, consecutive_failures=1)
    b.force_open()
    assert b.try_acquire() is None and not b.would_admit()
    b.disable()
    for _ in range(5):
        assert call(b, Result.FAILURE)
    assert b.state is BreakerState.DISABLED
    b.reset()
    assert b.state is BreakerState.CLOSED


def test_health_probe_moves_open_to_half_open(clock: FakeClock) -> None:
    """A passing health probe lets an OPEN breaker try a probe call before open_for ends."""
    b = breaker(clock, consecutive_failures=1, open_for=100)
    call(b, Result.FAILURE)
    b.probe_succeeded()
    assert b.state is BreakerState.HALF_OPEN
    assert b.try_acquire() is not None


def test_every_transition_is_an_event(clock: FakeClock) -> None:
    """Listeners see CLOSED->OPEN->HALF_OPEN->CLOSED with reasons."""
    b = breaker(clock, consecutive_failures=1, open_for=5, jitter=0)
    events: list[BreakerEvent] = []
    b.on_change(events.append)
    call(b, Result.FAILURE)
    clock.advance_sync(5)
    call(b, Result.SUCCESS)
    assert [(e.old, e.new) for e in events] == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]
    assert events[0].open_for == 5
    assert "consecutive" in events[0].reason


def test_repr_shows_state(clock: FakeClock) -> None:
    """The repr says the state, the window and when it reopens."""
    b = CircuitBreaker(
        "openai/gpt-4o", BreakerPolicy(consecutive_failures=2, open_for=12, jitter=0), clock=clock
    )
    call(b, Result.SUCCESS)
    call(b, Result.FAILURE)
    call(b, Result.FAILURE)
    assert repr(b) == "<Breaker openai/gpt-4o OPEN 2/3 failed, reopens in 12.0s>"
    b2 = CircuitBreaker("x", clock=clock)
    call(b2, Result.FAILURE)
    assert repr(b2) == "<Breaker x CLOSED 1/1 failed>"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("window", 0),
        ("min_calls", 0),
        ("failure_rate", 0),
        ("failure_rate", 1.5),
        ("open_for", 0),
        ("max_open_for", 1),
        ("half_open_calls", 0),
        ("jitter", 1.0),
    ],
)
def test_policy_rejects_nonsense(field: str, value: float) -> None:
    """Invalid thresholds are rejected when the policy is made."""
    with pytest.raises(ValueError):
        BreakerPolicy(**{field: value})  # type: ignore[arg-type]


class BreakerMachine(RuleBasedStateMachine):
    """Random outcomes, concurrency and time; the breaker's invariants must always hold."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.policy = BreakerPolicy(
            window=10,
            min_calls=4,
            failure_rate=0.5,
            consecutive_failures=3,
            open_for=10,
            max_open_for=40,
            jitter=0.2,
            half_open_calls=2,
        )
        self.b = CircuitBreaker("m", self.policy, clock=self.clock, rng=random.Random(7))
        self.outstanding: list[Permit] = []
        self.events: list[BreakerEvent] = []
        self.b.on_change(self.events.append)

    @rule()
    def acquire(self) -> None:
        permit = self.b.try_acquire()
        if self.b.state is BreakerState.OPEN:
            assert permit is None, "OPEN admitted a call before open_until"
        if permit is not None:
            self.outstanding.append(permit)

    @precondition(lambda self: self.outstanding)
    @rule(index=st.integers(0, 50), result=st.sampled_from(list(Result)))
    def finish(self, index: int, result: Result) -> None:
        permit = self.outstanding.pop(index % len(self.outstanding))
        before = self.b.state
        n_events = len(self.events)
        self.b.record(permit, result)
        new_events = self.events[n_events:]
        for event in new_events:
            if event.new is BreakerState.CLOSED:
                assert before is BreakerState.HALF_OPEN and permit.probe
                assert result is Result.SUCCESS, "CLOSED only after successful probes"
            if event.new is BreakerState.OPEN and before is BreakerState.CLOSED:
                failed, total = self.b.counts()
                by_rate = total >= self.policy.min_calls and failed / total >= 0.5
                by_streak = result is Result.FAILURE and self.b.window.consecutive >= 3
                assert by_rate or by_streak, "OPEN only after a threshold was crossed"

    @rule(seconds=st.floats(0, 60))
    def wait(self, seconds: float) -> None:
        self.clock.advance_sync(seconds)

    @invariant()
    def probes_bounded(self) -> None:
        assert 0 <= self.b.probes_in_flight <= self.policy.half_open_calls
        if self.b.state is BreakerState.HALF_OPEN:
            live = [p for p in self.outstanding if p.probe and p.epoch == self.b.epoch]
            assert len(live) == self.b.probes_in_flight

    @invariant()
    def open_duration_in_bounds(self) -> None:
        for event in self.events:
            if event.new is BreakerState.OPEN:
                assert event.open_for is not None
                low = self.policy.open_for * (1 - self.policy.jitter)
                high = self.policy.max_open_for * (1 + self.policy.jitter)
                assert low <= event.open_for <= high


TestBreakerMachine = BreakerMachine.TestCase
TestBreakerMachine.settings = settings(max_examples=200, stateful_step_count=60, deadline=None)


def test_old_success_does_not_reset_a_new_failure_streak(clock: FakeClock) -> None:
    """A success from a call that started before the latest failure leaves the streak intact."""
    b = breaker(clock, consecutive_failures=3, min_calls=100)
    slow = b.try_acquire()
    assert slow is not None
    clock.advance_sync(1.0)
    call(b, Result.FAILURE)
    call(b, Result.FAILURE)
    b.record(slow, Result.SUCCESS, duration=1.0)  # started before the outage, lands after
    call(b, Result.FAILURE)
    assert b.state is BreakerState.OPEN


# -- the API a shared store drives the breaker through ---------------------------------------


def test_adopt_with_event_is_an_announced_transition(clock: FakeClock) -> None:
    """Adopting OPEN from elsewhere moves the breaker, with the given reason and end."""
    b = breaker(clock)
    events: list[BreakerEvent] = []
    b.on_change(events.append)
    until = clock.now() + 12
    b.adopt(BreakerState.OPEN, open_until=until, reopens=2, reason="shared", open_for=12.0)
    assert b.state is BreakerState.OPEN and b.open_until == until and b.reopens == 2
    assert b.last_open_duration == 12.0
    assert [(e.new, e.reason, e.open_for) for e in events] == [(BreakerState.OPEN, "shared", 12.0)]


def test_adopted_open_admits_nothing_until_its_end(clock: FakeClock) -> None:
    """An adopted open_until holds calls back exactly as a local one would."""
    b = breaker(clock)
    b.adopt(BreakerState.OPEN, open_until=clock.now() + 5, reopens=0, reason="shared")
    clock.advance_sync(4.9)
    assert b.try_acquire() is None
    clock.advance_sync(0.1)
    permit = b.try_acquire()
    assert permit is not None and permit.probe


def test_adopt_without_event_only_renews_the_epoch(clock: FakeClock) -> None:
    """The same state under a new shared generation voids older permits and emits nothing."""
    b = breaker(clock, consecutive_failures=1)
    events: list[BreakerEvent] = []
    b.on_change(events.append)
    old = b.try_acquire()
    assert old is not None
    epoch = b.epoch
    b.adopt(BreakerState.CLOSED, open_until=0.0, reopens=0, reason="shared", event=False)
    assert b.epoch == epoch + 1 and events == []
    b.record(old, Result.FAILURE)
    assert b.state is BreakerState.CLOSED and b.counts() == (0, 0)


def test_adopting_another_state_is_always_a_transition(clock: FakeClock) -> None:
    """A different state is announced even when adopted without `event`."""
    b = breaker(clock)
    events: list[BreakerEvent] = []
    b.on_change(events.append)
    b.adopt(BreakerState.FORCED_OPEN, open_until=0.0, reopens=0, reason="drained", event=False)
    assert b.state is BreakerState.FORCED_OPEN
    assert [(e.old, e.new) for e in events] == [(BreakerState.CLOSED, BreakerState.FORCED_OPEN)]


def test_adopted_reopens_set_the_next_open_time(clock: FakeClock) -> None:
    """A probe failing after adopting `reopens` opens for open_for * 2**(reopens + 1)."""
    b = breaker(clock, open_for=10, max_open_for=1000, jitter=0)
    b.adopt(BreakerState.HALF_OPEN, open_until=0.0, reopens=2, reason="shared")
    call(b, Result.FAILURE)
    assert b.state is BreakerState.OPEN and b.reopens == 3 and b.last_open_duration == 80


def test_reopens_grow_with_failed_probes_and_clear_on_close(clock: FakeClock) -> None:
    """`reopens` counts consecutive re-openings and is zero again once probes succeed."""
    b = breaker(clock, consecutive_failures=1, open_for=1, jitter=0)
    call(b, Result.FAILURE)
    assert b.reopens == 0
    clock.advance_sync(1)
    call(b, Result.FAILURE)
    assert b.reopens == 1
    clock.advance_sync(2)
    call(b, Result.SUCCESS)
    assert b.state is BreakerState.CLOSED and b.reopens == 0


def test_epoch_moves_with_every_transition(clock: FakeClock) -> None:
    """Each transition takes a new epoch, and CLOSED permits carry it."""
    b = breaker(clock, consecutive_failures=1)
    first = b.epoch
    call(b, Result.FAILURE)
    b.reset()
    assert b.epoch == first + 2
    permit = b.try_acquire()
    assert permit is not None and permit.epoch == b.epoch


def test_note_probes_refuses_once_the_cluster_has_them_all(clock: FakeClock) -> None:
    """Probes noted as issued elsewhere count against half_open_calls here."""
    b = breaker(clock, half_open_calls=2)
    b.adopt(BreakerState.HALF_OPEN, open_until=0.0, reopens=0, reason="shared")
    b.note_probes(1)
    assert b.try_acquire() is not None
    assert b.try_acquire() is None and not b.would_admit()


def test_note_probes_never_lowers_the_count(clock: FakeClock) -> None:
    """A stale, lower count from elsewhere does not free probe slots taken here."""
    b = breaker(clock, half_open_calls=2)
    b.adopt(BreakerState.HALF_OPEN, open_until=0.0, reopens=0, reason="shared")
    b.note_probes(2)
    b.note_probes(0)
    assert b.try_acquire() is None


def test_hand_back_probe_frees_a_slot(clock: FakeClock) -> None:
    """A probe handed back lets another one go, and the count never drops below zero."""
    b = breaker(clock, half_open_calls=1)
    b.adopt(BreakerState.HALF_OPEN, open_until=0.0, reopens=0, reason="shared")
    assert b.try_acquire() is not None and not b.would_admit()
    b.hand_back_probe()
    b.hand_back_probe()
    assert b.probes_in_flight == 0
    assert b.try_acquire() is not None and b.try_acquire() is None


def test_forget_window_drops_calls_and_streak_but_keeps_the_state(clock: FakeClock) -> None:
    """After forget_window the breaker counts afresh: old failures no longer add up."""
    b = breaker(clock, consecutive_failures=3, min_calls=100)
    call(b, Result.FAILURE)
    call(b, Result.FAILURE)
    b.forget_window()
    assert b.state is BreakerState.CLOSED and b.counts() == (0, 0)
    assert b.window.consecutive == 0
    call(b, Result.FAILURE)
    assert b.state is BreakerState.CLOSED
