"""The gateway's sampler: the loop's lag and the process's CPU fed to admission once a STEP."""

from __future__ import annotations

from failover import FakeClock
from failover.resilience.admission import Admission, AdmissionPolicy, Shed
from failover.resilience.saturation import STEP
from failover.server.sampler import Sampler


def busy(clock: FakeClock, in_flight: int) -> Admission:
    """An admission on the fake clock with `in_flight` requests admitted."""
    adm = Admission(AdmissionPolicy(target_lag=0.03, lag_min_in_flight=10), clock=clock)
    for _ in range(in_flight):
        assert not isinstance(adm.admit("chat", stream=False, priority="high"), Shed)
    return adm


def test_a_step_of_a_whole_core_late_draws_a_line(clock: FakeClock) -> None:
    """A whole core used since the last sample, twice target_lag late: the sample draws the line."""
    adm = busy(clock, 200)
    used = iter([5.0, 5.0 + 2 * STEP])  # seconds of CPU at the first sample and two STEPs on
    sampler = Sampler(cpu_time=lambda: next(used))
    sampler.tick(adm, 0.06, 100.0)  # the first reading: nothing to compare with yet
    assert adm.line is None
    sampler.tick(adm, 0.06, 100.0 + STEP / 2)  # within a STEP: not read at all
    sampler.tick(adm, 0.06, 100.0 + 2 * STEP)
    assert adm.line is not None and adm.line.limit == 100


def test_a_step_of_little_cpu_draws_no_line(clock: FakeClock) -> None:
    """A fifth of a core since the last sample: however late, starved, not saturated."""
    adm = busy(clock, 200)
    used = iter([5.0, 5.0 + STEP / 5])
    sampler = Sampler(cpu_time=lambda: next(used))
    sampler.tick(adm, 0.5, 100.0)
    sampler.tick(adm, 0.5, 100.0 + 2 * STEP)
    assert adm.line is None
