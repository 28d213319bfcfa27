"""Admission control: gates, priority shares, loop lag, quotas, reconfiguration, episodes."""

from __future__ import annotations

import random

import pytest

from failover import FakeClock
from failover._local import LoopLag
from failover.resilience.admission import (
    OTHER,
    QUIET,
    Admission,
    AdmissionPolicy,
    Limits,
    Shed,
    Ticket,
)
from failover.resilience.saturation import STEP


def admission(clock: FakeClock, **policy: object) -> Admission:
    """An `Admission` on the fake clock with a fixed random source."""
    return Admission(
        AdmissionPolicy(**policy),  # type: ignore[arg-type]
        routes=["chat", "batch"],
        clock=clock,
        rng=random.Random(7),
    )


def fill(adm: Admission, count: int, *, route: str = "chat", stream: bool = False) -> list[Ticket]:
    """Admit `count` high-priority requests, failing the test if any is shed."""
    tickets = []
    for _ in range(count):
        ticket = adm.admit(route, stream=stream, priority="high")
        assert not isinstance(ticket, Shed)
        tickets.append(ticket)
    return tickets


def test_admits_until_the_limit_then_sheds(clock: FakeClock) -> None:
    """High priority fills the gate to its limit; the next request is shed."""
    adm = admission(clock, max_requests=10)
    fill(adm, 10)
    shed = adm.admit("chat", stream=False, priority="high")
    assert isinstance(shed, Shed)
    assert (shed.reason, shed.in_use, shed.limit) == ("max_requests", 10, 10)


def test_low_priority_is_shed_first(clock: FakeClock) -> None:
    """At 70% of the limit low is shed, normal and high still pass."""
    adm = admission(clock, max_requests=10)
    fill(adm, 7)
    assert isinstance(adm.admit("chat", stream=False, priority="low"), Shed)
    assert not isinstance(adm.admit("chat", stream=False, priority="normal"), Shed)


def test_normal_is_shed_from_its_share(clock: FakeClock) -> None:
    """At 90% normal is shed while high still passes."""
    adm = admission(clock, max_requests=10)
    fill(adm, 9)
    assert isinstance(adm.admit("chat", stream=False, priority="normal"), Shed)
    assert not isinstance(adm.admit("chat", stream=False, priority="high"), Shed)


def test_shares_are_configurable(clock: FakeClock) -> None:
    """Custom shares move the point where each priority is shed."""
    adm = admission(clock, max_requests=10, shed={"high": 1.0, "normal": 0.5, "low": 0.2})
    fill(adm, 2)
    assert isinstance(adm.admit("chat", stream=False, priority="low"), Shed)
    fill(adm, 3)
    assert isinstance(adm.admit("chat", stream=False, priority="normal"), Shed)


def test_a_tiny_limit_still_admits_every_priority(clock: FakeClock) -> None:
    """With a limit of 1, an idle gate admits even a low-priority request."""
    adm = admission(clock, max_requests=1)
    assert not isinstance(adm.admit("chat", stream=False, priority="low"), Shed)


def test_leaving_makes_room_again(clock: FakeClock) -> None:
    """A finished request gives its room back."""
    adm = admission(clock, max_requests=2)
    first, _ = fill(adm, 2)
    adm.leave(first)
    assert not isinstance(adm.admit("chat", stream=False, priority="high"), Shed)
    assert adm.requests.in_flight == 2


def test_streams_and_requests_have_separate_limits(clock: FakeClock) -> None:
    """Full of whole requests, the process still admits streams."""
    adm = admission(clock, max_requests=1, max_streams=1)
    fill(adm, 1)
    assert not isinstance(adm.admit("chat", stream=True, priority="high"), Shed)
    shed = adm.admit("chat", stream=True, priority="high")
    assert isinstance(shed, Shed) and shed.reason == "max_streams"


def test_a_route_limit_sheds_only_that_route(clock: FakeClock) -> None:
    """A route at its own limit is shed; other routes are not."""
    adm = admission(clock, routes={"batch": Limits(max_requests=2)})
    fill(adm, 2, route="batch")
    shed = adm.admit("batch", stream=False, priority="high")
    assert isinstance(shed, Shed) and shed.reason == "route_max_requests"
    assert not isinstance(adm.admit("chat", stream=False, priority="high"), Shed)


