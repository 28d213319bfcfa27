"""Every PromQL expression of the Grafana dashboard and of the Prometheus rules parses, and
reads only series a running gateway serves (or the rules record)."""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .promql import (
    Query,
    dashboard,
    dashboard_queries,
    exported_names,
    metric_names,
    recorded_names,
    rules_queries,
    run_promtool,
    write_recording_rules,
)
from .tools import serving

CONFIG = """\
providers:
  sim: {kind: simulated}
routes:
  chat:
    deployments: [{provider: sim, model: a}, {provider: sim, model: b}]
    slo: {availability: 99.9%, latency: {p50: 300ms, p99: 2s}}
  fast:
    deployments: [{provider: sim, model: c}]
"""


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """What GET /metrics of a `failover serve` with objectives answers, after one request."""
    workdir = tmp_path_factory.mktemp("slo-gateway")
    config = workdir / "failover.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    with serving([sys.executable, "-m", "failover.cli"], workdir, config=config) as url:
        ask = urllib.request.Request(
            f"{url}/v1/chat/completions",
            data=b'{"model": "chat", "messages": [{"role": "user", "content": "hi"}]}',
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(ask, timeout=10) as answer:
            assert answer.status == 200
        with urllib.request.urlopen(f"{url}/metrics", timeout=10) as metrics:
            yield metrics.read().decode()


def test_the_scrape_has_the_slo_series(scraped: str) -> None:
    """The gateway under test exports its objectives (else the checks below prove little)."""
    assert 'failover_slo_objective{route="chat",slo="availability"} 0.999' in scraped
    assert 'failover_slo_requests_total{outcome="good",route="chat"} 1.0' in scraped


def test_metric_names_are_read_from_the_syntax_tree() -> None:
    """Names come from selectors only: not from functions, labels or aggregation clauses."""
    expr = 'sum by (route) (rate(a_total{route="x"}[5m])) / on (route) group_left {__name__="b"}'
    assert metric_names(expr) == {"a_total", "b"}


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    """promtool accepts each dashboard query as the expression of a recording rule."""
    queries = dashboard_queries()
    rules = write_recording_rules(queries, tmp_path / "dashboard.rules.yaml")
    result = run_promtool("check", "rules", str(rules))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_a_broken_query_fails_the_parse_check(tmp_path: Path) -> None:
    """The same check refuses a query with a syntax error, naming it."""
    broken = [*dashboard_queries()[:1], Query("broken", "sum(rate(x[5m])")]
    rules = write_recording_rules(broken, tmp_path / "broken.rules.yaml")
    result = run_promtool("check", "rules", str(rules))
    assert result.returncode != 0
    assert "dashboard:query_1" in result.stdout + result.stderr


@pytest.mark.parametrize("query", dashboard_queries(), ids=lambda q: q.where)
def test_dashboard_queries_read_served_metrics(query: Query, scraped: str) -> None:
    """Each dashboard query selects only series the gateway's /metrics has: the dashboard
    works without the recording rules."""
    assert metric_names(query.expr) - exported_names(scraped) == set()


def test_the_route_variable_reads_a_served_metric(scraped: str) -> None:
    """The metric the route variable lists labels of is one the gateway serves."""
    route = next(v for v in dashboard()["templating"]["list"] if v["name"] == "route")
    metric = route["definition"].removeprefix("label_values(").split(",")[0]
    assert metric in exported_names(scraped)


@pytest.mark.parametrize("query", rules_queries(), ids=lambda q: q.where)
def test_rule_queries_read_served_or_recorded_series(query: Query, scraped: str) -> None:
    """Each rule selects only series the gateway serves or another rule records."""
    assert metric_names(query.expr) - exported_names(scraped) - recorded_names() == set()
