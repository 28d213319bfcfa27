"""The `failover` command: help, --version, serve's refusals and start-up, check, explain."""

from __future__ import annotations

import gc
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import failover
from failover.cli import group as cli
from failover.cli import serve

SIM = """\
providers:
  sim: {kind: simulated}
  dead: {kind: simulated, options: {down: true}}
routes:
  chat:
    deployments: [{provider: sim, model: m1}, {provider: dead, model: m2}]
    hedge: {delay: 200ms}
"""


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in (
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_API_KEY",
        "FAILOVER_CONFIG",
        "FAILOVER_API_KEY",
        "FAILOVER_ADMIN_KEY",
    ):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


def write(tmp_path: Path, text: str, name: str = "failover.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("args", [[], ["serve"], ["check"], ["explain"]])
def test_every_command_has_help(runner: CliRunner, args: list[str]) -> None:
    """--help works everywhere and says something useful."""
    result = runner.invoke(cli.main, [*args, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.output and len(result.output) > 200


def test_version_prints_the_package_version(runner: CliRunner) -> None:
    """`failover --version` prints `failover <version>` from `failover.__version__`."""
    result = runner.invoke(cli.main, ["--version"])
    assert result.exit_code == 0
    assert result.output == f"failover {failover.__version__}\n"


def test_serve_refuses_workers_with_memory_state(runner: CliRunner) -> None:
    """Several workers with in-memory state would each keep their own breakers: refused."""
    result = runner.invoke(cli.main, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "state: redis://" in result.output


def test_serve_refuses_an_invalid_config(runner: CliRunner, tmp_path: Path) -> None:
    """A bad config file stops serve before it binds, naming the field."""
    path = write(tmp_path, "routes: {chat: {deployments: [{provider: nope, model: x}]}}")
    result = runner.invoke(cli.main, ["serve", "-c", path])
    assert result.exit_code == 2
    assert "routes.chat.deployments[0].provider" in result.output


def test_check_probes_every_deployment(runner: CliRunner, tmp_path: Path) -> None:
    """check prints one row per deployment and exits 1 when one fails its probe."""
    result = runner.invoke(cli.main, ["check", "-c", write(tmp_path, SIM)])
    assert result.exit_code == 1
    assert "sim/m1" in result.output and "dead/m2" in result.output
    assert "connection" in result.output
    assert "1 of 2 deployment(s) failed" in result.output


def test_check_without_probes_and_with_defaults(runner: CliRunner) -> None:
    """With no config, check validates the environment's default (simulated) config."""
    result = runner.invoke(cli.main, ["check"])
    assert result.exit_code == 0
    assert "config OK" in result.output and "sim-a/sim-large" in result.output
    assert runner.invoke(cli.main, ["check", "--no-probe"]).exit_code == 0


def test_check_invalid_config_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    """An invalid config is exit status 2 with the reason."""
    result = runner.invoke(cli.main, ["check", "-c", write(tmp_path, "routes: [")])
    assert result.exit_code == 2 and "invalid YAML" in result.output
    missing = runner.invoke(cli.main, ["check", "-c", str(tmp_path / "missing.yaml")])
    assert missing.exit_code == 2 and "cannot read config" in missing.output


def test_explain_in_plain_words(runner: CliRunner, tmp_path: Path) -> None:
    """explain describes order, retries, breaker, timeouts, hedging and panic mode."""
    result = runner.invoke(cli.main, ["explain", "-c", write(tmp_path, SIM), "chat"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for phrase in (
        "sim/m1 (simulated: simulated in the process, no network), dead/m2 (simulated: "
        "simulated in the process, no network) in the order written",
        "full jitter",
        "3 calls in a row fail",
        "Hedging: if a deployment has not answered after 200ms",
        "panic mode",
        "No fallback routes",
    ):
        assert phrase in text
    unknown = runner.invoke(cli.main, ["explain", "-c", write(tmp_path, SIM), "nope"])
    assert unknown.exit_code == 2 and "unknown route 'nope'" in unknown.output


def test_explain_names_wire_formats_and_credential_sources(
    runner: CliRunner, tmp_path: Path
) -> None:
    """Each deployment's wire format and where its credentials come from, never a secret."""
    config = """
providers:
  claude: {kind: anthropic, api_key: sk-ant-SECRET-123}
  aws: {kind: bedrock, options: {region: us-east-1, profile: prod}}
  gcp: {kind: vertex, options: {project: p, credentials_file: /etc/sa.json}}
routes:
  chat:
    deployments:
      - {provider: claude, model: claude-sonnet-4-5}
      - {provider: aws, model: anthropic.claude-sonnet-4-5-v1:0}
      - {provider: gcp, model: claude-sonnet-4-5}
"""
    result = runner.invoke(cli.main, ["explain", "-c", write(tmp_path, config)])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "claude/claude-sonnet-4-5 (anthropic: Anthropic Messages" in text
    assert "credentials: api_key from the config" in text
    assert "credentials: profile 'prod'" in text
    assert "credentials: /etc/sa.json" in text
    assert "SECRET" not in result.output


def test_lazy_commands_are_listed_and_load_when_used(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """demo/simulate/status are always listed and their modules load only when run."""
    (tmp_path / "fake_demo_mod.py").write_text(
        "import click\n\n@click.command()\ndef command():\n    'Run the demo.'\n"
        "    click.echo('demo ran')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "demo", ("fake_demo_mod", "command"))
    listed = runner.invoke(cli.main, ["--help"]).output
    assert all(name in listed for name in ("demo", "simulate", "status"))
    assert runner.invoke(cli.main, ["demo"]).output == "demo ran\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_starts_fast_and_says_so(tmp_path: Path, monkeypatch: Any) -> None:
    """`failover serve` with no keys serves simulated providers, ready in about a second."""
    port = free_port()
    env = {k: v for k, v in __import__("os").environ.items() if not k.endswith("_API_KEY")}
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "failover.cli", "serve", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**env, "COLUMNS": "120"},
    )
    try:
        ready = None
        while time.monotonic() - started < 10:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
                    s.sendall(b"GET /health/ready HTTP/1.1\r\nhost: t\r\n\r\n")
                    if s.recv(32).startswith(b"HTTP/1.1 200"):
                        ready = time.monotonic() - started
                        break
            except OSError:
                time.sleep(0.01)
        assert ready is not None and ready < 2.0
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    text = out.decode()
    assert f"http://127.0.0.1:{port}/v1" in text
    assert "SIMULATED" in text and "route smart" in text
    assert "not required (open)" in text
    assert proc.returncode == 0, err.decode()


def test_serve_workers_with_shared_state(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With state in Redis, --workers N hands uvicorn an app factory reading $FAILOVER_CONFIG."""
    import uvicorn

    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: calls.append((a, k)))
    monkeypatch.setattr(serve, "_setup_logging", lambda config, level: level or "info")
    monkeypatch.setenv("FAILOVER_CONFIG", "restored after the test")
    path = write(tmp_path, SIM + "state: redis://127.0.0.1:6399/0\n")
    result = runner.invoke(cli.main, ["serve", "-c", path, "--workers", "3"])
    assert result.exit_code == 0, result.output
    [(args, kwargs)] = calls
    assert args == ("failover.server.app:app_from_environment",)
    assert kwargs["factory"] is True and kwargs["workers"] == 3
    import os

    assert os.environ["FAILOVER_CONFIG"] == str(Path(path).resolve())
    from failover.server.app import Gateway, app_from_environment

    threshold = gc.get_threshold()
    try:
        assert isinstance(app_from_environment(), Gateway)
        # each worker collects garbage as `failover serve` alone does
        assert gc.get_threshold() == (50_000, 1, 1_000) and gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