def test_route_requests_count_against_the_process_too(clock: FakeClock) -> None:
    """A request on a limited route holds room in the process's gate as well."""
    adm = admission(clock, max_requests=3, routes={"batch": Limits(max_requests=10)})
    fill(adm, 3, route="batch")
    shed = adm.admit("chat", stream=False, priority="high")
    assert isinstance(shed, Shed) and shed.reason == "max_requests"


def test_route_priority_shares_apply(clock: FakeClock) -> None:
    """Low priority is shed from 70% of a route's own limit."""
    adm = admission(clock, routes={"batch": Limits(max_streams=10)})
    fill(adm, 7, route="batch", stream=True)
    shed = adm.admit("batch", stream=True, priority="low")
    assert isinstance(shed, Shed) and shed.reason == "route_max_streams"


def test_a_key_quota_applies_at_its_full_limit_whatever_the_priority(clock: FakeClock) -> None:
    """A key's own quota is its budget: low priority gets all of it, and no more."""
    adm = admission(clock, keys={"batch": Limits(max_requests=3)})
    for _ in range(3):
        assert not isinstance(adm.admit("chat", stream=False, priority="low", key="batch"), Shed)
    shed = adm.admit("chat", stream=False, priority="low", key="batch")
    assert isinstance(shed, Shed) and shed.reason == "key_max_requests" and shed.client_quota


def test_a_key_quota_is_per_key(clock: FakeClock) -> None:
    """Another key, or no key, is not held back by one key's quota."""
    adm = admission(clock, keys={"batch": Limits(max_requests=1)})
    assert not isinstance(adm.admit("chat", stream=False, priority="normal", key="batch"), Shed)
    assert not isinstance(adm.admit("chat", stream=False, priority="normal", key="app"), Shed)
    assert not isinstance(adm.admit("chat", stream=False, priority="normal"), Shed)


def lag_sheds(adm: Admission, priority: str, lag: float, tries: int = 400) -> float:
    """The share of `tries` requests of `priority` shed at loop lag `lag`."""
    shed = 0
    for _ in range(tries):
        result = adm.admit("chat", stream=False, priority=priority, lag=lag)
        if isinstance(result, Shed):
            assert result.reason == "loop_lag" and not result.client_quota
            shed += 1
        else:
            adm.leave(result)
    return shed / tries


def test_at_max_lag_low_and_normal_are_shed_and_high_is_served(clock: FakeClock) -> None:
    """At max_lag every low and normal request is shed; high ones are still admitted."""
    adm = admission(clock, max_lag=0.2, lag_min_in_flight=0)
    assert lag_sheds(adm, "low", 0.2) == 1.0
    assert lag_sheds(adm, "normal", 0.2) == 1.0
    assert lag_sheds(adm, "high", 0.2) == 0.0


def test_below_its_share_a_priority_is_never_shed_for_lag(clock: FakeClock) -> None:
    """Under 90% of max_lag normal priority passes, under 100% high does."""
    adm = admission(clock, max_lag=0.2, lag_min_in_flight=0)
    assert lag_sheds(adm, "normal", 0.179) == 0.0
    assert lag_sheds(adm, "high", 0.199) == 0.0


def test_between_its_share_and_max_lag_a_priority_is_shed_in_proportion(clock: FakeClock) -> None:
    """Low priority a third of the way from 70% to 100% of max_lag: about a third is shed."""
    adm = admission(clock, max_lag=0.3, lag_min_in_flight=0)
    assert 0.25 <= lag_sheds(adm, "low", 0.24) <= 0.42


def test_high_is_shed_in_proportion_past_max_lag_and_all_at_twice(clock: FakeClock) -> None:
    """High priority: half shed at 1.5x max_lag, all of it at 2x."""
    adm = admission(clock, max_lag=0.2, lag_min_in_flight=0)
    assert 0.4 <= lag_sheds(adm, "high", 0.3) <= 0.6
    assert lag_sheds(adm, "high", 0.4) == 1.0


def late(adm: Admission, lag: float, priority: str = "high") -> Ticket | Shed:
    """Admit one request `lag` seconds late."""
    return adm.admit("chat", stream=False, priority=priority, lag=lag)


def saturated(
    adm: Admission, clock: FakeClock, lag: float, *, cpu: float = 1.0, steps: int = 1
) -> None:
    """Feed `steps` samples of the loop's lag and the process's CPU, a STEP apart."""
    for _ in range(steps):
        clock.advance_sync(STEP)
        adm.sample(lag, cpu)


def line(adm: Admission) -> int | None:
    """The line the process holds (None: none)."""
    return None if adm.line is None else adm.line.limit


