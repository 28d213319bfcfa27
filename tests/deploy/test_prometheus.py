"""deploy/prometheus/alerts.yaml: promtool accepts the rules and passes their unit tests, every
alert is tested firing and silent, and each one says what it means and where its runbook is."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pymdownx.slugs import slugify

from failover.config import QUANTILES, SLO_WINDOWS
from failover.observability.slo import go_float

from .promql import ALERTS, ALERTS_TEST, alert_rules, rule_groups, run_promtool
from .tools import REPO

OBSERVABILITY = REPO / "docs" / "observability.md"
SEVERITIES = {"page", "ticket", "warning"}


def _tests() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = yaml.safe_load(ALERTS_TEST.read_text(encoding="utf-8"))["tests"]
    return tests


def _anchors() -> set[str]:
    """The anchors of docs/observability.md's headings, as the docs site makes them."""
    headings = re.findall(r"^#+ (.+)$", OBSERVABILITY.read_text(encoding="utf-8"), re.M)
    to_slug = slugify(case="lower")
    return {to_slug(heading, "-") for heading in headings}


def test_promtool_checks_the_rules() -> None:
    """`promtool check rules` accepts alerts.yaml."""
    result = run_promtool("check", "rules", str(ALERTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_passes_the_rule_unit_tests() -> None:
    """`promtool test rules` passes alerts.test.yaml: each alert fires, and stays silent, on
    its series."""
    result = run_promtool("test", "rules", str(ALERTS_TEST))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_is_tested_firing_and_silent(rule: dict[str, Any]) -> None:
    """alerts.test.yaml expects the alert at some time and expects it absent at another."""
    cases = [
        case
        for test in _tests()
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == rule["alert"]
    ]
    assert any(case["exp_alerts"] for case in cases), "never expected to fire"
    assert any(not case["exp_alerts"] for case in cases), "never expected to stay silent"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_explains_itself(rule: dict[str, Any]) -> None:
    """Each alert has a severity, a summary, a description and a runbook in the docs."""
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert annotations["summary"] and annotations["description"]
    page, _, anchor = annotations["runbook_url"].partition("#")
    assert page == "docs/observability.md"
    assert anchor == rule["alert"].lower() and anchor in _anchors()


def test_latency_is_recorded_for_every_quantile_the_config_offers() -> None:
    """Each latency objective a route may set (p50 ... p999) has its quantile recorded."""
    for window in ("rate5m", "rate1h"):
        record = f"route_quantile:failover_request_latency_seconds:{window}"
        quantiles = {
            rule["labels"]["quantile"]
            for group in rule_groups()
            for rule in group["rules"]
            if rule.get("record") == record
        }
        assert quantiles == {go_float(q) for q in QUANTILES.values()}


def test_every_slo_window_the_config_allows_is_recorded() -> None:
    """routes.<name>.slo.window takes only windows the rules record an error ratio over."""
    records = {rule.get("record"): rule["expr"] for g in rule_groups() for rule in g["rules"]}
    for name, seconds in SLO_WINDOWS.items():
        assert f"route:failover_slo_errors:ratio_rate{name}" in records
        days = f"route:failover_slo_window:days == {seconds / 86400:g})"
        assert days in records["route:failover_slo_errors:ratio_window"]
