"""Reading the PromQL of deploy/prometheus and deploy/grafana: the expressions, the metric names
they read, and `promtool` to check them with.

    names = metric_names('sum(rate(failover_requests_total[5m]))')   # {"failover_requests_total"}
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml

from .tools import REPO

__all__ = [
    "ALERTS",
    "ALERTS_TEST",
    "DASHBOARD",
    "GRAFANA_VARIABLES",
    "Query",
    "alert_rules",
    "dashboard",
    "dashboard_queries",
    "exported_names",
    "metric_names",
    "promtool",
    "recorded_names",
    "rule_groups",
    "rules_queries",
    "run_promtool",
    "write_recording_rules",
]

ALERTS = REPO / "deploy" / "prometheus" / "alerts.yaml"
ALERTS_TEST = REPO / "deploy" / "prometheus" / "alerts.test.yaml"
DASHBOARD = REPO / "deploy" / "grafana" / "failover.json"

# What Grafana puts in place of the dashboard's variables before it sends a query.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$slo_window": "30d",
    "$route": "smart|fast",
}
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


@dataclass(frozen=True)
class Query:
    """One PromQL expression and where it comes from."""

    where: str
    expr: str


def promtool() -> str:
    """The promtool on PATH; a missing one fails the test (.ci/run installs it)."""
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is not installed: the Prometheus rules and the dashboard's queries are "
            "checked with `promtool check rules` and `promtool test rules`. `.ci/run` installs "
            "it (Debian: prometheus, which ships /usr/bin/promtool)."
        )
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """`promtool args...`, its output captured."""
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, timeout=120, check=False
    )


def rule_groups() -> list[dict[str, Any]]:
    """The rule groups of alerts.yaml."""
    groups: list[dict[str, Any]] = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return groups


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule of alerts.yaml."""
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def recorded_names() -> set[str]:
    """The series names the recording rules of alerts.yaml write."""
    rules = [rule for group in rule_groups() for rule in group["rules"]]
    return {rule["record"] for rule in rules if "record" in rule}


def rules_queries() -> list[Query]:
    """The expression of every rule of alerts.yaml."""
    return [
        Query(rule.get("alert") or rule["record"], rule["expr"])
        for group in rule_groups()
        for rule in group["rules"]
    ]


def dashboard() -> dict[str, Any]:
    """The Grafana dashboard, as JSON."""
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries() -> list[Query]:
    """Every panel query of the dashboard, with Grafana's variables filled in."""
    return [
        Query(f"panel {panel['id']} {panel['title']!r} {target['refId']}", _fill(target["expr"]))
        for panel in _panels(dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


def _fill(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"a variable the tests do not know in: {expr}"
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (a parse error raises ValueError)."""
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            names.update(m.value for m in node.matchers.matchers if m.name == "__name__")

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def exported_names(text: str) -> set[str]:
    """The series names an exposition can hold: each family's name with its type's suffixes
    (a family with no series yet counts too)."""
    names = set()
    for family in re.finditer(r"^# TYPE (\S+) (\S+)$", text, re.M):
        name, kind = family[1], family[2]
        stem = name.removesuffix("_total") if kind == "counter" else name
        names.update(stem + suffix for suffix in _SUFFIXES.get(kind, ("",)))
    names.update(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]", text, re.M))
    return names


def write_recording_rules(queries: list[Query], path: Path) -> Path:
    """A rules file recording each query: `promtool check rules` then parses every one."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": query.expr} for i, query in enumerate(queries)
    ]
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    return path