def test_a_saturated_late_process_holds_a_line_below_what_it_has(clock: FakeClock) -> None:
    """CPU saturated and twice target_lag late: the line is half what is in flight."""
    adm = admission(clock, target_lag=0.03, lag_min_in_flight=10)
    fill(adm, 200)
    saturated(adm, clock, 0.06)
    assert line(adm) == 100
    shed = late(adm, 0.06)
    assert isinstance(shed, Shed) and shed.reason == "loop_lag" and shed.limit == 100
    assert "takes on no more than 100 whole requests" in shed.message


def test_streams_are_not_held_to_the_line_on_whole_requests(clock: FakeClock) -> None:
    """A line on whole requests sheds them; a new stream still passes, and counts for none:
    60 ms late is past target_lag, not past where streams are held (140 ms)."""
    adm = admission(clock, target_lag=0.03, lag_min_in_flight=10)
    fill(adm, 200)
    fill(adm, 500, stream=True)
    saturated(adm, clock, 0.06)
    assert line(adm) == 100 and adm.stream_line is None
    assert isinstance(late(adm, 0.06), Shed)
    assert not isinstance(adm.admit("chat", stream=True, priority="low", lag=0.06), Shed)


def stream_line(adm: Admission) -> int | None:
    """The line the process holds on streams (None: none)."""
    return None if adm.stream_line is None else adm.stream_line.limit


def test_streams_get_a_line_where_low_ones_begin_to_be_shed(clock: FakeClock) -> None:
    """Saturated and late past the low share of max_lag (140 ms of 200): a line on streams,
    drawn so that what is in flight is normal priority's share of it (400 of 445): no more
    streams of normal priority, a little room for high ones; a whole request is not held."""
    adm = admission(clock, target_lag=0.03, max_lag=0.2, lag_min_in_flight=10)
    fill(adm, 400, stream=True)
    saturated(adm, clock, 0.13)
    assert stream_line(adm) is None
    saturated(adm, clock, 0.15)
    assert stream_line(adm) == 445 and line(adm) is None
    shed = adm.admit("chat", stream=True, priority="normal", lag=0.0)
    assert isinstance(shed, Shed) and shed.reason == "loop_lag"
    assert "takes on no more than 445 streams" in shed.message
    assert not isinstance(adm.admit("chat", stream=True, priority="high", lag=0.0), Shed)
    assert not isinstance(late(adm, 0.0), Shed)


def test_the_stream_line_is_lowered_only_once_it_took_effect(clock: FakeClock) -> None:
    """Late past its target, the line on streams is lowered only when what is in flight is
    no more than normal priority's share of it: shedding new streams does not lighten those
    already running."""
    adm = admission(clock, target_lag=0.03, max_lag=0.2, lag_min_in_flight=10)
    tickets = fill(adm, 400, stream=True)
    saturated(adm, clock, 0.28)
    assert stream_line(adm) == 445
    saturated(adm, clock, 0.28)  # 400 in flight, 90% of it: lowered by 0.14 / 0.28
    assert stream_line(adm) == 222
    saturated(adm, clock, 0.28, steps=5)  # 400 still running: held, not lowered again
    assert stream_line(adm) == 222
    for ticket in tickets[:201]:
        adm.leave(ticket)
    saturated(adm, clock, 0.28)  # 199 in flight, down to 90% of it, still late: lowered
    assert stream_line(adm) == 111


def test_the_stream_line_is_raised_on_time(clock: FakeClock) -> None:
    """Back within its target with the line full, the line on streams is raised by 5% a STEP."""
    adm = admission(clock, target_lag=0.03, max_lag=0.2, lag_min_in_flight=10)
    fill(adm, 400, stream=True)
    saturated(adm, clock, 0.2)
    saturated(adm, clock, 0.1)
    assert stream_line(adm) == 467


def test_without_max_lag_streams_are_held_to_target_lag(clock: FakeClock) -> None:
    """With no max_lag, the line on streams is drawn from target_lag, as the other is."""
    adm = admission(clock, target_lag=0.03, max_lag=None, lag_min_in_flight=10)
    fill(adm, 400, stream=True)
    saturated(adm, clock, 0.04)
    assert stream_line(adm) == 445
    assert isinstance(adm.admit("chat", stream=True, priority="normal"), Shed)


def test_a_late_process_with_cpu_to_spare_holds_no_line(clock: FakeClock) -> None:
    """Late while using half a core: starved by its neighbours, not saturated, no line."""
    adm = admission(clock, target_lag=0.03, lag_min_in_flight=10)
    fill(adm, 200)
    saturated(adm, clock, 0.5, cpu=0.5)
    assert line(adm) is None


