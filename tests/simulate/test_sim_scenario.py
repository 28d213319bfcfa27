"""Scenario files: validation, fault windows, phases of the run, load arrivals."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import yaml
from sim_helpers import CONFIG, make_scenario, scenario_data

from failover.chaos import (
    ErrorFault,
    MalformedEventFault,
    NoTerminatorFault,
    RefusePrefillFault,
    StallStreamFault,
)
from failover.errors import ConfigError
from failover.simulate.scenario import LoadProfile, Scenario, load_scenario


def test_a_timeline_fault_is_a_chaos_fault() -> None:
    """A timeline entry's fault is parsed with chaos.py's fault format."""
    scenario = make_scenario(
        timeline=[
            {
                "deployment": "primary",
                "start": "1s",
                "end": "2s",
                "fault": {"type": "error", "status": 503, "rate": "30%"},
            }
        ]
    )
    (fault,) = scenario.timeline[0].fault
    assert isinstance(fault, ErrorFault) and fault.status == 503 and fault.rate == 0.3


def test_stream_faults_are_written_in_a_timeline_like_any_other() -> None:
    """The stream faults parse in a timeline entry, and label its phase."""
    faults = [
        {"type": "stall_stream", "after_chunks": 6, "duration": "1m"},
        {"type": "malformed_event", "count": 2},
        {"type": "no_terminator"},
        {"type": "refuse_prefill"},
    ]
    scenario = make_scenario(timeline=[{"deployment": "primary", "start": "1s", "fault": faults}])
    stall, malformed, missing, refuse = scenario.timeline[0].fault
    assert isinstance(stall, StallStreamFault) and stall.duration == 60
    assert isinstance(malformed, MalformedEventFault) and malformed.count == 2
    assert isinstance(missing, NoTerminatorFault) and isinstance(refuse, RefusePrefillFault)
    assert scenario.segments()[1].label == (
        "primary: stall_stream 60s after 6 chunks; 2 malformed_events after 1 chunks; "
        "no_terminator; refuse_prefill"
    )


def test_a_bad_stream_fault_names_its_field() -> None:
    """A stream fault that does not validate is refused with the path to its field."""
    data = scenario_data(
        timeline=[{"deployment": "primary", "fault": {"type": "stall_stream", "duration": 0}}]
    )
    with pytest.raises(ConfigError, match=r"timeline\[0\]\.fault\[0\]\.stall_stream\.duration"):
        Scenario.from_yaml(yaml.safe_dump(data))


def test_a_fault_may_not_carry_its_own_window() -> None:
    """start/end inside a fault are refused: the timeline entry sets the window."""
    data = scenario_data(
        timeline=[{"deployment": "primary", "fault": {"type": "reset", "start": "3s"}}]
    )
    with pytest.raises(ConfigError, match="timeline entry's start/end"):
        Scenario.from_yaml(yaml.safe_dump(data))


def test_an_unknown_fault_type_names_the_field() -> None:
    """A bad fault is reported with its path in the scenario."""
    data = scenario_data(timeline=[{"deployment": "primary", "fault": {"type": "meteor"}}])
    with pytest.raises(ConfigError, match=r"timeline\[0\]\.fault"):
        Scenario.from_yaml(yaml.safe_dump(data))


def test_every_and_for_expand_into_repeated_windows() -> None:
    """`every: 10s, for: 3s` between 10 s and 40 s gives three 3-second windows."""
    scenario = make_scenario(
        load={"rate": 10, "duration": "60s"},
        timeline=[
            {
                "deployment": "primary",
                "start": "10s",
                "end": "40s",
                "every": "10s",
                "for": "3s",
                "fault": {"type": "reset"},
            }
        ],
    )
    assert [(w.start, w.end) for w in scenario.windows()] == [(10, 13), (20, 23), (30, 33)]


def test_an_open_ended_window_lasts_to_the_end_of_the_load() -> None:
    """A fault without `end` stays on until the load stops."""
    scenario = make_scenario(
        timeline=[{"deployment": "primary", "start": "5s", "fault": {"type": "reset"}}]
    )
    assert [(w.start, w.end) for w in scenario.windows()] == [(5, 20)]


def test_segments_are_cut_at_every_fault_switch() -> None:
    """Overlapping windows cut the run into phases that each know which faults are on."""
    scenario = make_scenario(
        timeline=[
            {"deployment": "primary", "start": "5s", "end": "12s", "fault": {"type": "reset"}},
            {"deployment": "backup", "start": "8s", "end": "15s", "fault": {"type": "reset"}},
        ]
    )
    cuts = [(s.start, s.end, sorted(w.deployment for w in s.active)) for s in scenario.segments()]
    assert cuts == [
        (0, 5, []),
        (5, 8, ["primary"]),
        (8, 12, ["backup", "primary"]),
        (12, 15, ["backup"]),
        (15, 20, []),
    ]


def test_phases_must_add_up_to_the_duration() -> None:
    """A duration that disagrees with the load phases is refused."""
    with pytest.raises(ValueError, match="phases' total"):
        LoadProfile.model_validate(
            {"duration": "30s", "phases": [{"duration": "10s"}, {"duration": "10s"}]}
        )


def test_load_phases_set_their_own_rates() -> None:
    """Arrivals follow each load phase's rate."""
    load = LoadProfile.model_validate(
        {
            "arrivals": "uniform",
            "phases": [{"duration": "10s", "rate": 5}, {"duration": "10s", "rate": 20}],
        }
    )
    times = [t for t, _ in load.arrivals_from(random.Random(1))]
    assert sum(t < 10 for t in times) == 50 and sum(t >= 10 for t in times) == 200


