"""`failover check` refuses exactly what `failover serve` refuses: the same bad files, run through
the real command line and through the gateway's own loading, fail both, naming the same field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from failover import cli
from failover.errors import ConfigError
from failover.server.app import Gateway, app_from_environment, create_app

GOOD = """\
providers:
  sim: {kind: simulated}
routes:
  chat:
    deployments: [{provider: sim, model: m}]
"""


def with_provider(provider: str) -> str:
    """GOOD with its provider written as `provider`."""
    return GOOD.replace("{kind: simulated}", provider)


# one bad file per section, and the path its error names
BAD = {
    "server": (GOOD + "server: {grace: soon}\n", "server.grace"),
    "admission": (GOOD + "server: {admission: {max_streams: 0}}\n", "server.admission.max_streams"),
    "admission shares": (
        GOOD + "server: {admission: {shed: {low: 95%}}}\n",
        "server.admission.shed",
    ),
    "admission routes": (
        GOOD + "server: {admission: {routes: {nope: {max_requests: 5}}}}\n",
        "server.admission.routes.nope",
    ),
    "api keys": (
        GOOD + "server: {api_keys: [{key: k, priority: urgent}]}\n",
        "server.api_keys[0].priority",
    ),
    "api key names": (
        GOOD + "server: {api_keys: [{key: a, name: x}, {key: b, name: x}]}\n",
        "server.api_keys",
    ),
    "simulated options": (
        with_provider("{kind: simulated, options: {error_rate: 2}}"),
        "providers.sim.options.error_rate",
    ),
    "openai options": (
        with_provider("{kind: openai, options: {max_conections: 4}}"),
        "providers.sim.options.max_conections: unknown field",
    ),
    "anthropic options": (
        with_provider("{kind: anthropic, options: {default_max_tokens: none}}"),
        "providers.sim.options.default_max_tokens",
    ),
    "azure": (with_provider("{kind: azure}"), "providers.sim.base_url"),
    "routes": (GOOD + "    panic: sometimes\n", "routes.chat.panic"),
    "defaults": (
        GOOD + "defaults: {breaker: {window_seconds: 0}}\n",
        "defaults.breaker.window_seconds",
    ),
    "slo": (GOOD + "    slo: {availability: 100%}\n", "routes.chat.slo.availability"),
    "defaults slo": (
        GOOD + "defaults: {slo: {latency: {p50: 3s, p99: 1s}}}\n",
        "defaults.slo.latency",
    ),
    "state": (GOOD + "state: redis://127.0.0.1:6379/0?namespace=\n", "state"),
    "observability": (GOOD + "observability: {metrics: maybe}\n", "observability.metrics"),
    "logs": (GOOD + "observability: {logs: {level: loud}}\n", "observability.logs.level"),
    "webhooks": (
        GOOD + "observability: {webhooks: [{url: ftp://h/x}]}\n",
        "observability.webhooks[0].url",
    ),
    "chaos": (
        GOOD.replace("model: m}", "model: m, chaos: {faults: [{type: meteor}]}}"),
        "routes.chat.deployments[0].chaos.faults[0]",
    ),
}


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    for name in ("FAILOVER_CONFIG", "FAILOVER_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    return CliRunner()


@pytest.fixture(params=sorted(BAD))
def bad_file(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """A config file with one bad section, and the path its error must name."""
    text, path = BAD[request.param]
    file = tmp_path / "failover.yaml"
    file.write_text(text, encoding="utf-8")
    return str(file), path


def test_check_refuses_the_bad_file(runner: CliRunner, bad_file: tuple[str, str]) -> None:
    """`failover check --no-probe` exits 2 naming the bad field."""
    file, path = bad_file
    result = runner.invoke(cli.main, ["check", "--no-probe", "-c", file])
    assert result.exit_code == 2, result.output
    assert path in result.output and "config OK" not in result.output


def test_serve_refuses_the_bad_file(runner: CliRunner, bad_file: tuple[str, str]) -> None:
    """`failover serve` exits 2 naming the bad field, before it binds."""
    file, path = bad_file
    result = runner.invoke(cli.main, ["serve", "--port", "0", "-c", file])
    assert result.exit_code == 2, result.output
    assert path in result.output


def test_the_gateway_refuses_the_bad_file(bad_file: tuple[str, str]) -> None:
    """Building the gateway from the file (what serve runs) fails with the same path."""
    file, path = bad_file
    with pytest.raises(ConfigError, match=re.escape(path)):
        create_app(file)


def test_a_worker_refuses_the_bad_file(
    bad_file: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each `serve --workers N` process loads the file the same way, and fails the same."""
    file, path = bad_file
    monkeypatch.setenv("FAILOVER_CONFIG", file)
    with pytest.raises(ConfigError) as info:
        app_from_environment()
    assert path in str(info.value)


def test_check_and_the_gateway_accept_the_good_file(runner: CliRunner, tmp_path: Path) -> None:
    """The file the bad ones are made from passes check and builds a gateway."""
    file = tmp_path / "failover.yaml"
    file.write_text(GOOD, encoding="utf-8")
    result = runner.invoke(cli.main, ["check", "--no-probe", "-c", str(file)])
    assert result.exit_code == 0 and "config OK" in result.output
    assert isinstance(create_app(file), Gateway)
