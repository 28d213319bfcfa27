"""The admission metrics of a gateway: exported from its Admission, and documented exactly."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from failover import FakeClock, Route, Router
from failover.observability import Observability
from failover.resilience.admission import Admission, AdmissionPolicy, Gate, Limits, Shed
from failover.testing import ScriptedDeployment, ok

DOC = Path(__file__).resolve().parents[2] / "docs" / "observability.md"
FAMILIES = ("failover_admission_",)


def router(clock: FakeClock) -> Router:
    """One route, `chat`, over one scripted deployment."""
    return Router({"chat": Route([ScriptedDeployment("d", ok("hi"), clock=clock)])}, clock=clock)


def exported(obs: Observability) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The admission families of `obs`'s /metrics: name -> sorted labels -> value."""
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(obs.metrics_text().decode()):
        if family.name.startswith(FAMILIES):
            name = family.name + ("_total" if family.type == "counter" else "")
            out[name] = {tuple(sorted(s.labels.items())): s.value for s in family.samples}
    return out


def documented() -> set[str]:
    """The metric names of the Admission table of docs/observability.md."""
    section = DOC.read_text(encoding="utf-8").split("\n### Admission\n", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `(failover_[a-z_]+)`", section, re.M))


def test_every_admission_metric_is_documented_and_exported(clock: FakeClock) -> None:
    """The Admission table lists exactly the families the gateway's admission exports."""
    assert set(exported(Observability(router(clock)))) == documented()


def test_gauges_follow_the_admission(clock: FakeClock) -> None:
    """In flight and limits, of the process, a route and a key, as the admission has them."""
    policy = AdmissionPolicy(
        max_requests=5, routes={"chat": Limits(max_streams=3)}, keys={"batch": Limits(2, None)}
    )
    admission = Admission(policy, routes=["chat"], clock=clock)
    admission.admit("chat", stream=True, priority="high", key="batch")
    obs = Observability(router(clock))
    assert obs.metrics is not None
    obs.metrics.watch_admission(admission)
    metrics = exported(obs)
    assert metrics["failover_admission_in_flight"] == {
        (("kind", "requests"),): 0,
        (("kind", "streams"),): 1,
    }
    assert metrics["failover_admission_limit"][(("kind", "requests"),)] == 5
    assert metrics["failover_admission_route_in_flight"] == {
        (("kind", "streams"), ("route", "chat")): 1
    }
    assert metrics["failover_admission_key_limit"] == {(("key", "batch"), ("kind", "requests")): 2}


def test_sheds_are_counted_by_route_priority_and_reason(clock: FakeClock) -> None:
    """Each shed shows in failover_admission_shed_total under its labels."""
    admission = Admission(AdmissionPolicy(max_requests=1), routes=["chat"], clock=clock)
    admission.admit("chat", stream=False, priority="high")
    for _ in range(3):
        admission.admit("chat", stream=False, priority="low")
    admission.admit("nobody-configured-this", stream=False, priority="high")
    obs = Observability(router(clock))
    assert obs.metrics is not None
    obs.metrics.watch_admission(admission)
    assert exported(obs)["failover_admission_shed_total"] == {
        (("priority", "low"), ("reason", "max_requests"), ("route", "chat")): 3,
        (("priority", "high"), ("reason", "max_requests"), ("route", "_other")): 1,
    }


def test_the_lines_are_exported_by_kind(clock: FakeClock) -> None:
    """failover_admission_saturation_limit has a sample for each line the process holds."""
    admission = Admission(AdmissionPolicy(), routes=["chat"], clock=clock)
    obs = Observability(router(clock))
    assert obs.metrics is not None
    obs.metrics.watch_admission(admission)
    assert exported(obs)["failover_admission_saturation_limit"] == {}
    admission.stream_line = Gate("loop_lag", 300, admission.policy.shed)
    assert exported(obs)["failover_admission_saturation_limit"] == {(("kind", "streams"),): 300}


def test_the_clients_told_to_come_back_are_exported(clock: FakeClock) -> None:
    """failover_admission_retry_pending counts shed clients until they are due back."""
    admission = Admission(AdmissionPolicy(max_requests=1), routes=["chat"], clock=clock)
    obs = Observability(router(clock))
    assert obs.metrics is not None
    obs.metrics.watch_admission(admission)
    assert exported(obs)["failover_admission_retry_pending"] == {(): 0}
    admission.admit("chat", stream=False, priority="high")
    waits = []
    for _ in range(3):
        shed = admission.admit("chat", stream=False, priority="high")
        assert isinstance(shed, Shed)
        waits.append(shed.retry_after)
    assert exported(obs)["failover_admission_retry_pending"] == {(): 3}
    clock.advance_sync(max(waits) + 0.2)
    assert exported(obs)["failover_admission_retry_pending"] == {(): 0}