def test_a_saturated_process_on_time_holds_no_line(clock: FakeClock) -> None:
    """A whole core used, but within target_lag: the process is at its best, no line."""
    adm = admission(clock, target_lag=0.03, lag_min_in_flight=10)
    fill(adm, 200)
    saturated(adm, clock, 0.029)
    assert line(adm) is None


def test_the_line_is_lowered_in_proportion_to_the_lateness(clock: FakeClock) -> None:
    """Still late with the line full: lowered by target_lag / lag, at most to 90%."""
    adm = admission(clock, target_lag=0.03, lag_min_in_flight=10)
    fill(adm, 200)
    saturated(adm, clock, 0.06)  # 100
    saturated(adm, clock, 0.04)  # 75
    saturated(adm, clock, 0.031)  # 67: 90%, not 97%
    assert line(adm) == 67


def test_the_line_never_goes_below_lag_min_in_flight(clock: FakeClock) -> None:
    """However late, the process still takes on lag_min_in_flight."""
    adm = admission(clock, target_lag=0.03, lag_min_in_flight=30)
    fill(adm, 200)
    saturated(adm, clock, 1.0, steps=20)
    assert line(adm) == 30


def test_on_time_the_line_is_raised(clock: FakeClock) -> None:
    """Back within target_lag with the line full: raised by 5% a STEP, 10% with CPU to spare."""
    adm = admission(clock, target_lag=0.03, lag_min_in_flight=10)
    fill(adm, 200)
    saturated(adm, clock, 0.06)  # 100
    saturated(adm, clock, 0.02)
    assert line(adm) == 105
    saturated(adm, clock, 0.02, cpu=0.5)
    assert line(adm) == 115


def test_a_line_above_what_comes_is_left_alone(clock: FakeClock) -> None:
    """Below 70% of its line, what the process sees says nothing of the line: it stays."""
    adm = admission(clock, target_lag=0.03, lag_min_in_flight=10)
    tickets = fill(adm, 200)
    saturated(adm, clock, 0.06)  # 100
    for ticket in tickets[:131]:
        adm.leave(ticket)  # 69 in flight
    saturated(adm, clock, 0.5)
    saturated(adm, clock, 0.001)
    assert line(adm) == 100


def test_the_line_is_lifted_after_a_second_with_room(clock: FakeClock) -> None:
    """Below its line, on time and with CPU to spare for a second: the line goes."""
    adm = admission(clock, target_lag=0.03, lag_min_in_flight=10)
    tickets = fill(adm, 200)
    saturated(adm, clock, 0.06)
    for ticket in tickets[:150]:
        adm.leave(ticket)
    saturated(adm, clock, 0.001, cpu=0.2, steps=9)
    assert line(adm) == 100
    saturated(adm, clock, 0.001, cpu=0.2)
    assert line(adm) is None
    assert not isinstance(late(adm, 0.001), Shed)


def test_no_line_with_few_in_flight(clock: FakeClock) -> None:
    """Saturated and late with fewer than lag_min_in_flight in flight: no line."""
    adm = admission(clock, target_lag=0.03, lag_min_in_flight=100)
    fill(adm, 99)
    saturated(adm, clock, 1.0)
    assert line(adm) is None


def test_no_target_lag_holds_no_line(clock: FakeClock) -> None:
    """With target_lag None the process never holds a line."""
    adm = admission(clock, target_lag=None, lag_min_in_flight=10)
    fill(adm, 200)
    saturated(adm, clock, 1.0)
    assert line(adm) is None


def test_a_late_process_with_cpu_to_spare_sheds_nothing_for_lateness(clock: FakeClock) -> None:
    """Sampled with CPU to spare, a request however late is admitted: the process is starved."""
    adm = admission(clock, max_lag=0.1, lag_min_in_flight=0, target_lag=None)
    saturated(adm, clock, 0.5, cpu=0.4)
    assert lag_sheds(adm, "low", 5.0) == 0.0
    saturated(adm, clock, 0.5, cpu=1.0)
    assert lag_sheds(adm, "low", 5.0, tries=1) == 1.0


