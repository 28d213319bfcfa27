"""deploy/grafana/failover.json: a dashboard Grafana can import, on a Prometheus data source
chosen at import, filtered by route, that shows what running failover needs watching."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from .promql import dashboard, dashboard_queries, metric_names

SCHEMA = json.loads((Path(__file__).parent / "grafana_dashboard.schema.json").read_text())
DATASOURCE = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
# what an operator of failover looks at, each read by some panel
WATCHED = {
    "failover_requests_total",
    "failover_slo_requests_total",
    "failover_slo_objective",
    "failover_request_latency_seconds_bucket",
    "failover_slo_latency_seconds",
    "failover_attempts_total",
    "failover_failovers_total",
    "failover_retries_total",
    "failover_fallbacks_total",
    "failover_stream_breaks_total",
    "failover_breaker_state",
    "failover_deployment_healthy",
    "failover_store_degraded",
}


def schema_errors(document: dict[str, Any]) -> list[str]:
    """Where `document` breaks the dashboard schema, one line per error."""
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def panels() -> list[dict[str, Any]]:
    """The dashboard's panels, rows included."""
    found: list[dict[str, Any]] = dashboard()["panels"]
    return found


def variable(name: str) -> dict[str, Any]:
    """The dashboard variable called `name`."""
    found = [v for v in dashboard()["templating"]["list"] if v["name"] == name]
    assert len(found) == 1, f"no single variable {name}"
    return found[0]


def test_the_schema_is_a_valid_json_schema() -> None:
    """The dashboard schema itself is well formed."""
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_the_dashboard_matches_the_schema() -> None:
    """failover.json has every field Grafana needs, of the right type."""
    assert schema_errors(dashboard()) == []


@pytest.mark.parametrize(
    ("what", "break_it"),
    [
        ("a panel without queries", lambda d: d["panels"][1].pop("targets")),
        ("a panel wider than the grid", lambda d: d["panels"][1]["gridPos"].update(w=30)),
        ("a query without an expression", lambda d: d["panels"][1]["targets"][0].pop("expr")),
        ("a variable of no known type", lambda d: d["templating"]["list"][0].update(type="x")),
        ("a uid Grafana refuses", lambda d: d.update(uid="no spaces allowed here")),
    ],
)
def test_the_schema_rejects_what_grafana_cannot_load(what: str, break_it: Any) -> None:
    """A dashboard broken in one of these ways fails the schema."""
    broken = copy.deepcopy(dashboard())
    break_it(broken)
    assert schema_errors(broken), what


def test_the_schema_version_is_current() -> None:
    """The dashboard is written in the JSON model of Grafana 12."""
    assert dashboard()["schemaVersion"] >= 41


def test_the_data_source_is_chosen_by_a_variable() -> None:
    """DS_PROMETHEUS is a Prometheus data source variable, and every panel and query uses it."""
    assert variable("DS_PROMETHEUS")["type"] == "datasource"
    assert variable("DS_PROMETHEUS")["query"] == "prometheus"
    for panel in panels():
        if panel["type"] != "row":
            assert panel["datasource"] == DATASOURCE, panel["title"]
            assert all(t["datasource"] == DATASOURCE for t in panel["targets"]), panel["title"]


def test_the_route_variable_lists_route_labels() -> None:
    """`route` is a multi-value query variable over the route label of the request counter."""
    route = variable("route")
    assert route["type"] == "query" and route["datasource"] == DATASOURCE
    assert route["definition"] == "label_values(failover_requests_total, route)"
    assert route["query"]["query"] == route["definition"]
    assert route["multi"] and route["includeAll"] and route["allValue"] == ".*"


def test_per_route_panels_follow_the_route_variable() -> None:
    """Every query that selects by route selects the routes chosen in `route`."""
    for query in dashboard_queries():
        raw = query.expr
        if "route=" in raw.replace(" ", ""):
            assert 'route=~"smart|fast"' in raw, query.where


def test_panel_ids_are_unique() -> None:
    """No two panels share an id."""
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids))


def test_panels_do_not_overlap() -> None:
    """No two panels cover the same cell of the 24-column grid."""
    cells = [
        {
            (x, y)
            for x in range(p["gridPos"]["x"], p["gridPos"]["x"] + p["gridPos"]["w"])
            for y in range(p["gridPos"]["y"], p["gridPos"]["y"] + p["gridPos"]["h"])
        }
        for p in panels()
    ]
    for (i, a), (j, b) in itertools.combinations(enumerate(cells), 2):
        assert not a & b, f"{panels()[i]['title']!r} overlaps {panels()[j]['title']!r}"


def test_the_dashboard_shows_what_needs_watching() -> None:
    """Requests, SLOs, latency, failover, stream breaks, breakers, health and Redis all have a
    panel."""
    shown = set().union(*(metric_names(query.expr) for query in dashboard_queries()))
    assert shown >= WATCHED
