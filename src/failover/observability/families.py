"""Labelled counters and histograms kept as plain numbers, exported through a collector.

Every request moves about a dozen series (requests, attempts, latencies, SLO counts). With
`prometheus_client`'s own `Counter` and `Histogram` each move is several calls and a lock;
here it is one dict update on the event loop's thread, and the exposition is built from the
numbers when Prometheus scrapes. The text is the same as theirs: `_total` and `_created`
samples for a counter; `_bucket` (cumulative, `le` as Go formats floats), `_count`, `_sum`
and `_created` for a histogram; series in the order they were first seen.

    requests = CounterFamily("failover_requests", "Requests finished.", ("route", "outcome"))
    registry.register(requests)
    requests.inc("chat", "ok")
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence

from prometheus_client import metrics as _client
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

__all__ = ["CounterFamily", "HistogramFamily", "go_float"]

Labels = tuple[str, ...]
# how prometheus_client writes a bucket's `le` (untyped there, hence the annotation here)
go_float: Callable[[float], str] = floatToGoString


def _created_series() -> bool:
    """Whether `_created` samples are exported (`prometheus_client.disable_created_metrics()`
    and PROMETHEUS_DISABLE_CREATED_SERIES turn them off for every metric alike)."""
    return bool(getattr(_client, "_use_created", True))


class CounterFamily:
    """A counter with labels: `inc(*labels)` adds one to the series of those label values."""

    __slots__ = ("_created", "_values", "documentation", "labelnames", "name")

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._values: dict[Labels, float] = {}
        self._created: dict[Labels, float] = {}

    def inc(self, *labels: str) -> None:
        """Count one more of the series `labels` (one value per label name)."""
        try:
            self._values[labels] += 1.0
        except KeyError:
            self.touch(*labels)
            self._values[labels] += 1.0

    def touch(self, *labels: str) -> None:
        """Export the series `labels` from 0, before anything is counted in it."""
        if labels not in self._values:
            if len(labels) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labels}")
            self._values[labels] = 0.0
            self._created[labels] = time.time()

    def value(self, *labels: str) -> float:
        """The count of one series (0 when never counted)."""
        return self._values.get(labels, 0.0)

    def collect(self) -> Iterable[Metric]:
        metric = Metric(self.name, self.documentation, "counter")
        created = _created_series()
        for labels, value in list(self._values.items()):
            tags = dict(zip(self.labelnames, labels, strict=True))
            metric.samples.append(Sample(self.name + "_total", tags, value))
            if created:
                metric.samples.append(Sample(self.name + "_created", tags, self._created[labels]))
        yield metric

    def describe(self) -> Iterable[Metric]:
        yield Metric(self.name, self.documentation, "counter")


class HistogramFamily:
    """A histogram with labels: `observe(value, *labels)` counts `value` in its bucket."""

    __slots__ = ("_bounds", "_created", "_series", "documentation", "labelnames", "name")

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        *,
        buckets: Sequence[float],
    ) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        bounds = sorted(float(b) for b in buckets)
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self._bounds = tuple(bounds)
        # per series: a count per bucket (not cumulative), then the sum of the values
        self._series: dict[Labels, list[float]] = {}
        self._created: dict[Labels, float] = {}

    def observe(self, value: float, *labels: str) -> None:
        """Count `value` in the series `labels`."""
        series = self._series.get(labels)
        if series is None:
            self.touch(*labels)
            series = self._series[labels]
        series[bisect_left(self._bounds, value)] += 1.0  # the first bound >= value
        series[-1] += value

    def touch(self, *labels: str) -> None:
        """Export the series `labels` from 0, before anything is observed in it."""
        if labels not in self._series:
            if len(labels) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {labels}")
            self._series[labels] = [0.0] * (len(self._bounds) + 1)
            self._created[labels] = time.time()

    def collect(self) -> Iterable[Metric]:
        metric = Metric(self.name, self.documentation, "histogram")
        created = _created_series()
        les = [go_float(b) for b in self._bounds]
        name, add = self.name, metric.samples.append
        for labels, series in list(self._series.items()):
            tags = dict(zip(self.labelnames, labels, strict=True))
            count = 0.0
            for le, n in zip(les, series, strict=False):  # the last item is the sum
                count += n
                add(Sample(name + "_bucket", {**tags, "le": le}, count))
            add(Sample(name + "_count", tags, count))
            if self._bounds[0] >= 0:  # as prometheus_client: no sum with negative buckets
                add(Sample(name + "_sum", tags, series[-1]))
            if created:
                add(Sample(name + "_created", tags, self._created[labels]))
        yield metric

    def describe(self) -> Iterable[Metric]:
        yield Metric(self.name, self.documentation, "histogram")