def test_lag_is_ignored_while_few_requests_are_in_flight(clock: FakeClock) -> None:
    """A late loop with fewer than lag_min_in_flight requests in flight sheds nothing."""
    adm = admission(clock, max_lag=0.1, lag_min_in_flight=4)
    fill(adm, 3)
    assert lag_sheds(adm, "low", 5.0, tries=1) == 0.0
    fill(adm, 1)
    assert lag_sheds(adm, "low", 5.0, tries=1) == 1.0


def test_no_max_lag_ignores_the_loop(clock: FakeClock) -> None:
    """With max_lag None, any lag is admitted."""
    adm = admission(clock, max_lag=None)
    assert not isinstance(adm.admit("chat", stream=False, priority="low", lag=30.0), Shed)


def test_a_shed_takes_no_room(clock: FakeClock) -> None:
    """A shed request leaves every count as it was."""
    adm = admission(clock, max_requests=1, routes={"chat": Limits(max_requests=5)})
    fill(adm, 1)
    adm.admit("chat", stream=False, priority="high")
    assert adm.requests.in_flight == 1
    assert adm.routes["chat"][0] is not None and adm.routes["chat"][0].in_flight == 1


def test_sheds_are_counted_by_route_priority_and_reason(clock: FakeClock) -> None:
    """Each shed adds one to its (route, priority, reason) count."""
    adm = admission(clock, max_requests=1, lag_min_in_flight=0)
    fill(adm, 1)
    adm.admit("chat", stream=False, priority="low")
    adm.admit("chat", stream=False, priority="low")
    adm.admit("chat", stream=False, priority="low", lag=5.0)
    assert adm.shed_counts == {
        ("chat", "low", "max_requests"): 2,
        ("chat", "low", "loop_lag"): 1,
    }


def test_unknown_routes_are_counted_as_other(clock: FakeClock) -> None:
    """A model name nobody configured cannot create a label of its own."""
    adm = admission(clock, max_requests=1)
    fill(adm, 1)
    shed = adm.admit("made-up-model", stream=False, priority="high")
    assert isinstance(shed, Shed) and shed.route == OTHER
    assert adm.shed_counts == {(OTHER, "high", "max_requests"): 1}


def test_disabled_admits_everything(clock: FakeClock) -> None:
    """With enabled false nothing is counted or shed."""
    adm = admission(clock, enabled=False, max_requests=1)
    for _ in range(5):
        assert adm.admit("chat", stream=False, priority="low", lag=9.0) == ()
    assert adm.requests.in_flight == 0


def test_reconfiguring_keeps_the_counts_in_flight(clock: FakeClock) -> None:
    """A reload changes limits; requests admitted before it leave the counters they entered."""
    adm = admission(clock, max_requests=10, routes={"batch": Limits(max_requests=4)})
    tickets = fill(adm, 3, route="batch")
    adm.configure(AdmissionPolicy(max_requests=3, routes={"batch": Limits(max_requests=8)}))
    assert isinstance(adm.admit("chat", stream=False, priority="high"), Shed)
    for ticket in tickets:
        adm.leave(ticket)
    route_gate = adm.routes["batch"][0]
    assert adm.requests.in_flight == 0 and route_gate is not None and route_gate.in_flight == 0


def churn(adm: Admission, count: int) -> None:
    """`count` high-priority requests admitted and finished, one after another."""
    for _ in range(count):
        adm.leave(fill(adm, 1)[0])


def test_retry_after_is_jittered_up_to_as_much_again(clock: FakeClock) -> None:
    """Shed clients are told to wait between retry_after and 2x, not all the same."""
    adm = admission(clock, max_requests=2, retry_after=2.0)
    churn(adm, 1000)  # a process that takes in those shed here within a second
    fill(adm, 2)
    waits = set()
    for _ in range(50):
        shed = adm.admit("chat", stream=False, priority="high")
        assert isinstance(shed, Shed)
        assert 2.0 <= shed.retry_after <= 4.0
        waits.add(round(shed.retry_after, 3))
    assert len(waits) > 10


def shed_for(adm: Admission, sheds: int) -> Shed:
    """Shed `sheds` high-priority requests (the process is full); the last one."""
    for _ in range(sheds):
        result = adm.admit("chat", stream=False, priority="high")
        assert isinstance(result, Shed)
    return result


def test_the_wait_doubles_each_second_while_many_are_shed(clock: FakeClock) -> None:
    """More than a tenth of a shed per admitted request: the wait doubles every second."""
    adm = admission(clock, max_requests=10, retry_after=1.0)
    fill(adm, 10)
    shed_for(adm, 30)
    for expected in (2.0, 4.0, 8.0):
        clock.advance_sync(1.0)
        shed_for(adm, 30)
        assert adm.wait == expected
    assert adm.pressure == 30 / 1


