"""The plain-number counters and histograms export what prometheus_client's own would."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from failover.observability.families import CounterFamily, HistogramFamily

BUCKETS = (0.1, 0.5, 2.5)


def _text(registry: CollectorRegistry) -> str:
    """The exposition with creation times masked (each side takes its own)."""
    text = generate_latest(registry).decode()
    return re.sub(r"(_created(?:\{[^}]*\})?) \S+", r"\1 T", text)


def test_counter_family_exposition_matches_prometheus_client() -> None:
    """Counts of several series read exactly as a labelled prometheus_client Counter's."""
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    family = CounterFamily("demo_requests", "Requests.", ["route", "outcome"])
    ours.register(family)
    counter = Counter("demo_requests", "Requests.", ["route", "outcome"], registry=theirs)
    for labels in [("a", "ok"), ("b", "ok"), ("a", "ok"), ("a", "timeout")]:
        family.inc(*labels)
        counter.labels(*labels).inc()
    family.touch("c", "ok")
    counter.labels("c", "ok")
    assert _text(ours) == _text(theirs)


@pytest.mark.parametrize("values", [[0.05, 0.1, 0.3, 3.0, 2.5], []])
def test_histogram_family_exposition_matches_prometheus_client(values: list[float]) -> None:
    """Observations land in the buckets, count and sum of a prometheus_client Histogram."""
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    family = HistogramFamily("demo_latency_seconds", "Latency.", ["route"], buckets=BUCKETS)
    ours.register(family)
    histogram = Histogram(
        "demo_latency_seconds", "Latency.", ["route"], buckets=BUCKETS, registry=theirs
    )
    family.touch("a")
    histogram.labels("a")
    for value in values:
        family.observe(value, "b")
        histogram.labels("b").observe(value)
    assert _text(ours) == _text(theirs)


def test_unlabelled_histogram_family_matches_prometheus_client() -> None:
    """A histogram without labels exports one series, as prometheus_client's does."""
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    family = HistogramFamily("demo_overhead_seconds", "Overhead.", buckets=BUCKETS)
    ours.register(family)
    histogram = Histogram("demo_overhead_seconds", "Overhead.", buckets=BUCKETS, registry=theirs)
    family.touch()
    for value in (0.01, 1.0):
        family.observe(value)
        histogram.observe(value)
    assert _text(ours) == _text(theirs)


def test_counter_family_refuses_the_wrong_number_of_labels() -> None:
    """A series with a label value missing is a programming error, as with labels()."""
    family = CounterFamily("demo_requests", "Requests.", ["route", "outcome"])
    with pytest.raises(ValueError, match="takes labels"):
        family.inc("a")