def test_poisson_arrivals_average_the_rate() -> None:
    """Open-loop Poisson arrivals come at the configured rate on average."""
    load = LoadProfile.model_validate({"rate": 200, "duration": "50s", "stream": "25%"})
    arrivals = list(load.arrivals_from(random.Random(3)))
    assert 9_700 < len(arrivals) < 10_300
    assert 0.23 < sum(s for _, s in arrivals) / len(arrivals) < 0.27


def test_a_timeline_naming_an_unknown_deployment_is_refused() -> None:
    """The timeline's deployments must exist in the gateway config."""
    scenario = make_scenario(timeline=[{"deployment": "nope", "fault": {"type": "reset"}}])
    with pytest.raises(ConfigError, match="unknown deployment 'nope'"):
        scenario.check_against(scenario.gateway_config())


def test_the_config_may_be_a_path_next_to_the_scenario(tmp_path: Path) -> None:
    """`config: gateway.yaml` is read relative to the scenario file."""
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(CONFIG))
    path = tmp_path / "drill.yaml"
    path.write_text(yaml.safe_dump(scenario_data(config="gateway.yaml")))
    scenario = load_scenario(path)
    assert scenario.name == "test"
    assert list(scenario.gateway_config().routes) == ["chat"]


def test_a_scenario_without_config_needs_one_given() -> None:
    """No embedded config and no --config is a clear error."""
    with pytest.raises(ConfigError, match="pass --config"):
        make_scenario(config=None).gateway_config()


def test_the_name_defaults_to_the_file_name(tmp_path: Path) -> None:
    """A scenario without `name` is named after its file."""
    data = scenario_data()
    del data["name"]
    path = tmp_path / "my-drill.yaml"
    path.write_text(yaml.safe_dump(data))
    assert load_scenario(path).name == "my-drill"


def test_an_invalid_slo_is_refused_when_loading() -> None:
    """An assertion that cannot be read fails the scenario, not the run."""
    with pytest.raises(ConfigError, match="slo"):
        Scenario.from_yaml(yaml.safe_dump(scenario_data(slo=["p99 is fast"])))