def test_the_wait_is_capped(clock: FakeClock) -> None:
    """However long the overload, nobody is told to wait more than max_retry_after."""
    adm = admission(clock, max_requests=1, retry_after=1.0, max_retry_after=5.0)
    fill(adm, 1)
    for _ in range(6):
        clock.advance_sync(1.0)
        shed = shed_for(adm, 5)
    assert shed.retry_after == 5.0


def test_the_wait_halves_when_few_are_shed(clock: FakeClock) -> None:
    """A second with few sheds per admitted request halves the wait."""
    adm = admission(clock, max_requests=2, retry_after=1.0)
    first, _ = fill(adm, 2)
    shed_for(adm, 20)
    for _ in range(2):  # two seconds of many sheds: 1s -> 2s -> 4s
        clock.advance_sync(1.0)
        shed_for(adm, 1)
    assert adm.wait == 4.0
    for _ in range(50):  # a second in which 50 requests come and go, 2 are shed
        adm.leave(first)
        first = fill(adm, 1)[0]
    shed_for(adm, 1)
    clock.advance_sync(1.0)
    shed_for(adm, 1)
    assert adm.wait == 2.0 and adm.pressure == pytest.approx(2 / 50)


def test_a_second_without_sheds_halves_the_wait(clock: FakeClock) -> None:
    """A quiet second halves the wait, no more: the clients told the last one still wait."""
    adm = admission(clock, max_requests=2, retry_after=1.0)
    fill(adm, 2)
    for _ in range(2):  # two busy seconds: 1s -> 2s -> 4s
        shed_for(adm, 20)
        clock.advance_sync(1.0)
    adm.sample(0.0, 1.0)
    assert adm.wait == 4.0
    clock.advance_sync(1.0)
    adm.sample(0.0, 1.0)  # closes a second without a shed
    assert adm.wait == 2.0


def test_the_wait_is_halved_while_the_process_has_room(clock: FakeClock) -> None:
    """Many sheds, but a second mostly on time with CPU to spare: they could be served."""
    adm = admission(clock, max_requests=2, retry_after=1.0, target_lag=0.03)
    fill(adm, 2)
    for _ in range(3):  # 1s -> 2s -> 4s
        shed_for(adm, 20)
        clock.advance_sync(1.0)
    adm.sample(0.0, 1.0)  # closes the third busy second: 8s
    assert adm.wait == 8.0
    for _ in range(9):
        saturated(adm, clock, 0.001, cpu=0.2)  # on time with CPU to spare: room
    shed_for(adm, 20)
    clock.advance_sync(0.2)
    shed_for(adm, 1)
    assert adm.wait == 4.0


def test_the_wait_is_never_longer_than_the_episode(clock: FakeClock) -> None:
    """Told at most as long as the overload has lasted: a burst's clients come back soon."""
    adm = admission(clock, max_requests=1, retry_after=1.0)
    fill(adm, 1)
    for _ in range(6):  # 1s -> 64s (capped at 30s) in six busy seconds
        shed_for(adm, 20)
        clock.advance_sync(1.0)
    shed = shed_for(adm, 1)
    assert adm.wait == 30.0
    assert 6.0 <= shed.retry_after <= 12.0


def busy_second(
    adm: Admission, clock: FakeClock, *, admitted: int, shed: int, ticket: Ticket | None = None
) -> Ticket:
    """A process full with one request (`ticket`, or one taken now) admits `admitted` one
    for one and sheds `shed` within a second; the clock then moves on by a second. The
    ticket it is left full with."""
    ticket = fill(adm, 1)[0] if ticket is None else ticket
    shed_for(adm, 1)
    for _ in range(admitted):
        adm.leave(ticket)
        ticket = fill(adm, 1)[0]
    if shed > 1:
        shed_for(adm, shed - 1)
    clock.advance_sync(1.0)
    return ticket


def test_a_shed_client_waits_at_least_the_backlogs_drain_time(clock: FakeClock) -> None:
    """Clients already told to come back are taken in first: 100 waiting at 20 admitted a
    second tell the next one 5 s, whatever the episode's age."""
    adm = admission(clock, max_requests=1, retry_after=1.0)
    busy_second(adm, clock, admitted=20, shed=100)
    told = shed_for(adm, 1).retry_after  # the second closes: 20 admitted a second
    assert adm.admit_rate == pytest.approx(20.0)
    pending = adm.describe()["told_to_retry"]
    assert isinstance(pending, int) and 80 <= pending <= 101  # those told ~1 s are back
    assert pending / 20 <= told <= 2 * pending / 20


