"""`failover simulate`: output files, exit codes, the CI gate."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from failover.cli import main
from failover.cli.simulate import simulate_command
from simulate.sim_helpers import scenario_data


@pytest.fixture
def drill(tmp_path: Path) -> Path:
    """A short scenario file with an SLO that holds."""
    path = tmp_path / "drill.yaml"
    data = scenario_data(
        load={"rate": 20, "duration": "15s"}, slo=["availability>=99%", "detect<=1s"]
    )
    path.write_text(yaml.safe_dump(data))
    return path


def run(*args: str) -> click.testing.Result:
    return CliRunner().invoke(simulate_command, list(args))


def test_a_passing_run_prints_the_report_and_writes_its_files(drill: Path, tmp_path: Path) -> None:
    """Exit 0, the tables on stdout, the JSON report and the chart on disk."""
    out_json, out_png = tmp_path / "r.json", tmp_path / "c.png"
    result = run(str(drill), "--fast", "-q", "--json", str(out_json), "--chart", str(out_png))
    assert result.exit_code == 0, result.output
    assert "Phases" in result.stdout and "PASS availability >= 99%" in result.stdout
    assert json.loads(out_json.read_text())["passed"] is True
    assert out_png.stat().st_size > 10_000


def test_a_failed_assertion_exits_1_and_lists_it(drill: Path) -> None:
    """`--assert` adds to the scenario's SLO; a miss fails the run with the miss named."""
    result = run(str(drill), "--fast", "-q", "--assert", "p50<=1ms")
    assert result.exit_code == 1
    assert "SLO not met" in result.stderr and "p50 <= 1ms: got" in result.stderr


def test_no_slo_ignores_the_scenario_assertions(tmp_path: Path) -> None:
    """`--no-slo` keeps only the command line's assertions."""
    path = tmp_path / "strict.yaml"
    path.write_text(
        yaml.safe_dump(scenario_data(load={"rate": 10, "duration": "5s"}, slo=["p50<=1ms"]))
    )
    assert run(str(path), "--fast", "-q").exit_code == 1
    assert run(str(path), "--fast", "-q", "--no-slo").exit_code == 0


def test_an_unreadable_assertion_exits_2(drill: Path) -> None:
    """A bad --assert is a usage error, reported before anything runs."""
    result = run(str(drill), "--fast", "--assert", "p99 is low")
    assert result.exit_code == 2 and "METRIC OP VALUE" in result.stderr


def test_an_invalid_scenario_exits_2(tmp_path: Path) -> None:
    """A scenario that does not validate is reported with the bad field."""
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(scenario_data(load={"rate": 10})))
    result = run(str(path), "--fast")
    assert result.exit_code == 2 and "load" in result.stderr


def test_fast_mode_cannot_drive_a_gateway(drill: Path) -> None:
    """--fast is virtual time in-process; with --url it is refused."""
    result = run(str(drill), "--fast", "--url", "http://127.0.0.1:9")
    assert result.exit_code == 2 and "--fast" in result.stderr


def test_the_command_is_what_the_failover_cli_registers() -> None:
    """`failover simulate` runs the simulator's command."""
    with click.Context(main) as ctx:
        assert main.get_command(ctx, "simulate") is simulate_command
    assert isinstance(simulate_command, click.Command)


def test_python_dash_m_runs_the_simulator(drill: Path) -> None:
    """`python -m failover simulate` works without the `failover` script."""
    done = subprocess.run(
        [sys.executable, "-m", "failover", "simulate", str(drill), "--fast", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "PASS detect <= 1s" in done.stdout
