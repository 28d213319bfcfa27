"""docs/observability.md documents every metric `/metrics` exports, and only those."""

from __future__ import annotations

import re
from pathlib import Path

from obs_helpers import two_routes
from prometheus_client.parser import text_string_to_metric_families

from failover import FakeClock
from failover.config import ObservabilityConfig, WebhookConfig
from failover.observability import Observability

DOC = Path(__file__).resolve().parents[2] / "docs" / "observability.md"
# how each kind of family is written in the docs' tables
SUFFIX = {"counter": "_total", "gauge": "", "histogram": "", "unknown": ""}


def documented() -> set[str]:
    """The metric names in the first column of the tables of the Metrics section."""
    section = DOC.read_text(encoding="utf-8").split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `(failover_[a-z_]+)`", section, re.M))


def exported(clock: FakeClock) -> set[str]:
    """Every family a gateway's /metrics holds, with a webhook and objectives configured."""
    router = two_routes(clock)
    config = ObservabilityConfig(webhooks=[WebhookConfig(url="http://127.0.0.1:9/hook")])
    text = Observability(router, config).metrics_text().decode()
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    # prometheus_client writes when each counter and histogram series began as `<name>_created`
    created = {f"{name}_created" for name in families}
    return {name + SUFFIX[kind] for name, kind in families.items() if name not in created}


def test_the_docs_list_metrics() -> None:
    """The Metrics section has tables of metrics for this test to read."""
    assert len(documented()) >= 20


def test_every_exported_metric_is_documented(clock: FakeClock) -> None:
    """No family leaves /metrics without a row in docs/observability.md."""
    assert exported(clock) - documented() == set()


def test_every_documented_metric_is_exported(clock: FakeClock) -> None:
    """No row of docs/observability.md names a metric /metrics does not have."""
    assert documented() - exported(clock) == set()