def test_a_second_that_shed_nearly_everything_does_not_cut_the_rate(clock: FakeClock) -> None:
    """A second of 200 admitted, then one of 5 (the rest shed for lateness): the rate the
    drain time is counted at is held to 3/4 of the second before's, then 3/4 of that, not 5
    a second, which would tell the next clients max_retry_after."""
    adm = admission(clock, max_requests=1, retry_after=1.0)
    ticket = busy_second(adm, clock, admitted=200, shed=100)
    ticket = busy_second(adm, clock, admitted=5, shed=400, ticket=ticket)
    assert adm.admit_rate == pytest.approx(200.0)  # (closed by the first shed of the next)
    busy_second(adm, clock, admitted=5, shed=400, ticket=ticket)
    assert adm.admit_rate == pytest.approx(150.0)
    told = shed_for(adm, 1).retry_after
    assert adm.admit_rate == pytest.approx(112.5)
    pending = adm.backlog.pending(clock.now())
    assert told <= 2 * pending / 112.5 < adm.policy.max_retry_after


def test_a_burst_after_a_quiet_spell_is_told_the_wait_alone(clock: FakeClock) -> None:
    """A burst is let in at once, not at a rate: until a second of the episode has told the
    rate, its clients are told retry_after (and jitter), however many wait."""
    adm = admission(clock, max_requests=50, retry_after=1.0)
    clock.advance_sync(60.0)
    fill(adm, 50)
    assert all(1.0 <= shed_for(adm, 1).retry_after <= 2.0 for _ in range(500))


def test_clients_back_leave_the_backlog(clock: FakeClock) -> None:
    """Once the clients told to come back are due, the next shed is told the usual wait."""
    adm = admission(clock, max_requests=1, retry_after=1.0)
    busy_second(adm, clock, admitted=10, shed=200)
    assert shed_for(adm, 1).retry_after > 10.0
    clock.advance_sync(adm.policy.max_retry_after + 1.0)
    assert shed_for(adm, 1).retry_after <= 2.0 * 2.0  # (the wait doubled once, at most)
    assert adm.backlog.pending(clock.now()) == 1


def test_a_new_episode_starts_from_retry_after(clock: FakeClock) -> None:
    """After a quiet spell the wait starts again from retry_after."""
    adm = admission(clock, max_requests=1, retry_after=1.0)
    fill(adm, 1)
    for _ in range(3):
        shed_for(adm, 10)
        clock.advance_sync(1.0)
    assert adm.wait > 1.0
    clock.advance_sync(QUIET)
    assert shed_for(adm, 1).retry_after <= 2.0


def test_an_episode_starts_after_a_quiet_spell(clock: FakeClock) -> None:
    """The first shed, and the first after QUIET seconds without one, start an episode."""
    adm = admission(clock, max_requests=1)
    fill(adm, 1)

    def shed() -> Shed:
        result = adm.admit("chat", stream=False, priority="high")
        assert isinstance(result, Shed)
        return result

    assert shed().starts_episode
    clock.advance_sync(QUIET - 1)
    assert not shed().starts_episode
    clock.advance_sync(QUIET)
    assert shed().starts_episode


def test_shedding_ends_after_a_quiet_spell(clock: FakeClock) -> None:
    """`shedding` is true within QUIET seconds of the last shed, and says for how long."""
    adm = admission(clock, max_requests=1)
    fill(adm, 1)
    assert not adm.shedding
    adm.admit("chat", stream=False, priority="high")
    clock.advance_sync(3)
    adm.admit("chat", stream=False, priority="high")
    assert adm.shedding and adm.describe()["shedding_for_s"] == 3
    clock.advance_sync(QUIET)
    assert not adm.shedding and adm.describe()["shedding_for_s"] is None


def test_describe_shows_limits_counts_and_sheds(clock: FakeClock) -> None:
    """The status document holds each gate and the sheds by reason and priority."""
    adm = admission(clock, max_requests=2, keys={"batch": Limits(max_streams=4)})
    fill(adm, 2)
    adm.admit("chat", stream=False, priority="low")
    doc = adm.describe()
    assert doc["requests"] == {"in_flight": 2, "limit": 2}
    assert doc["keys"] == {"batch": {"requests": None, "streams": {"in_flight": 0, "limit": 4}}}
    assert doc["shed"] == {"total": 1, "by_reason": {"max_requests": 1}, "by_priority": {"low": 1}}


def test_the_shed_message_names_the_limit_and_the_share(clock: FakeClock) -> None:
    """A client's developer reads which limit was met, how full it was, and when to retry."""
    adm = admission(clock, routes={"batch": Limits(max_requests=10)})
    fill(adm, 7, route="batch")
    shed = adm.admit("batch", stream=False, priority="low")
    assert isinstance(shed, Shed)
    assert "route 'batch' has 7 requests in flight of its 10" in shed.message
    assert "low-priority requests are shed from 70%" in shed.message
    assert "retry after" in shed.message


@pytest.mark.parametrize(
    "policy",
    [
        {"max_requests": 0},
        {"max_lag": 0.0},
        {"retry_after": 0.0},
        {"shed": {"high": 1.0, "normal": 0.9}},
        {"shed": {"high": 0.5, "normal": 0.9, "low": 0.7}},
        {"shed": {"high": 1.0, "normal": 0.9, "low": 0.0}},
    ],
)
def test_invalid_policies_are_rejected(policy: dict[str, object]) -> None:
    """Limits below 1, a lag or wait of 0, missing or unordered shares are errors."""
    with pytest.raises(ValueError):
        AdmissionPolicy(**policy)  # type: ignore[arg-type]


def test_limits_below_one_are_rejected() -> None:
    """A route or key limit of 0 is an error (leave it out for no limit)."""
    with pytest.raises(ValueError):
        Limits(max_streams=0)


def test_the_smoothed_lag_follows_a_lasting_lag() -> None:
    """A lag that lasts several samples moves the smoothed lag most of the way to it."""
    lag = LoopLag()
    for at in range(6):
        lag.note(float(at), 0.3)
    assert 0.27 <= lag.smoothed <= 0.3


def test_one_late_wake_up_moves_the_smoothed_lag_a_third() -> None:
    """One spike between prompt wake-ups weighs a third, and fades."""
    lag = LoopLag()
    lag.note(0.0, 0.3)
    assert lag.smoothed == pytest.approx(0.1)
    for at in range(1, 6):
        lag.note(float(at), 0.0)
    assert lag.smoothed < 0.02


def test_a_process_with_room_is_not_pressed(clock: FakeClock) -> None:
    """No line and on time: nothing can be shed for lateness, however many are in flight."""
    adm = admission(clock, target_lag=0.03, lag_min_in_flight=10)
    fill(adm, 200)
    assert not adm.pressed(0.01)


def test_a_held_line_or_a_late_loop_presses(clock: FakeClock) -> None:
    """A held line presses at any lag; without one, a loop late past low's share of max_lag."""
    adm = admission(clock, target_lag=0.03, lag_min_in_flight=10)
    fill(adm, 200)
    assert adm.pressed(0.2 * 0.7 + 0.001) and not adm.pressed(0.2 * 0.7)
    saturated(adm, clock, 0.06)
    assert adm.pressed(0.0)


def test_shed_late_decides_what_admit_would_for_lateness(clock: FakeClock) -> None:
    """`shed_late` sheds over a full line as `admit` does, and takes no room when it passes."""
    adm = admission(clock, target_lag=0.03, lag_min_in_flight=10)
    fill(adm, 200)
    saturated(adm, clock, 0.06)
    shed = adm.shed_late("chat", stream=False, priority="low", lag=0.0)
    assert isinstance(shed, Shed) and (shed.reason, shed.limit) == ("loop_lag", 100)
    assert adm.shed_late("chat", stream=True, priority="low", lag=0.0) is None
    assert adm.requests.in_flight == 200


def test_admit_without_lateness_skips_the_line(clock: FakeClock) -> None:
    """`late=False` (lateness already asked) admits over a full line, to the other gates."""
    adm = admission(clock, target_lag=0.03, lag_min_in_flight=10)
    fill(adm, 200)
    saturated(adm, clock, 0.06)
    assert not isinstance(adm.admit("chat", stream=False, priority="low", late=False), Shed)


def test_the_process_is_crowded_from_lag_min_in_flight(clock: FakeClock) -> None:
    """Requests and streams together count towards lag_min_in_flight."""
    adm = admission(clock, lag_min_in_flight=10)
    fill(adm, 5)
    fill(adm, 4, stream=True)
    assert not adm.crowded
    fill(adm, 1, stream=True)
    assert adm.crowded
